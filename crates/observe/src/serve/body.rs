//! Request bodies as [`serve`](crate::Observability::serve) hands them to the
//! service: a read that makes no progress for the body read timeout fails,
//! and how a body read failed (the client left, or went silent) travels in
//! the request extensions to [`BodyOutcomeLayer`], which turns the
//! service's answer into `499` or `408` before any signal records it.
//!
//! # Example
//!
//! `serve` does this itself; for another server that wraps its bodies in
//! [`WatchedBody`], put the layer innermost:
//!
//! ```
//! use axum::{Router, routing::post};
//! use observe::BodyOutcomeLayer;
//!
//! let app: Router = Router::new()
//!     .route("/upload", post(|body: String| async move { body.len().to_string() }))
//!     .layer(BodyOutcomeLayer::new());
//! ```

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_layer::Layer;
use tower_service::Service;

/// The status of a request whose client went away while the service read
/// its body (nginx's "client closed request").
pub const CLIENT_CLOSED_STATUS: StatusCode =
    match StatusCode::from_u16(observe_core::CLIENT_CLOSED_STATUS) {
        Ok(status) => status,
        Err(_) => panic!("499 is a valid status code"),
    };

const READ_OK: u8 = 0;
const CLIENT_GONE: u8 = 1;
const TIMED_OUT: u8 = 2;

/// How the request body's reading ended, shared by the body and
/// [`BodyOutcomeLayer`] through the request extensions. `serve` puts it in
/// the extensions of requests that have a body, not of those without one.
#[derive(Clone, Default)]
pub struct BodyOutcome(Arc<AtomicU8>);

impl BodyOutcome {
    /// The status that replaces the service's answer: `499` when the client
    /// went away during its upload, `408` when it went silent.
    pub fn status(&self) -> Option<StatusCode> {
        match self.0.load(Ordering::Acquire) {
            CLIENT_GONE => Some(CLIENT_CLOSED_STATUS),
            TIMED_OUT => Some(StatusCode::REQUEST_TIMEOUT),
            _ => None,
        }
    }

    fn set(&self, outcome: u8) {
        let _ = self
            .0
            .compare_exchange(READ_OK, outcome, Ordering::AcqRel, Ordering::Acquire);
    }
}

impl fmt::Debug for BodyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BodyOutcome").field(&self.status()).finish()
    }
}

/// The error of a [`WatchedBody`] read that made no progress in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyReadTimeout(pub Duration);

impl fmt::Display for BodyReadTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no request body data for {:?}", self.0)
    }
}

impl std::error::Error for BodyReadTimeout {}

pin_project! {
    /// A request body whose reads fail after `timeout` without a frame, and
    /// which records in its [`BodyOutcome`] why a read failed.
    pub struct WatchedBody<B> {
        #[pin]
        inner: B,
        // Boxed only while a read waits: most bodies arrive in the first poll.
        sleep: Option<Pin<Box<Sleep>>>,
        timeout: Duration,
        outcome: BodyOutcome,
    }
}

impl<B> WatchedBody<B> {
    /// Watches `inner`; a failure is recorded in `outcome`.
    pub fn new(inner: B, timeout: Duration, outcome: BodyOutcome) -> Self {
        Self {
            inner,
            sleep: None,
            timeout,
            outcome,
        }
    }
}

impl<B> Body for WatchedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                *this.sleep = None;
                Poll::Ready(frame.map(|frame| {
                    frame.map_err(|error| {
                        let error = error.into();
                        if client_went_away(error.as_ref()) {
                            this.outcome.set(CLIENT_GONE);
                        }
                        error
                    })
                }))
            }
            Poll::Pending => {
                let timeout = *this.timeout;
                let sleep = this.sleep.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep_until(Instant::now() + timeout))
                });
                ready!(sleep.as_mut().poll(cx));
                *this.sleep = None;
                this.outcome.set(TIMED_OUT);
                Poll::Ready(Some(Err(Box::new(BodyReadTimeout(timeout)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> fmt::Debug for WatchedBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedBody")
            .field("timeout", &self.timeout)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

/// Whether a body read failed because the connection is gone: closed before
/// the body was complete, reset, or the stream cancelled.
fn client_went_away(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(error) = source {
        if let Some(hyper) = error.downcast_ref::<hyper::Error>()
            && (hyper.is_incomplete_message() || hyper.is_canceled() || hyper.is_closed())
        {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            )
        {
            return true;
        }
        source = error.source();
    }
    false
}

/// Turns the answer to a request whose body read failed into `499` (the
/// client went away) or `408` (it went silent), so the log line, the
/// metrics and the span say what happened rather than the `400` a body
/// extractor answers. Does nothing for requests without a [`BodyOutcome`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyOutcomeLayer {
    _private: (),
}

impl BodyOutcomeLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for BodyOutcomeLayer {
    type Service = BodyOutcomeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyOutcomeService { inner }
    }
}

/// The service of [`BodyOutcomeLayer`].
#[derive(Debug, Clone)]
pub struct BodyOutcomeService<S> {
    inner: S,
}

impl<S> BodyOutcomeService<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Takes the inner service back.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BodyOutcomeService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BodyOutcomeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let outcome = request.extensions().get::<BodyOutcome>().cloned();
        BodyOutcomeFuture {
            inner: self.inner.call(request),
            outcome,
        }
    }
}

pin_project! {
    /// The future of [`BodyOutcomeService`].
    pub struct BodyOutcomeFuture<F> {
        #[pin]
        inner: F,
        outcome: Option<BodyOutcome>,
    }
}

impl<F, ResBody, E> Future for BodyOutcomeFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(status) = this.outcome.as_ref().and_then(BodyOutcome::status) {
            *response.status_mut() = status;
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body as AxumBody, routing::post};
    use http_body_util::{BodyExt, StreamBody};
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        Router::new()
            .route(
                "/upload",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .layer(BodyOutcomeLayer::new())
    }

    fn request(
        body: impl Body<Data = Bytes, Error = std::io::Error> + Send + 'static,
        timeout: Duration,
    ) -> (Request<AxumBody>, BodyOutcome) {
        let outcome = BodyOutcome::default();
        let mut request = Request::post("/upload")
            .body(AxumBody::new(WatchedBody::new(
                body,
                timeout,
                outcome.clone(),
            )))
            .unwrap();
        request.extensions_mut().insert(outcome.clone());
        (request, outcome)
    }

    fn stream(
        frames: Vec<Result<Frame<Bytes>, std::io::Error>>,
        then_hang: bool,
    ) -> impl Body<Data = Bytes, Error = std::io::Error> + Send + 'static {
        let frames = futures_util::stream::iter(frames);
        let tail = futures_util::stream::pending();
        let stream: Pin<Box<dyn futures_util::Stream<Item = _> + Send>> = if then_hang {
            Box::pin(futures_util::StreamExt::chain(frames, tail))
        } else {
            Box::pin(frames)
        };
        StreamBody::new(stream)
    }

    #[tokio::test]
    async fn a_whole_body_is_read_and_answered_as_the_service_says() {
        let body = stream(vec![Ok(Frame::data(Bytes::from_static(b"hello")))], false);
        let (request, outcome) = request(body, Duration::from_secs(1));
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(outcome.status(), None);
        let text = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&text[..], b"5");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_fails_after_the_timeout_and_answers_408() {
        let body = stream(vec![Ok(Frame::data(Bytes::from_static(b"he")))], true);
        let (request, outcome) = request(body, Duration::from_secs(60));
        let started = Instant::now();
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(outcome.status(), Some(StatusCode::REQUEST_TIMEOUT));
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test]
    async fn a_client_gone_mid_body_answers_499() {
        let body = stream(
            vec![
                Ok(Frame::data(Bytes::from_static(b"he"))),
                Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            ],
            false,
        );
        let (request, outcome) = request(body, Duration::from_secs(60));
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), 499);
        assert_eq!(outcome.status(), Some(CLIENT_CLOSED_STATUS));
    }

    #[tokio::test]
    async fn a_malformed_body_stays_the_services_answer() {
        let body = stream(
            vec![Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "bad chunk",
            ))],
            false,
        );
        let (request, outcome) = request(body, Duration::from_secs(60));
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(outcome.status(), None);
    }

    #[tokio::test]
    async fn requests_without_an_outcome_pass_untouched() {
        let response = app()
            .oneshot(
                Request::post("/upload")
                    .body(AxumBody::from("abc"))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
