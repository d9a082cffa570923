//! Health endpoints for axum services: checks that run in parallel, each
//! with its own timeout, shared by concurrent probes and cached briefly, and
//! a router with `/health`, `/health/live` and `/health/ready`.
//!
//! A dependency that hangs cannot hang the probe: every check runs in its own
//! task and is cut off at its timeout ([`DEFAULT_CHECK_TIMEOUT`]), so
//! `/health` answers within the largest timeout. Probes that arrive while a
//! check runs share that run, and its result is reused for
//! [`DEFAULT_CACHE_TTL`], so a storm of probes costs the database one query
//! per TTL.
//!
//! # Statuses
//!
//! [`Status`] runs from `healthy` through `warning`, `degraded` and
//! `critical` to `unhealthy`. The whole is the worst status among the
//! critical checks; a failing non-critical check makes it `degraded` at
//! worst. Endpoints answer `503` for `critical` and `unhealthy`, `200`
//! otherwise.
//!
//! # Built-in checks
//!
//! | check | feature | what it does |
//! | --- | --- | --- |
//! | [`DiskCheck`] | always | free space of a path's filesystem: `healthy` above 10%, `warning` above 5%, else `critical` |
//! | [`MemoryCheck`] | always | memory in use against the cgroup v2 limit or the host's: `healthy` under 80%, `warning` under 90%, else `critical` |
//! | `PostgresCheck` | `postgres` | `SELECT 1` over an sqlx pool; `warning` at 80% pool use (the only feature that pulls in sqlx) |
//! | `RedisCheck` | `redis` | `PING`, `connected_clients`, `used_memory` |
//! | `HttpCheck` | `http` (`http-rustls` for `https://`) | `GET` a URL with a 5 s timeout; a failure is `degraded` |
//!
//! Any type can be a check ([`Check`]), and so can an async closure
//! ([`check_fn`]).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use axum::{Router, routing::get};
//! use observe_health::{CheckOptions, CheckResult, DiskCheck, Health, MemoryCheck, check_fn};
//!
//! let health = Health::builder()
//!     .check("disk", DiskCheck::new("/"))
//!     .check("memory", MemoryCheck::new())
//!     .check_with(
//!         "cache_warm",
//!         check_fn(|| async { CheckResult::healthy().detail("entries", 1_024) }),
//!         CheckOptions::new().critical(false).timeout(Duration::from_millis(500)),
//!     )
//!     .build();
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .merge(health.router());
//! # let _ = app;
//! ```
//!
//! A body of `GET /health`:
//!
//! ```json
//! {
//!   "status": "healthy",
//!   "timestamp": "2026-11-25T09:30:00.123Z",
//!   "checks": {
//!     "disk": {
//!       "status": "healthy",
//!       "critical": true,
//!       "response_time_ms": 0.084,
//!       "details": {"path": "/", "total_bytes": 269490393088, "available_bytes": 61203275776, "free_percent": 22.71}
//!     }
//!   }
//! }
//! ```
//!
//! Raw error texts name hosts, users and ports, so the body shows them only
//! under [`DetailsPolicy::Always`] or to a request with the
//! [details token](HealthBuilder::details_token); they are always logged,
//! once per change of status.

mod check;
mod checks;
mod health;
mod report;
mod router;
mod status;
mod time;
mod usage;

use std::time::Duration;

pub use check::{Check, CheckResult, FnCheck, check_fn};
#[cfg(feature = "postgres")]
pub use checks::PostgresCheck;
#[cfg(feature = "redis")]
pub use checks::RedisCheck;
pub use checks::{DiskCheck, DiskReading, MemoryCheck, MemoryReading, MemorySource};
#[cfg(feature = "http")]
pub use checks::{HttpCheck, HttpCheckError};
pub use health::{CheckOptions, DetailsPolicy, Health, HealthBuilder};
pub use report::{CheckReport, HealthReport};
pub use status::Status;
pub use usage::Usage;

/// How long a check may take unless its registration or the check itself
/// says otherwise.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a finished check's result is reused.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(1);

/// The request timeout, and check timeout, of [`HttpCheck`](crate#built-in-checks).
pub const HTTP_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Every check, aggregated.
pub const HEALTH_PATH: &str = "/health";

/// The process only, no dependency: a liveness probe.
pub const LIVE_PATH: &str = "/health/live";

/// Critical dependencies, `503` once shutdown has begun: a readiness probe.
pub const READY_PATH: &str = "/health/ready";

/// The media type of the IETF health-check draft format.
pub const HEALTH_JSON_CONTENT_TYPE: &str = "application/health+json";

/// [`DiskCheck`]: at or below this much free space (percent) is a warning.
pub const DISK_WARNING_FREE_PERCENT: u8 = 10;

/// [`DiskCheck`]: at or below this much free space (percent) is critical.
pub const DISK_CRITICAL_FREE_PERCENT: u8 = 5;

/// [`MemoryCheck`]: from this much memory in use (percent) it is a warning.
pub const MEMORY_WARNING_PERCENT: u8 = 80;

/// [`MemoryCheck`]: from this much memory in use (percent) it is critical.
pub const MEMORY_CRITICAL_PERCENT: u8 = 90;

/// `PostgresCheck`: from this share of the pool in use (percent) it is a
/// warning.
pub const POOL_WARNING_PERCENT: u8 = 80;
