use observe_errors::{ErrorCapture, ErrorCaptureLayer};
use observe_log::{RequestLog, RequestLogLayer};
use observe_metrics::{MetricsLayer, MetricsService};
use observe_request_id::{RequestIdLayer, RequestIdService};
use observe_trace::{Trace, TraceLayer};
use tower_layer::Layer;

use crate::{BodyOutcomeLayer, BodyOutcomeService};

/// The whole stack as one layer, from [`Observability::layer`](crate::Observability::layer).
///
/// Outermost first: request id, trace, metrics, request log, error capture,
/// and innermost [`BodyOutcomeLayer`] (a failed body read as `499`/`408`). Add it with
/// `Router::layer`, so the metrics know the route template.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    pub(crate) request_id: RequestIdLayer,
    pub(crate) trace: TraceLayer,
    pub(crate) metrics: MetricsLayer,
    pub(crate) request_log: RequestLogLayer,
    pub(crate) errors: ErrorCaptureLayer,
}

/// The service [`ObserveLayer`] wraps around an inner service `S`.
pub type ObserveService<S> =
    RequestIdService<Trace<MetricsService<RequestLog<ErrorCapture<BodyOutcomeService<S>>>>>>;

impl<S> Layer<S> for ObserveLayer {
    type Service = ObserveService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.request_id.layer(
            self.trace.layer(
                self.metrics.layer(
                    self.request_log
                        .layer(self.errors.layer(BodyOutcomeLayer::new().layer(inner))),
                ),
            ),
        )
    }
}
