//! The whole stack over real TCP: request ids on every status, panics,
//! rejections and unmatched routes as problem+json.
#![allow(clippy::unwrap_used)]

use axum::{
    Json, Router,
    extract::Path,
    http::StatusCode,
    routing::{get, post},
};
use observe::{AppError, Observability, RequestId};
use observe_tests::{TestServer, http_get, raw_exchange, raw_header, with_body};
use serde_json::Value;
use std::time::Duration;

#[derive(serde::Deserialize)]
struct Job {
    #[allow(dead_code)]
    posts_limit: u32,
}

async fn hello(Path(name): Path<String>, id: RequestId) -> String {
    format!("hello {name} from {id}")
}

async fn conflict() -> Result<(), AppError> {
    Err(AppError::new(
        StatusCode::CONFLICT,
        "duplicate_job",
        "a parse of this group is already running",
    )
    .with_context("group_id", 1))
}

async fn failing() -> Result<(), AppError> {
    Err(AppError::internal(std::io::Error::other(
        "connection to 10.0.0.7:5432 refused for user admin",
    )))
}

async fn panicking() -> &'static str {
    let detail = String::from("secret panic detail");
    if !detail.is_empty() {
        panic!("{detail}");
    }
    "unreachable"
}

async fn job(Json(_job): Json<Job>) -> &'static str {
    "accepted"
}

fn app() -> Router {
    Router::new()
        .route("/hello/{name}", get(hello))
        .route("/conflict", post(conflict))
        .route("/failing", get(failing))
        .route("/panic", get(panicking))
        .route("/job", post(job))
}

fn obs() -> Observability {
    Observability::builder("stack-test")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .env_vars([("RUST_LOG", "warn")])
        .init()
        .unwrap()
}

fn assert_v7(id: &str) {
    let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|_| panic!("{id:?} is not a UUID"));
    assert_eq!(uuid.get_version_num(), 7);
}

#[tokio::test]
async fn valid_id_is_echoed_and_missing_id_is_a_v7_uuid() {
    let server = TestServer::start(&obs(), app()).await;
    let reply = http_get(
        &server.url("/hello/ann"),
        &[("x-request-id", "client-id-42")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-request-id"), "client-id-42");
    assert_eq!(&reply.body[..], b"hello ann from client-id-42");

    let reply = http_get(&server.url("/hello/bob"), &[]).await;
    let id = reply.header("x-request-id").to_owned();
    assert_v7(&id);
    assert_eq!(
        String::from_utf8(reply.body.to_vec()).unwrap(),
        format!("hello bob from {id}")
    );
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn header_is_on_every_status_and_errors_are_problems() {
    let server = TestServer::start(&obs(), app()).await;
    let rid = [("x-request-id", "rid-e2e")];

    let cases = [
        (
            http_get(&server.url("/nowhere"), &rid).await,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            with_body("POST", &server.url("/job"), "application/json", "{broken").await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            with_body("POST", &server.url("/job"), "application/json", "{}").await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
        ),
        (
            with_body("POST", &server.url("/job"), "text/plain", "hi").await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            with_body("DELETE", &server.url("/job"), "text/plain", "").await,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            with_body("POST", &server.url("/conflict"), "text/plain", "").await,
            StatusCode::CONFLICT,
            "duplicate_job",
        ),
        (
            http_get(&server.url("/failing"), &rid).await,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
        ),
        (
            http_get(&server.url("/panic"), &rid).await,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
        ),
    ];
    for (reply, status, error_type) in cases {
        assert_eq!(reply.status, status, "{reply:?}");
        assert_eq!(reply.header("content-type"), "application/problem+json");
        let id = reply.header("x-request-id").to_owned();
        let body: Value = reply.json();
        assert_eq!(body["status"], status.as_u16());
        assert_eq!(body["error_type"], error_type);
        assert_eq!(body["request_id"], id.as_str(), "{body}");
        assert_eq!(body["type"], "about:blank");
        assert!(body["title"].is_string());
        assert!(body["detail"].is_string());
        assert!(body["instance"].as_str().unwrap().starts_with('/'));
        let text = String::from_utf8(reply.body.to_vec()).unwrap();
        assert!(!text.contains("secret panic detail"), "{text}");
        assert!(!text.contains("10.0.0.7"), "{text}");
    }
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn server_keeps_serving_on_the_same_connection_after_a_panic() {
    let server = TestServer::start(&obs(), app()).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (head, body) = raw_exchange(
        &mut stream,
        b"GET /panic HTTP/1.1\r\nhost: test\r\nx-request-id: first\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 500"), "{head}");
    assert_eq!(raw_header(&head, "x-request-id"), Some("first"));
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["request_id"], "first");
    assert_eq!(
        body["detail"],
        "The server encountered an unexpected error."
    );

    let (head, body) = raw_exchange(
        &mut stream,
        b"GET /hello/again HTTP/1.1\r\nhost: test\r\nx-request-id: second\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "hello again from second");
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn bad_ids_on_the_wire_are_replaced_and_never_echoed() {
    let server = TestServer::start(&obs(), app()).await;
    let too_long = format!("x-request-id: {}\r\n", "a".repeat(129));
    let bad_headers: [&[u8]; 5] = [
        b"x-request-id: caf\xc3\xa9\r\n",
        b"x-request-id: two words\r\n",
        b"x-request-id:\r\n",
        too_long.as_bytes(),
        b"x-request-id: one\r\nx-request-id: two\r\n",
    ];
    for bad in bad_headers {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let mut request = b"GET /hello/x HTTP/1.1\r\nhost: test\r\n".to_vec();
        request.extend_from_slice(bad);
        request.extend_from_slice(b"\r\n");
        let (head, body) = raw_exchange(&mut stream, &request).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let id = raw_header(&head, "x-request-id").unwrap();
        assert_v7(id);
        assert_eq!(body, format!("hello x from {id}"));
    }
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn always_generate_replaces_client_ids_end_to_end() {
    let obs = Observability::builder("edge")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .env_vars([
            ("OBSERVE_REQUEST_ID_ALWAYS_GENERATE", "true"),
            ("OBSERVE_REQUEST_ID_HEADER", "x-correlation-id"),
        ])
        .init()
        .unwrap();
    let server = TestServer::start(&obs, app()).await;
    let reply = http_get(
        &server.url("/hello/z"),
        &[("x-correlation-id", "chosen-by-client")],
    )
    .await;
    let id = reply.header("x-correlation-id");
    assert_v7(id);
    assert!(reply.headers.get("x-request-id").is_none());
    server.stop(Duration::from_secs(5)).await.unwrap();
}
