use std::sync::Arc;

use tower_layer::Layer;

use super::{ServerSpan, Trace};
use crate::{Sampler, export::SpanSink};

/// Opens the server span of every request; see the [module docs](super).
#[derive(Clone)]
pub struct TraceLayer {
    pub(super) config: Arc<Config>,
}

pub(crate) struct Config {
    pub(crate) sampler: Sampler,
    /// Where sampled spans go; `None`: ids and propagation only.
    pub(crate) sink: Option<SpanSink>,
    /// Whether `tracing` spans inside become children (the OpenTelemetry
    /// context is set while the inner service runs).
    pub(crate) bridge: bool,
}

impl std::fmt::Debug for TraceLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceLayer")
            .field("sampler", &self.config.sampler)
            .field("exporting", &self.config.sink.is_some())
            .finish()
    }
}

impl Default for TraceLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceLayer {
    /// Ids and propagation, nothing exported, the default sampler
    /// (`parentbased_always_on`). [`Tracing::layer`](crate::Tracing::layer)
    /// gives one that exports.
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                sampler: Sampler::default(),
                sink: None,
                bridge: false,
            }),
        }
    }

    pub(crate) fn exporting(sampler: Sampler, sink: Option<SpanSink>, bridge: bool) -> Self {
        Self {
            config: Arc::new(Config {
                sampler,
                sink,
                bridge,
            }),
        }
    }

    /// Which traces are sampled.
    pub fn sampler(self, sampler: Sampler) -> Self {
        Self {
            config: Arc::new(Config {
                sampler,
                sink: self.config.sink.clone(),
                bridge: self.config.bridge,
            }),
        }
    }
}

impl TraceLayer {
    /// Continues the caller's trace, or starts one, for `request`, and puts
    /// the span's [`TraceIds`](observe_core::TraceIds) in its extensions.
    /// [`Trace`] calls it for every request; a layer that observes a
    /// request once for every signal (observe's) calls it itself, then
    /// [`ServerSpan::finish`].
    pub fn start<B>(&self, request: &mut http::Request<B>) -> ServerSpan {
        ServerSpan::start(&self.config, request)
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace {
            inner,
            config: self.config.clone(),
        }
    }
}
