//! In-process alerting: rules over the rolling RED window and the health
//! checks, evaluated off the request path with Prometheus's semantics, and
//! delivered to webhooks, Slack, Discord and Alertmanager.
//!
//! Every [`DEFAULT_EVAL_INTERVAL`] the engine reads the request rate, 5xx
//! share and latency of the last [`DEFAULT_WINDOW`] from the metrics
//! registry and the latest result of every health check, and evaluates its
//! rules:
//!
//! | rule | severity | fires when |
//! | --- | --- | --- |
//! | `HighErrorRate` | critical | 5xx share > [`DEFAULT_ERROR_RATE`], with at least [`DEFAULT_MIN_REQUESTS`] requests in the window |
//! | `SlowResponses` | warning | mean response time > [`DEFAULT_RESPONSE_TIME`] |
//! | `SlowResponsesP95` | warning | p95 response time > [`DEFAULT_RESPONSE_TIME`] |
//! | `HighMemoryUsage` | critical | the memory check's used share > [`DEFAULT_MEMORY_PERCENT`] % |
//! | `DiskAlmostFull` | warning | a disk check's used share > [`DEFAULT_DISK_PERCENT`] % |
//! | `DatabasePoolSaturated` | warning | a database pool's connections in use > [`DEFAULT_DB_POOL_PERCENT`] % of its maximum |
//! | `HealthCheckFailing` | critical | a critical health check is `critical` or `unhealthy` |
//!
//! An alert is `pending` until its condition has held for
//! [`DEFAULT_FOR`], then `firing`; it resolves when the condition stops
//! (after `keep_firing_for`, if set). Notifications group alerts by
//! [`DEFAULT_GROUP_BY`], are sent once per change and again every
//! [`DEFAULT_REPEAT_INTERVAL`] while firing, and a firing critical alert
//! inhibits warnings with the same [`DEFAULT_INHIBIT_EQUAL`] labels, as in
//! Alertmanager. Each notifier has its own bounded queue and task: a
//! receiver that is down, slow or failing delays nothing else, and what it
//! cannot take is counted in `alert_notifications_total{notifier, outcome}`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use observe_alerts::{Alerts, Rule, Severity};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let metrics = observe_metrics::Metrics::new();
//! let queue_depth = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
//! let depth = queue_depth.clone();
//! let alerts = Alerts::builder("my-service")
//!     .environment("production")
//!     .metrics(metrics.clone())
//!     .rule(
//!         Rule::new("QueueBacklog", Severity::Warning, 1_000.0, move || {
//!             Some(depth.load(std::sync::atomic::Ordering::Relaxed) as f64)
//!         })
//!         .summary("The job queue is backing up")
//!         .for_duration(Duration::from_secs(120)),
//!     )
//!     .build()
//!     .expect("valid alert configuration");
//! alerts.spawn(); // evaluates every 15 s on this runtime
//! let app = axum::Router::<()>::new().merge(alerts.router()); // GET /alerts
//! # let _ = app;
//! # }
//! ```

mod alerts;
mod engine;
mod labels;
pub mod notify;
pub mod prometheus;
mod router;
mod rule;

use std::time::Duration;

pub use alerts::{Alerts, AlertsBuilder, InvalidAlertConfig};
pub use engine::{Alert, AlertState, Engine, Evaluation, GroupNotification, Transition};
pub use labels::{Labels, fingerprint};
pub use rule::{BuiltinRule, Comparison, Inputs, Rule, Severity, Thresholds};

/// How often the rules are evaluated.
pub const DEFAULT_EVAL_INTERVAL: Duration = Duration::from_secs(15);

/// The RED window the request rules look at.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// The shortest window accepted.
pub const MIN_WINDOW: Duration = Duration::from_secs(10);

/// The longest window accepted: the RED history the metrics registry keeps.
pub const MAX_WINDOW: Duration = Duration::from_secs(300);

/// `HighErrorRate`: the 5xx share of requests above which it fires.
pub const DEFAULT_ERROR_RATE: f64 = 0.05;

/// `HighErrorRate`: requests the window must hold before the rate counts,
/// so one failed request at night pages nobody.
pub const DEFAULT_MIN_REQUESTS: u64 = 10;

/// `SlowResponses` and `SlowResponsesP95`: the response time above which
/// they fire.
pub const DEFAULT_RESPONSE_TIME: Duration = Duration::from_secs(2);

/// `HighMemoryUsage`: the used share of memory, in percent.
pub const DEFAULT_MEMORY_PERCENT: f64 = 90.0;

/// `DiskAlmostFull`: the used share of a filesystem, in percent.
pub const DEFAULT_DISK_PERCENT: f64 = 85.0;

/// `DatabasePoolSaturated`: connections in use, in percent of the pool's
/// maximum.
pub const DEFAULT_DB_POOL_PERCENT: f64 = 80.0;

/// How long a condition must hold before its alert fires (`for`).
pub const DEFAULT_FOR: Duration = Duration::from_secs(60);

/// How long an alert keeps firing after its condition stops
/// (`keep_firing_for`): not at all.
pub const DEFAULT_KEEP_FIRING_FOR: Duration = Duration::ZERO;

/// How often a notification for a group still firing is sent again.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// The labels notifications are grouped by.
pub const DEFAULT_GROUP_BY: &[&str] = &["alertname"];

/// A firing critical alert inhibits warning alerts whose values of these
/// labels are equal to its own.
pub const DEFAULT_INHIBIT_EQUAL: &[&str] = &["service", "component"];

/// Where each alert's runbook is: `{alertname}` is replaced.
pub const DEFAULT_RUNBOOK_URL: &str =
    "https://github.com/observe-rs/observe/blob/main/docs/runbooks/{alertname}.md";

/// How long one delivery attempt may take.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts per notification before it is given up (and counted).
pub const NOTIFY_ATTEMPTS: u32 = 5;

/// The first retry's delay; each next one doubles, with jitter.
pub const NOTIFY_BACKOFF: Duration = Duration::from_millis(500);

/// The longest wait between two attempts, `Retry-After` included.
pub const NOTIFY_MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Notifications that may wait for one notifier; more are dropped and
/// counted.
pub const NOTIFY_QUEUE_CAPACITY: usize = 64;

/// How often firing alerts are sent to Alertmanager again, so it keeps
/// them active (Prometheus's `resend_delay`).
pub const ALERTMANAGER_RESEND: Duration = Duration::from_secs(60);

/// Transitions kept for `GET /alerts`.
pub const HISTORY_LEN: usize = 1_000;

/// Where the router serves the alerts.
pub const ALERTS_PATH: &str = "/alerts";
