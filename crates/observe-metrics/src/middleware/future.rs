use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::Response;
use observe_core::{Elapsed, RequestStart};
use observe_errors::ErrorReport;
use pin_project_lite::pin_project;

use crate::{ABORTED_STATUS, routes::Endpoint};

pin_project! {
    /// The response future of [`MetricsService`](super::MetricsService).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        recording: Option<Recording>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, recording: Recording) -> Self {
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
                    let elapsed = Elapsed::of(response, &recording.started);
                    recording.finish(
                        response.status().as_u16(),
                        response.extensions().get::<ErrorReport>(),
                        elapsed,
                    );
                }
                // A service error has no status; the server answers 500.
                Err(_) => {
                    let elapsed = recording.started.elapsed();
                    recording.finish(500, None, elapsed);
                }
            }
        }
        Poll::Ready(result)
    }
}

/// A request being recorded. Dropped unfinished, it records the request as
/// aborted, so the in-flight gauge comes back down when a client goes away.
pub(super) struct Recording {
    endpoint: Arc<Endpoint>,
    started: RequestStart,
    method: u8,
    finished: bool,
}

impl Recording {
    pub(super) fn new(endpoint: Arc<Endpoint>, method: usize, started: RequestStart) -> Self {
        Self {
            endpoint,
            started,
            // Below `METHODS.len()`, so it fits.
            method: method as u8,
            finished: false,
        }
    }

    fn finish(mut self, status: u16, report: Option<&ErrorReport>, elapsed: std::time::Duration) {
        self.finished = true;
        self.endpoint
            .finish(usize::from(self.method), status, nanos(elapsed), report);
    }

    fn nanos(&self) -> u64 {
        nanos(self.started.elapsed())
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if !self.finished {
            self.endpoint
                .finish(usize::from(self.method), ABORTED_STATUS, self.nanos(), None);
        }
    }
}

fn nanos(elapsed: std::time::Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}
