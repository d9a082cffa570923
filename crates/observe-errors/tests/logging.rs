//! Each error is logged once, with its request id. In its own test binary:
//! `tracing` caches per-callsite interest process-wide, so a subscriber set
//! for one thread races with tests on other threads.
#![allow(clippy::unwrap_used)]

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
};

use axum::{Router, body::Body, http::StatusCode, routing::post};
use http::{Request, Response};
use observe_errors::{AppError, ErrorCaptureLayer};
use observe_request_id::{RequestId, RequestIdLayer};
use tower::{Layer, ServiceExt, service_fn};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn conflict() -> Result<(), AppError> {
    Err(
        AppError::new(StatusCode::CONFLICT, "duplicate_job", "already running")
            .with_context("group_id", 42),
    )
}

#[tokio::test]
async fn each_error_is_logged_once_with_its_request_id() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let app = Router::new()
        .route("/conflict", post(conflict))
        .layer(ErrorCaptureLayer::new())
        .layer(RequestIdLayer::new());
    let request = Request::post("/conflict")
        .header("x-request-id", "rid-7")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);

    let panicking = ErrorCaptureLayer::new().layer(service_fn(|_: Request<Body>| async {
        if true {
            panic!("kaboom");
        }
        Ok::<_, Infallible>(Response::new(Body::empty()))
    }));
    let id: RequestId = "req-1".parse().unwrap();
    let request = Request::get("/").body(Body::empty()).unwrap();
    let response = observe_request_id::scope(id, panicking.oneshot(request))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("WARN"), "{text}");
    assert!(lines[0].contains("request_id=\"rid-7\""), "{text}");
    assert!(lines[0].contains("status_code=409"), "{text}");
    assert!(lines[0].contains("error_type=\"duplicate_job\""), "{text}");
    assert!(
        lines[0].contains(r#"context="{\"group_id\":\"42\"}""#),
        "{text}"
    );
    assert!(lines[1].contains("ERROR"), "{text}");
    assert!(lines[1].contains("error_type=\"panic\""), "{text}");
    assert!(lines[1].contains("error_message=\"kaboom\""), "{text}");
    assert!(lines[1].contains("request_id=\"req-1\""), "{text}");
    assert!(lines[1].contains("panic=true"), "{text}");
}
