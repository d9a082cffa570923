//! Helpers for observe's end-to-end tests: a server on a loopback port, an
//! HTTP client, and a raw TCP exchange for bytes a client library would
//! refuse to send.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod alertmanager;
pub mod fixture;
pub mod logs;
pub mod otlp;
pub mod postgres;
pub mod prometheus;
pub mod proxy;
mod tool_server;
pub mod webhook;

use std::{net::SocketAddr, time::Duration};

use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use observe::Observability;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

/// A server running `app` behind `obs` on 127.0.0.1 and a free port.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    /// Starts `app`, with `obs.layer()` applied, on a free loopback port.
    pub async fn start(obs: &Observability, app: Router) -> Self {
        Self::serve(obs, app.layer(obs.layer())).await
    }

    /// Serves `router` as it is (made with `obs.router(app)`, say) through
    /// `obs.serve_with_shutdown`, on a free loopback port.
    pub async fn serve(obs: &Observability, router: Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, signal) = oneshot::channel::<()>();
        let obs = obs.clone();
        let app = router;
        let task = tokio::spawn(async move {
            obs.serve_with_shutdown(listener, app, async {
                let _ = signal.await;
            })
            .await
        });
        Self {
            addr,
            shutdown: Some(shutdown),
            task,
        }
    }

    /// Sends the shutdown signal.
    pub fn signal_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Signals shutdown and waits up to `limit` for `serve` to return.
    pub async fn stop(mut self, limit: Duration) -> std::io::Result<()> {
        self.signal_shutdown();
        tokio::time::timeout(limit, self.task)
            .await
            .expect("serve returned within the limit")
            .expect("the server task did not panic")
    }

    /// `http://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// The one value of header `name` as text; panics when absent or repeated.
    pub fn header(&self, name: &str) -> &str {
        let mut values = self.headers.get_all(name).iter();
        let value = values.next().unwrap_or_else(|| panic!("no {name} header"));
        assert!(values.next().is_none(), "several {name} headers");
        value.to_str().unwrap()
    }

    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends `request` with a fresh HTTP/1.1 client.
pub async fn send(request: Request<Full<Bytes>>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// The status of `GET url`, `None` when the server cannot be reached.
pub async fn try_get(url: &str) -> Option<StatusCode> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::get(url).body(Full::default()).ok()?;
    let response = tokio::time::timeout(Duration::from_secs(2), client.request(request))
        .await
        .ok()?
        .ok()?;
    Some(response.status())
}

/// `GET url` with `headers`.
pub async fn http_get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(request.body(Full::default()).unwrap()).await
}

/// A request with a method, a JSON body and headers.
pub async fn with_body(method: &str, url: &str, content_type: &str, body: &str) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    send(request).await
}

/// `POST url` with a JSON body.
pub async fn post_json(url: &str, body: &str) -> Reply {
    with_body("POST", url, "application/json", body).await
}

/// One raw HTTP/1.1 exchange on an open connection: writes `request`, reads
/// one response with a `content-length` body, and returns its head and body.
pub async fn raw_exchange(stream: &mut TcpStream, request: &[u8]) -> (String, String) {
    stream.write_all(request).await.unwrap();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&buffer[end + 4..end + 4 + length]).into_owned();
                return (head, body);
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("a response within 5 s")
            .unwrap();
        assert!(read > 0, "connection closed before a whole response");
        buffer.extend_from_slice(&chunk[..read]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The value of header `name` in a raw response head.
pub fn raw_header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}
