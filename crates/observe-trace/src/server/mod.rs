//! [`TraceLayer`]: the server span of every request, in the W3C trace of its
//! caller.
//!
//! For each request it:
//!
//! - reads the caller's `traceparent` (and `tracestate`, `baggage`); one that
//!   is missing, repeated or invalid starts a new trace, never an error;
//! - decides whether the trace is sampled ([`Sampler`](crate::Sampler):
//!   the caller's decision by default);
//! - puts the span's [`TraceIds`](observe_core::TraceIds) into the
//!   request extensions, so the request log and every event in the request
//!   carry `trace_id` and `span_id`, and makes its
//!   [`TraceContext`](crate::TraceContext) [`current`](crate::current) while
//!   the inner service runs, so outgoing calls through
//!   [`ClientTraceLayer`](crate::ClientTraceLayer) are its children and
//!   `tracing` spans (such as [`db`](crate::db) spans) its child spans;
//! - when sampled and exporting, records a server span named
//!   `{METHOD} {route}` with the stable HTTP semantic-convention attributes,
//!   status error for 5xx (not 4xx) with `error.type`, and hands it to the
//!   exporter thread.
//!
//! Put it inside the request id layer (it records `request_id`) and outside
//! the metrics, log and error layers, as `observe`'s stack does, and add it
//! with `Router::layer` so it sees the route template.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use observe_trace::{Sampler, TraceLayer};
//!
//! // Ids and propagation only; `Tracing::builder` adds OTLP export.
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(TraceLayer::new().sampler(Sampler::AlwaysOn));
//! # let _ = app;
//! ```

mod future;
mod layer;
mod service;
mod span;
#[cfg(test)]
mod tests;

pub use future::ResponseFuture;
use layer::Config;
pub use layer::TraceLayer;
pub use service::Trace;
pub use span::ServerSpan;
