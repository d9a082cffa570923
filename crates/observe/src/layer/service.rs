use std::task::{Context, Poll};

use axum::extract::MatchedPath;
use http::{Request, Response};
use http_body::Body;
use observe_core::{RequestFacts, RequestStart};
use observe_log::RequestLogLayer;
use observe_metrics::Metrics;
use observe_request_id::{RequestIdLayer, ResponseHeader, scope};
use observe_trace::TraceLayer;
use tower_service::Service;

use super::{ResponseFuture, future::Observation};

/// The service of [`ObserveLayer`](super::ObserveLayer).
#[derive(Debug, Clone)]
pub struct Observe<S> {
    pub(super) inner: S,
    pub(super) request_id: RequestIdLayer,
    pub(super) response_header: ResponseHeader,
    pub(super) trace: TraceLayer,
    pub(super) metrics: Metrics,
    pub(super) request_log: RequestLogLayer,
    pub(super) built_in_routes: &'static [&'static str],
}

impl<S> Observe<S> {
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

    /// Whether `request` was routed to one of the built-in routes.
    fn is_built_in<B>(&self, request: &Request<B>) -> bool {
        !self.built_in_routes.is_empty()
            && request
                .extensions()
                .get::<MatchedPath>()
                .is_some_and(|route| self.built_in_routes.contains(&route.as_str()))
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Observe<S>
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
        let start = RequestStart::now();
        let request_id = self.request_id.assign_at(&mut request, start.wall());
        if self.is_built_in(&request) {
            let called = self.inner.call(request);
            return ResponseFuture::unobserved(
                scope(request_id, called),
                self.response_header.clone(),
            );
        }
        let mut trace = self.trace.start(&mut request);
        let facts = RequestFacts::new(&request, start);
        // Counted from here: if `call` panics, the recording is dropped with
        // it and counts the request as aborted.
        let metrics = self
            .metrics
            .start_request(&facts.method, facts.route.as_ref(), start);
        let line = self.request_log.start(&request);
        let inner = &mut self.inner;
        let called = trace.in_scope(|| match &line {
            Some(line) => line.span().in_scope(|| inner.call(request)),
            None => inner.call(request),
        });
        ResponseFuture::new(
            scope(request_id, called),
            Observation {
                facts,
                trace,
                metrics,
                line,
            },
            self.response_header.clone(),
        )
    }
}
