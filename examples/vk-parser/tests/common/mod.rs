//! What the demo's tests share: the stand-in on a port, a fresh SQLite
//! file, a VK client, and one call through the app.
#![allow(dead_code, clippy::unwrap_used)]

use std::{path::PathBuf, time::Duration};

use axum::{Router, body::Body};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use observe::Observability;
use serde_json::Value;
use tower::ServiceExt;
use vk_parser::{VkClient, standin::server::Faults};

/// An answer, read whole.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) request_id: String,
    pub(crate) content_type: String,
    pub(crate) json: Value,
}

/// `method path` with `headers` and a JSON `body` through `app`.
pub(crate) async fn call(
    app: &Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (status, request_id, content_type) = (
        response.status(),
        header("x-request-id"),
        header("content-type"),
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        request_id,
        content_type,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// The VK stand-in on a loopback port; its base URL.
pub(crate) async fn standin(faults: Faults) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = vk_parser::standin::server::router(faults);
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

/// A SQLite URL on a fresh file named after `name` and this process.
pub(crate) fn sqlite(name: &str) -> (String, PathBuf) {
    let file = std::env::temp_dir().join(format!("vk-parser-{name}-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&file);
    (format!("sqlite://{}?mode=rwc", file.display()), file)
}

/// A VK client of `base` recording into `obs`.
pub(crate) fn vk_client(obs: &Observability, base: &str, timeout: Duration) -> VkClient {
    VkClient::new(
        base,
        "offline",
        timeout,
        obs.client_layer(),
        obs.metrics().clone(),
    )
    .unwrap()
}
