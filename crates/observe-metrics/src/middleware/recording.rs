use std::{sync::Arc, time::Duration};

use axum::extract::MatchedPath;
use http::Method;
use observe_core::RequestStart;
use observe_errors::ErrorReport;

use crate::{ABORTED_STATUS, Metrics, naming::method_index, routes::Endpoint};

/// One request being counted: the in-flight gauge is up from
/// [`Metrics::start_request`] until [`finish`](Self::finish), or until the
/// recording is dropped unfinished, which counts the request as aborted
/// ([`ABORTED_STATUS`]), so the gauge comes back down when a client goes
/// away.
///
/// [`MetricsLayer`](crate::MetricsLayer) makes one per request; a layer that
/// observes a request once for every signal (observe's) makes it itself.
#[must_use = "dropped unfinished, the request counts as aborted"]
pub struct RequestRecording {
    endpoint: Arc<Endpoint>,
    start: RequestStart,
    method: u8,
    finished: bool,
}

impl std::fmt::Debug for RequestRecording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestRecording")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Starts counting a request to `route` (its template; `None` for an
    /// unmatched request) that started at `start`.
    pub fn start_request(
        &self,
        method: &Method,
        route: Option<&MatchedPath>,
        start: RequestStart,
    ) -> RequestRecording {
        let method = method_index(method);
        let endpoint = self.routes().endpoint(route.map(MatchedPath::as_str));
        endpoint.start(method);
        RequestRecording {
            endpoint,
            start,
            // Below `METHODS.len()`, so it fits.
            method: method as u8,
            finished: false,
        }
    }
}

impl RequestRecording {
    /// Counts the request as answered with `status` after `elapsed`; a 5xx
    /// with `report` counts under its error type.
    pub fn finish(mut self, status: u16, report: Option<&ErrorReport>, elapsed: Duration) {
        self.finished = true;
        self.endpoint
            .finish(usize::from(self.method), status, nanos(elapsed), report);
    }

    /// Counts the request as aborted ([`ABORTED_STATUS`]) after `elapsed`.
    pub fn abort(self, elapsed: Duration) {
        self.finish(ABORTED_STATUS, None, elapsed);
    }

    /// When the request started.
    pub fn start(&self) -> RequestStart {
        self.start
    }
}

impl Drop for RequestRecording {
    fn drop(&mut self) {
        if !self.finished {
            self.endpoint.finish(
                usize::from(self.method),
                ABORTED_STATUS,
                nanos(self.start.elapsed()),
                None,
            );
        }
    }
}

fn nanos(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}
