use std::{
    future::Future,
    net::IpAddr,
    pin::Pin,
    task::{Context, Poll, ready},
};

use axum::extract::MatchedPath;
use http::{HeaderValue, Method, Response, StatusCode, Uri, Version};
use observe_errors::ErrorReport;
use pin_project_lite::pin_project;

use crate::{
    TraceContext,
    context::CurrentGuard,
    export::{Item, ServerRecord, SpanSink},
};

/// What a sampled request's span needs besides its context.
pub(crate) struct Recording {
    pub(crate) sink: SpanSink,
    pub(crate) method: Method,
    pub(crate) route: Option<MatchedPath>,
    pub(crate) uri: Uri,
    pub(crate) host: Option<HeaderValue>,
    pub(crate) client_address: Option<IpAddr>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) version: Version,
    pub(crate) request_id: Option<observe_request_id::RequestId>,
    pub(crate) start: observe_core::RequestStart,
}

impl Recording {
    fn finish(
        self,
        context: TraceContext,
        status: Option<StatusCode>,
        error_type: Option<String>,
        elapsed: std::time::Duration,
    ) {
        let record = ServerRecord {
            context,
            method: self.method,
            route: self.route,
            uri: self.uri,
            host: self.host,
            local_port: None,
            client_address: self.client_address,
            user_agent: self.user_agent,
            version: self.version,
            request_id: self.request_id,
            start: self.start.wall(),
            // The duration the layers inside measured (the request line's
            // and the histogram's), from the same start.
            end: self.start.wall() + elapsed,
            status,
            error_type,
        };
        self.sink.send(Item::Server(Box::new(record)));
    }
}

pin_project! {
    /// The future of [`Trace`](super::Trace).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        context: Option<TraceContext>,
        recording: Option<Box<Recording>>,
        otel: Option<opentelemetry::Context>,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Dropped before the response: the client went away.
            if let (Some(recording), Some(context)) = (this.recording.take(), this.context.take()) {
                let elapsed = recording.start.elapsed();
                recording.finish(context, None, None, elapsed);
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(
        inner: F,
        context: Option<TraceContext>,
        recording: Option<Box<Recording>>,
        otel: Option<opentelemetry::Context>,
    ) -> Self {
        Self {
            inner,
            context,
            recording,
            otel,
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("context", &self.context)
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
        let current = CurrentGuard::enter(this.context.take());
        let otel = this.otel.clone().map(opentelemetry::Context::attach);
        let polled = this.inner.poll(cx);
        drop(otel);
        *this.context = current.exit();
        let mut result = ready!(polled);
        if let (Some(recording), Some(context)) = (this.recording.take(), this.context.take()) {
            match &mut result {
                Ok(response) => {
                    let elapsed = observe_core::Elapsed::of(response, &recording.start);
                    let status = response.status();
                    let error_type = status
                        .is_server_error()
                        .then(|| response.extensions().get::<ErrorReport>())
                        .flatten()
                        .map(|report| report.error_type().to_owned());
                    recording.finish(context, Some(status), error_type, elapsed);
                }
                Err(_) => {
                    let elapsed = recording.start.elapsed();
                    recording.finish(
                        context,
                        Some(StatusCode::INTERNAL_SERVER_ERROR),
                        Some("service_error".to_owned()),
                        elapsed,
                    );
                }
            }
        }
        Poll::Ready(result)
    }
}
