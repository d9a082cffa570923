//! The ids of a request's trace, for the layers that log them.

use std::fmt;

use arrayvec::ArrayString;

/// A request's W3C trace id and span id as lowercase hex, put into the
/// request extensions by a tracing layer (observe-trace's `TraceLayer`) and
/// read by the layers inside it, such as the request log. Here, in the crate
/// every layer depends on, so that logging needs no OpenTelemetry.
///
/// Text from the start: reading an id checks nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceIds {
    trace_id: ArrayString<32>,
    span_id: ArrayString<16>,
}

impl TraceIds {
    /// The ids from their bytes, as they are on the wire.
    pub fn new(trace_id: [u8; 16], span_id: [u8; 8]) -> Self {
        Self {
            trace_id: hex_text(&trace_id),
            span_id: hex_text(&span_id),
        }
    }

    /// The 32 hex digits of the trace id.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The 16 hex digits of the span id.
    pub fn span_id(&self) -> &str {
        &self.span_id
    }
}

/// `bytes` as lowercase hex; `N` is twice their length.
fn hex_text<const N: usize>(bytes: &[u8]) -> ArrayString<N> {
    let mut digits = [b'0'; N];
    // Callers size `N` at twice `bytes`, and hex digits are ASCII.
    let _ = hex::encode_to_slice(bytes, &mut digits);
    ArrayString::from_byte_string(&digits).unwrap_or_default()
}

impl fmt::Debug for TraceIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceIds")
            .field("trace_id", &self.trace_id())
            .field("span_id", &self.span_id())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lowercase_hex() {
        let ids = TraceIds::new(
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36,
            ],
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
        );
        assert_eq!(ids.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ids.span_id(), "00f067aa0ba902b7");
    }
}
