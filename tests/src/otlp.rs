//! A real OTLP receiver for the tests: one loopback port that speaks OTLP
//! over gRPC (the official `TraceService` and `LogsService`, from
//! `opentelemetry-proto`) and over HTTP/protobuf (`POST /v1/traces`,
//! `POST /v1/logs`), and keeps every span and log record it gets.
//! It can also hang: accept and never answer, as a stuck collector does.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use axum::{
    Router, body::Bytes, extract::State, http::StatusCode, routing::post, serve::ListenerExt as _,
};
use opentelemetry_proto::tonic::{
    collector::logs::v1::{
        ExportLogsServiceRequest, ExportLogsServiceResponse,
        logs_service_server::{LogsService, LogsServiceServer},
    },
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
};
use prost::Message;
use tokio::{net::TcpListener, task::JoinHandle};

/// One span as the receiver got it, ids as lowercase hex.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// The span's name.
    pub name: String,
    /// 1 internal, 2 server, 3 client (OTLP's numbering).
    pub kind: i32,
    /// Attributes, values as text.
    pub attributes: BTreeMap<String, String>,
    /// 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    /// Start and end, nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// See `start_unix_nano`.
    pub end_unix_nano: u64,
    /// The resource's attributes.
    pub resource: BTreeMap<String, String>,
    /// `grpc` or `http`.
    pub transport: &'static str,
}

impl ReceivedSpan {
    /// An attribute's value as text; panics when absent.
    pub fn attribute(&self, key: &str) -> &str {
        self.attributes
            .get(key)
            .unwrap_or_else(|| panic!("no attribute {key} in {:?}", self.attributes))
    }
}

/// One log record as the receiver got it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedLog {
    /// 32 hex digits, empty when the record has no trace.
    pub trace_id: String,
    /// 16 hex digits, empty when the record has no span.
    pub span_id: String,
    /// OpenTelemetry's severity number (9 info, 13 warn, 17 error).
    pub severity_number: i32,
    /// `INFO`, `WARN`, ...
    pub severity_text: String,
    /// The message.
    pub body: String,
    /// Attributes, values as text.
    pub attributes: BTreeMap<String, String>,
    /// The resource's attributes.
    pub resource: BTreeMap<String, String>,
    /// `grpc` or `http`.
    pub transport: &'static str,
}

#[derive(Clone, Default)]
struct Store {
    logs: Arc<Mutex<Vec<ReceivedLog>>>,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    hang: Arc<AtomicBool>,
    /// Count only, keep nothing: for benchmarks.
    count_only: Arc<AtomicBool>,
    /// The `x-api-key` header (gRPC metadata) of the last export.
    api_key: Arc<Mutex<Option<String>>>,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl Store {
    fn keep(&self, request: ExportTraceServiceRequest, transport: &'static str) {
        if self.count_only.load(Relaxed) {
            let spans: usize = request
                .resource_spans
                .iter()
                .flat_map(|resource| &resource.scope_spans)
                .map(|scope| scope.spans.len())
                .sum();
            self.count.fetch_add(spans as u64, Relaxed);
            return;
        }
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        for resource_spans in request.resource_spans {
            let resource = resource_spans
                .resource
                .map(|resource| attributes(&resource.attributes))
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    spans.push(ReceivedSpan {
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        name: span.name,
                        kind: span.kind,
                        attributes: attributes(&span.attributes),
                        status_code: span.status.map_or(0, |status| status.code),
                        start_unix_nano: span.start_time_unix_nano,
                        end_unix_nano: span.end_time_unix_nano,
                        resource: resource.clone(),
                        transport,
                    });
                }
            }
        }
    }

    fn keep_logs(&self, request: ExportLogsServiceRequest, transport: &'static str) {
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        for resource_logs in request.resource_logs {
            let resource = resource_logs
                .resource
                .map(|resource| attributes(&resource.attributes))
                .unwrap_or_default();
            for scope_logs in resource_logs.scope_logs {
                for record in scope_logs.log_records {
                    logs.push(ReceivedLog {
                        trace_id: hex(&record.trace_id),
                        span_id: hex(&record.span_id),
                        severity_number: record.severity_number,
                        severity_text: record.severity_text,
                        body: text(record.body.as_ref()),
                        attributes: attributes(&record.attributes),
                        resource: resource.clone(),
                        transport,
                    });
                }
            }
        }
    }

    fn saw_api_key(&self, value: Option<&str>) {
        *self.api_key.lock().unwrap_or_else(PoisonError::into_inner) = value.map(str::to_owned);
    }

    async fn maybe_hang(&self) {
        if self.hang.load(Relaxed) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(Value::StringValue(text)) => text.clone(),
        Some(Value::IntValue(number)) => number.to_string(),
        Some(Value::BoolValue(flag)) => flag.to_string(),
        Some(Value::DoubleValue(number)) => number.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|pair| (pair.key.clone(), text(pair.value.as_ref())))
        .collect()
}

#[tonic::async_trait]
impl TraceService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.maybe_hang().await;
        self.saw_api_key(
            request
                .metadata()
                .get("x-api-key")
                .and_then(|value| value.to_str().ok()),
        );
        self.keep(request.into_inner(), "grpc");
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.maybe_hang().await;
        self.keep_logs(request.into_inner(), "grpc");
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

async fn http_logs(State(store): State<Store>, body: Bytes) -> (StatusCode, Vec<u8>) {
    store.maybe_hang().await;
    match ExportLogsServiceRequest::decode(body) {
        Ok(request) => {
            store.keep_logs(request, "http");
            let response = ExportLogsServiceResponse {
                partial_success: None,
            };
            (StatusCode::OK, response.encode_to_vec())
        }
        Err(_) => (StatusCode::BAD_REQUEST, Vec::new()),
    }
}

async fn http_export(
    State(store): State<Store>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    store.maybe_hang().await;
    store.saw_api_key(
        headers
            .get("x-api-key")
            .and_then(|value| value.to_str().ok()),
    );
    // Counting needs only the framing; keeping needs every span decoded.
    let taken = if store.count_only.load(Relaxed) {
        SpanCount::decode(body).map(|request| {
            store.count.fetch_add(request.spans(), Relaxed);
        })
    } else {
        ExportTraceServiceRequest::decode(body).map(|request| store.keep(request, "http"))
    };
    match taken {
        Ok(()) => {
            let response = ExportTraceServiceResponse {
                partial_success: None,
            };
            (StatusCode::OK, response.encode_to_vec())
        }
        Err(_) => (StatusCode::BAD_REQUEST, Vec::new()),
    }
}

/// Just enough of an `ExportTraceServiceRequest` to count its spans, as
/// the benchmark sink does: each span stays the undecoded bytes of its
/// message and every other field is skipped. Decoding every span in full
/// took a third of the load generator's core under `bench.sh --compare`,
/// which starved wrk and so understated the server's throughput.
#[derive(Clone, PartialEq, prost::Message)]
struct SpanCount {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpanCount>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ResourceSpanCount {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<ScopeSpanCount>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ScopeSpanCount {
    #[prost(bytes = "bytes", repeated, tag = "2")]
    spans: Vec<Bytes>,
}

impl SpanCount {
    fn spans(&self) -> u64 {
        self.resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len() as u64)
            .sum()
    }
}

/// The receiver, on a loopback port; stops when dropped.
pub struct OtlpReceiver {
    /// Where it listens.
    pub addr: SocketAddr,
    store: Store,
    task: JoinHandle<()>,
}

impl OtlpReceiver {
    /// Starts it on a free port.
    pub async fn start() -> Self {
        let store = Store::default();
        let grpc = tonic::service::Routes::new(TraceServiceServer::new(store.clone()))
            .add_service(LogsServiceServer::new(store.clone()))
            .into_axum_router();
        let http = Router::new()
            .route("/v1/traces", post(http_export))
            .route("/v1/logs", post(http_logs))
            .with_state(store.clone());
        let app = grpc.merge(http);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("an address");
        // As a real collector does (Go sets it on every connection), so that
        // no answer waits on Nagle's algorithm.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, store, task }
    }

    /// `http://127.0.0.1:port`, for `grpc`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL for `http/protobuf` (the exporter adds `/v1/traces`).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `x-api-key` header or metadata of the last export.
    pub fn api_key(&self) -> Option<String> {
        self.store
            .api_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// From now on, count spans and keep none (for benchmarks).
    pub fn count_only(&self) {
        self.store.count_only.store(true, Relaxed);
    }

    /// Spans counted in [`count_only`](Self::count_only) mode.
    pub fn counted(&self) -> u64 {
        self.store.count.load(Relaxed)
    }

    /// From now on, accept exports and never answer them.
    pub fn hang(&self) {
        self.store.hang.store(true, Relaxed);
    }

    /// Every span so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.store
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every log record so far.
    pub fn logs(&self) -> Vec<ReceivedLog> {
        self.store
            .logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until a log record satisfies `found`, for at most `limit`.
    pub async fn wait_for_log(
        &self,
        limit: Duration,
        found: impl Fn(&ReceivedLog) -> bool,
    ) -> Option<ReceivedLog> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(record) = self.logs().into_iter().find(|record| found(record)) {
                return Some(record);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until at least `count` spans arrived, for at most `limit`.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + limit;
        loop {
            let spans = self.spans();
            if spans.len() >= count || Instant::now() >= deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback address where nothing listens: a collector that is down.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    listener.local_addr().expect("an address")
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::{
        common::v1::InstrumentationScope,
        resource::v1::Resource,
        trace::v1::{ResourceSpans, ScopeSpans, Span},
    };

    use super::*;

    fn span(name: &str) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: name.to_owned(),
            attributes: vec![KeyValue {
                key: "http.route".to_owned(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue("/users/{id}".to_owned())),
                }),
                ..KeyValue::default()
            }],
            ..Span::default()
        }
    }

    #[tokio::test]
    async fn a_counting_receiver_counts_every_span_of_every_resource_and_scope_over_http() {
        let scope = |names: &[&str]| ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "observe".to_owned(),
                ..InstrumentationScope::default()
            }),
            spans: names.iter().map(|name| span(name)).collect(),
            schema_url: String::new(),
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource::default()),
                    scope_spans: vec![scope(&["a", "b", "c"]), scope(&["d"])],
                    schema_url: String::new(),
                },
                ResourceSpans {
                    resource: None,
                    scope_spans: vec![scope(&["e", "f"])],
                    schema_url: String::new(),
                },
            ],
        };
        let body = request.encode_to_vec();
        let receiver = OtlpReceiver::start().await;
        receiver.count_only();
        let url = format!("{}/v1/traces", receiver.http_endpoint());
        let client = reqwest::Client::new();
        let post = |body: Vec<u8>| client.post(&url).body(body).send();
        assert_eq!(post(body.clone()).await.unwrap().status(), 200);
        assert_eq!(receiver.counted(), 6);
        let truncated = body[..body.len() - 3].to_vec();
        assert_eq!(post(truncated).await.unwrap().status(), 400);
        assert_eq!(receiver.counted(), 6);
        assert!(receiver.spans().is_empty());
    }
}
