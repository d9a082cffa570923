//! One request, one duration: the request line's `duration_ms`, the
//! histogram's sample and the server span's length are the same number,
//! measured once from one start (`observe_core::RequestStart`,
//! `observe_core::Elapsed`); and the line's timestamp is the span's end.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, UNIX_EPOCH};

use axum::{Router, routing::get};
use observe::Observability;
use observe_tests::{
    TestServer, http_get,
    logs::{LogBuffer, runtime_with},
    otlp::OtlpReceiver,
    prometheus::{samples, value},
};

/// How the app is wrapped: `obs.layer()`, or each signal's own layer
/// stacked in the documented order.
#[derive(Debug, Clone, Copy)]
enum Stack {
    Facade,
    HandStacked,
}

#[test]
fn the_log_line_the_histogram_and_the_span_give_one_duration() {
    one_duration(Stack::Facade);
}

#[test]
fn hand_stacked_layers_give_one_duration_too() {
    one_duration(Stack::HandStacked);
}

fn one_duration(stack: Stack) {
    let receiver_runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = receiver_runtime.block_on(OtlpReceiver::start());
    let endpoint = receiver.grpc_endpoint();
    let buffer = LogBuffer::default();
    let obs = Observability::builder("timing")
        .environment("test")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .log_writer(buffer.clone())
        .env_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())])
        .init()
        .unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        // Long enough that clocks read at different moments would differ.
        let app = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(15)).await;
                "done"
            }),
        );
        let server = match stack {
            Stack::Facade => TestServer::start(&obs, app).await,
            Stack::HandStacked => {
                // Outermost last: request id, trace, metrics, request log.
                let app = app
                    .layer(observe::logging::RequestLogLayer::new())
                    .layer(obs.metrics().layer())
                    .layer(obs.tracing().layer())
                    .layer(observe::request_id::RequestIdLayer::new());
                TestServer::serve(&obs, app).await
            }
        };
        assert_eq!(http_get(&server.url("/slow"), &[]).await.status, 200);
        server.stop(Duration::from_secs(10)).await.unwrap();
    });
    obs.tracing()
        .handle()
        .unwrap()
        .flush(Duration::from_secs(10))
        .unwrap();

    let lines = buffer.request_lines();
    assert_eq!(lines.len(), 1, "{stack:?}: {lines:?}");
    let logged_ms = lines[0]["duration_ms"].as_f64().unwrap();
    let spans = receiver.spans();
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span_nanos = spans[0].end_unix_nano - spans[0].start_unix_nano;
    let text = obs.metrics().render();
    let sum_seconds = value(
        &samples(&text),
        "http_request_duration_seconds_sum",
        &[("endpoint", "/slow")],
    );
    let sum_nanos = (sum_seconds * 1e9).round() as u64;

    assert!(span_nanos >= 15_000_000, "{stack:?}: {span_nanos} ns");
    assert_eq!(span_nanos, sum_nanos, "{stack:?}: span against histogram");
    // The line keeps whole microseconds.
    assert_eq!(
        (logged_ms * 1000.0).round() as u64,
        span_nanos / 1000,
        "{stack:?}: line against span"
    );
    // Start plus duration, to the microsecond the line keeps: no clock of
    // its own.
    let logged_at = humantime::parse_rfc3339(lines[0]["timestamp"].as_str().unwrap()).unwrap();
    assert_eq!(
        logged_at.duration_since(UNIX_EPOCH).unwrap().as_micros() as u64,
        spans[0].end_unix_nano / 1000,
        "{stack:?}: the line's timestamp against the span's end"
    );
}
