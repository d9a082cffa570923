//! RED metrics for tower and axum services, in Prometheus text format.
//!
//! - [`Metrics`] is one service's registry: a
//!   [`metrics-exporter-prometheus`](metrics_exporter_prometheus) recorder
//!   that belongs to this handle, not to the process, so two apps in one
//!   process never see each other's series. It renders `/metrics`
//!   ([`Metrics::render`], [`Metrics::router`]), runs the histogram upkeep
//!   that keeps memory bounded, and keeps a rolling [RED window](RedSnapshot).
//! - [`MetricsLayer`] records every request by route template, not by path:
//!   a request counter, a duration histogram and an in-flight gauge, and
//!   `errors_total` for each [`ErrorReport`](observe_errors::ErrorReport) the
//!   error layer leaves in the response.
//! - [`CountingListener`] wraps a `TcpListener` and keeps `active_connections`
//!   equal to the number of open TCP connections.
//! - Process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//!   `process_open_fds`, `process_max_fds`, `process_start_time_seconds`,
//!   `process_threads`) are read at each scrape, on Linux.
//!
//! # Series
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `http_requests_total` | counter | `method`, `endpoint`, `status_code` |
//! | `http_request_duration_seconds` | histogram ([`DEFAULT_BUCKETS`]) | `method`, `endpoint` |
//! | `http_requests_in_flight` | gauge | `method`, `endpoint` |
//! | `errors_total` | counter | `error_type`, `service` |
//! | `active_connections` | gauge | |
//! | `http_connection_errors_total` | counter | `reason` ([`ConnectionError`]), counted by a server such as `observe`'s `serve` |
//!
//! `endpoint` is axum's [`MatchedPath`](axum::extract::MatchedPath), the
//! route template with nested prefixes (`/api/v1/groups/{group_id}/parse`);
//! a request that matched no route is [`UNMATCHED_ENDPOINT`]; a method outside
//! the nine of RFC 9110 is [`OTHER_METHOD`]. So the number of series is bounded
//! by the router, whatever paths clients send. A request whose client went
//! away before the response is counted with status [`ABORTED_STATUS`].
//!
//! [`MetricsBuilder::otel_semconv`] names them as OpenTelemetry's HTTP
//! semantic conventions do instead: `http_server_request_duration_seconds`
//! with `http_request_method`, `http_route` and `http_response_status_code`,
//! and `http_server_active_requests`.
//!
//! The layer must run inside axum's routing, where the route is known: add it
//! with [`Router::layer`](axum::Router::layer), which also covers the
//! fallback. Durations are measured until the response head is ready.
//!
//! The HTTP series are kept in atomics of this crate, off the `metrics`
//! facade, because they are on every request's path (see the `routes`
//! module); everything else, the application's own `metrics::counter!`s
//! included, goes through the registry's `metrics-exporter-prometheus`
//! recorder. Both render in one scrape, so an application must not record
//! series of its own under the names above: Prometheus refuses a scrape that
//! has a metric family twice.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use observe_metrics::Metrics;
//!
//! # async fn run() -> std::io::Result<()> {
//! let metrics = Metrics::new();
//! let app = Router::new()
//!     .route("/api/v1/groups/{group_id}/stats", get(|| async { "ok" }))
//!     .layer(metrics.layer())
//!     .merge(metrics.router());
//!
//! // Count open connections as well.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(metrics.counting_listener(listener), app).await
//! # }
//! ```

mod connections;
mod handle;
mod listener;
mod middleware;
mod naming;
mod process;
mod red;
mod router;
pub use router::{require_bearer_or_query_token, require_bearer_token};
mod routes;

pub use connections::{CONNECTION_ERRORS_TOTAL, ConnectionError, ConnectionErrors};
pub use handle::{GlobalRecorderError, InvalidBuckets, Metrics, MetricsBuilder};
pub use listener::{CountedIo, CountingListener};
pub use middleware::{MetricsLayer, MetricsService, RequestRecording, ResponseFuture};
pub use red::{RedPoint, RedSnapshot};

use std::time::Duration;

/// The default histogram buckets, in seconds: the boundaries OpenTelemetry
/// advises for HTTP server durations.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

pub use observe_core::UNMATCHED_ENDPOINT;

/// The `method` of a request whose method is not one of the nine of RFC 9110.
pub const OTHER_METHOD: &str = "_OTHER";

/// The `status_code` of a request whose client went away before the
/// response (nginx's "client closed request").
pub const ABORTED_STATUS: u16 = observe_core::CLIENT_CLOSED_STATUS;

/// How often recorded histogram samples are folded into their buckets when
/// nobody scrapes, so memory stays bounded however long the process runs.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// How often the rolling RED window takes the totals of the HTTP series.
pub const RED_TICK: Duration = Duration::from_secs(1);

/// The path [`Metrics::router`] serves.
pub const METRICS_PATH: &str = "/metrics";

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
