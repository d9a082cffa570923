//! The cost per request of each layer over the bare service, beside the
//! tower-http layer that does the same job, all in one run.
//!
//! The request is built as a layer inside axum's router sees one, and the
//! response as an axum handler makes one. Building and dropping both is in
//! every figure, the bare one too, so the differences are the layers' cost.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::{convert::Infallible, time::Duration};

use axum::{Router, extract::Path, http::StatusCode};
use common::{paired, run_router};
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{Request, Response};
use observe::{Metrics, errors::ErrorCaptureLayer, request_id::RequestIdLayer};
use observe_tests::fixture::{bare, panicking, router, with_id, without_id};
use tower::{Layer, Service, ServiceExt};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
};

fn run<S, B>(c: &mut Criterion, name: &str, service: S, request: fn() -> Request<()>)
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone,
{
    c.bench_function(name, |b| {
        b.iter(|| service.clone().oneshot(request()).now_or_never())
    });
}

fn request_id(c: &mut Criterion) {
    run(c, "request_id/bare", bare(), without_id);
    run(c, "request_id/bare_with_id", bare(), with_id);
    let observe = RequestIdLayer::new().layer(bare());
    run(
        c,
        "request_id/observe_generate_v7",
        observe.clone(),
        without_id,
    );
    run(c, "request_id/observe_keep_incoming", observe, with_id);
    let tower_http = SetRequestIdLayer::x_request_id(MakeRequestUuid)
        .layer(PropagateRequestIdLayer::x_request_id().layer(bare()));
    run(
        c,
        "request_id/tower_http_generate_v4",
        tower_http.clone(),
        without_id,
    );
    run(
        c,
        "request_id/tower_http_keep_incoming",
        tower_http,
        with_id,
    );
    c.bench_function("request_id/new_v7_alone", |b| {
        b.iter(observe::RequestId::new_v7)
    });
}

fn error_capture(c: &mut Criterion) {
    run(c, "error_capture/bare", bare(), without_id);
    run(
        c,
        "error_capture/observe_ok",
        ErrorCaptureLayer::new().layer(bare()),
        without_id,
    );
    run(
        c,
        "error_capture/tower_http_ok",
        CatchPanicLayer::new().layer(bare()),
        without_id,
    );

    // The panic path prints through the panic hook; silence it for the loop.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let observe = ErrorCaptureLayer::new()
        .log_errors(false)
        .layer(panicking());
    run(c, "error_capture/observe_panic", observe, without_id);
    let tower_http = CatchPanicLayer::new().layer(panicking());
    run(c, "error_capture/tower_http_panic", tower_http, without_id);
    std::panic::set_hook(hook);
}

fn metrics(c: &mut Criterion) {
    run_router(c, "metrics/bare", router(|app| app));
    // What any layer added with `Router::layer` costs: axum boxes it.
    run_router(
        c,
        "metrics/identity_layer",
        router(|app| app.layer(tower::layer::util::Identity::new())),
    );
    let observe = Metrics::new();
    run_router(
        c,
        "metrics/observe",
        router(|app| app.layer(observe.layer())),
    );
    // axum-prometheus spawns its upkeep task on the runtime it is built in.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let (axum_prometheus, _handle) = axum_prometheus::PrometheusMetricLayer::pair();
    let axum_prometheus = router(|app| app.layer(axum_prometheus));
    run_router(c, "metrics/axum_prometheus", axum_prometheus.clone());

    let bare = router(|app| app);
    paired(
        c,
        "metrics/paired_identity_layer",
        &bare,
        &router(|app| app.layer(tower::layer::util::Identity::new())),
    );
    paired(
        c,
        "metrics/paired_observe",
        &bare,
        &router(|app| app.layer(observe.layer())),
    );
    paired(c, "metrics/paired_axum_prometheus", &bare, &axum_prometheus);

    // 10,000 HTTP series, written by the layer's own renderer: 500 routes,
    // each with 2 statuses, a histogram (17 series) and an in-flight gauge.
    let registry = Metrics::new();
    let mut app = Router::new();
    for route in 0..500 {
        app = app.route(
            &format!("/api/v1/resource{route}/{{id}}"),
            axum::routing::get(|Path(id): Path<u32>| async move {
                if id == 1 {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                }
            }),
        );
    }
    let app = app.layer(registry.layer());
    for route in 0..500 {
        for status_path in ["/1", "/2"] {
            let request = Request::get(format!("/api/v1/resource{route}{status_path}"))
                .body(axum::body::Body::empty())
                .unwrap();
            app.clone().oneshot(request).now_or_never();
        }
    }
    let series = registry
        .render()
        .lines()
        .filter(|line| line.starts_with("http_"))
        .count();
    assert_eq!(series, 500 * (2 + 17 + 1));
    c.bench_function("metrics/render_10k_http_series", |b| {
        b.iter(|| registry.render())
    });

    // 10,000 series of the application's own, through the `metrics` facade
    // and metrics-exporter-prometheus: 5,000 counters and 294 histograms of
    // 17 series each.
    let registry = Metrics::new();
    registry.in_scope(|| {
        for i in 0..5_000 {
            metrics::counter!("bench_requests_total", "id" => i.to_string()).increment(i);
        }
        for i in 0..294 {
            let histogram = metrics::histogram!("bench_duration_seconds", "id" => i.to_string());
            for j in 0..20 {
                histogram.record(f64::from(j) / 100.0);
            }
        }
    });
    let series = registry
        .render()
        .lines()
        .filter(|line| line.starts_with("bench_"))
        .count();
    assert_eq!(series, 5_000 + 294 * 17);
    c.bench_function("metrics/render_10k_facade_series", |b| {
        b.iter(|| registry.render())
    });
}

/// A probe of `/health` served from the cache (three checks), beside a
/// hand-written handler that answers a fixed body.
fn health(c: &mut Criterion) {
    use observe::health::{CheckResult, Health, check_fn};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let health = Health::builder()
        .check(
            "postgres",
            check_fn(|| async { CheckResult::healthy().detail("pool_size", 3) }),
        )
        .check(
            "redis",
            check_fn(|| async { CheckResult::healthy().detail("connected_clients", 2) }),
        )
        .check(
            "disk",
            check_fn(|| async { CheckResult::healthy().detail("free_percent", 42.5) }),
        )
        .cache_ttl(Duration::from_secs(3_600))
        .build();
    runtime.block_on(health.check_all());
    let probe = || {
        Request::get("/health")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let observe_router = health.router();
    c.bench_function("health/cached_probe_3_checks", |b| {
        b.iter(|| observe_router.clone().oneshot(probe()).now_or_never())
    });
    let static_router: Router = Router::new().route(
        "/health",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
    );
    c.bench_function("health/static_handler", |b| {
        b.iter(|| static_router.clone().oneshot(probe()).now_or_never())
    });
}

criterion_group!(layers, request_id, error_capture, metrics, health);
criterion_main!(layers);
