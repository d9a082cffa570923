use std::{convert::Infallible, time::Duration};

use axum::{
    Router,
    body::Body,
    http::{Method, Request, StatusCode},
    routing::{any, get, post},
};
use observe_errors::{AppError, ErrorCaptureLayer};
use tower::{Service, ServiceExt};

use crate::{Metrics, MetricsLayer};

/// The value of the one line of `text` that starts with `series` and a space.
fn value(text: &str, series: &str) -> Option<f64> {
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|value| value.parse().unwrap())
}

fn lines_of<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}{{");
    text.lines()
        .filter(|line| line.starts_with(&prefix))
        .collect()
}

async fn send(app: &Router, method: Method, uri: &str) -> StatusCode {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(request).await.unwrap().status()
}

fn app(metrics: &Metrics) -> Router {
    let api = Router::new()
        .route("/groups/{group_id}/parse", post(|| async { "parsed" }))
        .route("/groups/{group_id}/stats", get(|| async { "stats" }));
    Router::new()
        .route("/", get(|| async { "home" }))
        .route("/any", any(|| async { "any" }))
        .route(
            "/fail",
            get(|| async {
                Err::<(), _>(AppError::new(StatusCode::CONFLICT, "duplicate_job", "busy"))
            }),
        )
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("boom");
                }
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }),
        )
        .nest("/api/v1", api)
        .layer(ErrorCaptureLayer::new().log_errors(false))
        .layer(metrics.layer())
}

#[tokio::test]
async fn n_requests_count_n_with_their_labels_and_the_histogram_count_is_n() {
    let metrics = Metrics::new();
    let app = app(&metrics);
    for _ in 0..7 {
        assert_eq!(send(&app, Method::GET, "/").await, StatusCode::OK);
    }
    for _ in 0..3 {
        assert_eq!(send(&app, Method::GET, "/fail").await, StatusCode::CONFLICT);
    }
    let text = metrics.render();
    assert_eq!(
        value(
            &text,
            r#"http_requests_total{method="GET",endpoint="/",status_code="200"}"#
        ),
        Some(7.0)
    );
    assert_eq!(
        value(
            &text,
            r#"http_requests_total{method="GET",endpoint="/fail",status_code="409"}"#
        ),
        Some(3.0)
    );
    assert_eq!(lines_of(&text, "http_requests_total").len(), 2);
    assert_eq!(
        value(
            &text,
            r#"http_request_duration_seconds_count{method="GET",endpoint="/"}"#
        ),
        Some(7.0)
    );
    // Every default bucket, then +Inf, each holding all seven fast requests.
    let buckets = lines_of(&text, "http_request_duration_seconds_bucket")
        .into_iter()
        .filter(|line| line.contains(r#"endpoint="/""#))
        .collect::<Vec<_>>();
    assert_eq!(buckets.len(), crate::DEFAULT_BUCKETS.len() + 1);
    assert!(
        buckets.iter().all(|line| line.ends_with(" 7")),
        "{buckets:?}"
    );
    assert!(text.contains("# TYPE http_request_duration_seconds histogram\n"));
    assert_eq!(
        value(
            &text,
            r#"http_requests_in_flight{method="GET",endpoint="/"}"#
        ),
        Some(0.0)
    );
    // Each AppError is counted once, with the service label.
    assert_eq!(
        value(
            &text,
            r#"errors_total{error_type="duplicate_job",service=""}"#
        ),
        Some(3.0)
    );
}

#[tokio::test]
async fn nested_routes_unmatched_paths_and_odd_methods_get_bounded_labels() {
    let metrics = Metrics::builder().service("vk-parser").build().unwrap();
    let app = app(&metrics);
    assert_eq!(
        send(&app, Method::POST, "/api/v1/groups/42/parse").await,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, Method::POST, "/api/v1/groups/durov/parse").await,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, Method::GET, "/api/v1/groups/1/stats").await,
        StatusCode::OK
    );
    for path in ["/nope", "/api/v1/nope", "/groups/1/parse", "/x/y/z"] {
        assert_eq!(send(&app, Method::GET, path).await, StatusCode::NOT_FOUND);
    }
    let brew = Method::from_bytes(b"BREW").unwrap();
    assert_eq!(send(&app, brew.clone(), "/any").await, StatusCode::OK);
    assert_eq!(send(&app, brew, "/nope").await, StatusCode::NOT_FOUND);

    let text = metrics.render();
    let expected = [
        (
            r#"http_requests_total{method="POST",endpoint="/api/v1/groups/{group_id}/parse",status_code="200"}"#,
            2.0,
        ),
        (
            r#"http_requests_total{method="GET",endpoint="/api/v1/groups/{group_id}/stats",status_code="200"}"#,
            1.0,
        ),
        (
            r#"http_requests_total{method="GET",endpoint="unmatched",status_code="404"}"#,
            4.0,
        ),
        (
            r#"http_requests_total{method="_OTHER",endpoint="/any",status_code="200"}"#,
            1.0,
        ),
        (
            r#"http_requests_total{method="_OTHER",endpoint="unmatched",status_code="404"}"#,
            1.0,
        ),
    ];
    for (series, count) in expected {
        assert_eq!(value(&text, series), Some(count), "{series}\n{text}");
    }
    assert_eq!(lines_of(&text, "http_requests_total").len(), expected.len());
    // The error layer reports unmatched routes; each is counted once.
    assert_eq!(
        value(
            &text,
            r#"errors_total{error_type="not_found",service="vk-parser"}"#
        ),
        Some(5.0),
        "{text}"
    );
}

#[tokio::test]
async fn panics_count_as_panic_errors_and_500s() {
    let metrics = Metrics::new();
    let app = app(&metrics);
    assert_eq!(
        send(&app, Method::GET, "/panic").await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let text = metrics.render();
    assert_eq!(
        value(&text, r#"errors_total{error_type="panic",service=""}"#),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"http_requests_total{method="GET",endpoint="/panic",status_code="500"}"#
        ),
        Some(1.0)
    );
    let red = metrics.red(Duration::from_secs(60));
    assert_eq!((red.requests, red.errors), (1, 1));
}

#[tokio::test]
async fn a_dropped_request_leaves_the_in_flight_gauge_and_counts_as_aborted() {
    let metrics = Metrics::new();
    let app = app(&metrics);
    let in_flight = r#"http_requests_in_flight{method="GET",endpoint="/slow"}"#;
    let mut futures = Vec::new();
    for _ in 0..3 {
        let request = Request::get("/slow").body(Body::empty()).unwrap();
        let mut service = app.clone();
        let future = ServiceExt::<Request<Body>>::ready(&mut service)
            .await
            .unwrap()
            .call(request);
        futures.push(tokio::spawn(future));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(value(&metrics.render(), in_flight), Some(3.0));
    for future in &futures {
        future.abort();
    }
    for future in futures {
        assert!(future.await.unwrap_err().is_cancelled());
    }
    let text = metrics.render();
    assert_eq!(value(&text, in_flight), Some(0.0));
    assert_eq!(
        value(
            &text,
            r#"http_requests_total{method="GET",endpoint="/slow",status_code="499"}"#
        ),
        Some(3.0)
    );
}

#[tokio::test]
async fn otel_semconv_names_the_series_as_the_conventions_do() {
    let metrics = Metrics::builder().otel_semconv().build().unwrap();
    let app = app(&metrics);
    for _ in 0..2 {
        send(&app, Method::POST, "/api/v1/groups/1/parse").await;
    }
    let text = metrics.render();
    assert_eq!(
        value(
            &text,
            r#"http_server_request_duration_seconds_count{http_request_method="POST",http_route="/api/v1/groups/{group_id}/parse",http_response_status_code="200"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"http_server_active_requests{http_request_method="POST",http_route="/api/v1/groups/{group_id}/parse"}"#
        ),
        Some(0.0)
    );
    assert!(!text.contains("http_requests_total"));
}

#[tokio::test]
async fn two_registries_do_not_see_each_other() {
    let (first, second) = (Metrics::new(), Metrics::new());
    let (first_app, second_app) = (app(&first), app(&second));
    send(&first_app, Method::GET, "/").await;
    send(&second_app, Method::GET, "/any").await;
    send(&second_app, Method::GET, "/any").await;
    let (first, second) = (first.render(), second.render());
    assert_eq!(lines_of(&first, "http_requests_total").len(), 1);
    assert!(first.contains(r#"endpoint="/",status_code="200"} 1"#));
    assert_eq!(lines_of(&second, "http_requests_total").len(), 1);
    assert!(second.contains(r#"endpoint="/any",status_code="200"} 2"#));
}

#[tokio::test]
async fn custom_buckets_are_used_and_bad_ones_are_refused() {
    let metrics = Metrics::builder().buckets(&[0.1, 1.0]).build().unwrap();
    send(&app(&metrics), Method::GET, "/").await;
    let text = metrics.render();
    let buckets = lines_of(&text, "http_request_duration_seconds_bucket");
    assert_eq!(buckets.len(), 3, "{buckets:?}");
    for bad in [&[][..], &[1.0, 0.5], &[0.1, f64::NAN], &[0.1, 0.1]] {
        let error = Metrics::builder().buckets(bad).build().unwrap_err();
        assert!(error.to_string().starts_with("histogram buckets must be"));
    }
}

#[tokio::test]
async fn works_as_a_plain_tower_layer_without_a_router() {
    let layer = MetricsLayer::new();
    let service = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service_fn(|_: Request<Body>| async {
            Ok::<_, Infallible>(axum::http::Response::new(Body::empty()))
        });
    service
        .oneshot(Request::put("/raw/path/1").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = layer.metrics().render();
    assert_eq!(
        value(
            &text,
            r#"http_requests_total{method="PUT",endpoint="unmatched",status_code="200"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn every_http_metric_has_help_text() {
    let metrics = Metrics::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        send(&app(&metrics), Method::GET, "/fail").await;
    });
    let text = metrics.render();
    for name in [
        "http_requests_total",
        "http_request_duration_seconds",
        "http_requests_in_flight",
        "errors_total",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}\n{text}");
    }
}

#[tokio::test]
async fn a_panic_in_call_or_in_the_future_still_brings_the_gauge_down() {
    let layer = MetricsLayer::new();
    let in_call = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(tower::service_fn(|request: Request<Body>| {
            if request.uri().path() == "/call" {
                panic!("in call");
            }
            async { Ok::<_, Infallible>(axum::http::Response::new(Body::empty())) }
        }));
    let in_future = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service_fn(|_: Request<Body>| async {
            if true {
                panic!("in the future");
            }
            Ok::<_, Infallible>(axum::http::Response::new(Body::empty()))
        });
    let call = tokio::spawn(in_call.oneshot(Request::get("/call").body(Body::empty()).unwrap()));
    let future =
        tokio::spawn(in_future.oneshot(Request::get("/future").body(Body::empty()).unwrap()));
    assert!(call.await.unwrap_err().is_panic());
    assert!(future.await.unwrap_err().is_panic());
    let text = layer.metrics().render();
    assert_eq!(
        value(
            &text,
            r#"http_requests_in_flight{method="GET",endpoint="unmatched"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            r#"http_requests_total{method="GET",endpoint="unmatched",status_code="499"}"#
        ),
        Some(2.0)
    );
}
