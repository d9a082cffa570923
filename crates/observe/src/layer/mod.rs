//! [`ObserveLayer`]: every signal of a request from one observation.

mod future;
mod service;
#[cfg(test)]
mod tests;

use observe_errors::{ErrorCapture, ErrorCaptureLayer};
use observe_log::RequestLogLayer;
use observe_metrics::MetricsLayer;
use observe_request_id::RequestIdLayer;
use observe_trace::TraceLayer;
use tower_layer::Layer;

pub use future::ResponseFuture;
pub use service::Observe;

use crate::{BodyOutcomeLayer, BodyOutcomeService};

/// The whole stack as one layer, from [`Observability::layer`](crate::Observability::layer).
///
/// The signal crates each have a layer of their own (request id, trace,
/// metrics, request log), usable alone. Stacked, each would take the
/// request's facts, read the clock and wrap the response future for itself.
/// This layer does it once: it gives the request its id, continues or
/// starts its trace, takes its [`RequestFacts`](observe_core::RequestFacts)
/// and its start, and when the response head is ready (or the future is
/// dropped: `499`) hands the one outcome, status, duration, sizes and the
/// [`ErrorReport`](observe_errors::ErrorReport), to the metrics, the request
/// line and the server span, in that order of the documented stack:
/// request id, trace, metrics, request log. Error capture stays a layer
/// inside it, the only producer of the report, and [`BodyOutcomeLayer`]
/// (a failed body read as `499`/`408`) innermost.
///
/// Add it with `Router::layer`, so the metrics know the route template.
///
/// # Example
///
/// ```
/// use axum::{Router, routing::get};
///
/// # fn demo(obs: &observe::Observability) {
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(obs.layer());
/// # let _ = app;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    pub(crate) request_id: RequestIdLayer,
    pub(crate) trace: TraceLayer,
    pub(crate) metrics: MetricsLayer,
    pub(crate) request_log: RequestLogLayer,
    pub(crate) errors: ErrorCaptureLayer,
    /// Route templates that get their request id and nothing else: the
    /// built-in routes [`Observability::router`](crate::Observability::router)
    /// serves beside the application, under the same layer.
    pub(crate) built_in_routes: &'static [&'static str],
}

impl ObserveLayer {
    /// This layer, leaving the routes `templates` out of every signal but
    /// the request id.
    pub(crate) fn with_built_in_routes(mut self, templates: &'static [&'static str]) -> Self {
        self.built_in_routes = templates;
        self
    }
}

/// The service [`ObserveLayer`] wraps around an inner service `S`.
pub type ObserveService<S> = Observe<ErrorCapture<BodyOutcomeService<S>>>;

impl<S> Layer<S> for ObserveLayer {
    type Service = ObserveService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner: self.errors.layer(BodyOutcomeLayer::new().layer(inner)),
            response_header: self.request_id.response_header(),
            request_id: self.request_id.clone(),
            trace: self.trace.clone(),
            metrics: self.metrics.metrics().clone(),
            request_log: self.request_log.clone(),
            built_in_routes: self.built_in_routes,
        }
    }
}
