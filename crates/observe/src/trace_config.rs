//! The tracing part of the configuration: the standard `OTEL_*` variables.

use std::collections::HashMap;

use observe_trace::{Sampler, Tracing};

use crate::{ConfigError, config::Env};

/// Every variable observe-trace reads.
const VARIABLES: &[&str] = &[
    "OTEL_SERVICE_NAME",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE",
];

/// What the builder's trace setters hold.
#[derive(Debug, Clone, Default)]
pub(crate) struct TraceOptions {
    pub(crate) sampler: Option<Sampler>,
    pub(crate) service_version: Option<String>,
    pub(crate) export_logs: Option<bool>,
    /// Set by the builder: win over `OTEL_EXPORTER_OTLP_ENDPOINT` and
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, the other variables still read.
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Option<observe_trace::Protocol>,
}

impl TraceOptions {
    pub(crate) fn build(
        self,
        env: &Env,
        service: &str,
        environment: &str,
        registry: &observe_metrics::Metrics,
    ) -> Result<Tracing, ConfigError> {
        let mut values = HashMap::new();
        for name in VARIABLES {
            if let Some(value) = env.get(name)? {
                values.insert(*name, value);
            }
        }
        if let Some(endpoint) = self.endpoint {
            // The builder's endpoint is the base, as the variable's is.
            values.remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
            values.insert("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
        }
        if let Some(protocol) = self.protocol {
            values.remove("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
            let name = match protocol {
                observe_trace::Protocol::HttpProtobuf => "http/protobuf",
                _ => "grpc",
            };
            values.insert("OTEL_EXPORTER_OTLP_PROTOCOL", name.to_owned());
        }
        let mut builder = Tracing::builder(service)
            .environment(environment)
            .env_vars(|name| values.get(name).cloned())
            .map_err(|error| ConfigError::new(error.variable, error.value, error.reason))?;
        if let Some(sampler) = self.sampler {
            builder = builder.sampler(sampler);
        }
        if let Some(version) = self.service_version {
            builder = builder.service_version(version);
        }
        let counter = crate::config::zeroed_counter(
            registry,
            observe_trace::DROPPED_SPANS_METRIC,
            service,
            "Spans dropped because the export queue was full or their export failed.",
        );
        let export_logs = match self.export_logs {
            Some(export) => export,
            None => env.bool("OBSERVE_LOG_OTLP")?.unwrap_or(false),
        };
        if export_logs {
            if !values.contains_key("OTEL_EXPORTER_OTLP_ENDPOINT")
                && !values.contains_key("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            {
                return Err(ConfigError::new(
                    "OBSERVE_LOG_OTLP",
                    "true",
                    "log records go to the traces' collector: set OTEL_EXPORTER_OTLP_ENDPOINT",
                ));
            }
            let logs_counter = crate::config::zeroed_counter(
                registry,
                observe_trace::DROPPED_LOGS_METRIC,
                service,
                "Log records dropped because the export queue was full or their export failed.",
            );
            builder = builder.export_logs(true).logs_dropped_counter(logs_counter);
        }
        builder.dropped_counter(counter).build().map_err(|error| {
            ConfigError::new(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                values
                    .get("OTEL_EXPORTER_OTLP_ENDPOINT")
                    .cloned()
                    .unwrap_or_default(),
                format!("the span exporter could not start: {error}"),
            )
        })
    }
}
