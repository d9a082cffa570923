use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::Response;
use observe_core::RequestFacts;
use pin_project_lite::pin_project;

use super::ServerSpan;

pin_project! {
    /// The future of [`Trace`](super::Trace).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: ServerSpan,
        // Taken when the span is recorded; only for recorded spans.
        facts: Option<RequestFacts>,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Dropped before the response: the client went away.
            if let Some(facts) = this.facts.take() {
                let span = std::mem::replace(this.span, ServerSpan::finished());
                let elapsed = facts.start.elapsed();
                span.abort(facts, elapsed);
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, span: ServerSpan, facts: Option<RequestFacts>) -> Self {
        Self { inner, span, facts }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        let mut result = ready!(this.span.in_scope(|| inner.poll(cx)));
        if let Some(facts) = this.facts.take() {
            let span = std::mem::replace(this.span, ServerSpan::finished());
            match &mut result {
                Ok(response) => {
                    let elapsed = observe_core::Elapsed::of(response, &facts.start);
                    span.finish(facts, response, elapsed);
                }
                Err(_) => {
                    let elapsed = facts.start.elapsed();
                    span.fail(facts, elapsed);
                }
            }
        }
        Poll::Ready(result)
    }
}
