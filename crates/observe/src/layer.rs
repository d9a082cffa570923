use observe_errors::{ErrorCapture, ErrorCaptureLayer};
use observe_metrics::{MetricsLayer, MetricsService};
use observe_request_id::{RequestIdLayer, RequestIdService};
use tower_layer::Layer;

/// The whole stack as one layer, from [`Observability::layer`](crate::Observability::layer).
///
/// Outermost first: request id, metrics, error capture. Add it with
/// `Router::layer`, so the metrics know the route template.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    pub(crate) request_id: RequestIdLayer,
    pub(crate) metrics: MetricsLayer,
    pub(crate) errors: ErrorCaptureLayer,
}

/// The service [`ObserveLayer`] wraps around an inner service `S`.
pub type ObserveService<S> = RequestIdService<MetricsService<ErrorCapture<S>>>;

impl<S> Layer<S> for ObserveLayer {
    type Service = ObserveService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.request_id
            .layer(self.metrics.layer(self.errors.layer(inner)))
    }
}
