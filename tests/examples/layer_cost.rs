//! Runs one layer over the benchmark fixture N times, for instruction counts
//! under `valgrind --tool=callgrind`: unlike nanoseconds on a shared machine,
//! instructions per request repeat exactly from run to run.
//!
//! `cargo run --release -p observe-tests --example layer_cost -- VARIANT N`,
//! or `./scripts/bench.sh --instructions`, which does the arithmetic.
#![allow(clippy::unwrap_used)]

use std::{convert::Infallible, hint::black_box, process::ExitCode};

use futures_util::FutureExt;
use http::{Request, Response};
use observe::{errors::ErrorCaptureLayer, request_id::RequestIdLayer};
use observe_tests::fixture::{bare, routed, router, with_id, without_id};
use tower::{Layer, Service, ServiceExt};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
};

/// Every variant, with the request it takes.
pub const VARIANTS: [&str; 17] = [
    "bare",
    "bare_with_id",
    "request_id_generate",
    "request_id_keep",
    "tower_http_request_id_generate",
    "tower_http_request_id_keep",
    "error_capture_ok",
    "tower_http_catch_panic_ok",
    "router",
    "router_identity",
    "metrics",
    "axum_prometheus",
    "router_request_id",
    "request_log",
    "observe",
    "observe_router",
    "observe_router_failures_only",
];

#[inline(never)]
fn run<S, B>(service: S, request: fn() -> Request<()>, count: usize)
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone,
{
    for _ in 0..count {
        black_box(service.clone().oneshot(request()).now_or_never());
    }
}

#[inline(never)]
fn run_router(app: axum::Router, count: usize) {
    for _ in 0..count {
        black_box(app.clone().oneshot(routed()).now_or_never());
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(variant), Some(count)) = (args.next(), args.next().and_then(|n| n.parse().ok()))
    else {
        eprintln!(
            "usage: layer_cost VARIANT COUNT; variants: {}",
            VARIANTS.join(", ")
        );
        return ExitCode::FAILURE;
    };
    let tower_http_ids = || {
        SetRequestIdLayer::x_request_id(MakeRequestUuid)
            .layer(PropagateRequestIdLayer::x_request_id().layer(bare()))
    };
    match variant.as_str() {
        "bare" => run(bare(), without_id, count),
        "bare_with_id" => run(bare(), with_id, count),
        "request_id_generate" => run(RequestIdLayer::new().layer(bare()), without_id, count),
        "request_id_keep" => run(RequestIdLayer::new().layer(bare()), with_id, count),
        "tower_http_request_id_generate" => run(tower_http_ids(), without_id, count),
        "tower_http_request_id_keep" => run(tower_http_ids(), with_id, count),
        "error_capture_ok" => run(ErrorCaptureLayer::new().layer(bare()), without_id, count),
        "tower_http_catch_panic_ok" => run(CatchPanicLayer::new().layer(bare()), without_id, count),
        "router" => run_router(router(|app| app), count),
        "router_identity" => run_router(
            router(|app| app.layer(tower::layer::util::Identity::new())),
            count,
        ),
        "metrics" => {
            let metrics = observe::Metrics::new();
            run_router(router(|app| app.layer(metrics.layer())), count);
        }
        "axum_prometheus" => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let _entered = runtime.enter();
            let (layer, _handle) = axum_prometheus::PrometheusMetricLayer::pair();
            run_router(router(|app| app.layer(layer)), count);
        }
        "router_request_id" => {
            run_router(router(|app| app.layer(RequestIdLayer::new())), count);
        }
        "request_log" => {
            // Every line formatted and handed to a writer that discards it.
            let logging = observe::logging::Logging::builder("cost")
                .writer(std::io::sink())
                .build()
                .unwrap();
            let dispatch = logging.dispatch("info").unwrap();
            let _default = tracing::dispatcher::set_default(&dispatch);
            run_router(
                router(|app| {
                    app.layer(observe::logging::RequestLogLayer::new())
                        .layer(RequestIdLayer::new())
                }),
                count,
            );
            let _ = logging.handle().flush(std::time::Duration::from_secs(5));
        }
        "observe" | "observe_router" | "observe_router_failures_only" => {
            // `obs.layer()` with every signal on: each line formatted and
            // handed to a writer that discards it, each span sent to a
            // receiver in this process that counts it. Measure it with
            // `--toggle-collect=layer_cost::run_router`: the request path
            // only, not the receiver's or the export thread's work.
            let receiver_runtime = tokio::runtime::Runtime::new().unwrap();
            let receiver = receiver_runtime.block_on(observe_tests::otlp::OtlpReceiver::start());
            receiver.count_only();
            let endpoint = receiver.grpc_endpoint();
            let obs = observe::Observability::builder("cost")
                .install_subscriber(false)
                .install_metrics_recorder(false)
                .log_writer(std::io::sink())
                .env_vars([
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
                    // The README's setting for lines of failures only: a
                    // `200` has none.
                    (
                        "RUST_LOG",
                        if variant == "observe_router_failures_only" {
                            "info,observe_log::request=warn"
                        } else {
                            "info"
                        },
                    ),
                ])
                .init()
                .unwrap();
            let _default = tracing::dispatcher::set_default(obs.dispatch());
            if variant == "observe" {
                run_router(router(|app| app.layer(obs.layer())), count);
            } else {
                // What `--compare` serves: the built-in routes in front.
                run_router(obs.router(router(|app| app)), count);
            }
        }
        other => {
            eprintln!("unknown variant {other}; variants: {}", VARIANTS.join(", "));
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
