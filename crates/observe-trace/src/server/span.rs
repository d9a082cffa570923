use std::time::Duration;

use http::{Request, Response, StatusCode};
use observe_core::RequestFacts;
use observe_errors::ErrorReport;
use observe_request_id::RequestId;

use super::Config;
use crate::{
    TraceContext,
    context::{self, CurrentGuard, new_span_id, new_trace_id},
    export::{Item, ServerRecord, SpanSink},
};

/// One request's server span, from [`TraceLayer::start`](super::TraceLayer::start):
/// its [`TraceContext`], made [`current`](crate::current) by
/// [`in_scope`](Self::in_scope) while the request's work runs, and, when it
/// is sampled and exported, what [`finish`](Self::finish) hands to the
/// exporter thread. Dropped unfinished, it records nothing: call
/// [`abort`](Self::abort) for a request whose client went away.
///
/// [`Trace`](super::Trace) makes one per request; a layer that observes a
/// request once for every signal (observe's) makes it itself.
pub struct ServerSpan {
    /// `None` only while it is current.
    context: Option<TraceContext>,
    /// Where the span goes, when it is sampled and exported.
    sink: Option<SpanSink>,
    request_id: Option<RequestId>,
    /// The parent of `tracing` spans inside, for tracing-opentelemetry.
    otel: Option<opentelemetry::Context>,
}

impl std::fmt::Debug for ServerSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSpan")
            .field("context", &self.context)
            .field("recorded", &self.sink.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerSpan {
    /// Continues the caller's trace, or starts one, for `request`, and puts
    /// the span's ids in its extensions.
    pub(super) fn start<B>(config: &Config, request: &mut Request<B>) -> Self {
        let headers = request.headers();
        let parent = context::extract(headers);
        // A caller's vendor state and baggage belong to its trace: without a
        // valid traceparent there is nothing to continue.
        let passed = parent.and_then(|_| context::passed_on(headers));
        let trace_id = parent.map_or_else(new_trace_id, |parent| parent.trace_id);
        let sampled = config
            .sampler
            .should_sample(parent.map(|parent| parent.sampled), trace_id);
        let sink = config.sink.as_ref().filter(|_| sampled).cloned();
        let context = TraceContext {
            trace_id,
            span_id: new_span_id(),
            parent_span_id: parent.map(|parent| parent.span_id),
            sampled,
            passed,
            sink: sink.clone(),
        };
        let otel = config.bridge.then(|| bridge_context(&context));
        // The ids for the layers inside; the whole context is `current()`.
        request.extensions_mut().insert(context.ids());
        Self {
            request_id: sink
                .as_ref()
                .and_then(|_| request.extensions().get::<RequestId>().cloned()),
            context: Some(context),
            sink,
            otel,
        }
    }

    /// A span already recorded, left in a future that finished.
    pub(super) fn finished() -> Self {
        Self {
            context: None,
            sink: None,
            request_id: None,
            otel: None,
        }
    }

    /// Whether [`finish`](Self::finish) records it: sampled, and exported.
    pub fn is_recorded(&self) -> bool {
        self.sink.is_some()
    }

    /// The span's context.
    pub fn context(&self) -> Option<&TraceContext> {
        self.context.as_ref()
    }

    /// Runs `f` with the span's context [`current`](crate::current), and as
    /// the OpenTelemetry parent of `tracing` spans made in it.
    pub fn in_scope<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let current = CurrentGuard::enter(self.context.take());
        let otel = self.otel.clone().map(opentelemetry::Context::attach);
        let result = f();
        drop(otel);
        self.context = current.exit();
        result
    }

    /// Records the span of a request answered with `response` after
    /// `elapsed`: a 5xx is an error, of the type its [`ErrorReport`] names.
    pub fn finish<B>(self, facts: RequestFacts, response: &Response<B>, elapsed: Duration) {
        if self.sink.is_none() {
            return;
        }
        let status = response.status();
        let error_type = status
            .is_server_error()
            .then(|| response.extensions().get::<ErrorReport>())
            .flatten()
            .map(ErrorReport::error_type);
        self.record(facts, Some(status), error_type, elapsed);
    }

    /// Records the span of a request the inner service failed with an
    /// error (the server answers `500`).
    pub fn fail(self, facts: RequestFacts, elapsed: Duration) {
        self.record(
            facts,
            Some(StatusCode::INTERNAL_SERVER_ERROR),
            Some("service_error"),
            elapsed,
        );
    }

    /// Records the span of a request whose client went away first: no
    /// status.
    pub fn abort(self, facts: RequestFacts, elapsed: Duration) {
        self.record(facts, None, None, elapsed);
    }

    fn record(
        self,
        facts: RequestFacts,
        status: Option<StatusCode>,
        error_type: Option<&str>,
        elapsed: Duration,
    ) {
        let (Some(sink), Some(context)) = (self.sink, self.context) else {
            return;
        };
        let start = facts.start.wall();
        // The texts are copied out so the request's buffer is not held until
        // the export; a record the exporter is done with lends its buffer.
        let mut spare = sink.spare_server_record();
        let mut texts = spare
            .as_mut()
            .map(|record| std::mem::take(&mut record.texts))
            .unwrap_or_default();
        texts.fill(
            &facts.uri,
            facts.host.as_ref(),
            facts.user_agent.as_ref(),
            self.request_id.as_ref(),
            error_type,
        );
        let record = ServerRecord {
            context,
            method: facts.method,
            route: facts.route,
            texts,
            local_port: None,
            client_address: facts.peer.map(|peer| peer.ip()),
            version: facts.version,
            start,
            // The duration the other signals report, from the same start.
            end: start + elapsed,
            status,
        };
        let record = match spare {
            Some(mut spare) => {
                *spare = record;
                spare
            }
            None => Box::new(record),
        };
        sink.send(Item::Server(record));
    }
}

/// The OpenTelemetry context `tracing` spans inside the request get as their
/// parent. A sampled-out request shares one, built once, that no sampler
/// samples: its trace id's low bits are all ones, above any ratio's bound,
/// and it is marked not sampled for the parent-based ones.
fn bridge_context(context: &TraceContext) -> opentelemetry::Context {
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    static UNSAMPLED: std::sync::OnceLock<opentelemetry::Context> = std::sync::OnceLock::new();
    if context.sampled {
        return opentelemetry::Context::new().with_remote_span_context(context.span_context());
    }
    UNSAMPLED
        .get_or_init(|| {
            let mut trace_id = [0xff; 16];
            trace_id[0] = 0x01;
            opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes(trace_id),
                SpanId::from_bytes([0x01; 8]),
                TraceFlags::default(),
                true,
                TraceState::default(),
            ))
        })
        .clone()
}
