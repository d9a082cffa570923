//! Finished spans straight into the protobuf bytes of an OTLP
//! `ExportTraceServiceRequest`, on the export thread: no `SpanData`, no
//! message structs per span, no string per attribute. A batch's buffers are
//! kept and reused: a span allocates nothing here, an export request one
//! buffer for its bytes.
//!
//! The encoding follows `opentelemetry-proto`'s: the tests decode it with
//! that crate's types, and spans from the OpenTelemetry SDK (`tracing`
//! spans through tracing-opentelemetry) still go through its conversion.

use std::time::SystemTime;

use axum::extract::MatchedPath;
use http::Version;
use opentelemetry::trace::TraceState;
use opentelemetry_proto::{
    tonic::{common::v1::InstrumentationScope, resource::v1::Resource},
    transform::{
        common::tonic::ResourceAttributesWithSchema,
        trace::tonic::group_spans_by_resource_and_scope,
    },
};
use opentelemetry_sdk::trace::SpanData;
use prost::{
    Message as _,
    encoding::{WireType, encode_key, encode_varint, encoded_len_varint},
};

use super::{
    Item,
    records::{ClientRecord, InternalRecord, ServerRecord},
};
use crate::TraceContext;

// Field numbers of opentelemetry/proto/trace/v1/trace.proto and friends.
const REQUEST_RESOURCE_SPANS: u32 = 1;
const RESOURCE_SPANS_RESOURCE: u32 = 1;
const RESOURCE_SPANS_SCOPE_SPANS: u32 = 2;
const SCOPE_SPANS_SCOPE: u32 = 1;
const SCOPE_SPANS_SPANS: u32 = 2;
const SPAN_TRACE_ID: u32 = 1;
const SPAN_SPAN_ID: u32 = 2;
const SPAN_TRACE_STATE: u32 = 3;
const SPAN_PARENT_SPAN_ID: u32 = 4;
const SPAN_NAME: u32 = 5;
const SPAN_KIND: u32 = 6;
const SPAN_START: u32 = 7;
const SPAN_END: u32 = 8;
const SPAN_ATTRIBUTES: u32 = 9;
const SPAN_STATUS: u32 = 15;
const SPAN_FLAGS: u32 = 16;
const STATUS_MESSAGE: u32 = 2;
const STATUS_CODE: u32 = 3;
const KEY_VALUE_KEY: u32 = 1;
const KEY_VALUE_VALUE: u32 = 2;
const ANY_STRING: u32 = 1;
const ANY_INT: u32 = 3;

const KIND_INTERNAL: u64 = 1;
const KIND_SERVER: u64 = 2;
const KIND_CLIENT: u64 = 3;
const STATUS_ERROR: u64 = 2;
/// `SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`, and the sampled trace flag.
const FLAGS_LOCAL: u32 = 0x100 | 0x01;
/// ... with `SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`.
const FLAGS_REMOTE_PARENT: u32 = FLAGS_LOCAL | 0x200;

/// One export request being filled.
pub(super) struct TraceBatch {
    /// The resource and the scope, encoded once.
    resource: Vec<u8>,
    scope: Vec<u8>,
    sdk_resource: ResourceAttributesWithSchema,
    /// This crate's spans, each a whole `ScopeSpans.spans` field.
    spans: Vec<u8>,
    /// One span's message while it is written, before its length is known.
    span: Vec<u8>,
    /// Formatting room for the few values that are not text already.
    text: String,
    sdk: Vec<SpanData>,
    count: usize,
}

impl TraceBatch {
    pub(super) fn new(resource: &opentelemetry_sdk::Resource) -> Self {
        let scope = InstrumentationScope {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..InstrumentationScope::default()
        };
        let proto: Resource = super::logs::proto_resource(resource);
        Self {
            resource: proto.encode_to_vec(),
            scope: scope.encode_to_vec(),
            sdk_resource: ResourceAttributesWithSchema::from(resource),
            spans: Vec::with_capacity(64 * 1024),
            span: Vec::with_capacity(1024),
            text: String::with_capacity(64),
            sdk: Vec::new(),
            count: 0,
        }
    }

    /// Spans in the batch.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds a finished span; other items are not spans. A server span's
    /// record comes back, encoded, for reuse.
    pub(super) fn push(&mut self, item: Item) -> Option<Box<ServerRecord>> {
        self.span.clear();
        match item {
            Item::Server(record) => {
                self.server(&record);
                message(SCOPE_SPANS_SPANS, &self.span, &mut self.spans);
                self.count += 1;
                return Some(record);
            }
            Item::Client(record) => self.client(&record),
            Item::Internal(record) => self.internal(&record),
            Item::Sdk(span) => {
                self.sdk.push(*span);
                self.count += 1;
                return None;
            }
            Item::Flush(_) | Item::Log(_) => return None,
        }
        message(SCOPE_SPANS_SPANS, &self.span, &mut self.spans);
        self.count += 1;
        None
    }

    /// The request's bytes; the batch is empty again after.
    pub(super) fn take_request(&mut self) -> bytes::Bytes {
        let mut out = Vec::with_capacity(self.spans.len() + self.resource.len() + 64);
        if !self.spans.is_empty() {
            let scope_spans_len = field_len(self.scope.len()) + self.spans.len();
            let resource_spans_len = field_len(self.resource.len()) + field_len(scope_spans_len);
            length_delimited(REQUEST_RESOURCE_SPANS, resource_spans_len, &mut out);
            message(RESOURCE_SPANS_RESOURCE, &self.resource, &mut out);
            length_delimited(RESOURCE_SPANS_SCOPE_SPANS, scope_spans_len, &mut out);
            message(SCOPE_SPANS_SCOPE, &self.scope, &mut out);
            out.extend_from_slice(&self.spans);
        }
        if !self.sdk.is_empty() {
            let spans = std::mem::take(&mut self.sdk);
            for resource_spans in group_spans_by_resource_and_scope(spans, &self.sdk_resource) {
                encode_key(REQUEST_RESOURCE_SPANS, WireType::LengthDelimited, &mut out);
                let _ = resource_spans.encode_length_delimited(&mut out);
            }
        }
        self.spans.clear();
        self.count = 0;
        bytes::Bytes::from(out)
    }

    fn server(&mut self, record: &ServerRecord) {
        let out = &mut self.span;
        head(
            out,
            &record.context,
            record.context.parent_span_id.is_some(),
        );
        let route = record.route.as_ref().map(MatchedPath::as_str);
        let method = record.method.as_str();
        match route {
            Some(route) => {
                length_delimited(SPAN_NAME, method.len() + 1 + route.len(), out);
                out.extend_from_slice(method.as_bytes());
                out.push(b' ');
                out.extend_from_slice(route.as_bytes());
            }
            None => string(SPAN_NAME, method, out),
        }
        varint(SPAN_KIND, KIND_SERVER, out);
        times(out, record.start, record.end);
        attribute(out, "http.request.method", Value::Str(method));
        if let Some(route) = route {
            attribute(out, "http.route", Value::Str(route));
        }
        let texts = &record.texts;
        attribute(out, "url.path", Value::Str(texts.path()));
        attribute(
            out,
            "url.scheme",
            Value::Str(texts.scheme().unwrap_or("http")),
        );
        if let Some(host) = texts.host() {
            let (address, port) = match host.rsplit_once(':') {
                Some((address, port)) if !address.ends_with(']') || host.starts_with('[') => {
                    (address, port.parse::<i64>().ok())
                }
                _ => (host, None),
            };
            attribute(out, "server.address", Value::Str(address));
            if let Some(port) = port.or(record.local_port.map(i64::from)) {
                attribute(out, "server.port", Value::Int(port));
            }
        } else if let Some(port) = record.local_port {
            attribute(out, "server.port", Value::Int(i64::from(port)));
        }
        if let Some(client) = record.client_address {
            let client = observe_core::address_text(client);
            attribute(out, "client.address", Value::Str(&client));
        }
        if let Some(agent) = texts.user_agent() {
            attribute(out, "user_agent.original", Value::Str(agent));
        }
        attribute(
            out,
            "network.protocol.version",
            Value::Str(match record.version {
                Version::HTTP_09 => "0.9",
                Version::HTTP_10 => "1.0",
                Version::HTTP_2 => "2",
                Version::HTTP_3 => "3",
                _ => "1.1",
            }),
        );
        if let Some(id) = texts.request_id() {
            attribute(out, "request_id", Value::Str(id));
        }
        match record.status {
            Some(status) => {
                attribute(
                    out,
                    "http.response.status_code",
                    Value::Int(i64::from(status.as_u16())),
                );
                if status.is_server_error() {
                    match record.texts.error_type() {
                        Some(error_type) => attribute(out, "error.type", Value::Str(error_type)),
                        None => attribute(out, "error.type", Value::Str(status.as_str())),
                    }
                    error_status(out, status.canonical_reason().unwrap_or("server error"));
                } else {
                    unset_status(out);
                }
            }
            None => {
                attribute(out, "error.type", Value::Str("aborted"));
                error_status(out, "the client went away before the response");
            }
        }
    }

    fn internal(&mut self, record: &InternalRecord) {
        let out = &mut self.span;
        head(out, &record.context, false);
        string(SPAN_NAME, record.name, out);
        varint(SPAN_KIND, KIND_INTERNAL, out);
        times(out, record.start, record.end);
        if record.aborted {
            attribute(out, "error.type", Value::Str("aborted"));
            error_status(out, "dropped before it finished");
        } else {
            unset_status(out);
        }
    }

    fn client(&mut self, record: &ClientRecord) {
        let out = &mut self.span;
        head(out, &record.context, false);
        string(SPAN_NAME, record.method.as_str(), out);
        varint(SPAN_KIND, KIND_CLIENT, out);
        times(out, record.start, record.end);
        attribute(
            out,
            "http.request.method",
            Value::Str(record.method.as_str()),
        );
        if let Some(host) = record.uri.host() {
            attribute(out, "server.address", Value::Str(host));
        }
        let port = record.uri.port_u16().or(match record.uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        if let Some(port) = port {
            attribute(out, "server.port", Value::Int(i64::from(port)));
        }
        // Without the query, which can hold tokens.
        self.text.clear();
        if let (Some(scheme), Some(authority)) = (record.uri.scheme_str(), record.uri.authority()) {
            self.text.push_str(scheme);
            self.text.push_str("://");
            self.text.push_str(authority.as_str());
        }
        self.text.push_str(record.uri.path());
        attribute(out, "url.full", Value::Str(&self.text));
        match (record.status, record.error) {
            (Some(status), _) => {
                attribute(
                    out,
                    "http.response.status_code",
                    Value::Int(i64::from(status.as_u16())),
                );
                if status.as_u16() >= 400 {
                    attribute(out, "error.type", Value::Str(status.as_str()));
                    error_status(out, status.canonical_reason().unwrap_or("error"));
                } else {
                    unset_status(out);
                }
            }
            (None, error) => {
                let error = error.unwrap_or("aborted");
                attribute(out, "error.type", Value::Str(error));
                error_status(out, error);
            }
        }
    }
}

/// Ids, trace state and flags: what every span starts with.
fn head(out: &mut Vec<u8>, context: &TraceContext, parent_is_remote: bool) {
    bytes(SPAN_TRACE_ID, &context.trace_id.to_bytes(), out);
    bytes(SPAN_SPAN_ID, &context.span_id.to_bytes(), out);
    if let Some(state) = context
        .trace_state()
        .and_then(|state| state.to_str().ok())
        .and_then(|state| state.parse::<TraceState>().ok())
    {
        string(SPAN_TRACE_STATE, &state.header(), out);
    }
    if let Some(parent) = context.parent_span_id {
        bytes(SPAN_PARENT_SPAN_ID, &parent.to_bytes(), out);
    }
    field_key(SPAN_FLAGS, WireType::ThirtyTwoBit, out);
    let flags = if parent_is_remote {
        FLAGS_REMOTE_PARENT
    } else {
        FLAGS_LOCAL
    };
    out.extend_from_slice(&flags.to_le_bytes());
}

fn times(out: &mut Vec<u8>, start: SystemTime, end: SystemTime) {
    for (field, time) in [(SPAN_START, start), (SPAN_END, end)] {
        let nanos = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64);
        field_key(field, WireType::SixtyFourBit, out);
        out.extend_from_slice(&nanos.to_le_bytes());
    }
}

fn unset_status(out: &mut Vec<u8>) {
    length_delimited(SPAN_STATUS, 0, out);
}

fn error_status(out: &mut Vec<u8>, message: &str) {
    let len = field_len(message.len()) + 1 + encoded_len_varint(STATUS_ERROR);
    length_delimited(SPAN_STATUS, len, out);
    string(STATUS_MESSAGE, message, out);
    varint(STATUS_CODE, STATUS_ERROR, out);
}

enum Value<'a> {
    Str(&'a str),
    Int(i64),
}

/// A `KeyValue` in `Span.attributes`.
fn attribute(out: &mut Vec<u8>, key: &str, value: Value<'_>) {
    let any_len = match value {
        // In a oneof: written even when empty.
        Value::Str(text) => field_len(text.len()),
        Value::Int(number) => 1 + encoded_len_varint(number as u64),
    };
    let len = field_len(key.len()) + field_len(any_len);
    length_delimited(SPAN_ATTRIBUTES, len, out);
    length_delimited(KEY_VALUE_KEY, key.len(), out);
    out.extend_from_slice(key.as_bytes());
    length_delimited(KEY_VALUE_VALUE, any_len, out);
    match value {
        Value::Str(text) => {
            length_delimited(ANY_STRING, text.len(), out);
            out.extend_from_slice(text.as_bytes());
        }
        Value::Int(number) => {
            field_key(ANY_INT, WireType::Varint, out);
            small_varint(number as u64, out);
        }
    }
}

/// The bytes a length-delimited field of `len` bytes takes, for fields
/// numbered below 16 (one byte of key).
fn field_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

fn length_delimited(field: u32, len: usize, out: &mut Vec<u8>) {
    field_key(field, WireType::LengthDelimited, out);
    small_varint(len as u64, out);
}

/// A field's key: one byte for the fields below 16 (all but the flags),
/// without a call into prost for each of a span's keys.
#[inline]
fn field_key(field: u32, wire_type: WireType, out: &mut Vec<u8>) {
    if field < 16 {
        out.push(((field << 3) | wire_type as u32) as u8);
    } else {
        encode_key(field, wire_type, out);
    }
}

/// A varint, one byte when below 128 (most lengths in a span).
#[inline]
fn small_varint(value: u64, out: &mut Vec<u8>) {
    if value < 0x80 {
        out.push(value as u8);
    } else {
        encode_varint(value, out);
    }
}

fn message(field: u32, body: &[u8], out: &mut Vec<u8>) {
    length_delimited(field, body.len(), out);
    out.extend_from_slice(body);
}

fn bytes(field: u32, value: &[u8], out: &mut Vec<u8>) {
    message(field, value, out);
}

fn string(field: u32, value: &str, out: &mut Vec<u8>) {
    if !value.is_empty() {
        message(field, value.as_bytes(), out);
    }
}

fn varint(field: u32, value: u64, out: &mut Vec<u8>) {
    field_key(field, WireType::Varint, out);
    small_varint(value, out);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use http::{HeaderValue, Method, StatusCode, Uri};
    use opentelemetry_proto::tonic::{
        collector::trace::v1::ExportTraceServiceRequest, common::v1::any_value,
    };
    use prost::Message as _;

    use super::*;
    use crate::context::{new_span_id, new_trace_id};
    use crate::export::records::RequestTexts;

    fn context(parent: bool) -> TraceContext {
        TraceContext {
            trace_id: new_trace_id(),
            span_id: new_span_id(),
            parent_span_id: parent.then(new_span_id),
            sampled: true,
            passed: None,
            sink: None,
        }
    }

    #[test]
    fn a_server_span_decodes_with_every_attribute() {
        let resource = opentelemetry_sdk::Resource::builder_empty()
            .with_service_name("svc")
            .build();
        let mut batch = TraceBatch::new(&resource);
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let context = context(true);
        let record = ServerRecord {
            context: context.clone(),
            method: Method::GET,
            route: None,
            texts: RequestTexts::of(
                &Uri::from_static("/users/7?x=1"),
                Some(&HeaderValue::from_static("example.com:8080")),
                Some(&HeaderValue::from_static("curl/8")),
                None,
                Some("upstream"),
            ),
            local_port: Some(8080),
            client_address: Some("10.1.2.3".parse().unwrap()),
            version: Version::HTTP_11,
            start,
            end: start + Duration::from_millis(3),
            status: Some(StatusCode::BAD_GATEWAY),
        };
        batch.push(Item::Server(Box::new(record)));
        batch.push(Item::Internal(Box::new(InternalRecord {
            context: context.clone(),
            name: "work",
            start,
            end: start,
            aborted: false,
        })));
        assert_eq!(batch.len(), 2);
        let request = ExportTraceServiceRequest::decode(batch.take_request()).unwrap();
        assert!(batch.is_empty());
        let resource_spans = &request.resource_spans[0];
        let service = &resource_spans.resource.as_ref().unwrap().attributes;
        assert!(service.iter().any(|kv| kv.key == "service.name"));
        let scope_spans = &resource_spans.scope_spans[0];
        assert_eq!(scope_spans.scope.as_ref().unwrap().name, "observe-trace");
        let span = &scope_spans.spans[0];
        assert_eq!(span.name, "GET");
        assert_eq!(span.kind, 2);
        assert_eq!(span.trace_id, context.trace_id.to_bytes());
        assert_eq!(span.span_id, context.span_id.to_bytes());
        assert_eq!(
            span.parent_span_id,
            context.parent_span_id.unwrap().to_bytes()
        );
        assert_eq!(span.flags, 0x301);
        assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_700_000_000_003_000_000);
        let attribute = |key: &str| {
            span.attributes
                .iter()
                .find(|kv| kv.key == key)
                .and_then(|kv| kv.value.as_ref()?.value.clone())
        };
        let text = |key: &str| match attribute(key) {
            Some(any_value::Value::StringValue(text)) => text,
            other => panic!("{key}: {other:?}"),
        };
        assert_eq!(text("http.request.method"), "GET");
        assert_eq!(text("url.path"), "/users/7");
        assert_eq!(text("server.address"), "example.com");
        assert_eq!(text("client.address"), "10.1.2.3");
        assert_eq!(text("user_agent.original"), "curl/8");
        assert_eq!(text("error.type"), "upstream");
        assert_eq!(
            attribute("server.port"),
            Some(any_value::Value::IntValue(8080))
        );
        assert_eq!(
            attribute("http.response.status_code"),
            Some(any_value::Value::IntValue(502))
        );
        let status = span.status.as_ref().unwrap();
        assert_eq!(status.code, 2);
        assert_eq!(status.message, "Bad Gateway");
        let internal = &scope_spans.spans[1];
        assert_eq!(internal.name, "work");
        assert_eq!(internal.kind, 1);
        assert_eq!(internal.flags, 0x101);
        assert!(internal.attributes.is_empty());
        assert_eq!(internal.status.as_ref().unwrap().code, 0);
    }

    #[test]
    fn long_values_a_bare_5xx_and_an_ipv6_client_decode_exactly() {
        let resource = opentelemetry_sdk::Resource::builder_empty().build();
        let mut batch = TraceBatch::new(&resource);
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        // Lengths past 127 take two bytes; past 16,383, three.
        let agent = "a".repeat(300);
        let path = format!("/{}", "p".repeat(20_000));
        let record = ServerRecord {
            context: context(false),
            method: Method::POST,
            route: None,
            texts: RequestTexts::of(
                &path.parse().unwrap(),
                None,
                Some(&HeaderValue::from_str(&agent).unwrap()),
                Some(&"req-1".parse().unwrap()),
                None,
            ),
            local_port: None,
            client_address: Some("2001:db8::8a2e:370:7334".parse().unwrap()),
            version: Version::HTTP_2,
            start,
            end: start,
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
        };
        batch.push(Item::Server(Box::new(record)));
        let request = ExportTraceServiceRequest::decode(batch.take_request()).unwrap();
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        let text = |key: &str| match span
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.clone())
        {
            Some(any_value::Value::StringValue(text)) => text,
            other => panic!("{key}: {other:?}"),
        };
        assert_eq!(text("user_agent.original"), agent);
        assert_eq!(text("url.path"), path);
        assert_eq!(text("client.address"), "2001:db8::8a2e:370:7334");
        assert_eq!(text("network.protocol.version"), "2");
        assert_eq!(text("error.type"), "503");
        assert_eq!(text("request_id"), "req-1");
        assert_eq!(span.attributes.len(), 9, "{:?}", span.attributes);
        assert_eq!(span.flags, 0x101);
        assert!(span.parent_span_id.is_empty());
        assert_eq!(span.status.as_ref().unwrap().message, "Service Unavailable");
    }
}
