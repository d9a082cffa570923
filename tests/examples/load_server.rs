//! Serves the benchmark router over real TCP for load tests with wrk:
//! `load_server VARIANT ADDR`, variants `bare`, `metrics`, `axum_prometheus`,
//! `observe` (the whole `obs.layer()` stack, no subscriber: ids, metrics,
//! no log line written), `observe_logged` (the same with its subscriber
//! installed: a JSON line per request into a rotating file under `target/`)
//! and `observe_exported` (that, plus every span exported over OTLP/gRPC to a
//! receiver in the same process), and `observe_alerting` (`observe` with the
//! alert engine evaluating every second, a rule always firing, and a
//! notification every second into a webhook that never answers).
//! `bare_served` and `observe_served` are `bare` and `observe` served by
//! `obs.serve()` (its timeouts, limits and body watch) instead of
//! `axum::serve`.
//! `./scripts/bench.sh --load`
//! runs each under wrk, pinned apart from the load generator.
#![allow(clippy::unwrap_used)]

use std::process::ExitCode;

use observe_tests::fixture::router;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(variant), Some(addr)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: load_server VARIANT ADDR; variants: bare, metrics, axum_prometheus, observe, observe_alerting, observe_logged, observe_exported, bare_served, observe_served"
        );
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (variant, by_observe) = match variant.strip_suffix("_served") {
            Some(variant) => (variant.to_owned(), true),
            None => (variant, false),
        };
        let app = match variant.as_str() {
            "bare" => router(|app| app),
            "identity" => router(|app| app.layer(tower::layer::util::Identity::new())),
            "metrics" => {
                let metrics = observe::Metrics::new();
                router(|app| app.layer(metrics.layer()))
            }
            "axum_prometheus" => {
                let (layer, _handle) = axum_prometheus::PrometheusMetricLayer::pair();
                router(|app| app.layer(layer))
            }
            "observe" => {
                let obs = observe::Observability::builder("load")
                    .install_subscriber(false)
                    .install_metrics_recorder(false)
                    .init()
                    .unwrap();
                router(|app| app.layer(obs.layer()))
            }
            "observe_alerting" => {
                let (receiver, url) = observe_tests::webhook::WebhookReceiver::start([]).await;
                receiver.hang();
                let obs = observe::Observability::builder("load")
                    .install_subscriber(false)
                    .install_metrics_recorder(false)
                    .env_vars([
                        ("OBSERVE_ALERT_EVAL_INTERVAL", "1s"),
                        ("OBSERVE_ALERT_WINDOW", "10s"),
                        ("OBSERVE_ALERT_FOR", "0s"),
                        ("OBSERVE_ALERT_REPEAT_INTERVAL", "1s"),
                        ("OBSERVE_ALERT_WEBHOOK_URL", &format!("{url}/hook")),
                    ])
                    .configure_alerts(|alerts| {
                        alerts.rule(observe::alerts::Rule::new(
                            "AlwaysOn",
                            observe::alerts::Severity::Warning,
                            0.0,
                            || Some(1.0),
                        ))
                    })
                    .init()
                    .unwrap();
                obs.alerts().unwrap().spawn();
                std::mem::forget(receiver);
                let app = router(|app| app.layer(obs.layer()));
                std::mem::forget(obs);
                app
            }
            "observe_logged" | "observe_exported" => {
                let mut vars = Vec::new();
                let receiver = if variant == "observe_exported" {
                    let receiver = observe_tests::otlp::OtlpReceiver::start().await;
                    receiver.count_only();
                    vars.push((
                        "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
                        receiver.grpc_endpoint(),
                    ));
                    Some(receiver)
                } else {
                    None
                };
                let obs = observe::Observability::builder("load")
                    .install_metrics_recorder(false)
                    .log_file(
                        observe::logging::FileOutput::new("target/load-server/load.log")
                            .max_bytes(64 << 20)
                            .max_files(1),
                    )
                    .env_vars(vars)
                    .init()
                    .unwrap();
                // Kept for the life of the server.
                std::mem::forget(receiver);
                router(|app| app.layer(obs.layer()))
            }
            other => {
                eprintln!("unknown variant {other}");
                return ExitCode::FAILURE;
            }
        };
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
        if by_observe {
            let served = observe::Observability::builder("load")
                .install_subscriber(false)
                .install_metrics_recorder(false)
                .env_vars([("RUST_LOG", "off")])
                .init()
                .unwrap();
            served
                .serve_with_shutdown(listener, app, std::future::pending())
                .await
                .unwrap();
        } else {
            axum::serve(listener, app).await.unwrap();
        }
        ExitCode::SUCCESS
    })
}
