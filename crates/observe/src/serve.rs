use std::{future::Future, io, net::SocketAddr};

use axum::{Router, serve::ListenerExt};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::Observability;

impl Observability {
    /// Serves `app` on `listener` until SIGTERM or SIGINT, then turns
    /// `/health/ready` to `503`, waits the
    /// [`readiness_delay`](Self::readiness_delay), stops accepting, lets open
    /// requests finish for at most
    /// [`shutdown_timeout`](Self::shutdown_timeout), exports the last spans
    /// and flushes the log writer (5 s at most each), and returns.
    ///
    /// Handlers can read the peer address with
    /// `axum::extract::ConnectInfo<SocketAddr>`. Open connections are counted
    /// in `active_connections`. With `OBSERVE_METRICS_ADDR` set, a second
    /// server with only `/metrics` runs there until the first has drained.
    /// The alert engine evaluates its rules while it serves.
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
        let metrics_server = self.start_metrics_server().await?;
        if let Some(alerts) = self.alerts() {
            alerts.spawn();
        }
        // Service and environment are on every line already.
        tracing::info!(%address, "listening");
        let result = self.serve_app(listener, app, shutdown).await;
        if let Some(metrics_server) = metrics_server {
            metrics_server.stop().await;
        }
        self.flush_logs_off_runtime().await;
        result
    }

    /// Every accepted log line out before the process exits; the wait is on
    /// a blocking thread, not on the runtime.
    async fn flush_logs_off_runtime(&self) {
        // Spans first: a failed export is logged, and that line flushed too.
        // A flush, not a shutdown: another server may share this handle.
        let tracing = self.tracing().clone();
        let exported = tokio::task::spawn_blocking(move || match tracing.handle() {
            Some(handle) => handle.flush(observe_trace::DEFAULT_SHUTDOWN_TIMEOUT),
            None => Ok(()),
        })
        .await;
        if !matches!(exported, Ok(Ok(()))) {
            tracing::warn!(
                timeout = ?observe_trace::DEFAULT_SHUTDOWN_TIMEOUT,
                "spans were still unexported at the shutdown timeout"
            );
        }
        let handle = self.log_handle().clone();
        let flushed =
            tokio::task::spawn_blocking(move || handle.flush(crate::defaults::LOG_FLUSH_TIMEOUT))
                .await;
        if !matches!(flushed, Ok(Ok(()))) {
            eprintln!("observe: the log writer did not finish before the flush timeout");
        }
    }

    async fn serve_app<F>(&self, listener: TcpListener, app: Router, shutdown: F) -> io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (draining, drain_started) = oneshot::channel();
        let health = self.health().clone();
        let readiness_delay = self.readiness_delay();
        // `tap_io` is what gives a wrapped listener axum's `ConnectInfo`.
        let listener = self.metrics().counting_listener(listener).tap_io(|_| ());
        let server = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Readiness fails first, so load balancers stop routing here while
            // the listener still accepts.
            health.begin_shutdown();
            if !readiness_delay.is_zero() {
                tracing::info!(
                    ?readiness_delay,
                    "readiness is 503; accepting until the delay ends"
                );
                tokio::time::sleep(readiness_delay).await;
            }
            let _ = draining.send(());
        });
        let server = std::future::IntoFuture::into_future(server);
        tokio::pin!(server);
        tokio::select! {
            // A server with nothing open can finish in the same poll as the
            // signal; the drain is still reported.
            biased;
            Ok(()) = drain_started => {}
            result = &mut server => return result,
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

    /// Binds `OBSERVE_METRICS_ADDR` and serves the metrics router there.
    async fn start_metrics_server(&self) -> io::Result<Option<MetricsServer>> {
        let Some(address) = self.metrics_addr() else {
            return Ok(None);
        };
        let listener = TcpListener::bind(address).await.map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot serve metrics on OBSERVE_METRICS_ADDR={address}: {error}"),
            )
        })?;
        tracing::info!(address = %listener.local_addr()?, "serving /metrics");
        let (stop, stopped) = oneshot::channel::<()>();
        let router = self.metrics_router();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the metrics server stopped");
            }
        });
        Ok(Some(MetricsServer { stop, task }))
    }
}

/// The metrics-only server, stopped after the application's.
struct MetricsServer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl MetricsServer {
    async fn stop(self) {
        let _ = self.stop.send(());
        // A scraper holding its connection open must not delay the exit.
        let mut task = self.task;
        if tokio::time::timeout(std::time::Duration::from_secs(1), &mut task)
            .await
            .is_err()
        {
            task.abort();
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
