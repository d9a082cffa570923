use std::{net::SocketAddr, sync::Arc, time::Duration};

use http::HeaderName;
use observe_alerts::{Alerts, AlertsBuilder};
use observe_errors::ErrorCaptureLayer;
use observe_health::{DetailsPolicy, Health};
use observe_log::{
    FileOutput, FlushTimeout, Format, LogHandle, Logging, Redaction, Schema, TrustedProxy,
};
use observe_metrics::{Metrics, RedSnapshot};
use observe_request_id::RequestIdLayer;

use crate::{
    ConfigError, ObserveLayer, ServerLimits,
    alert_config::AlertOptions,
    config::Env,
    defaults::{ENVIRONMENT, LOG_FILTER, READINESS_DELAY, SHUTDOWN_TIMEOUT},
    log_config::{LogOptions, LogOutput, SharedWriter},
    serve::ServerOptions,
    trace_config::TraceOptions,
};

/// The handle of a service's observability: its layer, its server, its
/// configuration. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Observability {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    service_name: String,
    environment: String,
    layer: ObserveLayer,
    shutdown_timeout: Duration,
    metrics: Metrics,
    metrics_token: Option<String>,
    metrics_addr: Option<SocketAddr>,
    health: Health,
    readiness_delay: Duration,
    server_limits: ServerLimits,
    logging: Logging,
    dispatch: tracing::Dispatch,
    tracing: observe_trace::Tracing,
    alerts: Option<Alerts>,
    started: std::time::Instant,
    service_version: Option<String>,
}

/// Configures [`Observability`]; from [`Observability::builder`].
///
/// Every setter wins over its environment variable (see
/// [`defaults`](crate::defaults)).
#[derive(Debug, Clone)]
#[must_use = "call init() to build the Observability handle"]
pub struct ObservabilityBuilder {
    service_name: String,
    environment: Option<String>,
    request_id_header: Option<HeaderName>,
    always_generate_request_id: Option<bool>,
    shutdown_timeout: Option<Duration>,
    log_filter: Option<String>,
    install_subscriber: bool,
    log: LogOptions,
    trace: TraceOptions,
    histogram_buckets: Option<Vec<f64>>,
    otel_semconv_metrics: Option<bool>,
    metrics_token: Option<String>,
    metrics_addr: Option<SocketAddr>,
    install_metrics_recorder: bool,
    health_cache_ttl: Option<Duration>,
    health_refresh_interval: Option<Duration>,
    health_details: Option<DetailsPolicy>,
    health_token: Option<String>,
    readiness_delay: Option<Duration>,
    server: ServerOptions,
    alerts: AlertOptions,
    env: Env,
}

impl Observability {
    /// Starts configuring the observability of `service_name`.
    pub fn builder(service_name: impl Into<String>) -> ObservabilityBuilder {
        ObservabilityBuilder {
            service_name: service_name.into(),
            environment: None,
            request_id_header: None,
            always_generate_request_id: None,
            shutdown_timeout: None,
            log_filter: None,
            install_subscriber: true,
            log: LogOptions::default(),
            trace: TraceOptions::default(),
            histogram_buckets: None,
            otel_semconv_metrics: None,
            metrics_token: None,
            metrics_addr: None,
            install_metrics_recorder: true,
            health_cache_ttl: None,
            health_refresh_interval: None,
            health_details: None,
            health_token: None,
            readiness_delay: None,
            server: ServerOptions::default(),
            alerts: AlertOptions::default(),
            env: Env::Process,
        }
    }

    /// The tracing: its sampler, the export pipeline's counts
    /// ([`TraceHandle`](observe_trace::TraceHandle)) and shutdown.
    pub fn tracing(&self) -> &observe_trace::Tracing {
        &self.inner.tracing
    }

    /// A layer for outgoing HTTP calls (a hyper-util client, say): each call
    /// becomes a child span of the request being handled and carries
    /// `traceparent`, `tracestate` and `x-request-id`.
    pub fn client_layer(&self) -> observe_trace::ClientTraceLayer {
        self.inner.tracing.client_layer()
    }

    /// The log writer: dropped and written line counts, and a flush.
    pub fn log_handle(&self) -> &LogHandle {
        self.inner.logging.handle()
    }

    /// The subscriber [`init`](ObservabilityBuilder::init) built, installed
    /// globally unless [`install_subscriber(false)`](ObservabilityBuilder::install_subscriber):
    /// use it with `tracing::dispatcher::set_default` in tests.
    pub fn dispatch(&self) -> &tracing::Dispatch {
        &self.inner.dispatch
    }

    /// Waits until every log line accepted so far is written, for at most
    /// `timeout`. [`serve`](Self::serve) does it before returning.
    pub fn flush_logs(&self, timeout: Duration) -> Result<(), FlushTimeout> {
        self.inner.logging.handle().flush(timeout)
    }

    /// `app` ready to serve: the whole stack around it, unmatched requests
    /// included (a problem+json `404` with a request id, counted and
    /// logged), and `/metrics`, `/health*`, `/alerts` and `/status` beside
    /// it ([`BUILT_IN_ROUTES`](crate::defaults::BUILT_IN_ROUTES)), left out
    /// of the metrics, the request log and the trace, but each answer with
    /// its request id.
    ///
    /// One router serves both, so a request is routed once. Prefer it to
    /// `app.layer(obs.layer()).merge(obs.metrics_router())`: a merge keeps
    /// axum's default fallback, the one without the layer, so requests no
    /// route matches would get a bare `404` without an id and go uncounted
    /// and unlogged. Here the application's own fallback, if it has one,
    /// still answers them.
    ///
    /// # Panics
    ///
    /// When `app` has a route of its own at one of the built-in paths, as
    /// [`Router::merge`](axum::Router::merge) does for any two routers that
    /// overlap.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    ///
    /// # fn main() -> Result<(), observe::ConfigError> {
    /// let obs = observe::Observability::builder("my-service")
    ///     .install_subscriber(false)
    ///     .install_metrics_recorder(false)
    ///     .init()?;
    /// let app = obs.router(Router::new().route("/", get(|| async { "hello" })));
    /// # let _ = app;
    /// # Ok(())
    /// # }
    /// ```
    pub fn router(&self, app: axum::Router) -> axum::Router {
        let mut router = app
            .merge(self.metrics_router())
            .merge(self.health_router())
            .merge(self.status_router());
        let built_in_routes: &'static [&'static str] = match self.alerts_router() {
            Some(alerts) => {
                router = router.merge(alerts);
                &crate::defaults::BUILT_IN_ROUTES
            }
            None => {
                let [routes @ .., alerts] = &crate::defaults::BUILT_IN_ROUTES;
                debug_assert_eq!(*alerts, observe_alerts::ALERTS_PATH);
                routes
            }
        };
        // Merged before the layer: the merged fallback is the application's
        // (or axum's default), and the layer wraps it.
        router.layer(self.layer().with_built_in_routes(built_in_routes))
    }

    /// When [`init`](ObservabilityBuilder::init) built the handle.
    pub(crate) fn started(&self) -> std::time::Instant {
        self.inner.started
    }

    /// The service's version, when [`service_version`](ObservabilityBuilder::service_version) set it.
    pub fn service_version(&self) -> Option<&str> {
        self.inner.service_version.as_deref()
    }

    pub(crate) fn metrics_token(&self) -> Option<String> {
        self.inner.metrics_token.clone()
    }

    /// The alert engine, unless alerting is off (`OBSERVE_ALERTS=false`).
    /// [`serve`](Self::serve) starts its evaluation loop; without `serve`,
    /// call [`Alerts::spawn`] inside the runtime.
    pub fn alerts(&self) -> Option<&Alerts> {
        self.inner.alerts.as_ref()
    }

    /// A router serving `GET /alerts` (pending and firing alerts, recent
    /// transitions), behind the metrics token when one is set; `None` when
    /// alerting is off. [`router`](Self::router) includes it.
    pub fn alerts_router(&self) -> Option<axum::Router> {
        let router = self.inner.alerts.as_ref()?.router();
        Some(match &self.inner.metrics_token {
            Some(token) => observe_metrics::require_bearer_token(router, token.clone()),
            None => router,
        })
    }

    /// The whole stack as one layer, outermost first in the documented order.
    pub fn layer(&self) -> ObserveLayer {
        self.inner.layer.clone()
    }

    /// The service's name.
    pub fn service_name(&self) -> &str {
        &self.inner.service_name
    }

    /// The deployment environment.
    pub fn environment(&self) -> &str {
        &self.inner.environment
    }

    /// How long [`serve`](Self::serve) lets open requests finish after a
    /// shutdown signal.
    pub fn shutdown_timeout(&self) -> Duration {
        self.inner.shutdown_timeout
    }

    /// The metrics registry: what the layer records into and `/metrics`
    /// renders.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// A router serving `GET /metrics` in the Prometheus text format; behind
    /// `Authorization: Bearer <token>` when `OBSERVE_METRICS_TOKEN` is set.
    pub fn metrics_router(&self) -> axum::Router {
        match &self.inner.metrics_token {
            Some(token) => self.inner.metrics.router_with_token(token.clone()),
            None => self.inner.metrics.router(),
        }
    }

    /// Request rate, error rate and latency quantiles over the last `window`
    /// (at most five minutes), from the in-process rolling window.
    pub fn red(&self, window: Duration) -> RedSnapshot {
        self.inner.metrics.red(window)
    }

    /// Where [`serve`](Self::serve) also runs a metrics-only server
    /// (`OBSERVE_METRICS_ADDR`), if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.inner.metrics_addr
    }

    /// The health checks. Add the service's dependencies once they exist:
    ///
    /// ```
    /// use observe::health::{CheckOptions, DiskCheck, MemoryCheck};
    ///
    /// # fn main() -> Result<(), observe::ConfigError> {
    /// let obs = observe::Observability::builder("my-service").init()?;
    /// obs.health().add_check("disk", DiskCheck::new("/"));
    /// obs.health()
    ///     .add_check_with("memory", MemoryCheck::new(), CheckOptions::new().critical(false));
    /// # Ok(())
    /// # }
    /// ```
    pub fn health(&self) -> &Health {
        &self.inner.health
    }

    /// A router serving `GET /health`, `/health/live` and `/health/ready`
    /// (see [`Health::router`]). [`serve`](Self::serve) turns readiness to
    /// `503` as soon as a shutdown signal arrives.
    pub fn health_router(&self) -> axum::Router {
        self.inner.health.router()
    }

    /// How long [`serve`](Self::serve) keeps accepting requests after a
    /// shutdown signal, with readiness already `503`, so load balancers stop
    /// routing here before the listener closes.
    pub fn readiness_delay(&self) -> Duration {
        self.inner.readiness_delay
    }

    /// How [`serve`](Self::serve) bounds slow clients and open connections.
    pub fn server_limits(&self) -> &ServerLimits {
        &self.inner.server_limits
    }
}

impl ObservabilityBuilder {
    /// The deployment environment (`OBSERVE_ENVIRONMENT`).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// The request id header (`OBSERVE_REQUEST_ID_HEADER`).
    pub fn request_id_header(mut self, header: HeaderName) -> Self {
        self.request_id_header = Some(header);
        self
    }

    /// Ignores incoming request ids (`OBSERVE_REQUEST_ID_ALWAYS_GENERATE`).
    pub fn always_generate_request_id(mut self, always: bool) -> Self {
        self.always_generate_request_id = Some(always);
        self
    }

    /// The drain bound of [`serve`](Observability::serve)
    /// (`OBSERVE_SHUTDOWN_TIMEOUT`).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// The log filter, in `RUST_LOG` syntax (`RUST_LOG`).
    pub fn log_filter(mut self, filter: impl Into<String>) -> Self {
        self.log_filter = Some(filter.into());
        self
    }

    /// Whether [`init`](Self::init) installs the global `tracing`
    /// subscriber (default `true`); `false` when the application installs
    /// its own. It is never replaced: when one is installed already, `init`
    /// fails with a [`ConfigError`] naming `install_subscriber`, as it does
    /// for the metrics recorder.
    pub fn install_subscriber(mut self, install: bool) -> Self {
        self.install_subscriber = install;
        self
    }

    /// Which traces are recorded (`OTEL_TRACES_SAMPLER`,
    /// `OTEL_TRACES_SAMPLER_ARG`); default `parentbased_always_on`.
    pub fn trace_sampler(mut self, sampler: observe_trace::Sampler) -> Self {
        self.trace.sampler = Some(sampler);
        self
    }

    /// `service.version` of exported spans, such as
    /// `env!("CARGO_PKG_VERSION")`.
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.trace.service_version = Some(version.into());
        self
    }

    /// JSON or pretty lines (`OBSERVE_LOG_FORMAT`); default pretty at a
    /// terminal, JSON otherwise.
    pub fn log_format(mut self, format: Format) -> Self {
        self.log.format = Some(format);
        self
    }

    /// Flat keys or ECS names (`OBSERVE_LOG_SCHEMA`); default flat.
    pub fn log_schema(mut self, schema: Schema) -> Self {
        self.log.schema = Some(schema);
        self
    }

    /// Writes logs to a rotating file (`OBSERVE_LOG_FILE` and
    /// `OBSERVE_LOG_ROTATION`, `OBSERVE_LOG_MAX_BYTES`,
    /// `OBSERVE_LOG_MAX_FILES`); with [`log_output`](Self::log_output) it can
    /// go to stdout too.
    pub fn log_file(mut self, file: FileOutput) -> Self {
        self.log.file = Some(file);
        self
    }

    /// Stdout, the file, or both (`OBSERVE_LOG_OUTPUT`); default the file
    /// when one is set, stdout otherwise.
    pub fn log_output(mut self, output: LogOutput) -> Self {
        self.log.output = Some(output);
        self
    }

    /// Writes log lines to `writer` in place of stdout: a pipe, or a buffer
    /// in tests.
    pub fn log_writer(mut self, writer: impl std::io::Write + Send + 'static) -> Self {
        self.log.writer = Some(SharedWriter::new(writer));
        self
    }

    /// `true` makes a full log queue wait rather than drop lines
    /// (`OBSERVE_LOG_LOSSLESS`); default `false`.
    pub fn log_lossless(mut self, lossless: bool) -> Self {
        self.log.lossless = Some(lossless);
        self
    }

    /// How many lines may wait for the writer (`OBSERVE_LOG_QUEUE_CAPACITY`,
    /// default [`LOG_QUEUE_CAPACITY`](crate::defaults::LOG_QUEUE_CAPACITY)).
    /// Zero makes [`init`](Self::init) fail, as it does from the environment.
    pub fn log_queue_capacity(mut self, capacity: usize) -> Self {
        self.log.queue_capacity = Some(capacity);
        self
    }

    /// A secret the service holds (an API token, a password) to replace
    /// with `[REDACTED]` wherever it appears in a log line, whatever the
    /// field: an upstream that echoes it in an error text does not leak it.
    pub fn log_redact_value(mut self, secret: impl Into<String>) -> Self {
        self.log.redact_values.push(secret.into());
        self
    }

    /// Which headers, query parameters and field names are secrets
    /// (`OBSERVE_LOG_REDACT` adds names to the defaults).
    pub fn log_redaction(mut self, redaction: Redaction) -> Self {
        self.log.redaction = Some(redaction);
        self
    }

    /// Paths without a request line (`OBSERVE_LOG_EXCLUDE_PATHS`): exact, or
    /// a prefix ending in `*`. Default `/health*` and `/metrics`.
    pub fn log_exclude_paths<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.log.exclude_paths = Some(paths.into_iter().map(Into::into).collect());
        self
    }

    /// The levels of request lines for 1xx to 3xx, 4xx and 5xx; default
    /// `INFO`, `WARN`, `ERROR`.
    pub fn log_levels(
        mut self,
        success: tracing::Level,
        client_error: tracing::Level,
        server_error: tracing::Level,
    ) -> Self {
        self.log.levels = Some([success, client_error, server_error]);
        self
    }

    /// Proxies whose `X-Forwarded-For` names the client in `client_ip`
    /// (`OBSERVE_LOG_TRUSTED_PROXIES`, as `10.0.0.0/8,192.168.1.1`). Default
    /// none: the peer address.
    pub fn log_trusted_proxies(mut self, proxies: impl IntoIterator<Item = TrustedProxy>) -> Self {
        self.log.trusted_proxies = Some(proxies.into_iter().collect());
        self
    }

    /// The duration histogram buckets, in seconds (`OBSERVE_METRICS_BUCKETS`,
    /// default [`DEFAULT_BUCKETS`](observe_metrics::DEFAULT_BUCKETS)).
    pub fn histogram_buckets(mut self, buckets: &[f64]) -> Self {
        self.histogram_buckets = Some(buckets.to_vec());
        self
    }

    /// Names the HTTP metrics after OpenTelemetry's semantic conventions
    /// (`OBSERVE_METRICS_NAMING=otel`).
    pub fn otel_semconv_metrics(mut self, otel: bool) -> Self {
        self.otel_semconv_metrics = Some(otel);
        self
    }

    /// The bearer token [`metrics_router`](Observability::metrics_router)
    /// requires (`OBSERVE_METRICS_TOKEN`).
    pub fn metrics_token(mut self, token: impl Into<String>) -> Self {
        self.metrics_token = Some(token.into());
        self
    }

    /// An address where [`serve`](Observability::serve) also runs a server
    /// with only `/metrics`, so it stays off the public port
    /// (`OBSERVE_METRICS_ADDR`).
    pub fn metrics_addr(mut self, addr: SocketAddr) -> Self {
        self.metrics_addr = Some(addr);
        self
    }

    /// Whether [`init`](Self::init) installs the metrics registry as the
    /// process's global `metrics` recorder, so `metrics::counter!` anywhere
    /// in the program lands in `/metrics` (default `true`). `init` fails with
    /// a clear error when another global recorder is installed already; turn
    /// this off to keep the registry local, as tests that build several
    /// handles in one process do.
    pub fn install_metrics_recorder(mut self, install: bool) -> Self {
        self.install_metrics_recorder = install;
        self
    }

    /// How long a health check's result is reused (`OBSERVE_HEALTH_CACHE_TTL`,
    /// default [`HEALTH_CACHE_TTL`](crate::defaults::HEALTH_CACHE_TTL)).
    pub fn health_cache_ttl(mut self, ttl: Duration) -> Self {
        self.health_cache_ttl = Some(ttl);
        self
    }

    /// Re-runs the health checks in the background this often
    /// (`OBSERVE_HEALTH_REFRESH_INTERVAL`, default: only when probed).
    pub fn health_refresh_interval(mut self, interval: Duration) -> Self {
        self.health_refresh_interval = Some(interval);
        self
    }

    /// Who sees raw error texts in health bodies (`OBSERVE_HEALTH_DETAILS`:
    /// `hidden`, the default, or `always`).
    pub fn health_details(mut self, policy: DetailsPolicy) -> Self {
        self.health_details = Some(policy);
        self
    }

    /// A bearer token that shows raw error texts in health bodies to the
    /// requests carrying it (`OBSERVE_HEALTH_TOKEN`).
    pub fn health_token(mut self, token: impl Into<String>) -> Self {
        self.health_token = Some(token.into());
        self
    }

    /// How long [`serve`](Observability::serve) goes on accepting requests
    /// with readiness at `503` after a shutdown signal, before it drains
    /// (`OBSERVE_READINESS_DELAY`, default
    /// [`READINESS_DELAY`](crate::defaults::READINESS_DELAY)). Behind a load
    /// balancer, set it to a little more than the readiness probe period.
    pub fn readiness_delay(mut self, delay: Duration) -> Self {
        self.readiness_delay = Some(delay);
        self
    }

    /// How long [`serve`](Observability::serve) waits for a request head,
    /// from the accept or the head's first byte (default
    /// [`HEADER_READ_TIMEOUT`](crate::defaults::HEADER_READ_TIMEOUT)); then
    /// the connection is closed and counted as `header_timeout`.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.server.header_read_timeout = Some(timeout);
        self
    }

    /// How long [`serve`](Observability::serve) keeps a silent keep-alive
    /// connection open between requests (default
    /// [`IDLE_TIMEOUT`](crate::defaults::IDLE_TIMEOUT)).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.server.idle_timeout = Some(timeout);
        self
    }

    /// How long a request body may go without a byte while the service
    /// reads it under [`serve`](Observability::serve) (default
    /// [`BODY_READ_TIMEOUT`](crate::defaults::BODY_READ_TIMEOUT)); then the
    /// read fails and the request is answered and recorded as `408`.
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.server.body_read_timeout = Some(timeout);
        self
    }

    /// Open connections [`serve`](Observability::serve) holds at most; one
    /// more is accepted, closed at once and counted as `connection_limit`.
    /// Default: the process's open-file limit less a reserve (see
    /// [`RESERVED_FILE_DESCRIPTORS`](crate::defaults::RESERVED_FILE_DESCRIPTORS)).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.server.max_connections = Some(connections);
        self
    }

    /// Where spans (and, with [`log_otlp`](Self::log_otlp), log records)
    /// are exported: the collector's base URL, as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` gives it (`http://collector:4317`).
    /// Wins over that variable and `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; the
    /// other `OTEL_*` variables still apply.
    pub fn otlp_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.trace.endpoint = Some(endpoint.into());
        self
    }

    /// The export protocol (`OTEL_EXPORTER_OTLP_PROTOCOL`, default gRPC).
    pub fn otlp_protocol(mut self, protocol: observe_trace::Protocol) -> Self {
        self.trace.protocol = Some(protocol);
        self
    }

    /// Also exports every log line as an OTLP log record, with its trace
    /// and span ids, to the traces' collector (`OBSERVE_LOG_OTLP`, default
    /// `false`); needs `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn log_otlp(mut self, export: bool) -> Self {
        self.trace.export_logs = Some(export);
        self
    }

    /// Whether the in-process alert engine runs (`OBSERVE_ALERTS`, default
    /// `true`).
    pub fn alerts_enabled(mut self, enabled: bool) -> Self {
        self.alerts.enabled = Some(enabled);
        self
    }

    /// Adjusts the alert engine after the `OBSERVE_ALERT*` variables are
    /// read: rules of the application's own, thresholds, receivers.
    ///
    /// ```
    /// use observe::alerts::{Rule, Severity};
    ///
    /// # fn main() -> Result<(), observe::ConfigError> {
    /// let obs = observe::Observability::builder("my-service")
    ///     .install_subscriber(false)
    ///     .install_metrics_recorder(false)
    ///     .configure_alerts(|alerts| {
    ///         alerts.rule(Rule::new("NoWorkers", Severity::Critical, 1.0, || Some(0.0))
    ///             .comparison(observe::alerts::Comparison::Below))
    ///     })
    ///     .init()?;
    /// assert!(obs.alerts().is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub fn configure_alerts(
        mut self,
        configure: impl Fn(AlertsBuilder) -> AlertsBuilder + Send + Sync + 'static,
    ) -> Self {
        self.alerts.configure = Some(Arc::new(configure));
        self
    }

    /// Reads configuration from these variables instead of the process
    /// environment: for tests, and for programs that load their settings
    /// elsewhere.
    pub fn env_vars<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.env = Env::Vars(
            vars.into_iter()
                .map(|(key, value)| (key.into(), value.into()))
                .collect(),
        );
        self
    }

    /// Checks the whole configuration, installs what the handle owns, and
    /// returns it. Fails on the first value that does not parse, naming it.
    pub fn init(self) -> Result<Observability, ConfigError> {
        let env = &self.env;
        if self.service_name.trim().is_empty() {
            return Err(ConfigError::new(
                "service_name",
                self.service_name,
                "the service name must not be empty",
            ));
        }
        let metrics = self.metrics_config()?;
        let health = self.health_config(&metrics.registry)?;
        let environment = match self.environment {
            Some(environment) => environment,
            None => env
                .get("OBSERVE_ENVIRONMENT")?
                .unwrap_or_else(|| ENVIRONMENT.to_owned()),
        };
        let alerts = self.alerts.build(
            env,
            &self.service_name,
            &environment,
            &metrics.registry,
            &health,
        )?;
        let request_id_header = match self.request_id_header {
            Some(header) => header,
            None => match env.get("OBSERVE_REQUEST_ID_HEADER")? {
                Some(value) => HeaderName::try_from(value.trim()).map_err(|_| {
                    ConfigError::new(
                        "OBSERVE_REQUEST_ID_HEADER",
                        value,
                        "expected an HTTP header name such as x-request-id",
                    )
                })?,
                None => crate::defaults::REQUEST_ID_HEADER,
            },
        };
        let always_generate = match self.always_generate_request_id {
            Some(always) => always,
            None => env
                .bool("OBSERVE_REQUEST_ID_ALWAYS_GENERATE")?
                .unwrap_or(false),
        };
        let shutdown_timeout = match self.shutdown_timeout {
            Some(timeout) => timeout,
            None => env
                .duration("OBSERVE_SHUTDOWN_TIMEOUT")?
                .unwrap_or(SHUTDOWN_TIMEOUT),
        };
        let (filter_variable, filter) = match self.log_filter {
            Some(filter) => ("log_filter", filter),
            None => (
                "RUST_LOG",
                env.get("RUST_LOG")?
                    .unwrap_or_else(|| LOG_FILTER.to_owned()),
            ),
        };
        let readiness_delay = match self.readiness_delay {
            Some(delay) => delay,
            None => env
                .duration("OBSERVE_READINESS_DELAY")?
                .unwrap_or(READINESS_DELAY),
        };
        let server_limits = self.server.build(env)?;

        let service_version = self.trace.service_version.clone();
        let tracing = self
            .trace
            .build(env, &self.service_name, &environment, &metrics.registry)?;
        let log = self
            .log
            .build(env, &self.service_name, &environment, &metrics.registry)?;
        // Request lines exported as OTLP log records need their event; the
        // span bridge alone has no use for them.
        let dispatch = if tracing.exports_logs() {
            log.logging.dispatch_with(&filter, tracing.otel_layer())
        } else {
            log.logging
                .dispatch_with_bridge(&filter, tracing.otel_layer())
        }
        .map_err(|error| ConfigError::new(filter_variable, filter, error.to_string()))?;
        tracing.log_to(&dispatch);

        // The process-wide globals last, when nothing else can fail: a
        // failed `init` leaves the process as it found it. Neither global is
        // ever replaced; one that is taken already is an error naming the
        // setting that turns the install off.
        if self.install_subscriber && global_subscriber_taken() {
            return Err(ConfigError::new(
                "install_subscriber",
                "true",
                "a global tracing subscriber is installed already; keep it with \
                 install_subscriber(false) and add obs.dispatch() where observe should log",
            ));
        }
        if self.install_metrics_recorder {
            metrics.registry.install_global().map_err(|error| {
                ConfigError::new(
                    "install_metrics_recorder",
                    "true",
                    format!("{error}; keep it with install_metrics_recorder(false)"),
                )
            })?;
        }
        if self.install_subscriber {
            tracing::dispatcher::set_global_default(dispatch.clone()).map_err(|error| {
                ConfigError::new("install_subscriber", "true", error.to_string())
            })?;
        }

        let layer = ObserveLayer {
            request_id: RequestIdLayer::new()
                .header_name(request_id_header)
                .always_generate(always_generate),
            trace: tracing.layer(),
            metrics: metrics.registry.layer(),
            request_log: log.request_log,
            // The request log writes each error into its line, once.
            // The request line reports a panic, with its location and (when
            // RUST_BACKTRACE asks) backtrace: nothing raw goes to stderr.
            errors: ErrorCaptureLayer::new()
                .log_errors(false)
                .print_panics(false),
            built_in_routes: &[],
        };
        Ok(Observability {
            inner: Arc::new(Inner {
                service_name: self.service_name,
                environment,
                layer,
                shutdown_timeout,
                metrics: metrics.registry,
                metrics_token: metrics.token,
                metrics_addr: metrics.addr,
                health,
                readiness_delay,
                server_limits,
                logging: log.logging,
                dispatch,
                tracing,
                alerts,
                started: std::time::Instant::now(),
                service_version,
            }),
        })
    }
}

/// Whether a global `tracing` subscriber is installed. `has_been_set` also
/// counts scoped ones, and a thread's scoped one hides the global, so a new
/// thread, which has none, looks.
fn global_subscriber_taken() -> bool {
    std::thread::spawn(|| {
        tracing::dispatcher::get_default(|dispatch| {
            !dispatch.is::<tracing::subscriber::NoSubscriber>()
        })
    })
    .join()
    .unwrap_or(true)
}

/// The metrics part of the configuration, checked.
struct MetricsConfig {
    registry: Metrics,
    token: Option<String>,
    addr: Option<SocketAddr>,
}

impl ObservabilityBuilder {
    fn metrics_config(&self) -> Result<MetricsConfig, ConfigError> {
        let env = &self.env;
        let (buckets_variable, buckets_text, buckets) = match &self.histogram_buckets {
            Some(buckets) => (
                "histogram_buckets",
                format!("{buckets:?}"),
                Some(buckets.clone()),
            ),
            None => match env.get("OBSERVE_METRICS_BUCKETS")? {
                Some(text) => {
                    let buckets = parse_buckets(&text)?;
                    ("OBSERVE_METRICS_BUCKETS", text, Some(buckets))
                }
                None => ("OBSERVE_METRICS_BUCKETS", String::new(), None),
            },
        };
        let otel = match self.otel_semconv_metrics {
            Some(otel) => otel,
            None => match env.get("OBSERVE_METRICS_NAMING")? {
                None => false,
                Some(naming) => match naming.trim() {
                    "prometheus" => false,
                    "otel" | "otel_semconv" => true,
                    _ => {
                        return Err(ConfigError::new(
                            "OBSERVE_METRICS_NAMING",
                            naming,
                            "expected prometheus or otel",
                        ));
                    }
                },
            },
        };
        let token = match &self.metrics_token {
            Some(token) if token.trim().is_empty() => {
                return Err(ConfigError::new(
                    "metrics_token",
                    "",
                    "the token must not be empty",
                ));
            }
            Some(token) => Some(token.clone()),
            None => env.get("OBSERVE_METRICS_TOKEN")?,
        };
        let addr = match self.metrics_addr {
            Some(addr) => Some(addr),
            None => env
                .get("OBSERVE_METRICS_ADDR")?
                .map(|text| {
                    text.trim().parse::<SocketAddr>().map_err(|_| {
                        ConfigError::new(
                            "OBSERVE_METRICS_ADDR",
                            text,
                            "expected an address such as 127.0.0.1:9100 or [::]:9100",
                        )
                    })
                })
                .transpose()?,
        };

        let mut builder = Metrics::builder().service(self.service_name.clone());
        if let Some(buckets) = &buckets {
            builder = builder.buckets(buckets);
        }
        if otel {
            builder = builder.otel_semconv();
        }
        let registry = builder
            .build()
            .map_err(|error| ConfigError::new(buckets_variable, buckets_text, error.to_string()))?;
        Ok(MetricsConfig {
            registry,
            token,
            addr,
        })
    }
}

impl ObservabilityBuilder {
    fn health_config(&self, metrics: &Metrics) -> Result<Health, ConfigError> {
        let env = &self.env;
        let cache_ttl = match self.health_cache_ttl {
            Some(ttl) => ttl,
            None => env
                .duration("OBSERVE_HEALTH_CACHE_TTL")?
                .unwrap_or(crate::defaults::HEALTH_CACHE_TTL),
        };
        let refresh_interval = match self.health_refresh_interval {
            Some(interval) => Some(interval),
            None => env.duration("OBSERVE_HEALTH_REFRESH_INTERVAL")?,
        };
        let details = match self.health_details {
            Some(details) => details,
            None => match env.get("OBSERVE_HEALTH_DETAILS")? {
                None => DetailsPolicy::Hidden,
                Some(value) => match value.trim() {
                    "hidden" => DetailsPolicy::Hidden,
                    "always" => DetailsPolicy::Always,
                    _ => {
                        return Err(ConfigError::new(
                            "OBSERVE_HEALTH_DETAILS",
                            value,
                            "expected hidden or always",
                        ));
                    }
                },
            },
        };
        let token = match &self.health_token {
            Some(token) if token.trim().is_empty() => {
                return Err(ConfigError::new(
                    "health_token",
                    "",
                    "the token must not be empty",
                ));
            }
            Some(token) => Some(token.clone()),
            None => env.get("OBSERVE_HEALTH_TOKEN")?,
        };
        let mut health = Health::builder()
            .cache_ttl(cache_ttl)
            .details(details)
            .service_id(self.service_name.clone())
            .metrics_recorder(metrics.recorder());
        if let Some(interval) = refresh_interval {
            health = health.refresh_interval(interval);
        }
        if let Some(token) = token {
            health = health.details_token(token);
        }
        Ok(health.build())
    }
}

/// `0.005,0.01,0.1,1` (seconds); checked by the metrics builder.
fn parse_buckets(text: &str) -> Result<Vec<f64>, ConfigError> {
    text.split(',')
        .map(|bound| bound.trim().parse::<f64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            ConfigError::new(
                "OBSERVE_METRICS_BUCKETS",
                text,
                "expected comma-separated seconds such as 0.01,0.1,1,10",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init(vars: &[(&str, &str)]) -> Result<Observability, ConfigError> {
        Observability::builder("svc")
            .install_subscriber(false)
            .install_metrics_recorder(false)
            .env_vars(vars.iter().copied())
            .init()
    }

    #[test]
    fn defaults_without_any_variable() {
        let obs = init(&[]).unwrap();
        assert_eq!(obs.service_name(), "svc");
        assert_eq!(obs.environment(), "development");
        assert_eq!(obs.shutdown_timeout(), Duration::from_secs(25));
    }

    #[test]
    fn variables_are_read() {
        let obs = init(&[
            ("OBSERVE_ENVIRONMENT", "production"),
            ("OBSERVE_SHUTDOWN_TIMEOUT", "750ms"),
        ])
        .unwrap();
        assert_eq!(obs.environment(), "production");
        assert_eq!(obs.shutdown_timeout(), Duration::from_millis(750));
    }

    #[test]
    fn builder_wins_over_variables() {
        let obs = Observability::builder("svc")
            .install_subscriber(false)
            .install_metrics_recorder(false)
            .env_vars([
                ("OBSERVE_ENVIRONMENT", "production"),
                ("OBSERVE_SHUTDOWN_TIMEOUT", "nonsense"),
            ])
            .environment("staging")
            .shutdown_timeout(Duration::from_secs(3))
            .init()
            .unwrap();
        assert_eq!(obs.environment(), "staging");
        assert_eq!(obs.shutdown_timeout(), Duration::from_secs(3));
    }

    #[test]
    fn each_bad_value_is_named() {
        let cases = [
            ("OBSERVE_SHUTDOWN_TIMEOUT", "soon"),
            ("OBSERVE_REQUEST_ID_ALWAYS_GENERATE", "perhaps"),
            ("OBSERVE_REQUEST_ID_HEADER", "bad header"),
            ("RUST_LOG", "info,[=nope"),
            ("OBSERVE_METRICS_BUCKETS", "0.1,fast"),
            ("OBSERVE_METRICS_BUCKETS", "1,0.5"),
            ("OBSERVE_METRICS_NAMING", "statsd"),
            ("OBSERVE_METRICS_ADDR", "localhost"),
            ("OBSERVE_HEALTH_CACHE_TTL", "briefly"),
            ("OBSERVE_HEALTH_REFRESH_INTERVAL", "-1s"),
            ("OBSERVE_HEALTH_DETAILS", "sometimes"),
            ("OBSERVE_READINESS_DELAY", "5 parsecs"),
            ("OBSERVE_ALERTS", "maybe"),
            ("OBSERVE_ALERT_EVAL_INTERVAL", "0s"),
            ("OBSERVE_ALERT_WINDOW", "1h"),
            ("OBSERVE_ALERT_WINDOW", "5s"),
            ("OBSERVE_ALERT_ERROR_RATE", "lots"),
            ("OBSERVE_ALERT_ERROR_RATE", "5"),
            ("OBSERVE_ALERT_MIN_REQUESTS", "-1"),
            ("OBSERVE_ALERT_RESPONSE_TIME", "slow"),
            ("OBSERVE_ALERT_MEMORY_PERCENT", "ninety"),
            ("OBSERVE_ALERT_DISK_PERCENT", "120"),
            ("OBSERVE_ALERT_DB_POOL_PERCENT", "-5"),
            ("OBSERVE_ALERT_FOR", "a while"),
            ("OBSERVE_ALERT_REPEAT_INTERVAL", "often"),
            ("OBSERVE_ALERT_DISABLED", "HighErrorRate,Nope"),
        ];
        for (variable, value) in cases {
            let error = init(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable(), variable);
            assert_eq!(error.value(), value);
            let text = error.to_string();
            assert!(
                text.starts_with(&format!("invalid {variable}={value:?}: ")),
                "{text}"
            );
        }
    }

    #[test]
    fn a_bad_receiver_url_is_named_but_never_shown() {
        for variable in [
            "OBSERVE_ALERT_WEBHOOK_URL",
            "OBSERVE_ALERT_SLACK_WEBHOOK_URL",
            "OBSERVE_ALERT_DISCORD_WEBHOOK_URL",
            "OBSERVE_ALERTMANAGER_URL",
        ] {
            let error = init(&[(variable, "hooks.slack.com/services/T0/B0/s3cr3t")]).unwrap_err();
            assert_eq!(error.variable(), variable);
            assert_eq!(
                error.to_string(),
                format!(r#"invalid {variable}="[REDACTED]": expected an http:// or https:// URL"#)
            );
        }
    }

    #[test]
    fn alert_variables_are_read() {
        let obs = init(&[
            ("OBSERVE_ALERT_EVAL_INTERVAL", "2s"),
            ("OBSERVE_ALERT_WINDOW", "30s"),
            ("OBSERVE_ALERT_ERROR_RATE", "0.1"),
            ("OBSERVE_ALERT_MIN_REQUESTS", "50"),
            ("OBSERVE_ALERT_RESPONSE_TIME", "750ms"),
            ("OBSERVE_ALERT_MEMORY_PERCENT", "95"),
            ("OBSERVE_ALERT_DISK_PERCENT", "80"),
            ("OBSERVE_ALERT_DB_POOL_PERCENT", "70.5"),
            ("OBSERVE_ALERT_DISABLED", "SlowResponsesP95, DiskAlmostFull"),
            ("OBSERVE_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook"),
            ("OBSERVE_ALERTMANAGER_URL", "http://127.0.0.1:9093"),
        ])
        .unwrap();
        let alerts = obs.alerts().unwrap();
        assert_eq!(alerts.eval_interval(), Duration::from_secs(2));
        assert_eq!(alerts.window(), Duration::from_secs(30));
        assert_eq!(
            alerts.thresholds(),
            observe_alerts::Thresholds {
                error_rate: 0.1,
                min_requests: 50,
                response_time: Duration::from_millis(750),
                memory_percent: 95.0,
                disk_percent: 80.0,
                db_pool_percent: 70.5,
            }
        );
        assert_eq!(
            alerts.notifiers(),
            [
                observe_alerts::notify::NotifierKind::Webhook,
                observe_alerts::notify::NotifierKind::Alertmanager
            ]
        );
        assert_eq!(
            alerts.rule_names(),
            [
                "HighErrorRate",
                "SlowResponses",
                "HighMemoryUsage",
                "DatabasePoolSaturated",
                "HealthCheckFailing"
            ]
        );
        let json = alerts.to_json();
        assert_eq!(json["alerts"], serde_json::json!([]));
        let off = init(&[("OBSERVE_ALERTS", "false")]).unwrap();
        assert!(off.alerts().is_none());
        assert!(off.alerts_router().is_none());
    }

    #[test]
    fn metrics_variables_are_read() {
        let obs = init(&[
            ("OBSERVE_METRICS_ADDR", "127.0.0.1:9100"),
            ("OBSERVE_METRICS_TOKEN", "s3cret"),
            ("OBSERVE_METRICS_BUCKETS", "0.1, 1"),
            ("OBSERVE_METRICS_NAMING", "otel"),
        ])
        .unwrap();
        assert_eq!(obs.metrics_addr(), Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(obs.inner.metrics_token.as_deref(), Some("s3cret"));
        assert!(format!("{:?}", obs.metrics()).contains("OtelSemconv"));
    }

    #[test]
    fn health_variables_are_read() {
        let obs = init(&[
            ("OBSERVE_HEALTH_CACHE_TTL", "250ms"),
            ("OBSERVE_HEALTH_DETAILS", "always"),
            ("OBSERVE_READINESS_DELAY", "5s"),
        ])
        .unwrap();
        let health = format!("{:?}", obs.health());
        assert!(health.contains("cache_ttl: 250ms"), "{health}");
        assert_eq!(obs.health().details_policy(), DetailsPolicy::Always);
        assert_eq!(obs.readiness_delay(), Duration::from_secs(5));
        let defaults = init(&[]).unwrap();
        assert_eq!(defaults.health().details_policy(), DetailsPolicy::Hidden);
        assert_eq!(defaults.readiness_delay(), Duration::ZERO);
        assert!(format!("{:?}", defaults.health()).contains("cache_ttl: 1s"));
    }

    #[test]
    fn a_second_global_recorder_is_a_clear_error_not_a_panic() {
        // This test binary's only global install; the other tests keep theirs
        // local.
        let first = Observability::builder("first")
            .install_subscriber(false)
            .env_vars(std::iter::empty::<(String, String)>())
            .init();
        assert!(first.is_ok());
        let error = Observability::builder("second")
            .install_subscriber(false)
            .env_vars(std::iter::empty::<(String, String)>())
            .init()
            .unwrap_err();
        assert_eq!(error.variable(), "install_metrics_recorder");
        assert!(
            error
                .to_string()
                .contains("a global `metrics` recorder is already installed"),
            "{error}"
        );
    }

    #[test]
    fn a_zero_log_queue_is_refused_from_the_builder_as_from_the_environment() {
        let init = |builder: ObservabilityBuilder| {
            builder
                .install_subscriber(false)
                .install_metrics_recorder(false)
                .init()
                .unwrap_err()
        };
        let from_builder = init(
            Observability::builder("svc")
                .env_vars(std::iter::empty::<(String, String)>())
                .log_queue_capacity(0),
        );
        assert_eq!(from_builder.variable(), "log_queue_capacity");
        let from_env =
            init(Observability::builder("svc").env_vars([("OBSERVE_LOG_QUEUE_CAPACITY", "0")]));
        assert_eq!(from_env.variable(), "OBSERVE_LOG_QUEUE_CAPACITY");
    }

    #[test]
    fn empty_service_name_is_refused() {
        let error = Observability::builder(" ")
            .install_subscriber(false)
            .install_metrics_recorder(false)
            .env_vars(std::iter::empty::<(String, String)>())
            .init()
            .unwrap_err();
        assert_eq!(error.variable(), "service_name");
    }
}
