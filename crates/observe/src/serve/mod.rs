mod body;
mod connection;
mod limits;
mod refusals;

use std::{
    future::Future,
    io,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::Router;
use metrics::Gauge;
use observe_metrics::ConnectionError;
use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
    task::{JoinHandle, JoinSet},
};

pub use body::{
    BodyOutcome, BodyOutcomeFuture, BodyOutcomeLayer, BodyOutcomeService, BodyReadTimeout,
    CLIENT_CLOSED_STATUS, WatchedBody,
};
pub(crate) use limits::ServerOptions;
pub use limits::{
    BODY_READ_TIMEOUT, HEADER_READ_TIMEOUT, IDLE_TIMEOUT, RESERVED_FILE_DESCRIPTORS, ServerLimits,
};

use crate::Observability;
use connection::Server;

/// How long the accept loop waits after a failed accept (out of file
/// descriptors) before it tries again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

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
        let limits = *self.server_limits();
        let server = Arc::new(Server::new(app, limits, self.metrics().connection_errors()));
        let open = Arc::new(AtomicUsize::new(0));
        let active_connections = self.metrics().active_connections();
        let (stop, stopped) = watch::channel(false);
        let mut connections = JoinSet::new();

        let health = self.health().clone();
        let readiness_delay = self.readiness_delay();
        let shutdown = async move {
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
        };
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if open.load(Ordering::Acquire) >= limits.max_connections {
                            server.count(ConnectionError::ConnectionLimit, Some(peer));
                            // Closed at once: a refused client learns now,
                            // and the file descriptor is free again.
                            drop(stream);
                            continue;
                        }
                        let slot = ConnectionSlot::new(open.clone(), active_connections.clone());
                        connections.spawn(connection::serve(
                            server.clone(),
                            stream,
                            slot,
                            peer,
                            stopped.clone(),
                        ));
                    }
                    Err(error) if is_per_connection(&error) => {}
                    Err(error) => {
                        server.count(ConnectionError::AcceptFailed, None);
                        tracing::debug!(%error, "accept failed");
                        // Out of file descriptors, most likely: give open
                        // connections time to end rather than spin.
                        tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                    }
                },
            }
        }
        drop(listener);
        let _ = stop.send(true);
        let timeout = self.shutdown_timeout();
        tracing::info!(?timeout, "shutdown signal received, draining open requests");
        let drained = tokio::time::timeout(timeout, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        match drained {
            Ok(()) => tracing::info!("drained, shutdown complete"),
            Err(_) => {
                tracing::warn!(
                    ?timeout,
                    connections = connections.len(),
                    "requests still open after the shutdown timeout; cutting them"
                );
                // Dropping a connection drops its request: each is logged,
                // counted and traced as 499 before the log is flushed.
                connections.abort_all();
                while connections.join_next().await.is_some() {}
            }
        }
        Ok(())
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

/// Accept errors that concern one connection only (it was reset before we
/// took it): the next accept can go ahead.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// An accepted connection's place under the limit and in
/// `active_connections`, given back when the socket closes.
pub(crate) struct ConnectionSlot {
    open: Arc<AtomicUsize>,
    gauge: Gauge,
}

impl ConnectionSlot {
    fn new(open: Arc<AtomicUsize>, gauge: Gauge) -> Self {
        open.fetch_add(1, Ordering::AcqRel);
        gauge.increment(1.0);
        Self { open, gauge }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.gauge.decrement(1.0);
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
