//! [`RequestLogLayer`]: one log line per finished request.
//!
//! Put it inside the request id layer (it reads [`RequestId`] from the
//! request extensions) and outside the error capture layer (it reads the
//! [`ErrorReport`] from the response extensions), as
//! [`observe`](https://docs.rs/observe)'s stack does. It opens a `request`
//! span with the request id around the inner service, so every event in the
//! handler, in what it calls and in tasks spawned with
//! `.in_current_span()`, carries the id.
//!
//! The line, target `observe_log::request`, message `request finished`:
//!
//! | field | value |
//! | --- | --- |
//! | `method`, `endpoint`, `path` | the route template (`unmatched` when none), the path and query with secret parameters `[REDACTED]` |
//! | `status_code`, `duration_ms` | the status, and the time to the response head in ms with microsecond precision |
//! | `request_bytes`, `response_bytes` | body sizes, when known from the headers |
//! | `user_agent`, `client_ip`, `user_id` | as sent; the peer (or `X-Forwarded-For` behind [trusted proxies](RequestLogLayer::trusted_proxies)); a [`UserId`] from request or response extensions |
//! | `error_type`, `error_message`, `context`, `panic` | from the error layer's [`ErrorReport`] |
//! | `aborted` | `true`, with `status_code` 499, when the client went away first |
//!
//! Successes and redirects log at `INFO`, 4xx at `WARN`, 5xx at `ERROR`
//! ([configurable](RequestLogLayer::levels)); `/health*` and `/metrics` are
//! [not logged](RequestLogLayer::exclude_paths).
//!
//! The line is a `tracing` event, so any subscriber gets it. In the
//! subscribers of [`Logging::dispatch`](crate::Logging::dispatch) and
//! [`Logging::dispatch_with_bridge`](crate::Logging::dispatch_with_bridge),
//! where no other layer reads it, the [`LogLayer`](crate::LogLayer) writes
//! the same line itself, without the event, whose dispatch and field visits
//! are about a quarter of the line's cost: when their filter is plain
//! `target=level` directives and the request span has no parent span (whose
//! fields the line would carry). The ids are the request's, as the request
//! id and trace layers put them in its extensions.
//!
//! [`RequestId`]: observe_request_id::RequestId
//! [`ErrorReport`]: observe_errors::ErrorReport
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use observe_errors::ErrorCaptureLayer;
//! use observe_log::RequestLogLayer;
//! use observe_request_id::RequestIdLayer;
//! use tower::ServiceBuilder;
//!
//! let app: Router = Router::new().route("/", get(|| async { "hello" })).layer(
//!     ServiceBuilder::new()
//!         .layer(RequestIdLayer::new())
//!         .layer(RequestLogLayer::new().exclude_paths(["/internal/*"]))
//!         .layer(ErrorCaptureLayer::new().log_errors(false)),
//! );
//! # let _ = app;
//! ```

mod client_ip;
mod future;
mod layer;
mod service;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use client_ip::{InvalidProxy, TrustedProxy};
pub use future::{CLIENT_CLOSED_STATUS, RequestLine, ResponseFuture};
use layer::Config;
pub use layer::RequestLogLayer;
pub use service::RequestLog;

/// The target of the request span; the subscriber [`Logging`](crate::Logging)
/// installs keeps it enabled whatever `RUST_LOG` says, so ids reach every
/// event that is logged.
pub const SPAN_TARGET: &str = observe_core::REQUEST_SPAN_TARGET;

/// The target of request lines: `RUST_LOG=observe_log::request=warn` keeps
/// failures only.
pub const LINE_TARGET: &str = observe_core::REQUEST_LINE_TARGET;

/// The user a request is made for, for the `user_id` field. Put it in the
/// request extensions (from a middleware outside the log layer) or the
/// response extensions (from a handler or an inner middleware).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserId(Arc<str>);

impl UserId {
    /// A user id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
