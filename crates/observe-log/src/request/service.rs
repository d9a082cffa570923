use std::{
    sync::Arc,
    task::{Context, Poll},
};

use axum::extract::MatchedPath;
use http::{Request, Response, header::USER_AGENT};
use http_body::Body;
use observe_core::TraceIds;
use observe_request_id::RequestId;
use tower_service::Service;

use super::{Config, ResponseFuture, UserId, client_ip::client_ip, future::RequestFacts};

/// The service of [`RequestLogLayer`](super::RequestLogLayer).
#[derive(Debug, Clone)]
pub struct RequestLog<S> {
    pub(super) inner: S,
    pub(super) config: Arc<Config>,
}

impl<S> RequestLog<S> {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestLog<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body,
    ResBody: Body,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        if self
            .config
            .excluded
            .iter()
            .any(|excluded| excluded.matches(path))
        {
            return ResponseFuture::unlogged(self.inner.call(request));
        }
        let started = observe_core::RequestStart::of(&mut request);
        let request_id = request.extensions().get::<RequestId>();
        let trace = request.extensions().get::<TraceIds>();
        let span = tracing::info_span!(
            target: super::SPAN_TARGET,
            "request",
            request_id = request_id.map(RequestId::as_str),
            trace_id = trace.map(TraceIds::trace_id),
            span_id = trace.map(TraceIds::span_id),
        );
        let extensions = request.extensions();
        let facts = RequestFacts {
            method: request.method().clone(),
            endpoint: extensions.get::<MatchedPath>().cloned(),
            uri: request.uri().clone(),
            user_agent: request.headers().get(USER_AGENT).cloned(),
            client_ip: client_ip(extensions, request.headers(), &self.config.trusted_proxies),
            request_bytes: request.body().size_hint().exact(),
            user_id: extensions.get::<UserId>().cloned(),
        };
        let inner = span.in_scope(|| self.inner.call(request));
        ResponseFuture::logged(inner, span, facts, started, self.config.clone())
    }
}
