//! Traces end to end, against a real OTLP receiver (gRPC and HTTP/protobuf,
//! built on the official protocol types): the server span of a request with
//! a `traceparent`, two services joined by the client layer, error status,
//! sampling, a collector that is down or hangs, database spans, and the
//! trace ids of the request log.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::get,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use observe::{AppError, Observability};
use observe_tests::{
    TestServer, http_get,
    logs::{LogBuffer, runtime_with},
    otlp::{OtlpReceiver, ReceivedSpan, closed_port},
    prometheus,
};
use tower::{Service, ServiceBuilder, ServiceExt};
use tracing::Instrument;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn observability(service: &str, buffer: &LogBuffer, vars: &[(&str, &str)]) -> Observability {
    Observability::builder(service)
        .environment("test")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .log_writer(buffer.clone())
        .env_vars(vars.iter().map(|(key, value)| (*key, *value)))
        .init()
        .unwrap()
}

async fn user(Path(id): Path<u32>) -> String {
    format!("user {id}")
}

async fn failing() -> Result<(), AppError> {
    Err(AppError::internal(std::io::Error::other("disk on fire")))
}

async fn missing() -> StatusCode {
    StatusCode::NOT_FOUND
}

/// Echoes the propagation headers it got.
async fn echo(headers: HeaderMap) -> String {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    format!("{}|{}", get("traceparent"), get("x-request-id"))
}

fn app() -> Router {
    Router::new()
        .route("/users/{id}", get(user))
        .route("/failing", get(failing))
        .route("/missing", get(missing))
        .route("/echo", get(echo))
}

fn flush(obs: &Observability) {
    obs.tracing()
        .handle()
        .expect("exporting")
        .flush(Duration::from_secs(10))
        .unwrap();
}

fn by_kind(spans: &[ReceivedSpan], kind: i32) -> Vec<&ReceivedSpan> {
    spans.iter().filter(|span| span.kind == kind).collect()
}

const SERVER: i32 = 2;
const CLIENT: i32 = 3;

fn traceparent_gives_server_span(protocol: &str) {
    let buffer = LogBuffer::default();
    let receiver_runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = receiver_runtime.block_on(OtlpReceiver::start());
    let endpoint = receiver.grpc_endpoint();
    let obs = observability(
        "trace-test",
        &buffer,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "team=parsers,service.name=ignored",
            ),
        ],
    );
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let server = TestServer::start(&obs, app()).await;
        let reply = http_get(
            &server.url("/users/7?token=s3cr3t"),
            &[
                ("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-01")),
                ("user-agent", "trace-test/1"),
            ],
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        flush(&obs);
        let spans = receiver.spans();
        assert_eq!(spans.len(), 1, "{spans:#?}");
        let span = &spans[0];
        assert_eq!(
            span.transport,
            if protocol == "grpc" { "grpc" } else { "http" }
        );
        assert_eq!(span.trace_id, TRACE_ID);
        assert_eq!(span.parent_span_id, PARENT_ID);
        assert_eq!(span.span_id.len(), 16);
        assert_eq!(span.name, "GET /users/{id}");
        assert_eq!(span.kind, SERVER);
        assert_eq!(span.status_code, 0);
        let port = server.addr.port().to_string();
        for (key, value) in [
            ("http.request.method", "GET"),
            ("http.route", "/users/{id}"),
            ("url.path", "/users/7"),
            ("url.scheme", "http"),
            ("http.response.status_code", "200"),
            ("server.address", "127.0.0.1"),
            ("server.port", port.as_str()),
            ("client.address", "127.0.0.1"),
            ("user_agent.original", "trace-test/1"),
            ("network.protocol.version", "1.1"),
            ("request_id", reply.header("x-request-id")),
        ] {
            assert_eq!(span.attribute(key), value, "{key}");
        }
        assert!(!format!("{span:?}").contains("s3cr3t"));
        assert_eq!(span.resource["service.name"], "trace-test");
        assert_eq!(span.resource["deployment.environment.name"], "test");
        assert_eq!(span.resource["team"], "parsers");
        assert_eq!(span.resource["process.pid"], std::process::id().to_string());
        assert!(!span.resource["host.name"].is_empty());
        server.stop(Duration::from_secs(10)).await.unwrap();

        // The request log line has the same ids as the exported span.
        let lines = buffer.request_lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["trace_id"], span.trace_id.as_str());
        assert_eq!(lines[0]["span_id"], span.span_id.as_str());
        assert_eq!(lines[0]["request_id"], reply.header("x-request-id"));
    });
    drop(receiver);
}

#[test]
fn a_traceparent_gives_a_server_span_over_grpc() {
    traceparent_gives_server_span("grpc");
}

#[test]
fn a_traceparent_gives_a_server_span_over_http_protobuf() {
    traceparent_gives_server_span("http/protobuf");
}

type HttpClient = tower::util::BoxCloneSyncService<
    http::Request<Full<Bytes>>,
    http::Response<hyper::body::Incoming>,
    hyper_util::client::legacy::Error,
>;

#[derive(Clone)]
struct Downstream {
    client: HttpClient,
    url: String,
}

/// Calls the downstream service through the client layer and returns what
/// it echoed.
async fn call_downstream(State(downstream): State<Downstream>) -> String {
    let request = http::Request::get(&downstream.url)
        .body(Full::default())
        .unwrap();
    let response = downstream.client.clone().oneshot(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[test]
fn two_services_joined_by_the_client_layer_share_one_trace() {
    let buffer = LogBuffer::default();
    let receiver_runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = receiver_runtime.block_on(OtlpReceiver::start());
    let endpoint = receiver.grpc_endpoint();
    let vars = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];
    let front = observability("front", &buffer, &vars);
    let back = observability("back", &LogBuffer::default(), &vars);
    let runtime = runtime_with(front.dispatch());
    runtime.block_on(async {
        let back_server = TestServer::start(&back, app()).await;
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let client: HttpClient = HttpClient::new(
            ServiceBuilder::new()
                .layer(front.client_layer())
                .service(client),
        );
        let front_app = Router::new()
            .route("/call", get(call_downstream))
            .with_state(Downstream {
                client,
                url: back_server.url("/echo"),
            });
        let front_server = TestServer::start(&front, front_app).await;
        let reply = http_get(&front_server.url("/call"), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        let echoed = String::from_utf8(reply.body.to_vec()).unwrap();
        let (traceparent, request_id) = echoed.split_once('|').unwrap();
        // The downstream saw the caller's request id.
        assert_eq!(request_id, reply.header("x-request-id"));
        flush(&front);
        flush(&back);
        let spans = receiver.spans();
        assert_eq!(spans.len(), 3, "{spans:#?}");
        let front_span = spans
            .iter()
            .find(|span| span.kind == SERVER && span.resource["service.name"] == "front")
            .unwrap();
        let client_span = by_kind(&spans, CLIENT)[0];
        let back_span = spans
            .iter()
            .find(|span| span.kind == SERVER && span.resource["service.name"] == "back")
            .unwrap();
        assert_eq!(
            front_span.parent_span_id, "",
            "the first service starts the trace"
        );
        assert_eq!(client_span.trace_id, front_span.trace_id);
        assert_eq!(back_span.trace_id, front_span.trace_id);
        assert_eq!(client_span.parent_span_id, front_span.span_id);
        assert_eq!(back_span.parent_span_id, client_span.span_id);
        assert_eq!(
            traceparent,
            format!("00-{}-{}-01", client_span.trace_id, client_span.span_id)
        );
        assert_eq!(client_span.name, "GET");
        assert_eq!(client_span.attribute("http.response.status_code"), "200");
        assert_eq!(client_span.attribute("server.address"), "127.0.0.1");
        assert_eq!(client_span.attribute("url.full"), back_server.url("/echo"));
        assert_eq!(back_span.name, "GET /echo");
        front_server.stop(Duration::from_secs(10)).await.unwrap();
        back_server.stop(Duration::from_secs(10)).await.unwrap();
    });
    drop(receiver);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_mark_the_span_and_client_errors_do_not() {
    let receiver = OtlpReceiver::start().await;
    let endpoint = receiver.grpc_endpoint();
    let obs = observability(
        "errors",
        &LogBuffer::default(),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
    );
    let server = TestServer::start(&obs, app()).await;
    assert_eq!(
        http_get(&server.url("/failing"), &[]).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        http_get(&server.url("/missing"), &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http_get(&server.url("/no/route"), &[]).await.status,
        StatusCode::NOT_FOUND
    );
    flush(&obs);
    let spans = receiver.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let failing = spans
        .iter()
        .find(|span| span.name == "GET /failing")
        .unwrap();
    assert_eq!(failing.status_code, 2);
    assert_eq!(failing.attribute("error.type"), "internal_error");
    assert_eq!(failing.attribute("http.response.status_code"), "500");
    let missing = spans
        .iter()
        .find(|span| span.name == "GET /missing")
        .unwrap();
    assert_eq!(missing.status_code, 0);
    assert!(!missing.attributes.contains_key("error.type"));
    // No route matched: the name is the method alone.
    let unmatched = spans.iter().find(|span| span.name == "GET").unwrap();
    assert!(!unmatched.attributes.contains_key("http.route"));
    assert_eq!(unmatched.status_code, 0);
    server.stop(Duration::from_secs(10)).await.unwrap();
}

#[test]
fn obs_router_exports_no_span_for_its_built_in_routes() {
    let buffer = LogBuffer::default();
    let receiver_runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = receiver_runtime.block_on(OtlpReceiver::start());
    let endpoint = receiver.grpc_endpoint();
    let obs = observability(
        "built-ins",
        &buffer,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
    );
    runtime_with(obs.dispatch()).block_on(async {
        let server = TestServer::serve(&obs, obs.router(app())).await;
        for path in [
            "/metrics",
            "/health/live",
            "/status/red",
            "/users/7",
            "/alerts",
        ] {
            let reply = http_get(&server.url(path), &[]).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
        }
        server.stop(Duration::from_secs(10)).await.unwrap();
    });
    flush(&obs);
    let spans = receiver.spans();
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].name, "GET /users/{id}");
}

#[test]
fn a_zero_ratio_exports_nothing_but_ids_still_propagate() {
    let buffer = LogBuffer::default();
    let receiver_runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = receiver_runtime.block_on(OtlpReceiver::start());
    let endpoint = receiver.grpc_endpoint();
    let obs = observability(
        "unsampled",
        &buffer,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ],
    );
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let back_server = TestServer::start(&obs, app()).await;
        let client: HttpClient = HttpClient::new(
            ServiceBuilder::new()
                .layer(obs.client_layer())
                .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>()),
        );
        let front = Router::new()
            .route("/call", get(call_downstream))
            .with_state(Downstream {
                client,
                url: back_server.url("/echo"),
            });
        let front_server = TestServer::start(&obs, front).await;
        // Even a sampled caller is not recorded: traceidratio ignores parents.
        let reply = http_get(
            &front_server.url("/call"),
            &[("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-01"))],
        )
        .await;
        let echoed = String::from_utf8(reply.body.to_vec()).unwrap();
        let (traceparent, _) = echoed.split_once('|').unwrap();
        assert!(
            traceparent.starts_with(&format!("00-{TRACE_ID}-")) && traceparent.ends_with("-00"),
            "{traceparent}"
        );
        flush(&obs);
        assert_eq!(receiver.spans(), []);
        front_server.stop(Duration::from_secs(10)).await.unwrap();
        back_server.stop(Duration::from_secs(10)).await.unwrap();
    });
    let lines = buffer.request_lines();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|line| line["trace_id"] == TRACE_ID));
    assert_eq!(obs.tracing().handle().unwrap().exported_spans(), 0);
}

/// The median of `count` requests' latencies, in microseconds.
async fn median_latency(url: &str, count: usize) -> u128 {
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let reply = http_get(url, &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        latencies.push(started.elapsed().as_micros());
    }
    latencies.sort_unstable();
    latencies[count / 2]
}

#[test]
fn a_collector_that_is_down_or_hangs_costs_requests_nothing() {
    const REQUESTS: usize = 1000;
    let buffer = LogBuffer::default();
    let receiver_runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = receiver_runtime.block_on(OtlpReceiver::start());
    receiver.hang();
    let hanging_endpoint = receiver.grpc_endpoint();
    let down_endpoint = format!("http://{}", closed_port());
    let hanging = observability(
        "hanging",
        &buffer,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", hanging_endpoint.as_str()),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "64"),
        ],
    );
    let down = observability(
        "down",
        &buffer,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", down_endpoint.as_str())],
    );
    let none = observability("none", &LogBuffer::default(), &[]);
    let runtime = runtime_with(hanging.dispatch());
    runtime.block_on(async {
        let servers = [
            TestServer::start(&none, app()).await,
            TestServer::start(&hanging, app()).await,
            TestServer::start(&down, app()).await,
        ];
        // Side by side, in turns, so all three see the same machine.
        let mut medians = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..5 {
            for (index, server) in servers.iter().enumerate() {
                medians[index].push(median_latency(&server.url("/users/1"), REQUESTS / 5).await);
            }
        }
        let median = |values: &mut Vec<u128>| {
            values.sort_unstable();
            values[values.len() / 2]
        };
        let [mut baseline, mut stuck, mut refused] = medians;
        let (baseline, stuck, refused) = (
            median(&mut baseline),
            median(&mut stuck),
            median(&mut refused),
        );
        // Within noise: a blocked export would cost a timeout, seconds.
        assert!(
            stuck <= baseline * 3 + 1000,
            "hanging {stuck} us vs {baseline} us"
        );
        assert!(
            refused <= baseline * 3 + 1000,
            "down {refused} us vs {baseline} us"
        );

        // Shutdown returns at its bound although the collector hangs (and
        // the export's own timeout, 10 s by default, is longer).
        let started = Instant::now();
        let outcome = hanging.tracing().shutdown(Duration::from_secs(2));
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(4), "{waited:?}");
        assert!(outcome.is_err());
        for server in servers {
            server.stop(Duration::from_secs(15)).await.unwrap();
        }
    });
    // Every span of the down collector is counted as dropped, once exports
    // have failed; the queue of the hanging one overflowed.
    let handle = down.tracing().handle().unwrap();
    let _ = handle.flush(Duration::from_secs(10));
    assert_eq!(handle.exported_spans(), 0);
    assert_eq!(handle.dropped_spans(), REQUESTS as u64);
    let samples = prometheus::samples(&down.metrics().render());
    assert_eq!(
        prometheus::value(&samples, "otel_spans_dropped_total", &[("service", "down")]),
        REQUESTS as f64
    );
    let stuck = hanging.tracing().handle().unwrap();
    assert!(
        stuck.dropped_spans() >= (REQUESTS - 64 - 512) as u64,
        "{}",
        stuck.dropped_spans()
    );
    // One warning per collector, not one per request.
    let warnings = buffer
        .lines()
        .iter()
        .filter(|line| {
            line["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("span export failed"))
        })
        .count();
    assert!((1..=2).contains(&warnings), "{warnings}");
    drop(receiver);
}

#[test]
fn database_and_cache_work_are_child_spans_without_parameters() {
    let receiver_runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = receiver_runtime.block_on(OtlpReceiver::start());
    let endpoint = receiver.grpc_endpoint();
    let obs = observability(
        "db",
        &LogBuffer::default(),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
    );
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect("postgres://postgres@127.0.0.1:5432/test")
            .await
            .unwrap();
        let redis = redis::Client::open("redis://127.0.0.1:6379/").unwrap();
        let redis = redis.get_multiplexed_async_connection().await.unwrap();
        const QUERY: &str = "SELECT $1::int + 1";
        let app = Router::new().route(
            "/work/{n}",
            get(move |Path(n): Path<i32>| {
                let pool = pool.clone();
                let mut redis = redis.clone();
                async move {
                    let sum: i32 = sqlx::query_scalar(QUERY)
                        .bind(n)
                        .fetch_one(&pool)
                        .instrument(observe::trace::db::query("postgresql", QUERY))
                        .await
                        .unwrap();
                    let _: () = redis::cmd("SET")
                        .arg("observe:trace:test")
                        .arg(sum)
                        .query_async(&mut redis)
                        .instrument(observe::trace::db::redis("SET"))
                        .await
                        .unwrap();
                    sum.to_string()
                }
            }),
        );
        let server = TestServer::start(&obs, app).await;
        let reply = http_get(&server.url("/work/98765"), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(&reply.body[..], b"98766");
        flush(&obs);
        server.stop(Duration::from_secs(10)).await.unwrap();
    });
    let spans = receiver.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let server_span = by_kind(&spans, SERVER)[0];
    let query = spans
        .iter()
        .find(|span| {
            span.attributes.get("db.system.name").map(String::as_str) == Some("postgresql")
        })
        .unwrap();
    assert_eq!(query.name, "SELECT");
    assert_eq!(query.kind, CLIENT);
    assert_eq!(query.trace_id, server_span.trace_id);
    assert_eq!(query.parent_span_id, server_span.span_id);
    assert_eq!(query.attribute("db.operation.name"), "SELECT");
    assert_eq!(query.attribute("db.query.text"), "SELECT $1::int + 1");
    let cache = spans
        .iter()
        .find(|span| span.attributes.get("db.system.name").map(String::as_str) == Some("redis"))
        .unwrap();
    assert_eq!(cache.name, "SET");
    assert_eq!(cache.parent_span_id, server_span.span_id);
    assert_eq!(cache.attribute("db.query.text"), "SET");
    // The bound value and the key never reach a span.
    for span in [query, cache] {
        let attributes = format!("{:?}", span.attributes);
        assert!(!attributes.contains("98765") && !attributes.contains("98766"));
        assert!(!attributes.contains("observe:trace:test"));
    }
    drop(receiver);
}

// A service-level check that the layer stack compiles with a plain client.
#[allow(dead_code)]
fn client_layer_wraps_any_tower_client<S>(client: S, obs: &Observability)
where
    S: Service<http::Request<Full<Bytes>>> + Clone,
{
    let _ = ServiceBuilder::new()
        .layer(obs.client_layer())
        .service(client);
}

#[test]
fn reqwest_calls_are_client_spans_too() {
    let receiver_runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = receiver_runtime.block_on(OtlpReceiver::start());
    let endpoint = receiver.grpc_endpoint();
    let obs = observability(
        "reqwest",
        &LogBuffer::default(),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
    );
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let back = TestServer::start(&obs, app()).await;
        let url = back.url("/echo");
        let layer = obs.client_layer();
        let front_app = Router::new().route(
            "/call",
            get(move || {
                let layer = layer.clone();
                let url = url.clone();
                async move {
                    let client = reqwest::Client::new();
                    let request = client.get(&url).build().unwrap();
                    let response = layer.send_reqwest(&client, request).await.unwrap();
                    response.text().await.unwrap()
                }
            }),
        );
        let front = TestServer::start(&obs, front_app).await;
        let reply = http_get(&front.url("/call"), &[]).await;
        let echoed = String::from_utf8(reply.body.to_vec()).unwrap();
        let (traceparent, request_id) = echoed.split_once('|').unwrap();
        assert_eq!(request_id, reply.header("x-request-id"));
        flush(&obs);
        let spans = receiver.spans();
        assert_eq!(spans.len(), 3, "{spans:#?}");
        let front_span = spans.iter().find(|span| span.name == "GET /call").unwrap();
        let client_span = by_kind(&spans, CLIENT)[0];
        let back_span = spans.iter().find(|span| span.name == "GET /echo").unwrap();
        assert_eq!(client_span.parent_span_id, front_span.span_id);
        assert_eq!(back_span.parent_span_id, client_span.span_id);
        assert_eq!(back_span.trace_id, front_span.trace_id);
        assert_eq!(
            traceparent,
            format!("00-{}-{}-01", client_span.trace_id, client_span.span_id)
        );
        front.stop(Duration::from_secs(10)).await.unwrap();
        back.stop(Duration::from_secs(10)).await.unwrap();
    });
    drop(receiver);
}

#[test]
fn bad_otel_values_fail_at_start_naming_the_variable() {
    for (variable, value) in [
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "jaeger:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
        ("OTEL_SDK_DISABLED", "yes"),
        ("OTEL_RESOURCE_ATTRIBUTES", "team"),
    ] {
        let mut vars = vec![(variable, value)];
        if variable == "OTEL_TRACES_SAMPLER_ARG" {
            vars.push(("OTEL_TRACES_SAMPLER", "traceidratio"));
        }
        if variable.starts_with("OTEL_EXPORTER_OTLP_") && variable != "OTEL_EXPORTER_OTLP_ENDPOINT"
        {
            vars.push(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"));
        }
        let error = Observability::builder("bad")
            .install_subscriber(false)
            .install_metrics_recorder(false)
            .env_vars(vars)
            .init()
            .unwrap_err();
        assert_eq!(error.variable(), variable, "{error}");
    }
}

#[test]
fn otel_service_name_names_the_service_of_spans() {
    let receiver_runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = receiver_runtime.block_on(OtlpReceiver::start());
    let endpoint = receiver.grpc_endpoint();
    let obs = Observability::builder("builder-name")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .service_version("1.2.3")
        .env_vars([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "from-env"),
        ])
        .init()
        .unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let server = TestServer::start(&obs, app()).await;
        assert_eq!(
            http_get(&server.url("/users/1"), &[]).await.status,
            StatusCode::OK
        );
        flush(&obs);
        server.stop(Duration::from_secs(10)).await.unwrap();
    });
    let spans = receiver.spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].resource["service.name"], "from-env");
    assert_eq!(spans[0].resource["service.version"], "1.2.3");
    drop(receiver);
}

/// The builder's endpoint and protocol win over the environment's, which
/// points at a closed port here; the other `OTEL_*` variables still apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builder_sets_the_otlp_endpoint_and_protocol() {
    let receiver = OtlpReceiver::start().await;
    let closed = format!("http://{}", closed_port());
    let obs = Observability::builder("from-builder")
        .environment("test")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .log_writer(LogBuffer::default())
        .env_vars([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", closed.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.zone=test-zone"),
        ])
        .otlp_endpoint(receiver.http_endpoint())
        .otlp_protocol(observe::trace::Protocol::HttpProtobuf)
        .init()
        .unwrap();
    let server = TestServer::start(&obs, app()).await;
    assert_eq!(
        http_get(&server.url("/users/7"), &[]).await.status,
        StatusCode::OK
    );
    flush(&obs);
    let spans = receiver.spans();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(spans[0].name, "GET /users/{id}");
    assert_eq!(spans[0].resource["deployment.zone"], "test-zone");
    server.stop(Duration::from_secs(10)).await.unwrap();
}

/// The exporter is woken when a full batch waits, not only at its interval:
/// the rest of the queue is room for the spans that arrive during the send.
#[test]
fn a_full_batch_is_sent_without_waiting_for_the_interval() {
    use observe::trace::{EXPORT_INTERVAL, MAX_BATCH};

    let buffer = LogBuffer::default();
    let receiver_runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = receiver_runtime.block_on(OtlpReceiver::start());
    receiver.count_only();
    let endpoint = receiver.grpc_endpoint();
    let obs = observability(
        "batches",
        &buffer,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
    );
    let handle = obs.tracing().handle().unwrap();
    let service = app().layer(obs.layer());
    let runtime = runtime_with(obs.dispatch());
    let requests = |count: usize| {
        runtime.block_on(async {
            for _ in 0..count {
                let request = axum::http::Request::get("/users/1")
                    .body(axum::body::Body::empty())
                    .unwrap();
                let response = service.clone().oneshot(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            }
        });
    };
    // After a flush the exporter sleeps for a whole interval.
    requests(1);
    flush(&obs);
    let slept_from = Instant::now();
    assert_eq!(handle.exported_spans(), 1);
    requests(MAX_BATCH - 1);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(handle.exported_spans(), 1, "woken before a batch was full");
    requests(1);
    while handle.exported_spans() < 1 + MAX_BATCH as u64 && slept_from.elapsed() < EXPORT_INTERVAL {
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent_after = slept_from.elapsed();
    assert_eq!(handle.exported_spans(), 1 + MAX_BATCH as u64);
    assert!(
        sent_after < EXPORT_INTERVAL - Duration::from_millis(100),
        "sent {sent_after:?} after the flush: at the interval, not when the batch was full"
    );
    assert_eq!(receiver.counted(), 1 + MAX_BATCH as u64);
    assert_eq!(handle.dropped_spans(), 0);
}
