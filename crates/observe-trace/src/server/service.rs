use std::{
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
};

use axum::extract::{ConnectInfo, MatchedPath};
use http::{
    Request, Response,
    header::{HOST, USER_AGENT},
};
use observe_request_id::RequestId;
use tower_service::Service;

use super::{Config, ResponseFuture, future::Recording};
use crate::context::{self, TraceContext, new_span_id, new_trace_id};

/// The service of [`TraceLayer`](super::TraceLayer).
#[derive(Clone)]
pub struct Trace<S> {
    pub(super) inner: S,
    pub(super) config: Arc<Config>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Trace<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> Trace<S> {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Trace<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let headers = request.headers();
        let parent = context::extract(headers);
        // A caller's vendor state and baggage belong to its trace: without a
        // valid traceparent there is nothing to continue.
        let passed = parent.and_then(|_| context::passed_on(headers));
        let trace_id = parent.map_or_else(new_trace_id, |parent| parent.trace_id);
        let sampled = self
            .config
            .sampler
            .should_sample(parent.map(|parent| parent.sampled), trace_id);
        let context = TraceContext {
            trace_id,
            span_id: new_span_id(),
            parent_span_id: parent.map(|parent| parent.span_id),
            sampled,
            passed,
            sink: None,
        };
        let mut context = context;
        let recording = match &self.config.sink {
            Some(sink) if sampled => {
                context.sink = Some(sink.clone());
                let start = observe_core::RequestStart::of(&mut request);
                let extensions = request.extensions();
                Some(Box::new(Recording {
                    sink: sink.clone(),
                    method: request.method().clone(),
                    route: extensions.get::<MatchedPath>().cloned(),
                    uri: request.uri().clone(),
                    host: request.headers().get(HOST).cloned(),
                    client_address: extensions
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|info| info.0.ip()),
                    user_agent: request.headers().get(USER_AGENT).cloned(),
                    version: request.version(),
                    request_id: extensions.get::<RequestId>().cloned(),
                    start,
                }))
            }
            _ => None,
        };
        let otel = self.config.bridge.then(|| bridge_context(&context));
        // The ids for the layers inside; the whole context is `current()`.
        request.extensions_mut().insert(context.ids());
        // Current while the inner future runs, where handlers do their work.
        let inner = self.inner.call(request);
        ResponseFuture::new(inner, Some(context), recording, otel)
    }
}

/// The OpenTelemetry context `tracing` spans inside the request get as their
/// parent. A sampled-out request shares one, built once, that no sampler
/// samples: its trace id's low bits are all ones, above any ratio's bound,
/// and it is marked not sampled for the parent-based ones.
fn bridge_context(context: &TraceContext) -> opentelemetry::Context {
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    static UNSAMPLED: std::sync::OnceLock<opentelemetry::Context> = std::sync::OnceLock::new();
    if context.sampled {
        return opentelemetry::Context::new().with_remote_span_context(context.span_context());
    }
    UNSAMPLED
        .get_or_init(|| {
            let mut trace_id = [0xff; 16];
            trace_id[0] = 0x01;
            opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes(trace_id),
                SpanId::from_bytes([0x01; 8]),
                TraceFlags::default(),
                true,
                TraceState::default(),
            ))
        })
        .clone()
}
