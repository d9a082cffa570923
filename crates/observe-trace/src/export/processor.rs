//! Spans made by the OpenTelemetry SDK (from `tracing` spans, through
//! tracing-opentelemetry) join the same queue as the layers' own.

use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::{
    error::{OTelSdkError, OTelSdkResult},
    trace::{Span, SpanData, SpanProcessor},
};

use super::{Item, SpanSink, TraceHandle};

/// Hands every ended SDK span to the exporter thread.
#[derive(Clone)]
pub(crate) struct QueueProcessor {
    sink: SpanSink,
    handle: TraceHandle,
}

impl QueueProcessor {
    pub(crate) fn new(handle: &TraceHandle) -> Self {
        Self {
            sink: handle.sink(),
            handle: handle.clone(),
        }
    }
}

impl std::fmt::Debug for QueueProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueueProcessor")
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.sink.send(Item::Sdk(Box::new(span)));
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.handle
            .flush(super::DEFAULT_SHUTDOWN_TIMEOUT)
            .map_err(|_| OTelSdkError::Timeout(super::DEFAULT_SHUTDOWN_TIMEOUT))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.handle
            .flush(timeout)
            .map_err(|_| OTelSdkError::Timeout(timeout))
    }
}
