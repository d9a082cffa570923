//! [`ClientTraceLayer`]: outgoing HTTP calls as client spans, with the trace
//! and the request id passed on.
//!
//! Wrap any tower HTTP client in it, such as hyper-util's legacy `Client`.
//! Each call made while a request is handled (inside
//! [`TraceLayer`](crate::TraceLayer)) becomes a child span of that request's
//! span: the call carries `traceparent` naming the client span, the caller's
//! `tracestate` and `baggage`, and the current `x-request-id`. When sampled
//! and exporting, the client span is exported, named `{METHOD}`, with
//! `http.request.method`, `server.address`, `server.port`, `url.full`
//! (without the query) and `http.response.status_code`; a status of 400 or
//! more, or no response at all, is an error.
//!
//! For reqwest, with the `reqwest` feature,
//! [`ClientTraceLayer::send_reqwest`] does the same around
//! `Client::execute`. For any other client, put the headers on with
//! [`inject_current`]: the call is then not a span of its own, and the
//! callee's span is a child of the request's span.
//!
//! # Example
//!
//! ```
//! use http_body_util::Empty;
//! use hyper::body::Bytes;
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//! use observe_trace::ClientTraceLayer;
//! use tower::ServiceBuilder;
//!
//! # async fn demo() {
//! let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
//! let client = ServiceBuilder::new()
//!     .layer(ClientTraceLayer::new())
//!     .service(client);
//! # let _ = client;
//! # }
//! ```

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::SystemTime,
};

use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    Sampler, TraceContext,
    context::{current, new_span_id, new_trace_id},
    export::{ClientRecord, Item, SpanSink},
};

/// Makes outgoing calls client spans; see the [module docs](self).
#[derive(Clone)]
pub struct ClientTraceLayer {
    sink: Option<SpanSink>,
    sampler: Sampler,
}

impl std::fmt::Debug for ClientTraceLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTraceLayer")
            .field("exporting", &self.sink.is_some())
            .finish()
    }
}

impl Default for ClientTraceLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientTraceLayer {
    /// Propagation only, nothing exported; [`Tracing::client_layer`](crate::Tracing::client_layer)
    /// gives one that exports.
    pub fn new() -> Self {
        Self {
            sink: None,
            sampler: Sampler::default(),
        }
    }

    pub(crate) fn exporting(sampler: Sampler, sink: Option<SpanSink>) -> Self {
        Self { sink, sampler }
    }
}

impl<S> Layer<S> for ClientTraceLayer {
    type Service = ClientTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientTrace {
            inner,
            sink: self.sink.clone(),
            sampler: self.sampler,
        }
    }
}

/// The service of [`ClientTraceLayer`].
#[derive(Clone)]
pub struct ClientTrace<S> {
    inner: S,
    sink: Option<SpanSink>,
    sampler: Sampler,
}

impl<S: std::fmt::Debug> std::fmt::Debug for ClientTrace<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTrace")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> ClientTrace<S> {
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

/// Puts the current request's trace (`traceparent` naming the current span,
/// `tracestate`, `baggage`) and request id on outgoing `headers`; `false`
/// when no request is being handled on this thread.
pub fn inject_current(headers: &mut HeaderMap) -> bool {
    observe_request_id::propagate_current(headers);
    match current() {
        Some(context) => {
            context.inject(headers);
            true
        }
        None => false,
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ClientTrace<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ClientResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let recording = start(
            self.sink.as_ref(),
            self.sampler,
            &mut parts.headers,
            &parts.method,
            &parts.uri,
        );
        let request = Request::from_parts(parts, body);
        ClientResponseFuture {
            inner: self.inner.call(request),
            recording,
        }
    }
}

/// The span a call is a child of: the request's, or a `tracing` span
/// entered inside it (a `parse` span, say), which the OpenTelemetry bridge
/// makes the current OpenTelemetry context.
fn parent() -> Option<TraceContext> {
    use opentelemetry::trace::TraceContextExt;
    let request = current()?;
    let otel = opentelemetry::Context::current();
    let inner = otel.span().span_context().clone();
    if inner.is_valid()
        && inner.trace_id() == request.trace_id
        && inner.span_id() != request.span_id
    {
        return Some(TraceContext {
            span_id: inner.span_id(),
            sampled: inner.is_sampled(),
            ..request
        });
    }
    Some(request)
}

/// The client span of one call: a child of the current request's span (a
/// new trace outside any request), its headers put on `headers`.
fn start(
    sink: Option<&SpanSink>,
    sampler: Sampler,
    headers: &mut HeaderMap,
    method: &Method,
    uri: &Uri,
) -> Option<Box<ClientRecording>> {
    let context = match parent() {
        Some(parent) => parent.child(),
        None => {
            let trace_id = new_trace_id();
            TraceContext {
                trace_id,
                span_id: new_span_id(),
                parent_span_id: None,
                sampled: sampler.should_sample(None, trace_id),
                passed: None,
                sink: None,
            }
        }
    };
    context.inject(headers);
    observe_request_id::propagate_current(headers);
    match sink {
        Some(sink) if context.sampled => Some(Box::new(ClientRecording {
            sink: sink.clone(),
            context,
            method: method.clone(),
            uri: uri.clone(),
            start: SystemTime::now(),
        })),
        _ => None,
    }
}

#[cfg(feature = "reqwest")]
impl ClientTraceLayer {
    /// Sends a reqwest request as a client span, with `traceparent`,
    /// `tracestate`, `baggage` and `x-request-id` on it: the small wrapper
    /// for a client that is not a tower service.
    ///
    /// ```no_run
    /// # async fn demo(obs: observe_trace::Tracing) -> Result<(), reqwest::Error> {
    /// let client = reqwest::Client::new();
    /// let request = client.get("http://vk-api.internal/method/wall.get").build()?;
    /// let response = obs.client_layer().send_reqwest(&client, request).await?;
    /// # let _ = response;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send_reqwest(
        &self,
        client: &reqwest::Client,
        mut request: reqwest::Request,
    ) -> reqwest::Result<reqwest::Response> {
        let uri: Uri = request.url().as_str().parse().unwrap_or_default();
        let method = request.method().clone();
        let recording = start(
            self.sink.as_ref(),
            self.sampler,
            request.headers_mut(),
            &method,
            &uri,
        );
        // Records the call as aborted if this future is dropped first.
        let mut guard = RecordingGuard(recording);
        let result = client.execute(request).await;
        if let Some(recording) = guard.0.take() {
            match &result {
                Ok(response) => recording.finish(Some(response.status()), None),
                Err(error) if error.is_timeout() => recording.finish(None, Some("timeout")),
                Err(_) => recording.finish(None, Some("request_failed")),
            }
        }
        result
    }
}

#[cfg(feature = "reqwest")]
struct RecordingGuard(Option<Box<ClientRecording>>);

#[cfg(feature = "reqwest")]
impl Drop for RecordingGuard {
    fn drop(&mut self) {
        if let Some(recording) = self.0.take() {
            recording.finish(None, Some("aborted"));
        }
    }
}

struct ClientRecording {
    sink: SpanSink,
    context: TraceContext,
    method: Method,
    uri: Uri,
    start: SystemTime,
}

impl ClientRecording {
    fn finish(self, status: Option<StatusCode>, error: Option<&'static str>) {
        self.sink.send(Item::Client(Box::new(ClientRecord {
            context: self.context,
            method: self.method,
            uri: self.uri,
            start: self.start,
            end: SystemTime::now(),
            status,
            error,
        })));
    }
}

pin_project! {
    /// The future of [`ClientTrace`].
    pub struct ClientResponseFuture<F> {
        #[pin]
        inner: F,
        recording: Option<Box<ClientRecording>>,
    }

    impl<F> PinnedDrop for ClientResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(recording) = this.project().recording.take() {
                recording.finish(None, Some("aborted"));
            }
        }
    }
}

impl<F> std::fmt::Debug for ClientResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientResponseFuture")
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ClientResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Some(recording) = this.recording.take() {
            match &result {
                Ok(response) => recording.finish(Some(response.status()), None),
                Err(_) => recording.finish(None, Some("request_failed")),
            }
        }
        Poll::Ready(result)
    }
}
