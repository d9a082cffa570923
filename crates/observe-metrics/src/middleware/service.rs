use std::task::{Context, Poll};

use axum::extract::MatchedPath;
use http::{Request, Response};
use tower_service::Service;

use super::ResponseFuture;
use crate::Metrics;

/// The service of [`MetricsLayer`](super::MetricsLayer).
#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    pub(super) inner: S,
    pub(super) metrics: Metrics,
}

impl<S> MetricsService<S> {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for MetricsService<S>
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
        let start = observe_core::RequestStart::of(&mut request);
        // Counted from here: if `call` panics, the recording is dropped with
        // it and counts the request as aborted.
        let recording = self.metrics.start_request(
            request.method(),
            request.extensions().get::<MatchedPath>(),
            start,
        );
        ResponseFuture::new(self.inner.call(request), recording)
    }
}
