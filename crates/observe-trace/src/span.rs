//! [`in_span`]: a span of the request's trace around a piece of work.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::SystemTime,
};

use pin_project_lite::pin_project;

use crate::{
    TraceContext,
    context::{CurrentGuard, current},
    export::{InternalRecord, Item},
};

/// Runs `future` as an internal span named `name`, a child of the request
/// being handled: outgoing calls through
/// [`ClientTraceLayer`](crate::ClientTraceLayer) and [`db`](crate::db) spans
/// inside it are its children. The span is exported when the future
/// finishes (or is dropped), whatever else holds on to `tracing` spans.
/// Outside a request, or when the trace is not sampled, it only runs
/// `future`.
///
/// ```
/// # async fn fetch_posts() {}
/// # async fn demo() {
/// observe_trace::in_span("parse", async {
///     fetch_posts().await;
/// })
/// .await;
/// # }
/// ```
pub fn in_span<F: Future>(name: &'static str, future: F) -> InSpan<F> {
    let context = current().map(|parent| parent.child());
    let otel = context.as_ref().map(|context| {
        use opentelemetry::trace::TraceContextExt;
        opentelemetry::Context::new().with_remote_span_context(context.span_context())
    });
    InSpan {
        inner: future,
        context,
        otel,
        name,
        start: SystemTime::now(),
    }
}

pin_project! {
    /// The future of [`in_span`].
    pub struct InSpan<F> {
        #[pin]
        inner: F,
        context: Option<TraceContext>,
        otel: Option<opentelemetry::Context>,
        name: &'static str,
        start: SystemTime,
    }

    impl<F> PinnedDrop for InSpan<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(context) = this.context.take() {
                finish(context, this.name, *this.start, true);
            }
        }
    }
}

impl<F> std::fmt::Debug for InSpan<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InSpan")
            .field("name", &self.name)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

fn finish(context: TraceContext, name: &'static str, start: SystemTime, aborted: bool) {
    if !context.sampled {
        return;
    }
    if let Some(sink) = context.sink.clone() {
        sink.send(Item::Internal(Box::new(InternalRecord {
            context,
            name,
            start,
            end: SystemTime::now(),
            aborted,
        })));
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(context) = this.context.take() else {
            return this.inner.poll(cx);
        };
        let current = CurrentGuard::enter(Some(context));
        let otel = this.otel.clone().map(opentelemetry::Context::attach);
        let polled = this.inner.poll(cx);
        drop(otel);
        *this.context = current.exit();
        let output = ready!(polled);
        if let Some(context) = this.context.take() {
            finish(context, this.name, *this.start, false);
        }
        Poll::Ready(output)
    }
}
