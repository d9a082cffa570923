use std::{
    fmt,
    sync::{Arc, Weak},
    thread,
    time::Duration,
};

use axum::serve::Listener;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::{
    ConnectionErrors, CountingListener, DEFAULT_BUCKETS, MetricsLayer, RED_TICK, RedPoint,
    RedSnapshot, UPKEEP_INTERVAL,
    naming::Naming,
    process,
    routes::{RouteTable, Sink},
};

/// One service's metrics registry: what [`MetricsLayer`] records into and
/// what `/metrics` renders. Cheap to clone; every clone is the same registry.
///
/// The recorder belongs to this handle. Code that records through the
/// `metrics` macros (`metrics::counter!`) reaches it once it is installed as
/// the process's global recorder with [`install_global`](Self::install_global),
/// or inside [`in_scope`](Self::in_scope).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    routes: RouteTable,
}

/// Configures a [`Metrics`] registry; from [`Metrics::builder`].
#[derive(Debug, Clone)]
#[must_use = "call build() to make the registry"]
pub struct MetricsBuilder {
    buckets: Vec<f64>,
    naming: Naming,
    service: String,
    upkeep_interval: Duration,
}

/// Histogram buckets that cannot be used: empty, not finite, or not strictly
/// increasing.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidBuckets {
    buckets: Vec<f64>,
}

impl fmt::Display for InvalidBuckets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "histogram buckets must be finite, strictly increasing and not empty, got {:?}",
            self.buckets
        )
    }
}

impl std::error::Error for InvalidBuckets {}

/// Another global `metrics` recorder was installed first, by other code or by
/// another [`Metrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalRecorderError;

impl fmt::Display for GlobalRecorderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a global `metrics` recorder is already installed in this process; \
             metrics recorded with the `metrics` macros go to that one. Keep this \
             registry local (its layer and /metrics work without the global \
             recorder) or remove the other installation",
        )
    }
}

impl std::error::Error for GlobalRecorderError {}

impl Metrics {
    /// A registry with the defaults.
    pub fn new() -> Self {
        Self::builder().build_valid()
    }

    /// Starts configuring a registry.
    pub fn builder() -> MetricsBuilder {
        MetricsBuilder {
            buckets: DEFAULT_BUCKETS.to_vec(),
            naming: Naming::Prometheus,
            service: String::new(),
            upkeep_interval: UPKEEP_INTERVAL,
        }
    }

    /// The layer that records requests into this registry.
    pub fn layer(&self) -> MetricsLayer {
        MetricsLayer::from(self.clone())
    }

    /// The `http_connection_errors_total{reason}` counters, for a server to
    /// count what it refuses. Registered at the first call; every call
    /// returns the same series.
    pub fn connection_errors(&self) -> ConnectionErrors {
        ConnectionErrors::new(self.inner.routes.sink())
    }

    /// The `active_connections` gauge, for a server that accepts connections
    /// itself: up one per accepted connection, down one when it closes.
    pub fn active_connections(&self) -> Gauge {
        self.inner.routes.sink().active_connections()
    }

    /// Wraps `listener` so `active_connections` counts its open connections.
    pub fn counting_listener<L: Listener>(&self, listener: L) -> CountingListener<L> {
        CountingListener::new(listener, self.inner.routes.sink().active_connections())
    }

    /// Every series in the Prometheus text format, process metrics included.
    pub fn render(&self) -> String {
        let bytes = self.render_bytes();
        // Every part is written from `str`s, so this does not fail.
        String::from_utf8(bytes)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
    }

    /// [`render`](Self::render) without checking the UTF-8 it wrote.
    pub(crate) fn render_bytes(&self) -> Vec<u8> {
        let mut text = String::with_capacity(16 * 1024);
        self.inner.routes.render(&mut text);
        text.push('\n');
        process::render(&mut text);
        let mut bytes = text.into_bytes();
        // Writing into a Vec cannot fail.
        let _ = self.inner.handle.render_to_write(&mut bytes);
        bytes
    }

    /// Request rate, error rate (5xx) and p50/p95/p99 duration over the last
    /// `window`, at most five minutes, from the in-process rolling window.
    /// Quantiles are estimated from the histogram buckets, as Prometheus's
    /// `histogram_quantile` does.
    pub fn red(&self, window: Duration) -> RedSnapshot {
        let routes = &self.inner.routes;
        routes.red.snapshot(
            std::time::Instant::now(),
            &routes.totals(),
            window,
            routes.sink().bounds_seconds(),
        )
    }

    /// The last `span` (at most five minutes) in steps of `step` (at least a
    /// second), oldest first: request rate, errors and quantiles of each
    /// step, for charts.
    pub fn red_series(&self, span: Duration, step: Duration) -> Vec<RedPoint> {
        let routes = &self.inner.routes;
        routes.red.series(
            std::time::Instant::now(),
            &routes.totals(),
            span,
            step,
            routes.sink().bounds_seconds(),
        )
    }

    /// Requests finished since the start (aborted ones included), and of
    /// those the 5xx: the sums of `http_requests_total`.
    pub fn request_totals(&self) -> (u64, u64) {
        let totals = self.inner.routes.totals();
        (totals.requests, totals.errors)
    }

    /// Installs this registry as the process's global `metrics` recorder, so
    /// `metrics::counter!` and friends anywhere in the program record into it.
    /// Fails, without panicking, when a global recorder is installed already.
    pub fn install_global(&self) -> Result<(), GlobalRecorderError> {
        metrics::set_global_recorder(SharedRecorder(self.inner.recorder.clone()))
            .map_err(|_| GlobalRecorderError)
    }

    /// Runs `f` with this registry as the `metrics` recorder of the current
    /// thread: for tests, and for two registries in one process.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(self.inner.recorder.as_ref(), f)
    }

    /// This registry as a `metrics` recorder, for parts that record into it
    /// explicitly (with `metrics::with_local_recorder`) whether or not it is
    /// the global one.
    pub fn recorder(&self) -> Arc<dyn Recorder + Send + Sync> {
        Arc::new(SharedRecorder(self.inner.recorder.clone()))
    }

    /// Folds recorded histogram samples into their buckets now. A background
    /// thread does this every [`UPKEEP_INTERVAL`] and every render does it too.
    pub fn run_upkeep(&self) {
        self.inner.handle.run_upkeep();
    }

    pub(crate) fn routes(&self) -> &RouteTable {
        &self.inner.routes
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("naming", &self.inner.routes.sink().naming)
            .field("service", &self.inner.routes.sink().service)
            .finish_non_exhaustive()
    }
}

impl MetricsBuilder {
    /// The histogram bucket boundaries, in seconds (default
    /// [`DEFAULT_BUCKETS`]). Every histogram of the registry uses them, so
    /// it is always a histogram, never a summary.
    pub fn buckets(mut self, buckets: &[f64]) -> Self {
        self.buckets = buckets.to_vec();
        self
    }

    /// Names the HTTP series as OpenTelemetry's semantic conventions do:
    /// `http_server_request_duration_seconds{http_request_method, http_route,
    /// http_response_status_code}` and `http_server_active_requests`.
    pub fn otel_semconv(mut self) -> Self {
        self.naming = Naming::OtelSemconv;
        self
    }

    /// The `service` label of `errors_total`.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// How often histogram samples are folded into buckets between scrapes
    /// (default [`UPKEEP_INTERVAL`]).
    pub fn upkeep_interval(mut self, interval: Duration) -> Self {
        self.upkeep_interval = interval;
        self
    }

    /// Makes the registry and starts its upkeep thread.
    pub fn build(self) -> Result<Metrics, InvalidBuckets> {
        let valid = !self.buckets.is_empty()
            && self.buckets.iter().all(|bound| bound.is_finite())
            && self.buckets.windows(2).all(|pair| pair[0] < pair[1]);
        if !valid {
            return Err(InvalidBuckets {
                buckets: self.buckets,
            });
        }
        Ok(self.build_valid())
    }

    fn build_valid(self) -> Metrics {
        let builder = PrometheusBuilder::new();
        let recorder = match builder.set_buckets(&self.buckets) {
            Ok(builder) => builder.build_recorder(),
            // Only refused for an empty list, which `build` rules out.
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let recorder = Arc::new(recorder);
        let handle = recorder.handle();
        let sink = Arc::new(Sink::new(
            recorder.clone(),
            self.naming,
            self.service,
            &self.buckets,
        ));
        // Calibrates the clock requests are timed with, once, here.
        let _ = quanta::Instant::now();
        let metrics = Metrics {
            inner: Arc::new(Inner {
                recorder,
                handle,
                routes: RouteTable::new(sink),
            }),
        };
        spawn_upkeep(Arc::downgrade(&metrics.inner), self.upkeep_interval);
        metrics
    }
}

/// While the registry lives: records the RED window's totals every second,
/// and drains histogram samples every `upkeep` (metrics-rs#467: without it,
/// samples pile up between scrapes).
fn spawn_upkeep(registry: Weak<Inner>, upkeep: Duration) {
    let tick = upkeep.min(RED_TICK);
    let spawned = thread::Builder::new()
        .name("observe-metrics".into())
        .spawn(move || {
            let mut last_upkeep = std::time::Instant::now();
            let mut last_red = last_upkeep;
            loop {
                thread::sleep(tick);
                let Some(inner) = registry.upgrade() else {
                    return;
                };
                let now = std::time::Instant::now();
                // Once a second, however short the upkeep interval: the RED
                // history holds five minutes of seconds.
                if now.saturating_duration_since(last_red) >= RED_TICK {
                    inner.routes.red.tick(now, inner.routes.totals());
                    last_red = now;
                }
                if now.saturating_duration_since(last_upkeep) >= upkeep {
                    inner.handle.run_upkeep();
                    last_upkeep = now;
                }
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "could not start the metrics upkeep thread; histogram samples are folded at each scrape only");
    }
}

/// The registry's recorder, shared with the global slot.
struct SharedRecorder(Arc<PrometheusRecorder>);

impl Recorder for SharedRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.0.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.0.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.0.register_histogram(key, metadata)
    }
}
