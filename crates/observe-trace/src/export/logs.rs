//! Log records over OTLP (`OBSERVE_LOG_OTLP=true`): every event the
//! service's subscriber lets through becomes an OTLP log record with its
//! severity, message, fields as attributes, and the trace and span ids of
//! the request it belongs to. A record is captured on the request path as a
//! small struct and queued with the spans; the export thread encodes the
//! batch as OpenTelemetry's protocol types and sends it to the collector of
//! the traces (`/v1/logs` over HTTP, `LogsService` over gRPC). A full queue
//! or a failed export drops records and counts them in
//! `otel_logs_dropped_total`.

use std::{fmt, time::SystemTime};

use opentelemetry_proto::tonic::{
    collector::logs::v1::ExportLogsServiceRequest,
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value},
    logs::v1::{LogRecord, ResourceLogs, ScopeLogs},
    resource::v1::Resource,
};
use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
    span,
};
use tracing_subscriber::{Layer, layer::Context, registry::LookupSpan};

use super::{Item, SpanSink};

/// One event, as captured: the rest is done on the export thread.
pub(crate) struct LogItem {
    time: SystemTime,
    level: Level,
    target: &'static str,
    body: String,
    attributes: Vec<(&'static str, Attribute)>,
    trace_id: Option<[u8; 16]>,
    span_id: Option<[u8; 8]>,
}

enum Attribute {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// The ids a span carries (`trace_id`, `span_id` fields, as the request
/// log's span records them).
#[derive(Clone, Copy, Default)]
struct SpanIds {
    trace_id: Option<[u8; 16]>,
    span_id: Option<[u8; 8]>,
}

impl Visit for SpanIds {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            // Ids as the request span records them: lowercase hex.
            "trace_id" => {
                self.trace_id = opentelemetry::trace::TraceId::from_hex(value)
                    .ok()
                    .filter(|id| *id != opentelemetry::trace::TraceId::INVALID)
                    .map(|id| id.to_bytes());
            }
            "span_id" => {
                self.span_id = opentelemetry::trace::SpanId::from_hex(value)
                    .ok()
                    .filter(|id| *id != opentelemetry::trace::SpanId::INVALID)
                    .map(|id| id.to_bytes());
            }
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

#[derive(Default)]
struct EventFields {
    body: String,
    attributes: Vec<(&'static str, Attribute)>,
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.body = value.to_owned();
        } else {
            self.attributes
                .push((field.name(), Attribute::Text(value.to_owned())));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push((field.name(), Attribute::Int(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.attributes.push((
            field.name(),
            i64::try_from(value).map_or_else(|_| Attribute::Float(value as f64), Attribute::Int),
        ));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes
            .push((field.name(), Attribute::Float(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.push((field.name(), Attribute::Bool(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// The `tracing-subscriber` layer that queues each event as a log record;
/// from [`Tracing::otel_layer`](crate::Tracing::otel_layer) when log export
/// is on.
pub(crate) struct OtlpLogLayer {
    pub(crate) sink: SpanSink,
}

impl<S> Layer<S> for OtlpLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut ids = SpanIds::default();
        attrs.record(&mut ids);
        if ids.trace_id.is_some()
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(ids);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut ids = span
            .extensions()
            .get::<SpanIds>()
            .copied()
            .unwrap_or_default();
        values.record(&mut ids);
        if ids.trace_id.is_some() {
            span.extensions_mut().replace(ids);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let ids = ctx
            .event_scope(event)
            .and_then(|scope| {
                scope
                    .into_iter()
                    .find_map(|span| span.extensions().get::<SpanIds>().copied())
            })
            .unwrap_or_default();
        self.sink.send_log(Item::Log(Box::new(LogItem {
            time: SystemTime::now(),
            level: *metadata.level(),
            target: metadata.target(),
            body: fields.body,
            attributes: fields.attributes,
            trace_id: ids.trace_id,
            span_id: ids.span_id,
        })));
    }
}

fn severity(level: Level) -> (i32, &'static str) {
    // OpenTelemetry's severity numbers: the first of each range.
    match level {
        Level::TRACE => (1, "TRACE"),
        Level::DEBUG => (5, "DEBUG"),
        Level::INFO => (9, "INFO"),
        Level::WARN => (13, "WARN"),
        Level::ERROR => (17, "ERROR"),
    }
}

fn any(value: Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

fn key_value(key: impl Into<String>, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: any(value),
        ..KeyValue::default()
    }
}

/// The resource, in the protocol's types; built once per exporter.
pub(crate) fn proto_resource(resource: &opentelemetry_sdk::Resource) -> Resource {
    let attributes = resource
        .iter()
        .map(|(key, value)| {
            let value = match value {
                opentelemetry::Value::Bool(flag) => Value::BoolValue(*flag),
                opentelemetry::Value::I64(number) => Value::IntValue(*number),
                opentelemetry::Value::F64(number) => Value::DoubleValue(*number),
                other => Value::StringValue(other.to_string()),
            };
            key_value(key.as_str(), value)
        })
        .collect();
    Resource {
        attributes,
        ..Resource::default()
    }
}

fn record(item: LogItem) -> LogRecord {
    let nanos = item
        .time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    let (severity_number, severity_text) = severity(item.level);
    let mut attributes: Vec<KeyValue> = item
        .attributes
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                Attribute::Text(text) => Value::StringValue(text),
                Attribute::Int(number) => Value::IntValue(number),
                Attribute::Float(number) => Value::DoubleValue(number),
                Attribute::Bool(flag) => Value::BoolValue(flag),
            };
            key_value(key, value)
        })
        .collect();
    attributes.push(key_value(
        "log.logger",
        Value::StringValue(item.target.to_owned()),
    ));
    LogRecord {
        time_unix_nano: nanos,
        observed_time_unix_nano: nanos,
        severity_number,
        severity_text: severity_text.to_owned(),
        body: any(Value::StringValue(item.body)),
        attributes,
        trace_id: item.trace_id.map(Vec::from).unwrap_or_default(),
        span_id: item.span_id.map(Vec::from).unwrap_or_default(),
        flags: u32::from(item.trace_id.is_some()),
        ..LogRecord::default()
    }
}

/// One export request for `items`.
pub(crate) fn request(resource: &Resource, items: Vec<LogItem>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource.clone()),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "observe".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..InstrumentationScope::default()
                }),
                log_records: items.into_iter().map(record).collect(),
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_opentelemetrys() {
        assert_eq!(severity(Level::INFO), (9, "INFO"));
        assert_eq!(severity(Level::ERROR), (17, "ERROR"));
    }
}
