//! A webhook receiver on a loopback port: it records every JSON body it is
//! sent (with when and on which path) and answers from a script (a status,
//! a `429` with its delay, or no answer at all), `200` once the script is
//! used up.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::Value;

/// What the receiver answers next.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    /// This status, empty body.
    Status(u16),
    /// `429`, with `Retry-After: header` if given, and `body`.
    TooManyRequests {
        /// The `Retry-After` value.
        header: Option<&'static str>,
        /// The body (Discord puts `retry_after` here).
        body: &'static str,
    },
    /// Never answers.
    Hang,
}

/// One request received.
#[derive(Clone, Debug)]
pub struct Received {
    /// When it arrived.
    pub at: Instant,
    /// Its path.
    pub path: String,
    /// Its `content-type`.
    pub content_type: String,
    /// Its body, parsed (`Value::Null` when not JSON).
    pub body: Value,
}

/// The receiver; clones share it.
#[derive(Clone, Default)]
pub struct WebhookReceiver {
    script: Arc<Mutex<VecDeque<Answer>>>,
    received: Arc<Mutex<Vec<Received>>>,
    hang_forever: Arc<std::sync::atomic::AtomicBool>,
}

impl WebhookReceiver {
    /// Starts on a free loopback port; returns it and its base URL
    /// (`http://127.0.0.1:port`).
    pub async fn start(script: impl IntoIterator<Item = Answer>) -> (Self, String) {
        let receiver = Self::default();
        receiver
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(script);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/", post(receive))
            .route("/{*path}", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    /// From now on, answers nothing at all.
    pub fn hang(&self) {
        self.hang_forever
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `count` requests arrived or `limit` passed; returns what
    /// arrived.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Received> {
        self.wait_until(limit, |received| received.len() >= count)
            .await
    }

    /// Waits until `done` holds for what arrived, or `limit` passed.
    pub async fn wait_until(
        &self,
        limit: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let received = self.received();
            if done(&received) || Instant::now() > deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn receive(
    State(receiver): State<WebhookReceiver>,
    uri: Uri,
    request: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    receiver
        .received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Received {
            at: Instant::now(),
            path: uri.path().to_owned(),
            content_type: request
                .get("content-type")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
    let answer = if receiver
        .hang_forever
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        Some(Answer::Hang)
    } else {
        receiver
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    };
    match answer {
        None => StatusCode::OK.into_response(),
        Some(Answer::Status(status)) => StatusCode::from_u16(status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Some(Answer::TooManyRequests { header, body }) => {
            let mut response = (StatusCode::TOO_MANY_REQUESTS, body).into_response();
            if let Some(value) = header.and_then(|value| value.parse().ok()) {
                response.headers_mut().insert("retry-after", value);
            }
            response
        }
        Some(Answer::Hang) => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
    }
}
