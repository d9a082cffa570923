//! All the production signals of an axum or tower HTTP service in a few lines.
//!
//! `observe` is the facade over the parts, each usable alone:
//!
//! | part | crate | what it gives |
//! | --- | --- | --- |
//! | request ids | [`observe_request_id`] | a valid incoming `x-request-id` or a fresh UUID v7 on every request and response |
//! | error capture | [`observe_errors`] | panics and errors as RFC 9457 problem+json, each reported once |
//! | metrics | [`observe_metrics`] | RED metrics by route template, `/metrics`, open connections, process metrics, a rolling RED window |
//! | logs | [`observe_log`] | one JSON line per request and per event, with the request id from span context, written off the request path to stdout or rotating files, secrets redacted |
//! | traces | [`observe_trace`] | W3C trace context in and out, a server span per request, client spans, OTLP export (gRPC, HTTP) from the `OTEL_*` variables, off the request path |
//! | health | [`observe_health`] | `/health`, `/health/live`, `/health/ready`: parallel checks with timeouts, cached, readiness off at shutdown |
//!
//! [`Observability`] reads its configuration from the environment (see
//! [`defaults`] for every variable), installs what it owns, and hands out the
//! whole stack as one layer, in the documented order, outermost first:
//!
//! 1. [`RequestIdLayer`](observe_request_id::RequestIdLayer)
//! 2. [`TraceLayer`](observe_trace::TraceLayer): the server span, in the
//!    caller's W3C trace; `trace_id` and `span_id` for every log line.
//! 3. [`MetricsLayer`](observe_metrics::MetricsLayer)
//! 4. [`RequestLogLayer`](observe_log::RequestLogLayer): one line per request,
//!    with the error report of the layer below in it.
//! 5. [`ErrorCaptureLayer`](observe_errors::ErrorCaptureLayer), so a panic
//!    is a `500` that every outer layer sees.
//! 6. [`BodyOutcomeLayer`], innermost: a request body that failed because the
//!    client left or went silent makes the answer `499` or `408`.
//!
//! The parts are re-exported as modules named so that they never shadow the
//! crates an application uses beside them (`log`, `metrics`, `tracing`):
//! [`logging`], [`http_metrics`], [`trace`], [`health`], [`errors`],
//! [`request_id`], [`alerts`].
//!
//! # Configuration rules
//!
//! - A builder setting wins over its environment variable; a value that is
//!   invalid from either makes [`init`](ObservabilityBuilder::init) fail
//!   with a [`ConfigError`] naming the variable or the setting (zero where a
//!   count or a timeout must be positive included).
//! - `init` installs the process-wide globals (the `tracing` subscriber and
//!   the `metrics` recorder) last, once everything else is configured, so a
//!   failed `init` leaves the process as it was. It never replaces one: a
//!   taken global is a `ConfigError` naming `install_subscriber` or
//!   `install_metrics_recorder`, the setting that keeps yours.
//!
//! # Example
//!
//! ```no_run
//! use axum::{Router, extract::Path, http::StatusCode, routing::get};
//! use observe::{AppError, RequestId};
//!
//! async fn hello(Path(name): Path<String>, id: RequestId) -> Result<String, AppError> {
//!     if name == "nobody" {
//!         return Err(AppError::new(StatusCode::NOT_FOUND, "unknown_name", "no such name")
//!             .with_context("name", name));
//!     }
//!     Ok(format!("hello {name}, this is request {id}"))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let obs = observe::Observability::builder("my-service").init()?;
//!     // The whole stack around the app, unmatched requests included;
//!     // /metrics and /health* beside it.
//!     let app = obs.router(Router::new().route("/hello/{name}", get(hello)));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     obs.serve(listener, app).await?;
//!     Ok(())
//! }
//! ```

mod alert_config;
mod config;
pub mod defaults;
mod layer;
mod log_config;
mod observability;
mod serve;
mod status;
mod trace_config;

pub use config::ConfigError;
pub use layer::{Observe, ObserveLayer, ObserveService, ResponseFuture};
pub use log_config::LogOutput;
pub use observability::{Observability, ObservabilityBuilder};
pub use serve::{
    BodyOutcome, BodyOutcomeFuture, BodyOutcomeLayer, BodyOutcomeService, BodyReadTimeout,
    CLIENT_CLOSED_STATUS, ServerLimits, WatchedBody,
};

pub use observe_alerts::{self as alerts, Alerts};
pub use observe_errors::{self as errors, AppError, ErrorReport};
pub use observe_health::{self as health, Health};
pub use observe_log::{self as logging, LogHandle, UserId};
pub use observe_metrics::{self as http_metrics, Metrics, RedSnapshot};
pub use observe_request_id::{self as request_id, RequestId};
pub use observe_trace::{self as trace, TraceContext};

// The README's usage snippet is compiled as a doc test, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
