use tower_layer::Layer;

use super::MetricsService;
use crate::Metrics;

/// Records RED metrics for every request into a [`Metrics`] registry.
///
/// Get one from [`Metrics::layer`] to share the registry with `/metrics`, or
/// make one with [`new`](Self::new) and read its registry with
/// [`metrics`](Self::metrics). Add it with `Router::layer`, so the route
/// template is known.
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    metrics: Metrics,
}

impl MetricsLayer {
    /// A layer with a registry of its own, with the defaults.
    pub fn new() -> Self {
        Self {
            metrics: Metrics::new(),
        }
    }

    /// The registry this layer records into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl Default for MetricsLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Metrics> for MetricsLayer {
    fn from(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}
