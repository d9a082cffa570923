//! W3C Trace Context: the `traceparent` header in and out, and the ids of
//! the span being handled.

use std::{cell::Cell, fmt, sync::Arc};

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// `traceparent`.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate`.
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// `baggage`.
pub static BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// Longest `tracestate` or `baggage` kept; longer ones are dropped, as the
/// W3C specifications allow (512 and 8192 bytes).
const MAX_TRACESTATE: usize = 512;
const MAX_BAGGAGE: usize = 8192;

/// The span a request is handled in: its ids, its parent, whether it is
/// sampled, and the vendor state and baggage to pass on. In the request
/// extensions of the layers inside [`TraceLayer`](crate::TraceLayer).
#[derive(Clone)]
pub struct TraceContext {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    /// `None` for a root span.
    pub(crate) parent_span_id: Option<SpanId>,
    pub(crate) sampled: bool,
    /// The caller's `tracestate` and `baggage`, rarely there: kept out of
    /// line so the context stays small to move.
    pub(crate) passed: Option<Arc<Passed>>,
    /// Where spans of this trace go, when it is sampled and exported: for
    /// [`in_span`](crate::in_span) children.
    pub(crate) sink: Option<crate::export::SpanSink>,
}

impl PartialEq for TraceContext {
    fn eq(&self, other: &Self) -> bool {
        self.trace_id == other.trace_id
            && self.span_id == other.span_id
            && self.parent_span_id == other.parent_span_id
            && self.sampled == other.sampled
            && self.passed == other.passed
    }
}

impl Eq for TraceContext {}

/// `tracestate` and `baggage` to pass on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Passed {
    pub(crate) trace_state: Option<HeaderValue>,
    pub(crate) baggage: Option<HeaderValue>,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("trace_id", &format_args!("{}", self.trace_id))
            .field("span_id", &format_args!("{}", self.span_id))
            .field(
                "parent_span_id",
                &self.parent_span_id.map(|id| id.to_string()),
            )
            .field("sampled", &self.sampled)
            .finish_non_exhaustive()
    }
}

/// A valid incoming `traceparent`: the caller's span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RemoteParent {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) sampled: bool,
}

pub(crate) fn new_trace_id() -> TraceId {
    loop {
        // fastrand: wyrand, thread-local and seeded from the OS; a draw is a
        // multiply, where the SDK's `RandomIdGenerator` runs ChaCha. Ids are
        // random, as W3C level 2 asks.
        let id = fastrand::u128(..);
        if id != 0 {
            return TraceId::from(id);
        }
    }
}

pub(crate) fn new_span_id() -> SpanId {
    loop {
        let id = fastrand::u64(..);
        if id != 0 {
            return SpanId::from(id);
        }
    }
}

impl TraceContext {
    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// This span's id.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The caller's span, when the request came with a valid `traceparent`.
    pub fn parent_span_id(&self) -> Option<SpanId> {
        self.parent_span_id
    }

    /// Whether this trace is recorded and exported.
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// The caller's `tracestate`, passed on to this span's children.
    pub fn trace_state(&self) -> Option<&HeaderValue> {
        self.passed.as_ref()?.trace_state.as_ref()
    }

    /// The caller's `baggage`, passed on to outgoing calls.
    pub fn baggage(&self) -> Option<&HeaderValue> {
        self.passed.as_ref()?.baggage.as_ref()
    }

    /// The `traceparent` that names this span as the parent.
    pub fn traceparent(&self) -> HeaderValue {
        traceparent(self.trace_id, self.span_id, self.sampled)
    }

    /// A child of this span (same trace, new span id), for an outgoing call.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            span_id: new_span_id(),
            parent_span_id: Some(self.span_id),
            sampled: self.sampled,
            passed: self.passed.clone(),
            sink: self.sink.clone(),
        }
    }

    /// Puts `traceparent` (and `tracestate`, `baggage` when there are some)
    /// naming this span as the parent on outgoing `headers`.
    pub fn inject(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT.clone(), self.traceparent());
        if let Some(passed) = &self.passed {
            if let Some(state) = &passed.trace_state {
                headers.insert(TRACESTATE.clone(), state.clone());
            }
            if let Some(baggage) = &passed.baggage {
                headers.insert(BAGGAGE.clone(), baggage.clone());
            }
        }
    }

    /// As an OpenTelemetry span context, for parents of `tracing` spans.
    pub fn span_context(&self) -> SpanContext {
        let trace_state = self
            .trace_state()
            .and_then(|state| state.to_str().ok())
            .and_then(|state| state.parse::<TraceState>().ok())
            .unwrap_or_default();
        SpanContext::new(
            self.trace_id,
            self.span_id,
            if self.sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            true,
            trace_state,
        )
    }

    /// The ids for the request log, as hex.
    pub fn ids(&self) -> observe_core::TraceIds {
        observe_core::TraceIds::new(self.trace_id.to_bytes(), self.span_id.to_bytes())
    }
}

/// `00-{trace id}-{span id}-{flags}`.
pub(crate) fn traceparent(trace_id: TraceId, span_id: SpanId, sampled: bool) -> HeaderValue {
    let ids = observe_core::TraceIds::new(trace_id.to_bytes(), span_id.to_bytes());
    let mut text = *b"00-00000000000000000000000000000000-0000000000000000-00";
    text[3..35].copy_from_slice(ids.trace_id().as_bytes());
    text[36..52].copy_from_slice(ids.span_id().as_bytes());
    if sampled {
        text[54] = b'1';
    }
    // Only hex digits and dashes: always a valid header value.
    HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("00"))
}

/// The caller's span from the request headers, if they carry exactly one
/// valid `traceparent`. Anything else starts a new trace.
pub(crate) fn extract(headers: &HeaderMap) -> Option<RemoteParent> {
    let mut values = headers.get_all(&TRACEPARENT).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_traceparent(value.as_bytes())
}

/// `tracestate` and `baggage` to pass on, when they are of a sane size.
pub(crate) fn passed_on(headers: &HeaderMap) -> Option<Arc<Passed>> {
    let keep = |name: &HeaderName, max: usize| {
        let mut values = headers.get_all(name).iter();
        let value = values.next()?;
        (values.next().is_none() && !value.is_empty() && value.len() <= max)
            // A copy, not a share of the request's buffer: the context goes
            // with the request's spans to the exporter, and a share would
            // hold that buffer (hyper's, for the connection) until the
            // export.
            .then(|| HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone()))
    };
    let passed = Passed {
        trace_state: keep(&TRACESTATE, MAX_TRACESTATE),
        baggage: keep(&BAGGAGE, MAX_BAGGAGE),
    };
    (passed.trace_state.is_some() || passed.baggage.is_some()).then(|| Arc::new(passed))
}

/// Parses `version-traceid-spanid-flags` as W3C Trace Context level 1 says:
/// version `ff` is invalid, a later version may carry more fields after a
/// dash, all-zero ids are invalid, hex must be lowercase.
pub(crate) fn parse_traceparent(bytes: &[u8]) -> Option<RemoteParent> {
    if bytes.len() < 55 {
        return None;
    }
    let version = hex_u8(&bytes[0..2])?;
    if version == 0xff || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    if version == 0 && bytes.len() != 55 {
        return None;
    }
    if bytes.len() > 55 && bytes[55] != b'-' {
        return None;
    }
    let mut trace_id = [0u8; 16];
    for (index, byte) in trace_id.iter_mut().enumerate() {
        *byte = hex_u8(&bytes[3 + 2 * index..5 + 2 * index])?;
    }
    let mut span_id = [0u8; 8];
    for (index, byte) in span_id.iter_mut().enumerate() {
        *byte = hex_u8(&bytes[36 + 2 * index..38 + 2 * index])?;
    }
    let flags = hex_u8(&bytes[53..55])?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(RemoteParent {
        trace_id: TraceId::from_bytes(trace_id),
        span_id: SpanId::from_bytes(span_id),
        sampled: flags & 1 == 1,
    })
}

fn hex_u8(pair: &[u8]) -> Option<u8> {
    let digit = |byte: u8| match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    };
    Some(digit(pair[0])? << 4 | digit(pair[1])?)
}

thread_local! {
    static CURRENT: Cell<Option<TraceContext>> = const { Cell::new(None) };
}

/// The span of the request whose future is being polled on this thread, if
/// any: what [`ClientTraceLayer`](crate::ClientTraceLayer) makes outgoing
/// calls children of.
pub fn current() -> Option<TraceContext> {
    CURRENT
        .try_with(|slot| {
            let context = slot.take();
            let copy = context.clone();
            slot.set(context);
            copy
        })
        .ok()
        .flatten()
}

/// Sets the current context for the length of a poll; restores the previous
/// one when dropped, even by a panic.
pub(crate) struct CurrentGuard {
    previous: Option<TraceContext>,
}

impl CurrentGuard {
    pub(crate) fn enter(context: Option<TraceContext>) -> Self {
        let previous = CURRENT
            .try_with(|slot| slot.replace(context))
            .ok()
            .flatten();
        Self { previous }
    }

    /// Takes back the context set by [`enter`](Self::enter).
    pub(crate) fn exit(mut self) -> Option<TraceContext> {
        let previous = self.previous.take();
        let mine = CURRENT
            .try_with(|slot| slot.replace(previous))
            .ok()
            .flatten();
        std::mem::forget(self);
        mine
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|slot| slot.set(previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_parses_and_round_trips() {
        let parent = parse_traceparent(VALID.as_bytes());
        assert_eq!(
            parent,
            Some(RemoteParent {
                trace_id: TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736")
                    .unwrap_or(TraceId::INVALID),
                span_id: SpanId::from_hex("00f067aa0ba902b7").unwrap_or(SpanId::INVALID),
                sampled: true,
            })
        );
        let parent = parent.unwrap_or_else(|| panic!("valid"));
        assert_eq!(
            traceparent(parent.trace_id, parent.span_id, true),
            HeaderValue::from_static(VALID)
        );
        let unsampled = VALID.replace("-01", "-00");
        assert_eq!(
            parse_traceparent(unsampled.as_bytes()).map(|parent| parent.sampled),
            Some(false)
        );
        // A later version may append fields.
        let future = VALID.replacen("00-", "cc-", 1) + "-extra";
        assert!(parse_traceparent(future.as_bytes()).is_some());
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for bad in [
            "",
            "00",
            "garbage",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            assert_eq!(parse_traceparent(bad.as_bytes()), None, "{bad}");
        }
        let mut headers = HeaderMap::new();
        headers.append(&TRACEPARENT, HeaderValue::from_static(VALID));
        assert!(extract(&headers).is_some());
        headers.append(&TRACEPARENT, HeaderValue::from_static(VALID));
        assert_eq!(extract(&headers), None, "two traceparents");
    }

    #[test]
    fn ids_are_distinct_and_never_zero() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let trace_id = new_trace_id();
            assert_ne!(trace_id, TraceId::INVALID);
            assert!(seen.insert(trace_id.to_bytes()));
            assert_ne!(new_span_id(), SpanId::INVALID);
        }
        let other = std::thread::spawn(new_trace_id)
            .join()
            .unwrap_or(TraceId::INVALID);
        assert!(!seen.contains(&other.to_bytes()));
    }

    #[test]
    fn the_current_context_is_restored_after_a_poll() {
        assert_eq!(current(), None);
        let context = TraceContext {
            trace_id: new_trace_id(),
            span_id: new_span_id(),
            parent_span_id: None,
            sampled: true,
            passed: None,
            sink: None,
        };
        let guard = CurrentGuard::enter(Some(context.clone()));
        assert_eq!(current(), Some(context.clone()));
        assert_eq!(guard.exit(), Some(context));
        assert_eq!(current(), None);
    }
}

#[cfg(test)]
mod properties {
    #![allow(clippy::unwrap_used)]

    use http::{HeaderMap, HeaderValue};
    use proptest::prelude::*;

    use super::{BAGGAGE, MAX_BAGGAGE, MAX_TRACESTATE, TRACESTATE, parse_traceparent, passed_on};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    proptest! {
        /// Every well-formed version-00 header parses to its ids and flag.
        #[test]
        fn well_formed_traceparents_round_trip(
            trace in prop::array::uniform16(any::<u8>()).prop_filter("not zero", |id| id != &[0; 16]),
            span in prop::array::uniform8(any::<u8>()).prop_filter("not zero", |id| id != &[0; 8]),
            flags in any::<u8>(),
        ) {
            let header = format!("00-{}-{}-{flags:02x}", hex(&trace), hex(&span));
            let parent = parse_traceparent(header.as_bytes()).unwrap();
            prop_assert_eq!(parent.trace_id.to_bytes(), trace);
            prop_assert_eq!(parent.span_id.to_bytes(), span);
            prop_assert_eq!(parent.sampled, flags & 1 == 1);
            // Upper-case hex is not the format: refused.
            if header.bytes().any(|byte| byte.is_ascii_lowercase()) {
                prop_assert!(parse_traceparent(header.to_ascii_uppercase().as_bytes()).is_none());
            }
        }

        /// `tracestate` and `baggage`, whatever their bytes: passed on
        /// whole when there is one value of a sane size, else not at all;
        /// never cut, never a panic.
        #[test]
        fn tracestate_and_baggage_pass_on_whole_or_not_at_all(
            state in prop::collection::vec(any::<u8>(), 0..MAX_TRACESTATE + 40),
            baggage in prop::collection::vec(any::<u8>(), 0..MAX_BAGGAGE + 40),
            state_twice in any::<bool>(),
            baggage_twice in any::<bool>(),
        ) {
            let mut headers = HeaderMap::new();
            let state_value = HeaderValue::from_bytes(&state).ok();
            let baggage_value = HeaderValue::from_bytes(&baggage).ok();
            for (name, value, twice) in [
                (&TRACESTATE, &state_value, state_twice),
                (&BAGGAGE, &baggage_value, baggage_twice),
            ] {
                if let Some(value) = value {
                    headers.append(name.clone(), value.clone());
                    if twice {
                        headers.append(name.clone(), value.clone());
                    }
                }
            }
            let expected = |value: &Option<HeaderValue>, twice: bool, max: usize| {
                value
                    .clone()
                    .filter(|value| !twice && !value.is_empty() && value.len() <= max)
            };
            let want_state = expected(&state_value, state_twice, MAX_TRACESTATE);
            let want_baggage = expected(&baggage_value, baggage_twice, MAX_BAGGAGE);
            let passed = passed_on(&headers);
            prop_assert_eq!(passed.as_ref().and_then(|passed| passed.trace_state.clone()), want_state.clone());
            prop_assert_eq!(passed.as_ref().and_then(|passed| passed.baggage.clone()), want_baggage.clone());
            prop_assert_eq!(passed.is_some(), want_state.is_some() || want_baggage.is_some());
        }

        /// Anything at all: no panic, and only the strict shape is taken.
        #[test]
        fn arbitrary_bytes_never_panic_and_only_the_shape_parses(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            if let Some(parent) = parse_traceparent(&bytes) {
                prop_assert!(bytes.len() >= 55);
                prop_assert_eq!(bytes[2], b'-');
                prop_assert_eq!(bytes[35], b'-');
                prop_assert_eq!(bytes[52], b'-');
                prop_assert!(bytes[..55].iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b) || *b == b'-'));
                prop_assert_ne!(parent.trace_id.to_bytes(), [0; 16]);
            }
        }
    }
}
