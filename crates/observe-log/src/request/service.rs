use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use http_body::Body;
use observe_core::RequestFacts;
use tower_service::Service;

use super::{Config, RequestLine, ResponseFuture};

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
        let Some(line) = RequestLine::start(&self.config, &request) else {
            return ResponseFuture::new(self.inner.call(request), None);
        };
        let facts = RequestFacts::of(&mut request);
        let inner = line.span().in_scope(|| self.inner.call(request));
        ResponseFuture::new(inner, Some((line, facts)))
    }
}
