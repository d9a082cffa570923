use std::{
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
    time::SystemTime,
};

use axum::extract::{ConnectInfo, MatchedPath};
use http::{
    Request, Response,
    header::{HOST, USER_AGENT},
};
use observe_request_id::RequestId;
use tower_service::Service;

use super::{Config, ResponseFuture, future::Recording};
use crate::context::{self, CurrentGuard, TraceContext, new_span_id, new_trace_id};

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
        let (trace_state, baggage) = context::passed_on(headers);
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
            // A vendor's state belongs to the caller's trace only.
            trace_state: trace_state.filter(|_| parent.is_some()),
            baggage,
        };
        let recording = match &self.config.sink {
            Some(sink) if sampled => {
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
                    start: SystemTime::now(),
                }))
            }
            _ => None,
        };
        let otel = self.config.bridge.then(|| {
            use opentelemetry::trace::TraceContextExt;
            opentelemetry::Context::new().with_remote_span_context(context.span_context())
        });
        let extensions = request.extensions_mut();
        extensions.insert(context.ids());
        extensions.insert(context.clone());
        let current = CurrentGuard::enter(Some(context));
        let _otel = otel.clone().map(opentelemetry::Context::attach);
        let inner = self.inner.call(request);
        let context = current.exit();
        ResponseFuture::new(inner, context, recording, otel)
    }
}
