//! observe's span export works in an application that also uses
//! `opentelemetry-otlp` with its default features: over HTTP/protobuf (the
//! transport whose client features used to collide) and over gRPC.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::{Router, body::Body, routing::get};
use http::Request;
use observe::Observability;
use observe_tests::otlp::OtlpReceiver;
use tower::ServiceExt;

async fn one_request_exported(protocol: &str) {
    let receiver = OtlpReceiver::start().await;
    let endpoint = receiver.grpc_endpoint();
    let obs = Observability::builder("otel-app-test")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .env_vars([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ])
        .init()
        .unwrap();
    let app = obs.router(Router::new().route("/hello", get(|| async { "hello" })));
    let response = app
        .oneshot(Request::get("/hello").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let handle = obs.tracing().handle().expect("exporting").clone();
    tokio::task::block_in_place(|| handle.flush(Duration::from_secs(10))).unwrap();
    let spans = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(spans[0].name, "GET /hello");
    assert_eq!(
        spans[0].transport,
        if protocol == "grpc" { "grpc" } else { "http" }
    );
    assert_eq!(spans[0].resource["service.name"], "otel-app-test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_a_collector_over_http_protobuf() {
    one_request_exported("http/protobuf").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_a_collector_over_grpc() {
    one_request_exported("grpc").await;
}

#[test]
fn the_applications_own_exporter_builds_with_the_default_features() {
    // `with_http()` with no client given picks the default blocking client:
    // the feature set observe must coexist with.
    assert!(
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .is_ok()
    );
}
