//! The server span per request: observe's `TraceLayer` sampled (exporting
//! over OTLP/gRPC to a real receiver on loopback, in another process when
//! `OBSERVE_BENCH_OTLP_ENDPOINT` names one) and sampled out, beside
//! tower-http's `TraceLayer` with tracing-opentelemetry, all in one run.
//!
//! Each stack sits behind observe's `RequestIdLayer`; the `paired_*` figures
//! are a stack's cost over that base, in alternating chunks.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{paired, run_router};
use criterion::{Criterion, criterion_group, criterion_main};
use observe::{
    request_id::RequestIdLayer,
    trace::{Sampler, Tracing},
};
use observe_tests::{fixture::router, otlp::OtlpReceiver};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter},
};
use tower_http::trace::{DefaultMakeSpan, TraceLayer as TowerTraceLayer};
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;

/// Takes batches and drops them: the reference's export happens on the
/// SDK's own thread, off the request path, as ours does.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        std::hint::black_box(batch);
        Ok(())
    }
}

fn with(dispatch: &tracing::Dispatch, f: impl FnOnce()) {
    tracing::dispatcher::with_default(dispatch, f);
}

/// A receiver in another process (`./scripts/bench.sh` starts one on the
/// other core): decoding what it receives is not the request path's cost.
/// Unset, one runs in this process, on the benchmark's core.
const RECEIVER_VARIABLE: &str = "OBSERVE_BENCH_OTLP_ENDPOINT";

fn trace(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (receiver, endpoint) = match std::env::var(RECEIVER_VARIABLE) {
        Ok(endpoint) => (None, endpoint),
        Err(_) => {
            let receiver = runtime.block_on(OtlpReceiver::start());
            receiver.count_only();
            let endpoint = receiver.grpc_endpoint();
            (Some(receiver), endpoint)
        }
    };
    let tracing_for = |sampler: &'static str| {
        Tracing::builder("bench")
            .env_vars(|name| match name {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
                "OTEL_TRACES_SAMPLER" => Some(sampler.to_owned()),
                _ => None,
            })
            .unwrap()
            .build()
            .unwrap()
    };
    let sampled = tracing_for("always_on");
    let sampled_out = tracing_for("always_off");
    assert_eq!(sampled_out.sampler(), Sampler::AlwaysOff);
    let none = tracing::Dispatch::none();

    let base = router(|app| app.layer(RequestIdLayer::new()));
    let observe_sampled = router(|app| app.layer(sampled.layer()).layer(RequestIdLayer::new()));
    let observe_sampled_out =
        router(|app| app.layer(sampled_out.layer()).layer(RequestIdLayer::new()));

    // The reference: tower-http's span at INFO, made an OpenTelemetry span by
    // tracing-opentelemetry, batched by the SDK.
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build();
    let reference_dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"))),
    );
    let tower_http = router(|app| {
        app.layer(
            TowerTraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO)),
        )
        .layer(RequestIdLayer::new())
    });

    with(&none, || {
        run_router(c, "trace/base_request_id", base.clone());
        run_router(c, "trace/observe_sampled", observe_sampled.clone());
        run_router(c, "trace/observe_sampled_out", observe_sampled_out.clone());
    });
    with(&reference_dispatch, || {
        run_router(c, "trace/tower_http_otel", tower_http.clone());
    });
    with(&none, || {
        paired(c, "trace/paired_observe_sampled", &base, &observe_sampled);
        paired(
            c,
            "trace/paired_observe_sampled_out",
            &base,
            &observe_sampled_out,
        );
    });
    with(&reference_dispatch, || {
        paired(c, "trace/paired_tower_http_otel", &base, &tower_http);
    });
    let handle = sampled.handle().unwrap();
    let _ = handle.flush(Duration::from_secs(30));
    let counted = receiver.map_or_else(
        || format!("{RECEIVER_VARIABLE}={endpoint}"),
        |receiver| format!("{} counted there", receiver.counted()),
    );
    eprintln!(
        "trace: {} spans exported to the receiver ({counted}), {} dropped on a full queue",
        handle.exported_spans(),
        handle.dropped_spans()
    );
    let _ = provider.shutdown();
}

criterion_group!(traces, trace);
criterion_main!(traces);
