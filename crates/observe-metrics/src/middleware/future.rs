use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use quanta::Instant;

use http::Response;
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
        let result = ready!(this.inner.poll(cx));
        if let Some(recording) = this.recording.take() {
            match &result {
                Ok(response) => recording.finish(
                    response.status().as_u16(),
                    response.extensions().get::<ErrorReport>(),
                ),
                // A service error has no status; the server answers 500.
                Err(_) => recording.finish(500, None),
            }
        }
        Poll::Ready(result)
    }
}

/// A request being recorded. Dropped unfinished, it records the request as
/// aborted, so the in-flight gauge comes back down when a client goes away.
pub(super) struct Recording {
    endpoint: Arc<Endpoint>,
    started: Instant,
    method: u8,
    finished: bool,
}

impl Recording {
    pub(super) fn new(endpoint: Arc<Endpoint>, method: usize, started: Instant) -> Self {
        Self {
            endpoint,
            started,
            // Below `METHODS.len()`, so it fits.
            method: method as u8,
            finished: false,
        }
    }

    fn finish(mut self, status: u16, report: Option<&ErrorReport>) {
        self.finished = true;
        self.endpoint
            .finish(usize::from(self.method), status, self.nanos(), report);
    }

    fn nanos(&self) -> u64 {
        let elapsed = Instant::now().duration_since(self.started);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
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
