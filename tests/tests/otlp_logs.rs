//! Log lines over OTLP (`OBSERVE_LOG_OTLP=true`), against the real OTLP
//! receiver (`tests/src/otlp.rs`, the official `LogsService` and
//! `POST /v1/logs`): the request line of a traced request arrives with the
//! trace id of the caller and the span id of the exported server span, its
//! severity and its fields; a collector that is down costs records, counted.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::{Router, extract::Path, routing::get};
use observe::Observability;
use observe_tests::{
    TestServer, http_get,
    logs::{LogBuffer, runtime_with},
    otlp::{OtlpReceiver, closed_port},
    prometheus,
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn observability(buffer: &LogBuffer, vars: &[(&str, &str)]) -> Observability {
    Observability::builder("otlp-logs-test")
        .environment("test")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .log_writer(buffer.clone())
        .env_vars(vars.iter().copied())
        .init()
        .unwrap()
}

fn app() -> Router {
    Router::new().route(
        "/users/{id}",
        get(|Path(id): Path<u32>| async move {
            tracing::warn!(user = id, "looked up a user");
            format!("user {id}")
        }),
    )
}

fn the_request_line_arrives_with_its_ids(protocol: &str) {
    let buffer = LogBuffer::default();
    let receiver_runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = receiver_runtime.block_on(OtlpReceiver::start());
    let endpoint = receiver.grpc_endpoint();
    let obs = observability(
        &buffer,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OBSERVE_LOG_OTLP", "true"),
        ],
    );
    assert!(obs.tracing().exports_logs());
    let runtime = runtime_with(obs.dispatch());
    let request_id = runtime.block_on(async {
        let server = TestServer::start(&obs, app()).await;
        let reply = http_get(
            &server.url("/users/7?token=s3cr3t"),
            &[("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-01"))],
        )
        .await;
        assert_eq!(reply.status, 200);
        server.stop(Duration::from_secs(10)).await.unwrap();
        reply.header("x-request-id").to_owned()
    });
    obs.tracing()
        .handle()
        .unwrap()
        .flush(Duration::from_secs(10))
        .unwrap();
    let (line, event) = receiver_runtime.block_on(async {
        let line = receiver
            .wait_for_log(Duration::from_secs(10), |record| {
                record.body == "request finished"
            })
            .await
            .unwrap_or_else(|| panic!("no request line in {:#?}", receiver.logs()));
        let event = receiver
            .wait_for_log(Duration::from_secs(10), |record| {
                record.body == "looked up a user"
            })
            .await
            .unwrap();
        (line, event)
    });
    let spans = receiver.spans();
    let server = spans.iter().find(|span| span.kind == 2).unwrap();

    // The caller's trace, the server span's id: as the exported span.
    assert_eq!(line.trace_id, TRACE_ID);
    assert_eq!(line.span_id, server.span_id);
    assert_eq!(
        line.transport,
        if protocol == "grpc" { "grpc" } else { "http" }
    );
    assert_eq!(
        (line.severity_number, line.severity_text.as_str()),
        (9, "INFO")
    );
    assert_eq!(line.attributes["method"], "GET");
    assert_eq!(line.attributes["endpoint"], "/users/{id}");
    assert_eq!(line.attributes["status_code"], "200");
    assert_eq!(line.attributes["path"], "/users/7?token=[REDACTED]");
    assert_eq!(line.attributes["log.logger"], "observe_log::request");
    assert_eq!(line.resource["service.name"], "otlp-logs-test");
    // An event in the handler: its level and fields, the same ids.
    assert_eq!(
        (event.severity_number, event.severity_text.as_str()),
        (13, "WARN")
    );
    assert_eq!(event.attributes["user"], "7");
    assert_eq!(
        (event.trace_id.as_str(), event.span_id.as_str()),
        (TRACE_ID, server.span_id.as_str())
    );
    // The JSON line says the same.
    let lines = buffer.request_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["trace_id"], TRACE_ID);
    assert_eq!(lines[0]["span_id"], server.span_id.as_str());
    assert_eq!(lines[0]["request_id"], request_id.as_str());
    // The secret is in no record.
    assert!(
        receiver
            .logs()
            .iter()
            .all(|record| !format!("{record:?}").contains("s3cr3t"))
    );
    drop(receiver);
}

#[test]
fn the_request_line_arrives_over_grpc() {
    the_request_line_arrives_with_its_ids("grpc");
}

#[test]
fn the_request_line_arrives_over_http_protobuf() {
    the_request_line_arrives_with_its_ids("http/protobuf");
}

#[test]
fn log_export_needs_the_traces_collector() {
    let error = Observability::builder("svc")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .env_vars([("OBSERVE_LOG_OTLP", "true")])
        .init()
        .unwrap_err();
    assert_eq!(error.variable(), "OBSERVE_LOG_OTLP");
    assert!(
        error.to_string().contains("OTEL_EXPORTER_OTLP_ENDPOINT"),
        "{error}"
    );
}

#[test]
fn records_a_collector_does_not_take_are_dropped_and_counted() {
    let buffer = LogBuffer::default();
    let endpoint = format!("http://{}", closed_port());
    let obs = observability(
        &buffer,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
            ("OBSERVE_LOG_OTLP", "true"),
        ],
    );
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let server = TestServer::start(&obs, app()).await;
        for id in 0..5 {
            let reply = http_get(&server.url(&format!("/users/{id}")), &[]).await;
            assert_eq!(reply.status, 200);
        }
        server.stop(Duration::from_secs(10)).await.unwrap();
    });
    let handle = obs.tracing().handle().unwrap();
    handle.flush(Duration::from_secs(10)).unwrap();
    // Five request lines and five handler events at least, none exported.
    assert!(
        handle.dropped_log_records() >= 10,
        "{}",
        handle.dropped_log_records()
    );
    assert_eq!(handle.exported_log_records(), 0);
    let samples = prometheus::samples(&obs.metrics().render());
    assert_eq!(
        prometheus::value(
            &samples,
            "otel_logs_dropped_total",
            &[("service", "otlp-logs-test")]
        ),
        handle.dropped_log_records() as f64
    );
}
