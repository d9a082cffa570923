//! Distributed tracing for tower and axum services: W3C Trace Context in and
//! out, a server span per request, client spans for outgoing calls, and OTLP
//! export (gRPC or HTTP/protobuf) off the request path.
//!
//! - [`TraceLayer`] opens the server span of every request, continuing the
//!   caller's trace; the request log and every event carry its `trace_id`
//!   and `span_id`.
//! - [`ClientTraceLayer`] makes outgoing calls its children and passes on
//!   `traceparent`, `tracestate` and `x-request-id`.
//! - [`db`] gives child spans for SQL statements and Redis commands, and
//!   [`in_span`] a span around any piece of work (a parse, a batch).
//! - [`Tracing`] reads the standard `OTEL_*` variables and runs the export:
//!   with no endpoint nothing is exported, but ids and propagation work.
//!
//! Jaeger has accepted OTLP since 1.35: `OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4317`.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use observe_trace::Tracing;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tracing = Tracing::builder("vk-parser")
//!     .env_vars(|name| match name {
//!         "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:4317".to_owned()),
//!         _ => None,
//!     })?
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(tracing.layer());
//! # let _ = app;
//! tracing.shutdown(std::time::Duration::from_secs(5))?;
//! # Ok(())
//! # }
//! ```

pub mod client;
mod context;
pub mod db;
mod export;
mod resource;
mod sampler;
pub mod server;
mod span;

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::{Layer, Registry, filter::Targets};

pub use client::{ClientResponseFuture, ClientTrace, ClientTraceLayer, inject_current};
pub use context::{BAGGAGE, TRACEPARENT, TRACESTATE, TraceContext, current};
pub use export::{
    DEFAULT_EXPORT_TIMEOUT, DEFAULT_QUEUE_CAPACITY, DEFAULT_SHUTDOWN_TIMEOUT, DROPPED_LOGS_METRIC,
    DROPPED_SPANS_METRIC, EXPORT_INTERVAL, ExportConfig, ExportTimeout, InvalidExportConfig,
    MAX_BATCH, MAX_SPARE_SERVER_RECORDS, MAX_SPARE_TEXT_BYTES, Protocol, TraceHandle,
};
pub use sampler::{InvalidSampler, Root, Sampler};
pub use server::{ResponseFuture, ServerSpan, Trace, TraceLayer};
pub use span::{InSpan, in_span};

/// A variable that does not parse: which, what it held, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTraceConfig {
    /// The variable.
    pub variable: &'static str,
    /// Its value (hidden where it may be a credential).
    pub value: String,
    /// Why it is refused.
    pub reason: String,
}

impl std::fmt::Display for InvalidTraceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid {}={:?}: {}",
            self.variable, self.value, self.reason
        )
    }
}

impl std::error::Error for InvalidTraceConfig {}

impl From<InvalidExportConfig> for InvalidTraceConfig {
    fn from(error: InvalidExportConfig) -> Self {
        Self {
            variable: error.variable,
            value: error.value,
            reason: error.reason,
        }
    }
}

impl From<InvalidSampler> for InvalidTraceConfig {
    fn from(error: InvalidSampler) -> Self {
        Self {
            variable: error.variable,
            value: error.value,
            reason: error.reason.to_owned(),
        }
    }
}

/// The tracing of one service: its sampler and, when exporting, the export
/// pipeline and the OpenTelemetry provider for `tracing` spans.
#[derive(Debug, Clone)]
pub struct Tracing {
    sampler: Sampler,
    handle: Option<TraceHandle>,
    provider: Option<SdkTracerProvider>,
    export_logs: bool,
}

/// Configures [`Tracing`]; from [`Tracing::builder`].
#[derive(Debug, Clone)]
#[must_use = "call build() to start the export"]
pub struct TracingBuilder {
    service_name: String,
    service_version: Option<String>,
    environment: Option<String>,
    sampler: Sampler,
    export: Option<ExportConfig>,
    resource_attributes: Vec<(String, String)>,
    dropped_counter: Option<metrics::Counter>,
    export_logs: bool,
    logs_dropped_counter: Option<metrics::Counter>,
}

impl Tracing {
    /// Starts configuring the tracing of `service_name`: default sampler,
    /// nothing exported until an endpoint is set.
    pub fn builder(service_name: impl Into<String>) -> TracingBuilder {
        TracingBuilder {
            service_name: service_name.into(),
            service_version: None,
            environment: None,
            sampler: Sampler::default(),
            export: None,
            resource_attributes: Vec::new(),
            dropped_counter: None,
            export_logs: false,
            logs_dropped_counter: None,
        }
    }

    /// The server layer.
    pub fn layer(&self) -> TraceLayer {
        TraceLayer::exporting(
            self.sampler,
            self.handle.as_ref().map(TraceHandle::sink),
            self.provider.is_some(),
        )
    }

    /// The client layer, for outgoing HTTP calls.
    pub fn client_layer(&self) -> ClientTraceLayer {
        ClientTraceLayer::exporting(self.sampler, self.handle.as_ref().map(TraceHandle::sink))
    }

    /// The export pipeline, when exporting.
    pub fn handle(&self) -> Option<&TraceHandle> {
        self.handle.as_ref()
    }

    /// Sends the exporter's own warnings to `dispatch` (the service's
    /// subscriber) rather than the global one; `observe` does this.
    pub fn log_to(&self, dispatch: &tracing::Dispatch) {
        if let Some(handle) = &self.handle {
            handle.log_to(dispatch);
        }
    }

    /// The sampler.
    pub fn sampler(&self) -> Sampler {
        self.sampler
    }

    /// The `tracing-subscriber` layer that turns `tracing` spans (such as
    /// [`db`] spans) into exported child spans; `None` when not exporting.
    /// Add it to the subscriber; `observe` does.
    pub fn otel_layer(&self) -> Option<Box<dyn Layer<Registry> + Send + Sync>> {
        use opentelemetry::trace::TracerProvider as _;
        let provider = self.provider.as_ref()?;
        // The exporter's transport must not trace or log itself, and the
        // request log's own span is not a span of the trace (though log
        // records read the ids on it).
        let transport = Targets::new()
            .with_default(tracing::Level::TRACE)
            .with_target("h2", tracing_subscriber::filter::LevelFilter::OFF)
            .with_target("hyper", tracing_subscriber::filter::LevelFilter::OFF)
            .with_target("hyper_util", tracing_subscriber::filter::LevelFilter::OFF)
            .with_target("tonic", tracing_subscriber::filter::LevelFilter::OFF)
            .with_target("tower", tracing_subscriber::filter::LevelFilter::OFF)
            .with_target(
                "opentelemetry",
                tracing_subscriber::filter::LevelFilter::OFF,
            )
            .with_target(
                "opentelemetry_sdk",
                tracing_subscriber::filter::LevelFilter::OFF,
            )
            .with_target(
                "opentelemetry_otlp",
                tracing_subscriber::filter::LevelFilter::OFF,
            );
        // The request line's target is a prefix of the request span's:
        // neither belongs to the trace (the server span is this crate's own
        // record).
        let filter = transport.clone().with_target(
            observe_core::REQUEST_LINE_TARGET,
            tracing_subscriber::filter::LevelFilter::OFF,
        );
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("observe-trace"))
            .with_filter(filter);
        match (&self.handle, self.export_logs) {
            (Some(handle), true) => {
                let logs = export::OtlpLogLayer {
                    sink: handle.sink(),
                }
                .with_filter(transport);
                Some(Box::new(vec![
                    Box::new(layer) as Box<dyn Layer<Registry> + Send + Sync>,
                    Box::new(logs),
                ]))
            }
            _ => Some(Box::new(layer)),
        }
    }

    /// Whether events are exported as OTLP log records too.
    pub fn exports_logs(&self) -> bool {
        self.export_logs && self.handle.is_some()
    }

    /// Exports every finished span, then stops, within `timeout`. Call it at
    /// the end of the process; `observe`'s `serve` does.
    pub fn shutdown(&self, timeout: Duration) -> Result<(), ExportTimeout> {
        match &self.handle {
            Some(handle) => handle.shutdown(timeout),
            None => Ok(()),
        }
    }
}

impl TracingBuilder {
    /// `service.version` in the resource.
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }

    /// `deployment.environment.name` in the resource.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Which traces are recorded.
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = sampler;
        self
    }

    /// Exports to this collector.
    pub fn export(mut self, export: ExportConfig) -> Self {
        self.export = Some(export);
        self
    }

    /// Adds a resource attribute.
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.resource_attributes.push((key.into(), value.into()));
        self
    }

    /// Also exports every event the subscriber lets through as an OTLP log
    /// record, with its trace and span ids, to the traces' collector
    /// (`OBSERVE_LOG_OTLP`). Nothing without an export endpoint.
    pub fn export_logs(mut self, export: bool) -> Self {
        self.export_logs = export;
        self
    }

    /// A counter to add dropped log records to (`otel_logs_dropped_total`).
    pub fn logs_dropped_counter(mut self, counter: metrics::Counter) -> Self {
        self.logs_dropped_counter = Some(counter);
        self
    }

    /// A counter to add dropped spans to (`otel_spans_dropped_total`).
    pub fn dropped_counter(mut self, counter: metrics::Counter) -> Self {
        self.dropped_counter = Some(counter);
        self
    }

    /// Reads `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`,
    /// `OTEL_TRACES_SAMPLER_ARG`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SDK_DISABLED`
    /// and the `OTEL_EXPORTER_OTLP_*` variables through `get`
    /// (`|name| std::env::var(name).ok()` for the process's).
    pub fn env_vars(
        mut self,
        get: impl Fn(&'static str) -> Option<String>,
    ) -> Result<Self, InvalidTraceConfig> {
        if let Some(name) = get("OTEL_SERVICE_NAME").filter(|name| !name.trim().is_empty()) {
            self.service_name = name.trim().to_owned();
        }
        self.sampler = Sampler::from_env_values(
            get("OTEL_TRACES_SAMPLER").as_deref(),
            get("OTEL_TRACES_SAMPLER_ARG").as_deref(),
        )?;
        if let Some(text) = get("OTEL_RESOURCE_ATTRIBUTES") {
            for pair in text
                .split(',')
                .map(str::trim)
                .filter(|pair| !pair.is_empty())
            {
                let Some((key, value)) = pair.split_once('=') else {
                    return Err(InvalidTraceConfig {
                        variable: "OTEL_RESOURCE_ATTRIBUTES",
                        value: text.clone(),
                        reason: "expected key=value pairs separated by commas".to_owned(),
                    });
                };
                self.resource_attributes
                    .push((key.trim().to_owned(), value.trim().to_owned()));
            }
        }
        self.export = ExportConfig::from_env(get)?;
        Ok(self)
    }

    /// Starts the export, if an endpoint is set. Fails only when its thread
    /// cannot start.
    pub fn build(self) -> std::io::Result<Tracing> {
        let Some(export) = self.export else {
            return Ok(Tracing {
                sampler: self.sampler,
                handle: None,
                provider: None,
                export_logs: self.export_logs,
            });
        };
        let mut attributes = vec![
            KeyValue::new("service.name", self.service_name.clone()),
            KeyValue::new("telemetry.sdk.name", "opentelemetry"),
            KeyValue::new("telemetry.sdk.language", "rust"),
            KeyValue::new("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ];
        if let Some(version) = &self.service_version {
            attributes.push(KeyValue::new("service.version", version.clone()));
        }
        if let Some(environment) = &self.environment {
            attributes.push(KeyValue::new(
                "deployment.environment.name",
                environment.clone(),
            ));
        }
        attributes.extend(resource::host_and_process());
        for (key, value) in self.resource_attributes {
            // The builder and OTEL_SERVICE_NAME name the service.
            if key != "service.name" {
                attributes.push(KeyValue::new(key, value));
            }
        }
        let resource = opentelemetry_sdk::Resource::builder_empty()
            .with_attributes(attributes)
            .build();
        let handle = export::start(
            export,
            resource.clone(),
            self.dropped_counter,
            self.logs_dropped_counter,
        )?;
        let provider = SdkTracerProvider::builder()
            .with_span_processor(export::QueueProcessor::new(&handle))
            .with_sampler(self.sampler.to_sdk())
            .with_resource(resource)
            .build();
        Ok(Tracing {
            sampler: self.sampler,
            handle: Some(handle),
            provider: Some(provider),
            export_logs: self.export_logs,
        })
    }
}
