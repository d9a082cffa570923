//! What every observe crate shares, defined once: the status and the
//! endpoint label the signals agree on, the facts of a request taken once
//! ([`RequestFacts`]), one clock for a request ([`RequestStart`], [`Elapsed`]), the text of a panic,
//! header values and addresses as text ([`header_text`], [`address_text`]),
//! and the bearer-token check of the built-in routes.
//!
//! # Example
//!
//! ```
//! use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
//! use observe_core::{CLIENT_CLOSED_STATUS, bearer_token_matches, panic_message};
//!
//! assert_eq!(CLIENT_CLOSED_STATUS, 499);
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer s3cret "));
//! assert!(bearer_token_matches(&headers, "s3cret"));
//!
//! let payload = std::panic::catch_unwind(|| panic!("lost")).unwrap_err();
//! assert_eq!(panic_message(&*payload), "lost");
//! ```

mod address;
mod facts;
mod trace_ids;

pub use address::{MAX_ADDRESS_TEXT, address_text};
pub use facts::RequestFacts;
pub use trace_ids::TraceIds;

use std::{
    any::Any,
    time::{Duration, SystemTime},
};

use http::{HeaderMap, Request, Response, header::AUTHORIZATION};

/// A header value as text: borrowed when it is UTF-8 (nearly always, and
/// checked at the speed of `from_utf8`), else with U+FFFD for each bad
/// sequence.
pub fn header_text(value: &http::HeaderValue) -> std::borrow::Cow<'_, str> {
    let bytes = value.as_bytes();
    std::str::from_utf8(bytes).map_or_else(
        |_| String::from_utf8_lossy(bytes),
        std::borrow::Cow::Borrowed,
    )
}

/// The status of a request whose client went away before the response, or
/// whose server cut it at the drain bound (nginx's "client closed
/// request"): in the log line, the metrics and the span alike.
pub const CLIENT_CLOSED_STATUS: u16 = 499;

/// The route (`endpoint`) of a request that matched no route.
pub const UNMATCHED_ENDPOINT: &str = "unmatched";

/// The `tracing` target of the request log's line per request: with
/// `RUST_LOG=observe_log::request=warn`, only failures. A prefix of
/// [`REQUEST_SPAN_TARGET`], so one directive names both.
pub const REQUEST_LINE_TARGET: &str = "observe_log::request";

/// The `tracing` target of the request log's span per request, which
/// carries the request's ids to every event inside it.
pub const REQUEST_SPAN_TARGET: &str = "observe_log::request_span";

/// When a request started: taken once, by the outermost of observe's
/// layers, and left in the request extensions so that the layers inside it
/// measure from the same instant. A layer used alone takes its own.
#[derive(Debug, Clone, Copy)]
pub struct RequestStart {
    instant: quanta::Instant,
    wall: SystemTime,
    /// Found in the request: a layer outside took it, and will read the
    /// [`Elapsed`] this one leaves.
    inherited: bool,
}

impl RequestStart {
    /// Now.
    pub fn now() -> Self {
        Self {
            instant: quanta::Instant::now(),
            wall: SystemTime::now(),
            inherited: false,
        }
    }

    /// The start `request` carries, or now, left in it for the layers
    /// inside.
    pub fn of<B>(request: &mut Request<B>) -> Self {
        if let Some(start) = request.extensions().get::<Self>() {
            return Self {
                inherited: true,
                ..*start
            };
        }
        let start = Self::now();
        request.extensions_mut().insert(start);
        start
    }

    /// The monotonic instant, for durations.
    pub fn instant(&self) -> quanta::Instant {
        self.instant
    }

    /// The wall-clock time, for timestamps.
    pub fn wall(&self) -> SystemTime {
        self.wall
    }

    /// How long since the start.
    pub fn elapsed(&self) -> Duration {
        self.instant.elapsed()
    }
}

/// How long a request took to its response head: measured once, by the
/// innermost of observe's layers, and left in the response extensions, so
/// the log line's `duration_ms`, the histogram sample and the span's
/// duration are one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(pub Duration);

impl Elapsed {
    /// The duration `response` carries, or the time since `start`, left in
    /// it for the layers outside when there are any (`start` came from one
    /// of them): a layer used alone inserts nothing.
    pub fn of<B>(response: &mut Response<B>, start: &RequestStart) -> Duration {
        if let Some(elapsed) = response.extensions().get::<Self>() {
            return elapsed.0;
        }
        let elapsed = start.elapsed();
        if start.inherited {
            response.extensions_mut().insert(Self(elapsed));
        }
        elapsed
    }
}

/// What a panic said: its `&str` or `String` payload, or a fixed text for
/// any other.
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "panic with a non-string payload"
    }
}

/// Whether `headers` carry `Authorization: Bearer <token>`. Surrounding
/// whitespace is not part of the token; the comparison takes the same time
/// however much of a guess is right.
pub fn bearer_token_matches(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
        .is_some_and(|presented| token_matches(presented, token))
}

/// Whether `presented` is `token`, surrounding whitespace aside, compared in
/// constant time.
pub fn token_matches(presented: &[u8], token: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    bool::from(presented.trim_ascii().ct_eq(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn with(authorization: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static(authorization));
        headers
    }

    #[test]
    fn header_text_borrows_utf8_and_replaces_what_is_not() {
        let agent = HeaderValue::from_bytes("curl/8.5 \u{e9}t\u{e9}".as_bytes()).unwrap();
        let text = header_text(&agent);
        assert!(matches!(text, std::borrow::Cow::Borrowed(_)));
        assert_eq!(text, "curl/8.5 \u{e9}t\u{e9}");
        let broken = HeaderValue::from_bytes(b"agent \xff\xfe/1").unwrap();
        assert_eq!(header_text(&broken), "agent \u{fffd}\u{fffd}/1");
    }

    #[test]
    fn bearer_tokens() {
        assert!(bearer_token_matches(&with("Bearer s3cret"), "s3cret"));
        assert!(bearer_token_matches(&with("Bearer  s3cret "), "s3cret"));
        assert!(!bearer_token_matches(&with("Bearer s3cre"), "s3cret"));
        assert!(!bearer_token_matches(&with("Bearer s3cretx"), "s3cret"));
        assert!(!bearer_token_matches(&with("Basic s3cret"), "s3cret"));
        assert!(!bearer_token_matches(&with("bearer"), "s3cret"));
        assert!(!bearer_token_matches(&HeaderMap::new(), "s3cret"));
    }

    #[test]
    fn the_outermost_start_and_the_innermost_elapsed_are_shared() {
        let mut request = Request::new(());
        let outer = RequestStart::of(&mut request);
        let inner = RequestStart::of(&mut request);
        assert_eq!(outer.instant(), inner.instant());
        assert_eq!(outer.wall(), inner.wall());
        let mut response = Response::new(());
        let first = Elapsed::of(&mut response, &inner);
        std::thread::sleep(Duration::from_millis(2));
        let second = Elapsed::of(&mut response, &outer);
        assert_eq!(first, second);
        assert!(outer.elapsed() > first);
    }

    #[test]
    fn a_layer_alone_leaves_no_elapsed_behind() {
        let alone = RequestStart::of(&mut Request::new(()));
        let mut response = Response::new(());
        let elapsed = Elapsed::of(&mut response, &alone);
        assert!(response.extensions().get::<Elapsed>().is_none());
        assert!(alone.elapsed() >= elapsed);
    }

    #[test]
    fn panic_payloads() {
        let text = String::from("owned");
        assert_eq!(panic_message(&text), "owned");
        assert_eq!(panic_message(&"static"), "static");
        assert_eq!(panic_message(&7_u8), "panic with a non-string payload");
    }
}
