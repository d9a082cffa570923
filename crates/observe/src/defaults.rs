//! Every default and every environment variable, in one place.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `OBSERVE_ENVIRONMENT` | the deployment environment, as logs and reports name it | [`ENVIRONMENT`] |
//! | `OBSERVE_REQUEST_ID_HEADER` | the header that carries request ids | [`REQUEST_ID_HEADER`] |
//! | `OBSERVE_REQUEST_ID_ALWAYS_GENERATE` | `true` ignores incoming ids (a public edge) | `false` |
//! | `OBSERVE_SHUTDOWN_TIMEOUT` | how long [`serve`](crate::Observability::serve) drains open requests after SIGTERM/SIGINT, as `25s`, `500ms` or `1m` | [`SHUTDOWN_TIMEOUT`] |
//! | `RUST_LOG` | the log filter, `tracing-subscriber` directives | [`LOG_FILTER`] |
//! | `OBSERVE_LOG_FORMAT` | `json` or `pretty` | `pretty` at a terminal, `json` otherwise |
//! | `OBSERVE_LOG_SCHEMA` | `flat` (`timestamp`, `level`, `request_id`, ...) or `ecs` (`@timestamp`, `log.level`, `http.request.method`, ...) | `flat` |
//! | `OBSERVE_LOG_FILE` | a log file, as `/var/log/app/app.log` | none |
//! | `OBSERVE_LOG_OUTPUT` | `stdout`, `file` or `both` | `file` when a file is set, else `stdout` |
//! | `OBSERVE_LOG_ROTATION` | rotate the file `daily`, `hourly` or `never` (UTC) | `daily` |
//! | `OBSERVE_LOG_MAX_BYTES` | also rotate before the file passes this size, as `100MiB` (`MB` is 10⁶ bytes, `MiB` 2²⁰) | none |
//! | `OBSERVE_LOG_MAX_FILES` | rotated files kept | [`LOG_MAX_FILES`] |
//! | `OBSERVE_LOG_LOSSLESS` | `true`: a full log queue waits instead of dropping lines (counted in `log_lines_dropped_total`) | `false` |
//! | `OBSERVE_LOG_QUEUE_CAPACITY` | lines that may wait for the log writer | [`LOG_QUEUE_CAPACITY`] |
//! | `OBSERVE_LOG_REDACT` | more header, query and field names to redact, comma-separated | the [defaults](observe_log::DEFAULT_REDACTED_HEADERS) |
//! | `OBSERVE_LOG_EXCLUDE_PATHS` | paths without a request line, comma-separated, `*` for a prefix | [`LOG_EXCLUDED_PATHS`] |
//! | `OBSERVE_LOG_TRUSTED_PROXIES` | proxies whose `X-Forwarded-For` is believed, as `10.0.0.0/8,192.168.1.1` | none |
//! | `OBSERVE_METRICS_BUCKETS` | duration histogram bounds in seconds, comma-separated | [`HISTOGRAM_BUCKETS`] |
//! | `OBSERVE_METRICS_NAMING` | `prometheus` (`http_requests_total`, ...) or `otel` (`http_server_request_duration_seconds`, ...) | `prometheus` |
//! | `OBSERVE_METRICS_TOKEN` | bearer token that [`metrics_router`](crate::Observability::metrics_router) requires | none: open |
//! | `OBSERVE_METRICS_ADDR` | where [`serve`](crate::Observability::serve) also runs a `/metrics`-only server, as `127.0.0.1:9100` | none |
//! | `OBSERVE_HEALTH_CACHE_TTL` | how long a health check's result is reused, as `1s` or `500ms` | [`HEALTH_CACHE_TTL`] |
//! | `OBSERVE_HEALTH_REFRESH_INTERVAL` | re-run the health checks in the background this often | none: when probed |
//! | `OBSERVE_HEALTH_DETAILS` | `hidden` (raw check errors only with the token) or `always` | `hidden` |
//! | `OBSERVE_HEALTH_TOKEN` | bearer token that shows raw check errors in health bodies | none |
//! | `OBSERVE_HEADER_READ_TIMEOUT` | how long [`serve`](crate::Observability::serve) waits for a request head, from the accept or its first byte | [`HEADER_READ_TIMEOUT`] |
//! | `OBSERVE_IDLE_TIMEOUT` | how long `serve` keeps a silent keep-alive connection between requests | [`IDLE_TIMEOUT`] |
//! | `OBSERVE_BODY_READ_TIMEOUT` | how long a request body may go without a byte while the service reads it (then `408`) | [`BODY_READ_TIMEOUT`] |
//! | `OBSERVE_MAX_CONNECTIONS` | open connections `serve` holds; more are closed at once and counted | the open-file limit less [`RESERVED_FILE_DESCRIPTORS`] or a tenth |
//! | `OBSERVE_READINESS_DELAY` | how long [`serve`](crate::Observability::serve) keeps accepting with readiness at `503` after a shutdown signal | [`READINESS_DELAY`] |
//! | `OBSERVE_LOG_OTLP` | `true`: also export every log line as an OTLP log record to the traces' collector | `false` |
//! | `OBSERVE_ALERTS` | `false` turns the in-process alert engine off | `true` |
//! | `OBSERVE_ALERT_EVAL_INTERVAL` | how often the alert rules are evaluated | [`ALERT_EVAL_INTERVAL`] |
//! | `OBSERVE_ALERT_WINDOW` | the RED window the request rules read, 10s to 5m | [`ALERT_WINDOW`] |
//! | `OBSERVE_ALERT_ERROR_RATE` | `HighErrorRate`: 5xx share, 0 to 1 | [`ALERT_ERROR_RATE`] |
//! | `OBSERVE_ALERT_MIN_REQUESTS` | `HighErrorRate`: requests needed in the window | [`ALERT_MIN_REQUESTS`] |
//! | `OBSERVE_ALERT_RESPONSE_TIME` | `SlowResponses` (mean) and `SlowResponsesP95` | [`ALERT_RESPONSE_TIME`] |
//! | `OBSERVE_ALERT_MEMORY_PERCENT` | `HighMemoryUsage` | [`ALERT_MEMORY_PERCENT`] |
//! | `OBSERVE_ALERT_DISK_PERCENT` | `DiskAlmostFull` | [`ALERT_DISK_PERCENT`] |
//! | `OBSERVE_ALERT_DB_POOL_PERCENT` | `DatabasePoolSaturated` | [`ALERT_DB_POOL_PERCENT`] |
//! | `OBSERVE_ALERT_FOR` | how long a condition holds before its alert fires | [`ALERT_FOR`] |
//! | `OBSERVE_ALERT_KEEP_FIRING_FOR` | how long an alert keeps firing after its condition stops | none |
//! | `OBSERVE_ALERT_REPEAT_INTERVAL` | how often a group still firing is notified again | [`ALERT_REPEAT_INTERVAL`] |
//! | `OBSERVE_ALERT_DISABLED` | built-in rules turned off, comma-separated, as `SlowResponsesP95,DiskAlmostFull` | none |
//! | `OBSERVE_ALERT_RUNBOOK_URL` | the runbook URL pattern, `{alertname}` replaced | [`ALERT_RUNBOOK_URL`] |
//! | `OBSERVE_ALERT_EXTERNAL_URL` | this service's URL, for `externalURL`/`generatorURL` in payloads | none |
//! | `OBSERVE_ALERT_WEBHOOK_URL` | a receiver of Alertmanager's webhook payload (version 4) | none |
//! | `OBSERVE_ALERT_SLACK_WEBHOOK_URL` | a Slack incoming webhook | none |
//! | `OBSERVE_ALERT_DISCORD_WEBHOOK_URL` | a Discord webhook | none |
//! | `OBSERVE_ALERTMANAGER_URL` | an Alertmanager, as `http://alertmanager:9093` | none |
//!
//! Receiver URLs are credentials: an error about one names the variable,
//! never the value.
//!
//! Builder methods win over the environment. A value that does not parse
//! makes [`init`](crate::ObservabilityBuilder::init) fail with a
//! [`ConfigError`](crate::ConfigError) that names the variable and the value.

use std::time::Duration;

pub use crate::serve::{
    BODY_READ_TIMEOUT, HEADER_READ_TIMEOUT, IDLE_TIMEOUT, RESERVED_FILE_DESCRIPTORS,
};
pub use observe_alerts::{
    DEFAULT_DB_POOL_PERCENT as ALERT_DB_POOL_PERCENT, DEFAULT_DISK_PERCENT as ALERT_DISK_PERCENT,
    DEFAULT_ERROR_RATE as ALERT_ERROR_RATE, DEFAULT_EVAL_INTERVAL as ALERT_EVAL_INTERVAL,
    DEFAULT_FOR as ALERT_FOR, DEFAULT_MEMORY_PERCENT as ALERT_MEMORY_PERCENT,
    DEFAULT_MIN_REQUESTS as ALERT_MIN_REQUESTS, DEFAULT_REPEAT_INTERVAL as ALERT_REPEAT_INTERVAL,
    DEFAULT_RESPONSE_TIME as ALERT_RESPONSE_TIME, DEFAULT_RUNBOOK_URL as ALERT_RUNBOOK_URL,
    DEFAULT_WINDOW as ALERT_WINDOW,
};
pub use observe_errors::MAX_PLAIN_ERROR_BODY;
pub use observe_health::{
    DEFAULT_CACHE_TTL as HEALTH_CACHE_TTL, DEFAULT_CHECK_TIMEOUT as HEALTH_CHECK_TIMEOUT,
    HEALTH_PATH, HTTP_CHECK_TIMEOUT, LIVE_PATH, READY_PATH,
};
pub use observe_metrics::{
    ABORTED_STATUS, DEFAULT_BUCKETS as HISTOGRAM_BUCKETS, METRICS_PATH, OTHER_METHOD, RED_TICK,
    UNMATCHED_ENDPOINT, UPKEEP_INTERVAL as METRICS_UPKEEP_INTERVAL,
};
pub use observe_request_id::{DEFAULT_HEADER_NAME as REQUEST_ID_HEADER, MAX_REQUEST_ID_LEN};

/// Where [`status_router`](crate::Observability::status_router) serves its
/// page.
pub const STATUS_PATH: &str = "/status";

/// Where the page reads its figures.
pub const STATUS_RED_PATH: &str = "/status/red";

/// The route templates [`router`](crate::Observability::router) serves
/// beside the application, when alerting is on: outside the metrics, the
/// request log and the trace.
pub const BUILT_IN_ROUTES: [&str; 7] = [
    METRICS_PATH,
    HEALTH_PATH,
    LIVE_PATH,
    READY_PATH,
    STATUS_PATH,
    STATUS_RED_PATH,
    observe_alerts::ALERTS_PATH,
];

/// How far back the status page's charts go.
pub const STATUS_SPAN: Duration = Duration::from_secs(300);

/// The step of the status page's charts.
pub const STATUS_STEP: Duration = Duration::from_secs(10);

/// The environment name when `OBSERVE_ENVIRONMENT` is not set.
pub const ENVIRONMENT: &str = "development";

/// How long open requests may take to finish after a shutdown signal. Below
/// Kubernetes' default 30 s grace period, so draining ends before SIGKILL.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(25);

/// The log filter when `RUST_LOG` is not set.
pub const LOG_FILTER: &str = "info";

pub use observe_log::{
    DEFAULT_EXCLUDED_PATHS as LOG_EXCLUDED_PATHS, DEFAULT_MAX_FILES as LOG_MAX_FILES,
    DEFAULT_QUEUE_CAPACITY as LOG_QUEUE_CAPACITY,
};

/// How long [`serve`](crate::Observability::serve) waits for the log writer
/// to write every accepted line before it returns.
pub const LOG_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `serve` goes on accepting after a shutdown signal with readiness
/// at `503`. Zero: a local Ctrl-C stops at once. Behind a load balancer, set
/// `OBSERVE_READINESS_DELAY` a little above the readiness probe period.
pub const READINESS_DELAY: Duration = Duration::ZERO;
