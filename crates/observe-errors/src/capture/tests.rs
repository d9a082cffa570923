use std::convert::Infallible;

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, Query},
    routing::{get, post},
};
use bytes::Bytes;
use http::{
    Request, Response, StatusCode,
    header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE},
};
use http_body_util::BodyExt;
use observe_request_id::{RequestId, RequestIdLayer};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt, service_fn};

use crate::{AppError, ErrorCaptureLayer, ErrorReport};

async fn json_of<B>(response: Response<B>) -> Value
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

fn request_to(uri: &str) -> Request<Body> {
    Request::builder().uri(uri).body(Body::empty()).unwrap()
}

/// Runs `future` as `RequestIdLayer` runs the inner service: with request id
/// `req-1` in scope.
async fn scoped<F: std::future::Future>(future: F) -> F::Output {
    observe_request_id::scope("req-1".parse::<RequestId>().unwrap(), future).await
}

#[tokio::test]
async fn panic_in_call_becomes_a_500_problem() {
    #[derive(Clone)]
    struct PanicsInCall;
    impl tower::Service<Request<Body>> for PanicsInCall {
        type Response = Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<Body>, Infallible>>;
        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Infallible>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: Request<Body>) -> Self::Future {
            panic!("secret detail in call")
        }
    }
    let service = ErrorCaptureLayer::new().layer(PanicsInCall);
    let response = scoped(service.oneshot(request_to("/boom?token=x")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let report = response.extensions().get::<ErrorReport>().unwrap().clone();
    assert!(report.is_panic());
    assert_eq!(report.error_type(), "panic");
    assert_eq!(report.message(), "secret detail in call");
    let body = json_of(response).await;
    assert_eq!(
        body,
        json!({
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "The server encountered an unexpected error.",
            "instance": "/boom",
            "error_type": "internal_error",
            "request_id": "req-1",
        })
    );
}

#[tokio::test]
async fn panic_in_future_becomes_a_500_problem_without_the_message() {
    let service = ErrorCaptureLayer::new().layer(service_fn(|_: Request<Body>| async {
        let secret = String::from("password=hunter2");
        if !secret.is_empty() {
            panic!("{secret}");
        }
        Ok::<_, Infallible>(Response::new(Body::empty()))
    }));
    let response = scoped(service.oneshot(request_to("/"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let report = response.extensions().get::<ErrorReport>().unwrap().clone();
    assert_eq!(report.message(), "password=hunter2");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains(r#""request_id":"req-1""#), "{text}");
}

#[tokio::test]
async fn ok_responses_pass_through_untouched() {
    let service = ErrorCaptureLayer::new().layer(service_fn(|_: Request<Body>| async {
        Ok::<_, Infallible>(
            Response::builder()
                .header(CONTENT_LENGTH, "5")
                .body(Body::from("hello"))
                .unwrap(),
        )
    }));
    let response = scoped(service.oneshot(request_to("/"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_LENGTH], "5");
    assert!(response.extensions().get::<ErrorReport>().is_none());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello");
}

#[tokio::test]
async fn json_error_responses_of_the_app_are_left_alone() {
    let service = ErrorCaptureLayer::new().layer(service_fn(|_: Request<Body>| async {
        Ok::<_, Infallible>(
            Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .header(CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"own":"format"}"#))
                .unwrap(),
        )
    }));
    let response = scoped(service.oneshot(request_to("/"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"own":"format"}"#);
}

async fn conflict() -> Result<&'static str, AppError> {
    Err(AppError::new(
        StatusCode::CONFLICT,
        "duplicate_job",
        "a parse of this group is already running",
    )
    .with_context("group_id", 42))
}

#[derive(serde::Deserialize)]
struct Parse {
    #[allow(dead_code)]
    posts_limit: u32,
}

async fn parse(Path(_group): Path<u64>, Json(_body): Json<Parse>) -> &'static str {
    "parsed"
}

#[derive(serde::Deserialize)]
struct Page {
    #[allow(dead_code)]
    limit: u32,
}

async fn comments(Query(_page): Query<Page>) -> &'static str {
    "comments"
}

fn app() -> Router {
    Router::new()
        .route("/conflict", post(conflict))
        .route("/groups/{group_id}/parse", post(parse))
        .route("/comments", get(comments))
        .route(
            "/text-500",
            get(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "db at 10.0.0.7 refused user admin",
                )
            }),
        )
        .route(
            "/big-400",
            get(|| async { (StatusCode::BAD_REQUEST, "x".repeat(5000)) }),
        )
        .layer(ErrorCaptureLayer::new())
        .layer(RequestIdLayer::new())
}

async fn call(request: Request<Body>) -> Response<Body> {
    app().oneshot(request).await.unwrap()
}

fn request(
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: &'static str,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-request-id", "rid-7");
    if let Some(content_type) = content_type {
        builder = builder.header(CONTENT_TYPE, content_type);
    }
    builder.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn app_error_is_rendered_with_instance_and_request_id() {
    let response = call(request("POST", "/conflict", None, "")).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(response.headers()["x-request-id"], "rid-7");
    let report = response.extensions().get::<ErrorReport>().unwrap().clone();
    assert_eq!(report.context_json(), r#"{"group_id":"42"}"#);
    assert_eq!(
        json_of(response).await,
        json!({
            "type": "about:blank",
            "title": "Conflict",
            "status": 409,
            "detail": "a parse of this group is already running",
            "instance": "/conflict",
            "error_type": "duplicate_job",
            "request_id": "rid-7",
        })
    );
}

async fn problem_for(request: Request<Body>) -> (StatusCode, Value) {
    let response = call(request).await;
    let status = response.status();
    assert_eq!(response.headers()["x-request-id"], "rid-7");
    let report = response.extensions().get::<ErrorReport>().unwrap().clone();
    let body = json_of(response).await;
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["request_id"], "rid-7");
    assert_eq!(body["error_type"], report.error_type());
    (status, body)
}

#[tokio::test]
async fn rejections_and_unmatched_routes_become_problems() {
    let (status, body) = problem_for(request(
        "POST",
        "/groups/1/parse",
        Some("application/json"),
        "{not json",
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_type"], "bad_request");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Failed to parse the request body as JSON"),
        "{body}"
    );

    let (status, body) = problem_for(request(
        "POST",
        "/groups/1/parse",
        Some("application/json"),
        "{}",
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error_type"], "unprocessable_entity");
    assert!(
        body["detail"].as_str().unwrap().contains("posts_limit"),
        "{body}"
    );

    let (status, body) =
        problem_for(request("POST", "/groups/1/parse", Some("text/csv"), "a,b")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["error_type"], "unsupported_media_type");

    let (status, body) = problem_for(request(
        "POST",
        "/groups/abc/parse",
        Some("application/json"),
        r#"{"posts_limit":1}"#,
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["instance"], "/groups/abc/parse");

    let (status, body) = problem_for(request("GET", "/comments?limit=lots", None, "")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("limit"), "{body}");

    let (status, body) = problem_for(request("GET", "/nowhere", None, "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_type"], "not_found");
    assert_eq!(body["detail"], "No resource matches this path.");
}

#[tokio::test]
async fn method_not_allowed_keeps_its_allow_header() {
    let response = call(request("DELETE", "/comments", None, "")).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[ALLOW], "GET,HEAD");
    let body = json_of(response).await;
    assert_eq!(body["error_type"], "method_not_allowed");
}

#[tokio::test]
async fn plain_server_error_text_stays_private() {
    let response = call(request("GET", "/text-500", None, "")).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let report = response.extensions().get::<ErrorReport>().unwrap().clone();
    assert_eq!(report.message(), "db at 10.0.0.7 refused user admin");
    let body = json_of(response).await;
    assert_eq!(body["detail"], "The server could not complete the request.");
    assert_eq!(body["error_type"], "internal_error");
}

#[tokio::test]
async fn oversized_plain_body_gets_a_generic_detail() {
    let response = call(request("GET", "/big-400", None, "")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json_of(response).await;
    assert_eq!(body["detail"], "Bad Request");
}

#[tokio::test]
async fn conversion_can_be_turned_off() {
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(ErrorCaptureLayer::new().convert_plain_errors(false));
    let response = app
        .oneshot(
            Request::builder()
                .uri("/missing")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers().get(CONTENT_TYPE).is_none());
}
