use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::Response;
use http_body::Body;
use observe_core::RequestFacts;
use observe_errors::ErrorReport;
use observe_log::RequestLine;
use observe_metrics::RequestRecording;
use observe_request_id::{ResponseHeader, Scoped};
use observe_trace::ServerSpan;
use pin_project_lite::pin_project;

/// One request, observed: its facts and what each signal started for it.
pub(super) struct Observation {
    pub(super) facts: RequestFacts,
    pub(super) trace: ServerSpan,
    pub(super) metrics: RequestRecording,
    /// `None` for paths that are not logged.
    pub(super) line: Option<RequestLine>,
}

impl Observation {
    /// Polls `inner` with the request's trace context current and inside
    /// its `request` span (the request id is the scope's).
    fn poll_in_scope<F: Future>(
        &mut self,
        inner: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<F::Output> {
        let line = &self.line;
        self.trace.in_scope(|| {
            let _entered = line.as_ref().map(|line| line.span().enter());
            inner.poll(cx)
        })
    }

    fn finish<B: Body>(self, response: &Response<B>) {
        let Self {
            facts,
            trace,
            metrics,
            line,
        } = self;
        // One clock read: the line's `duration_ms`, the histogram sample and
        // the span's length.
        let elapsed = facts.start.elapsed();
        if let Some(line) = line {
            line.finish(&facts, response, elapsed);
        }
        metrics.finish(
            response.status().as_u16(),
            response.extensions().get::<ErrorReport>(),
            elapsed,
        );
        trace.finish(facts, response, elapsed);
    }

    /// The inner service failed with an error; the server answers `500`.
    fn fail(self) {
        let elapsed = self.facts.start.elapsed();
        if let Some(line) = self.line {
            line.fail(&self.facts, elapsed);
        }
        self.metrics.finish(500, None, elapsed);
        self.trace.fail(self.facts, elapsed);
    }

    /// The client went away before the response.
    fn abort(self) {
        let elapsed = self.facts.start.elapsed();
        if let Some(line) = self.line {
            line.abort(&self.facts, elapsed);
        }
        self.metrics.abort(elapsed);
        self.trace.abort(self.facts, elapsed);
    }
}

pin_project! {
    /// The response future of [`Observe`](super::Observe).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Scoped<F>,
        // Taken when the signals are handed the outcome. Boxed: this future
        // is moved several times on its way up (axum boxes it, `Oneshot`
        // holds it), and the observation is most of its size; one
        // allocation costs fewer instructions than those moves.
        observation: Option<Box<Observation>>,
        response_header: ResponseHeader,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before the response: the client went away.
            if let Some(observation) = this.project().observation.take() {
                observation.abort();
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(
        inner: Scoped<F>,
        observation: Observation,
        response_header: ResponseHeader,
    ) -> Self {
        Self {
            inner,
            observation: Some(Box::new(observation)),
            response_header,
        }
    }

    /// A request no signal records: it only gets its request id.
    pub(super) fn unobserved(inner: Scoped<F>, response_header: ResponseHeader) -> Self {
        Self {
            inner,
            observation: None,
            response_header,
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("finished", &self.observation.is_none())
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut inner = this.inner;
        let polled = match this.observation.as_mut() {
            Some(observation) => observation.poll_in_scope(inner.as_mut(), cx),
            None => inner.as_mut().poll(cx),
        };
        let mut result = ready!(polled);
        let request_id = inner.take_id();
        let observation = this.observation.take();
        match &mut result {
            Ok(response) => {
                if let Some(request_id) = request_id {
                    this.response_header.set(response, request_id);
                }
                if let Some(observation) = observation {
                    observation.finish(response);
                }
            }
            Err(_) => {
                if let Some(observation) = observation {
                    observation.fail();
                }
            }
        }
        Poll::Ready(result)
    }
}
