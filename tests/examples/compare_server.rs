//! The same small axum app three ways, for `./scripts/bench.sh --compare`:
//!
//! - `bare`: the router alone;
//! - `usual`: what a team glues together today: tower-http's request id
//!   (set and propagated), `TraceLayer` with its request line at `INFO`,
//!   `CatchPanicLayer`, axum-prometheus, a JSON log file through
//!   tracing-appender's non-blocking writer, and tracing-opentelemetry with
//!   the SDK's batch processor exporting over OTLP/HTTP;
//! - `observe`: `obs.router(app)` served by `obs.serve()`, every signal on:
//!   a JSON line per request into a file, every span exported over
//!   OTLP/HTTP;
//! - `observe_failures_only`, `observe_no_export`: `observe` with its 200s'
//!   request lines filtered out, or with no span exporter, to show what
//!   each of those costs (`COMPARE_VARIANTS="bare observe observe_no_export"`).
//!
//! `compare_server VARIANT ADDR SINK_URL LOG_DIR`, on a current-thread
//! runtime (one worker) so that one core serves it.
#![allow(clippy::unwrap_used)]

use std::process::ExitCode;

use axum::{Router, routing::get};
use http::HeaderName;
use observe_tests::fixture::router;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [variant, addr, sink, log_dir] = args.as_slice() else {
        eprintln!(
            "usage: compare_server bare|usual|observe|observe_failures_only|observe_no_export ADDR SINK_URL LOG_DIR"
        );
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        match variant.as_str() {
            "bare" => axum::serve(listener, router(|app| app)).await.unwrap(),
            "usual" => {
                let (app, _guards) = usual(sink, log_dir);
                axum::serve(listener, app).await.unwrap();
            }
            "observe" | "observe_failures_only" | "observe_no_export" => {
                // The two others take one signal's work away, to show its
                // share: request lines of failures only (a 200 writes
                // none), or no span exported (none recorded).
                let filter = if variant == "observe_failures_only" {
                    "info,observe_log::request=warn"
                } else {
                    "info"
                };
                let endpoint = if variant == "observe_no_export" {
                    ""
                } else {
                    sink.as_str()
                };
                let obs = observe::Observability::builder("compare")
                    .env_vars([
                        ("RUST_LOG", filter),
                        ("OBSERVE_LOG_FORMAT", "json"),
                        ("OBSERVE_LOG_FILE", &format!("{log_dir}/observe.log")),
                        ("OBSERVE_LOG_ROTATION", "never"),
                        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
                        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                    ])
                    .init()
                    .unwrap();
                let app = obs.router(router(|app| app));
                obs.serve(listener, app).await.unwrap();
            }
            other => {
                eprintln!("unknown variant {other}");
                return ExitCode::FAILURE;
            }
        }
        ExitCode::SUCCESS
    })
}

/// What must live as long as the server: the log writer's guard and the
/// tracer provider.
struct Guards {
    _log: tracing_appender::non_blocking::WorkerGuard,
    _provider: opentelemetry_sdk::trace::SdkTracerProvider,
}

fn usual(sink: &str, log_dir: &str) -> (Router, Guards) {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use tower::ServiceBuilder;
    use tower_http::{
        catch_panic::CatchPanicLayer,
        request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
        trace::{DefaultOnResponse, TraceLayer},
    };
    use tracing_subscriber::{EnvFilter, layer::SubscriberExt as _, util::SubscriberInitExt as _};

    let (writer, log_guard) =
        tracing_appender::non_blocking(tracing_appender::rolling::never(log_dir, "usual.log"));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{sink}/v1/traces"))
        .build()
        .unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    tracing_subscriber::registry()
        .with(EnvFilter::new("info"))
        .with(tracing_subscriber::fmt::layer().json().with_writer(writer))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("usual")))
        .init();

    let (prometheus, handle) = axum_prometheus::PrometheusMetricLayer::pair();
    let request_id = HeaderName::from_static("x-request-id");
    let app = router(|app| {
        app.route("/metrics", get(move || std::future::ready(handle.render())))
            .layer(
                ServiceBuilder::new()
                    .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                    .layer(
                        TraceLayer::new_for_http()
                            .make_span_with(|request: &http::Request<_>| {
                                tracing::info_span!(
                                    "request",
                                    method = %request.method(),
                                    uri = %request.uri(),
                                    request_id = ?request.headers().get("x-request-id"),
                                )
                            })
                            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
                    )
                    .layer(PropagateRequestIdLayer::new(request_id))
                    .layer(CatchPanicLayer::new())
                    .layer(prometheus),
            )
    });
    (
        app,
        Guards {
            _log: log_guard,
            _provider: provider,
        },
    )
}
