use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::Response;
use observe_core::Elapsed;
use observe_errors::ErrorReport;
use pin_project_lite::pin_project;

use super::RequestRecording;

pin_project! {
    /// The response future of [`MetricsService`](super::MetricsService).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        recording: Option<RequestRecording>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, recording: RequestRecording) -> Self {
        Self {
            inner,
            recording: Some(recording),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = ready!(this.inner.poll(cx));
        if let Some(recording) = this.recording.take() {
            match &mut result {
                Ok(response) => {
                    // The duration the request log (inside) measured, so the
                    // histogram sample is the line's `duration_ms`.
                    let elapsed = Elapsed::of(response, &recording.start());
                    recording.finish(
                        response.status().as_u16(),
                        response.extensions().get::<ErrorReport>(),
                        elapsed,
                    );
                }
                // A service error has no status; the server answers 500.
                Err(_) => {
                    let elapsed = recording.start().elapsed();
                    recording.finish(500, None, elapsed);
                }
            }
        }
        Poll::Ready(result)
    }
}
