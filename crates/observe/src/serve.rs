use std::{future::Future, io, net::SocketAddr};

use axum::Router;
use tokio::{net::TcpListener, sync::oneshot};

use crate::Observability;

impl Observability {
    /// Serves `app` on `listener` until SIGTERM or SIGINT, then stops
    /// accepting, lets open requests finish for at most
    /// [`shutdown_timeout`](Self::shutdown_timeout), and returns.
    ///
    /// Handlers can read the peer address with
    /// `axum::extract::ConnectInfo<SocketAddr>`.
    pub async fn serve(&self, listener: TcpListener, app: Router) -> io::Result<()> {
        // Registered before serving, so a signal that arrives early is not lost.
        let signal = shutdown_signal()?;
        self.serve_with_shutdown(listener, app, signal).await
    }

    /// [`serve`](Self::serve), with `shutdown` in place of the signals.
    pub async fn serve_with_shutdown<F>(
        &self,
        listener: TcpListener,
        app: Router,
        shutdown: F,
    ) -> io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let address = listener.local_addr()?;
        tracing::info!(
            service = self.service_name(),
            environment = self.environment(),
            %address,
            "listening"
        );
        let (draining, drain_started) = oneshot::channel();
        let server = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = draining.send(());
        });
        let server = std::future::IntoFuture::into_future(server);
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => return result,
            Ok(()) = drain_started => {}
        }
        let timeout = self.shutdown_timeout();
        tracing::info!(?timeout, "shutdown signal received, draining open requests");
        match tokio::time::timeout(timeout, server).await {
            Ok(result) => {
                tracing::info!("drained, shutdown complete");
                result
            }
            Err(_) => {
                tracing::warn!(
                    ?timeout,
                    "requests still open after the shutdown timeout; stopping without them"
                );
                Ok(())
            }
        }
    }
}

#[cfg(unix)]
fn shutdown_signal() -> io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "shutdown requested"),
            _ = interrupt.recv() => tracing::info!(signal = "SIGINT", "shutdown requested"),
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!(signal = "ctrl-c", "shutdown requested");
        } else {
            std::future::pending::<()>().await;
        }
    })
}
