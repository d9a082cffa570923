//! The HTTP client of the `http/protobuf` transport: hyper on the export
//! thread's runtime.
//!
//! observe does not depend on `opentelemetry-otlp` at all: that crate's
//! client features change which client its exporter builds for itself, and
//! some combinations of them (`hyper-client` with the crate's default
//! `reqwest-blocking-client`, which an application already using
//! OpenTelemetry has) do not compile. A client of our own works with any
//! feature set the application brings.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
/// Why a request failed.
pub(crate) type HttpError = Box<dyn std::error::Error + Send + Sync>;

/// The largest answer read from a collector; its answers are a few bytes
/// (an `ExportTraceServiceResponse`), so anything bigger is not one.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// An OTLP/HTTP client: one pooled hyper client, a deadline per request
/// that covers reading the answer.
#[derive(Debug, Clone)]
pub(crate) struct OtlpHttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl OtlpHttpClient {
    /// A client whose every request, answer included, ends within `timeout`.
    pub(crate) fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            // A collector closes idle connections on its own schedule; a
            // short idle life avoids sending a batch into a closing socket.
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self { client, timeout }
    }

    async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let response = self
            .client
            .request(Request::from_parts(parts, Full::new(body)))
            .await?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BYTES).collect().await?;
        Ok(Response::from_parts(parts, body.to_bytes()))
    }
}

impl OtlpHttpClient {
    /// Sends `request` and reads the answer, within the client's timeout.
    pub(crate) async fn send_bytes(
        &self,
        request: Request<Bytes>,
    ) -> Result<Response<Bytes>, HttpError> {
        match tokio::time::timeout(self.timeout, self.send(request)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer from the collector within {:?}", self.timeout).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    /// One connection answered with `answer` after reading the request.
    async fn server(answer: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = vec![0; 4096];
            let _ = socket.read(&mut buffer).await;
            let _ = socket.write_all(answer).await;
            // Hold the connection open: the client must not wait for close.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        format!("http://{addr}/v1/traces")
    }

    fn post(url: &str) -> Request<Bytes> {
        Request::post(url)
            .header("content-type", "application/x-protobuf")
            .body(Bytes::from_static(b"\x0a\x00"))
            .unwrap()
    }

    #[tokio::test]
    async fn returns_status_headers_and_body() {
        let url =
            server(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\nx-answer: yes\r\n\r\nnope!")
                .await;
        let client = OtlpHttpClient::new(Duration::from_secs(5));
        let response = client.send_bytes(post(&url)).await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()["x-answer"], "yes");
        assert_eq!(response.body().as_ref(), b"nope!");
    }

    #[tokio::test]
    async fn a_body_that_never_ends_is_cut_by_the_deadline() {
        let url = server(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial").await;
        let client = OtlpHttpClient::new(Duration::from_millis(200));
        let error = client.send_bytes(post(&url)).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "no answer from the collector within 200ms"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = OtlpHttpClient::new(Duration::from_secs(2));
        assert!(
            client
                .send_bytes(post(&format!("http://{addr}/v1/traces")))
                .await
                .is_err()
        );
    }
}
