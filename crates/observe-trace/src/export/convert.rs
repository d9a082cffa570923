//! Finished spans as the layers record them, and their OpenTelemetry form,
//! built on the exporter thread.

use std::{borrow::Cow, net::IpAddr, time::SystemTime};

use axum::extract::MatchedPath;
use http::{HeaderValue, Method, StatusCode, Uri, Version};
use opentelemetry::{
    InstrumentationScope, KeyValue,
    trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceState},
};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use std::sync::OnceLock;

use super::Item;
use crate::TraceContext;

/// A server span, as [`TraceLayer`](crate::TraceLayer) finishes it.
pub(crate) struct ServerRecord {
    pub(crate) context: TraceContext,
    pub(crate) method: Method,
    pub(crate) route: Option<MatchedPath>,
    pub(crate) uri: Uri,
    pub(crate) host: Option<HeaderValue>,
    pub(crate) local_port: Option<u16>,
    pub(crate) client_address: Option<IpAddr>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) version: Version,
    pub(crate) request_id: Option<observe_request_id::RequestId>,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    /// `None` when the client went away before the response.
    pub(crate) status: Option<StatusCode>,
    /// From the error layer's report, for 5xx.
    pub(crate) error_type: Option<String>,
}

/// An internal span, as [`in_span`](crate::in_span) finishes it.
pub(crate) struct InternalRecord {
    pub(crate) context: TraceContext,
    pub(crate) name: &'static str,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    /// Dropped before it finished.
    pub(crate) aborted: bool,
}

/// A client span, as [`ClientTraceLayer`](crate::ClientTraceLayer) finishes it.
pub(crate) struct ClientRecord {
    pub(crate) context: TraceContext,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) status: Option<StatusCode>,
    /// Set when the call failed without a response.
    pub(crate) error: Option<&'static str>,
}

fn scope() -> InstrumentationScope {
    static SCOPE: OnceLock<InstrumentationScope> = OnceLock::new();
    SCOPE
        .get_or_init(|| {
            InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
                .with_version(env!("CARGO_PKG_VERSION"))
                .build()
        })
        .clone()
}

fn span_context(context: &TraceContext) -> SpanContext {
    let trace_state = context
        .trace_state()
        .and_then(|state| state.to_str().ok())
        .and_then(|state| state.parse::<TraceState>().ok())
        .unwrap_or_default();
    SpanContext::new(
        context.trace_id,
        context.span_id,
        TraceFlags::SAMPLED,
        false,
        trace_state,
    )
}

fn text(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

/// The exported form of a finished span; `None` for a flush marker.
pub(super) fn span_data(item: Item) -> Option<SpanData> {
    Some(match item {
        Item::Server(record) => server(*record),
        Item::Client(record) => client(*record),
        Item::Internal(record) => internal(*record),
        Item::Sdk(span) => *span,
        Item::Flush(_) | Item::Log(_) => return None,
    })
}

/// What differs between the spans this crate records.
struct Finished {
    context: TraceContext,
    parent_is_remote: bool,
    kind: SpanKind,
    name: Cow<'static, str>,
    start: SystemTime,
    end: SystemTime,
    attributes: Vec<KeyValue>,
    status: Status,
}

impl Finished {
    fn into_span_data(self) -> SpanData {
        SpanData {
            span_context: span_context(&self.context),
            parent_span_id: self.context.parent_span_id.unwrap_or(SpanId::INVALID),
            parent_span_is_remote: self.parent_is_remote,
            span_kind: self.kind,
            name: self.name,
            start_time: self.start,
            end_time: self.end,
            attributes: self.attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: self.status,
            instrumentation_scope: scope(),
        }
    }
}

fn server(record: ServerRecord) -> SpanData {
    let route = record.route.as_ref().map(MatchedPath::as_str);
    let name = match route {
        Some(route) => format!("{} {route}", record.method),
        None => record.method.to_string(),
    };
    let scheme = record.uri.scheme_str().unwrap_or("http").to_owned();
    let mut attributes = Vec::with_capacity(14);
    attributes.push(KeyValue::new(
        "http.request.method",
        record.method.as_str().to_owned(),
    ));
    if let Some(route) = route {
        attributes.push(KeyValue::new("http.route", route.to_owned()));
    }
    attributes.push(KeyValue::new("url.path", record.uri.path().to_owned()));
    attributes.push(KeyValue::new("url.scheme", scheme));
    if let Some(host) = &record.host {
        let host = text(host);
        let (address, port) = match host.rsplit_once(':') {
            Some((address, port)) if !address.ends_with(']') || host.starts_with('[') => {
                (address.to_owned(), port.parse::<i64>().ok())
            }
            _ => (host.clone(), None),
        };
        attributes.push(KeyValue::new("server.address", address));
        if let Some(port) = port.or(record.local_port.map(i64::from)) {
            attributes.push(KeyValue::new("server.port", port));
        }
    } else if let Some(port) = record.local_port {
        attributes.push(KeyValue::new("server.port", i64::from(port)));
    }
    if let Some(client) = record.client_address {
        attributes.push(KeyValue::new("client.address", client.to_string()));
    }
    if let Some(agent) = &record.user_agent {
        attributes.push(KeyValue::new("user_agent.original", text(agent)));
    }
    attributes.push(KeyValue::new(
        "network.protocol.version",
        match record.version {
            Version::HTTP_09 => "0.9",
            Version::HTTP_10 => "1.0",
            Version::HTTP_2 => "2",
            Version::HTTP_3 => "3",
            _ => "1.1",
        },
    ));
    if let Some(id) = &record.request_id {
        attributes.push(KeyValue::new("request_id", id.as_str().to_owned()));
    }
    let status = match record.status {
        Some(status) => {
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
            if status.is_server_error() {
                let error_type = record
                    .error_type
                    .unwrap_or_else(|| status.as_u16().to_string());
                attributes.push(KeyValue::new("error.type", error_type));
                Status::error(status.canonical_reason().unwrap_or("server error"))
            } else {
                Status::Unset
            }
        }
        None => {
            attributes.push(KeyValue::new("error.type", "aborted"));
            Status::error("the client went away before the response")
        }
    };
    Finished {
        parent_is_remote: record.context.parent_span_id.is_some(),
        kind: SpanKind::Server,
        name: Cow::Owned(name),
        start: record.start,
        end: record.end,
        attributes,
        status,
        context: record.context,
    }
    .into_span_data()
}

fn internal(record: InternalRecord) -> SpanData {
    let (attributes, status) = if record.aborted {
        (
            vec![KeyValue::new("error.type", "aborted")],
            Status::error("dropped before it finished"),
        )
    } else {
        (Vec::new(), Status::Unset)
    };
    Finished {
        parent_is_remote: false,
        kind: SpanKind::Internal,
        name: Cow::Borrowed(record.name),
        start: record.start,
        end: record.end,
        attributes,
        status,
        context: record.context,
    }
    .into_span_data()
}

fn client(record: ClientRecord) -> SpanData {
    let mut attributes = Vec::with_capacity(8);
    attributes.push(KeyValue::new(
        "http.request.method",
        record.method.as_str().to_owned(),
    ));
    if let Some(host) = record.uri.host() {
        attributes.push(KeyValue::new("server.address", host.to_owned()));
    }
    let port = record.uri.port_u16().or(match record.uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    });
    if let Some(port) = port {
        attributes.push(KeyValue::new("server.port", i64::from(port)));
    }
    // Without the query, which can hold tokens.
    let mut full = String::new();
    if let (Some(scheme), Some(authority)) = (record.uri.scheme_str(), record.uri.authority()) {
        full.push_str(scheme);
        full.push_str("://");
        full.push_str(authority.as_str());
    }
    full.push_str(record.uri.path());
    attributes.push(KeyValue::new("url.full", full));
    let status = match (record.status, record.error) {
        (Some(status), _) => {
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
            if status.as_u16() >= 400 {
                attributes.push(KeyValue::new("error.type", status.as_u16().to_string()));
                Status::error(status.canonical_reason().unwrap_or("error"))
            } else {
                Status::Unset
            }
        }
        (None, error) => {
            let error = error.unwrap_or("aborted");
            attributes.push(KeyValue::new("error.type", error));
            Status::error(error)
        }
    };
    Finished {
        parent_is_remote: false,
        kind: SpanKind::Client,
        name: Cow::Owned(record.method.to_string()),
        start: record.start,
        end: record.end,
        attributes,
        status,
        context: record.context,
    }
    .into_span_data()
}
