use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use observe_core::RequestFacts;
use tower_service::Service;

use super::{Config, ResponseFuture, ServerSpan};

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
        let span = ServerSpan::start(&self.config, &mut request);
        // The facts only a recorded span needs.
        let facts = span.is_recorded().then(|| RequestFacts::of(&mut request));
        // Current while the inner future runs, where handlers do their work.
        let inner = self.inner.call(request);
        ResponseFuture::new(inner, span, facts)
    }
}
