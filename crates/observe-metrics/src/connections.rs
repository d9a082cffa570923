//! `http_connection_errors_total{reason}`: what the server refused or cut
//! before, or instead of, a response from the service.

use metrics::{Counter, Key, Label, Recorder};

use crate::routes::{METADATA, Sink};

/// Why a server refused a connection or a request without the service
/// answering it. The label values are fixed, so the series are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionError {
    /// Accepted and closed at once: the open connections were at the limit.
    ConnectionLimit,
    /// Accepting failed, as when the process is out of file descriptors.
    AcceptFailed,
    /// A request head did not arrive in time (a silent or slow client).
    HeaderTimeout,
    /// A request body made no progress in time; answered `408`.
    BodyTimeout,
    /// The request target was too long; the HTTP parser answered `414`.
    UriTooLong,
    /// The request head was too large or had too many headers; `431`.
    HeadersTooLarge,
    /// The request head was not valid HTTP; `400`.
    MalformedRequest,
    /// The connection failed mid-exchange (reset, HTTP/2 protocol error).
    ConnectionFailed,
}

impl ConnectionError {
    /// Every reason, in label order.
    pub const ALL: [Self; 8] = [
        Self::ConnectionLimit,
        Self::AcceptFailed,
        Self::HeaderTimeout,
        Self::BodyTimeout,
        Self::UriTooLong,
        Self::HeadersTooLarge,
        Self::MalformedRequest,
        Self::ConnectionFailed,
    ];

    /// The `reason` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionLimit => "connection_limit",
            Self::AcceptFailed => "accept_failed",
            Self::HeaderTimeout => "header_timeout",
            Self::BodyTimeout => "body_timeout",
            Self::UriTooLong => "uri_too_long",
            Self::HeadersTooLarge => "headers_too_large",
            Self::MalformedRequest => "malformed_request",
            Self::ConnectionFailed => "connection_failed",
        }
    }
}

/// One counter per [`ConnectionError`], registered up front so every reason
/// is a series from the first scrape. From
/// [`Metrics::connection_errors`](crate::Metrics::connection_errors); cheap
/// to clone.
#[derive(Clone)]
pub struct ConnectionErrors {
    counters: [Counter; ConnectionError::ALL.len()],
}

impl ConnectionErrors {
    pub(crate) fn new(sink: &Sink) -> Self {
        sink.recorder.describe_counter(
            CONNECTION_ERRORS_TOTAL.into(),
            Some(metrics::Unit::Count),
            "Connections and requests the HTTP server refused or cut without a response from the service, by reason."
                .into(),
        );
        Self {
            counters: ConnectionError::ALL.map(|reason| {
                let key = Key::from_parts(
                    CONNECTION_ERRORS_TOTAL,
                    vec![Label::from_static_parts("reason", reason.as_str())],
                );
                sink.recorder.register_counter(&key, &METADATA)
            }),
        }
    }

    /// Counts one `reason`.
    pub fn increment(&self, reason: ConnectionError) {
        self.counters[reason as usize].increment(1);
    }
}

impl std::fmt::Debug for ConnectionErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionErrors").finish_non_exhaustive()
    }
}

/// The metric's name.
pub const CONNECTION_ERRORS_TOTAL: &str = "http_connection_errors_total";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Metrics;

    #[test]
    fn every_reason_is_a_series_from_the_start_and_counts_alone() {
        let metrics = Metrics::new();
        let errors = metrics.connection_errors();
        errors.increment(ConnectionError::UriTooLong);
        errors.increment(ConnectionError::UriTooLong);
        errors.increment(ConnectionError::ConnectionLimit);
        let text = metrics.render();
        for reason in ConnectionError::ALL {
            let expected = match reason {
                ConnectionError::UriTooLong => 2,
                ConnectionError::ConnectionLimit => 1,
                _ => 0,
            };
            let line = format!(
                "http_connection_errors_total{{reason=\"{}\"}} {expected}\n",
                reason.as_str()
            );
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn reasons_index_their_counters() {
        for (index, reason) in ConnectionError::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, index);
        }
    }
}
