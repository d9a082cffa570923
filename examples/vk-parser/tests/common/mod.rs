//! What the demo's tests share: the stand-in on a port, a fresh SQLite
//! file, a VK client, and one call through the app.
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

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
    let (parts, body) = response.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (status, request_id, content_type) =
        (parts.status, header("x-request-id"), header("content-type"));
    let bytes = body.collect().await.unwrap().to_bytes();
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

/// A handle named `service` that installs no globals and reads no
/// environment: one per test.
pub(crate) fn observability(service: &str) -> Observability {
    Observability::builder(service)
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .env_vars::<&str, &str>([])
        .init()
        .unwrap()
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

/// The `vk-parser` binary, running; killed when dropped.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address nothing listens on now.
pub(crate) fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The binary with its defaults, on a fresh SQLite file.
pub(crate) async fn start() -> Running {
    start_with(&[]).await.0
}

/// The binary with `vars`, on a fresh SQLite file (returned as a URL).
pub(crate) async fn start_with(vars: &[(&str, &str)]) -> (Running, String) {
    let addr = free_port();
    // A fresh SQLite file per run: the default one would keep earlier runs.
    let database = std::env::temp_dir().join(format!("vk-parser-binary-{}.db", addr.port()));
    let _ = std::fs::remove_file(&database);
    let database_url = format!("sqlite://{}?mode=rwc", database.display());
    let child = Command::new(env!("CARGO_BIN_EXE_vk-parser"))
        .env("VK_PARSER_ADDR", addr.to_string())
        .env("DATABASE_URL", &database_url)
        .env("RUST_LOG", "warn")
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running { child, addr };
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if let Some(exit) = running.child.try_wait().unwrap() {
            panic!("vk-parser exited at start with {exit} (its error is on stderr above)");
        }
        assert!(
            Instant::now() < deadline,
            "vk-parser did not listen on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (running, database_url)
}

/// `http://addr` + `path` of `running`.
pub(crate) fn url(running: &Running, path: &str) -> String {
    format!("http://{}{path}", running.addr)
}
