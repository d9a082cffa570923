//! The engine's alerts as Prometheus rules, for teams that run Prometheus
//! and Alertmanager: recording rules for the request rate, 5xx ratio and
//! latency per `job` over the SLO windows, the built-in alerts as PromQL with
//! the engine's own thresholds, `TargetDown`, `LogLinesDropped`,
//! `SpansDropped`, and multiwindow, multi-burn-rate SLO alerts (the SRE
//! workbook's) for availability and latency.
//!
//! The repository's `monitoring/prometheus/rules/observe.rules.yml` and its
//! `promtool` tests are written by this module (`cargo run -p
//! observe-alerts --example prometheus_rules`), and a test fails when the
//! committed files differ from what it writes: a threshold is never typed
//! twice.
//!
//! ```
//! use observe_alerts::prometheus::PrometheusRules;
//!
//! let rules = PrometheusRules::new("vk-parser").availability_objective(0.995);
//! let yaml = rules.rules_yaml();
//! assert!(yaml.contains("alert: HighErrorRate"));
//! assert!(yaml.contains("record: job:http_requests_5xx:ratio_rate30d"));
//! ```

mod promtool;

use std::{fmt::Write as _, time::Duration};

use observe_health::Status;

use crate::{
    DEFAULT_FOR, DEFAULT_RUNBOOK_URL, DEFAULT_WINDOW, Thresholds,
    rule::{BuiltinRule, Severity},
};

/// The windows recording rules are kept for: those of the burn-rate tiers,
/// the engine's, and the 30-day SLO period.
pub const RECORDING_WINDOWS: [Duration; 8] = [
    Duration::from_secs(300),
    Duration::from_secs(1_800),
    Duration::from_secs(3_600),
    Duration::from_secs(7_200),
    Duration::from_secs(21_600),
    Duration::from_secs(86_400),
    Duration::from_secs(259_200),
    Duration::from_secs(2_592_000),
];

/// The SLO alerts' tiers: long window, short window, burn rate, severity
/// (SRE workbook, "Alerting on SLOs", table 5-8).
pub const BURN_RATE_TIERS: [(Duration, Duration, f64, Severity); 4] = [
    (
        Duration::from_secs(3_600),
        Duration::from_secs(300),
        14.4,
        Severity::Critical,
    ),
    (
        Duration::from_secs(21_600),
        Duration::from_secs(1_800),
        6.0,
        Severity::Critical,
    ),
    (
        Duration::from_secs(86_400),
        Duration::from_secs(7_200),
        3.0,
        Severity::Warning,
    ),
    (
        Duration::from_secs(259_200),
        Duration::from_secs(21_600),
        1.0,
        Severity::Warning,
    ),
];

/// The default availability objective: 99.9% of requests not 5xx.
pub const AVAILABILITY_OBJECTIVE: f64 = 0.999;

/// The default latency objective: 99% of requests faster than
/// [`LATENCY_THRESHOLD`].
pub const LATENCY_OBJECTIVE: f64 = 0.99;

/// The latency objective's bound, in seconds: a bucket bound of the default
/// histogram, so the ratio is read off one bucket exactly.
pub const LATENCY_THRESHOLD: f64 = 1.0;

/// One rule of a rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct PromRule {
    /// `record:` or `alert:`.
    pub kind: RuleKind,
    /// The recorded series' or the alert's name.
    pub name: String,
    /// The PromQL expression.
    pub expr: String,
    /// For an alert, the expression of the value its condition compares
    /// (what `{{ $value }}` shows), for checking that it returns data.
    pub value_expr: String,
    /// `for:`.
    pub for_duration: Option<Duration>,
    /// `labels:`.
    pub labels: Vec<(String, String)>,
    /// `annotations:`.
    pub annotations: Vec<(String, String)>,
}

/// Recording or alerting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// A recording rule.
    Record,
    /// An alerting rule.
    Alert,
}

/// A group of rules.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    /// Its name.
    pub name: String,
    /// Its rules.
    pub rules: Vec<PromRule>,
}

/// Writes the rule file; see the [module](self) docs.
#[derive(Debug, Clone)]
pub struct PrometheusRules {
    job: String,
    thresholds: Thresholds,
    for_duration: Duration,
    availability_objective: f64,
    latency_objective: f64,
    runbook_url: String,
    job_selector: String,
}

impl PrometheusRules {
    /// Rules for the scrape job `job`, with the engine's default thresholds.
    pub fn new(job: &str) -> Self {
        Self {
            job: job.to_owned(),
            thresholds: Thresholds::default(),
            for_duration: DEFAULT_FOR,
            availability_objective: AVAILABILITY_OBJECTIVE,
            latency_objective: LATENCY_OBJECTIVE,
            runbook_url: DEFAULT_RUNBOOK_URL.to_owned(),
            job_selector: format!("job=\"{job}\""),
        }
    }

    /// The built-in alerts' thresholds.
    pub fn thresholds(mut self, thresholds: Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// `for:` of the built-in alerts (default [`DEFAULT_FOR`]); tests
    /// shorten it.
    pub fn for_duration(mut self, duration: Duration) -> Self {
        self.for_duration = duration;
        self
    }

    /// The share of requests that must not be 5xx.
    pub fn availability_objective(mut self, objective: f64) -> Self {
        self.availability_objective = objective;
        self
    }

    /// The share of requests that must be faster than [`LATENCY_THRESHOLD`].
    pub fn latency_objective(mut self, objective: f64) -> Self {
        self.latency_objective = objective;
        self
    }

    /// The runbook URL pattern; `{alertname}` is replaced.
    pub fn runbook_url(mut self, pattern: impl Into<String>) -> Self {
        self.runbook_url = pattern.into();
        self
    }

    /// Every group of the rule file.
    pub fn groups(&self) -> Vec<RuleGroup> {
        vec![
            RuleGroup {
                name: "observe-recording".to_owned(),
                rules: self.recording_rules(),
            },
            RuleGroup {
                name: "observe-alerts".to_owned(),
                rules: self.alerts(),
            },
            RuleGroup {
                name: "observe-slo".to_owned(),
                rules: self.slo_alerts(),
            },
        ]
    }

    fn recording_rules(&self) -> Vec<PromRule> {
        let job = &self.job_selector;
        let le = latency_bucket();
        let mut rules = Vec::new();
        for window in RECORDING_WINDOWS {
            let w = duration(window);
            let record = |name: String, expr: String| PromRule {
                kind: RuleKind::Record,
                name,
                value_expr: expr.clone(),
                expr,
                for_duration: None,
                labels: Vec::new(),
                annotations: Vec::new(),
            };
            rules.push(record(
                format!("job:http_requests:rate{w}"),
                format!("sum by (job) (rate(http_requests_total{{{job}}}[{w}]))"),
            ));
            rules.push(record(
                format!("job:http_requests_5xx:ratio_rate{w}"),
                format!(
                    "sum by (job) (rate(http_requests_total{{{job},status_code=~\"5..\"}}[{w}]))\n/\nsum by (job) (rate(http_requests_total{{{job}}}[{w}]))"
                ),
            ));
            rules.push(record(
                format!("job:http_requests_slow:ratio_rate{w}"),
                format!(
                    "1 - (\n  sum by (job) (rate(http_request_duration_seconds_bucket{{{job},le=~\"{le}\"}}[{w}]))\n  /\n  sum by (job) (rate(http_request_duration_seconds_count{{{job}}}[{w}]))\n)"
                ),
            ));
            rules.push(record(
                format!("job:http_request_duration_seconds:mean_rate{w}"),
                format!(
                    "sum by (job) (rate(http_request_duration_seconds_sum{{{job}}}[{w}]))\n/\nsum by (job) (rate(http_request_duration_seconds_count{{{job}}}[{w}]))"
                ),
            ));
            rules.push(record(
                format!("job:http_request_duration_seconds:p95_rate{w}"),
                format!(
                    "histogram_quantile(0.95, sum by (job, le) (rate(http_request_duration_seconds_bucket{{{job}}}[{w}])))"
                ),
            ));
        }
        rules
    }

    fn alert(
        &self,
        name: &str,
        severity: Severity,
        value_expr: String,
        condition: String,
        for_duration: Option<Duration>,
        (summary, description): (&str, &str),
    ) -> PromRule {
        PromRule {
            kind: RuleKind::Alert,
            name: name.to_owned(),
            expr: condition,
            value_expr,
            for_duration,
            labels: vec![
                ("severity".to_owned(), severity.as_str().to_owned()),
                ("service".to_owned(), "{{ $labels.job }}".to_owned()),
            ],
            annotations: vec![
                ("summary".to_owned(), summary.to_owned()),
                ("description".to_owned(), description.to_owned()),
                (
                    "runbook_url".to_owned(),
                    self.runbook_url.replace("{alertname}", name),
                ),
            ],
        }
    }

    fn alerts(&self) -> Vec<PromRule> {
        let t = &self.thresholds;
        let w = duration(DEFAULT_WINDOW);
        let window_secs = DEFAULT_WINDOW.as_secs();
        let job = &self.job_selector;
        let for_ = Some(self.for_duration);
        let percent = |ratio: f64| number(ratio * 100.0);
        let builtin = |rule: BuiltinRule| (rule.name(), rule.severity());
        let mut rules = Vec::new();

        let (name, severity) = builtin(BuiltinRule::HighErrorRate);
        let value = format!("job:http_requests_5xx:ratio_rate{w}{{{job}}}");
        rules.push(self.alert(
            name,
            severity,
            value.clone(),
            format!(
                "{value} > {}\nand\njob:http_requests:rate{w}{{{job}}} * {window_secs} >= {}",
                number(t.error_rate),
                t.min_requests
            ),
            for_,
            ("Many requests fail with a 5xx status", &format!(
                "{{{{ $value | humanizePercentage }}}} of the requests of {{{{ $labels.job }}}} over the last {w} answered 5xx (threshold {}%, at least {} requests).",
                percent(t.error_rate),
                t.min_requests
            )),
        ));

        let response = number(t.response_time.as_secs_f64());
        let (name, severity) = builtin(BuiltinRule::SlowResponses);
        let value = format!("job:http_request_duration_seconds:mean_rate{w}{{{job}}}");
        rules.push(self.alert(
            name,
            severity,
            value.clone(),
            format!("{value} > {response}"),
            for_,
            ("Responses are slow on average", &format!(
                "The mean response time of {{{{ $labels.job }}}} over the last {w} is {{{{ $value | humanizeDuration }}}} (threshold {response}s)."
            )),
        ));
        let (name, severity) = builtin(BuiltinRule::SlowResponsesP95);
        let value = format!("job:http_request_duration_seconds:p95_rate{w}{{{job}}}");
        rules.push(self.alert(
            name,
            severity,
            value.clone(),
            format!("{value} > {response}"),
            for_,
            ("The slowest 5% of responses are slow", &format!(
                "The 95th percentile response time of {{{{ $labels.job }}}} over the last {w} is {{{{ $value | humanizeDuration }}}} (threshold {response}s)."
            )),
        ));

        let usage = [
            (
                BuiltinRule::HighMemoryUsage,
                "memory_used_ratio",
                t.memory_percent,
                "Memory is almost exhausted",
                "{{ $value | humanizePercentage }} of the memory limit of {{ $labels.instance }} is in use",
            ),
            (
                BuiltinRule::DiskAlmostFull,
                "disk_used_ratio",
                t.disk_percent,
                "A filesystem is almost full",
                "{{ $value | humanizePercentage }} of {{ $labels.path }} on {{ $labels.instance }} is used",
            ),
            (
                BuiltinRule::DatabasePoolSaturated,
                "db_pool_utilization_ratio",
                t.db_pool_percent,
                "A database connection pool is almost exhausted",
                "{{ $value | humanizePercentage }} of the connections of the pool of {{ $labels.check }} on {{ $labels.instance }} are in use",
            ),
        ];
        for (rule, metric, threshold, summary, description) in usage {
            let value = format!("{metric}{{{job}}}");
            rules.push(self.alert(
                rule.name(),
                rule.severity(),
                value.clone(),
                format!("{value} > {}", number(threshold / 100.0)),
                for_,
                (
                    summary,
                    &format!("{description} (threshold {}%).", number(threshold)),
                ),
            ));
        }

        let failing = Status::Critical.severity();
        let value = format!("health_check_status{{{job}}}");
        rules.push(self.alert(
            BuiltinRule::HealthCheckFailing.name(),
            BuiltinRule::HealthCheckFailing.severity(),
            value.clone(),
            format!(
                "{value} >= {failing}\nand on (job, instance, check)\nhealth_check_critical{{{job}}} == 1"
            ),
            for_,
            ("A critical health check is failing", &format!(
                "The critical health check {{{{ $labels.check }}}} of {{{{ $labels.instance }}}} reports status {{{{ $value }}}} ({} critical, {} unhealthy).",
                Status::Critical.severity(),
                Status::Unhealthy.severity()
            )),
        ));

        let value = format!("up{{{job}}}");
        rules.push(self.alert(
            "TargetDown",
            Severity::Critical,
            value.clone(),
            format!("{value} == 0"),
            for_,
            ("Prometheus cannot scrape the service", "{{ $labels.instance }} of {{ $labels.job }} has not answered a scrape of /metrics for a minute (up is {{ $value }})."),
        ));
        for (name, metric, summary, what) in [
            (
                "LogLinesDropped",
                "log_lines_dropped_total",
                "Log lines are being dropped",
                "log lines",
            ),
            (
                "SpansDropped",
                "otel_spans_dropped_total",
                "Spans are being dropped",
                "spans",
            ),
        ] {
            let value = format!("increase({metric}{{{job}}}[{w}])");
            rules.push(self.alert(
                name,
                Severity::Warning,
                value.clone(),
                format!("{value} > 0"),
                None,
            (summary, &format!(
                    "{{{{ $labels.instance }}}} dropped {{{{ $value | humanize }}}} {what} over the last {w}."
                )),
        ));
        }
        rules
    }

    fn slo_alerts(&self) -> Vec<PromRule> {
        let mut rules = Vec::new();
        let slos = [
            (
                "AvailabilityBurnRate",
                "http_requests_5xx",
                self.availability_objective,
                "The availability error budget is burning fast",
                "answered 5xx",
            ),
            (
                "LatencyBurnRate",
                "http_requests_slow",
                self.latency_objective,
                "The latency error budget is burning fast",
                &*format!("took longer than {}s", number(LATENCY_THRESHOLD)),
            ),
        ];
        for (name, series, objective, summary, what) in slos {
            let objective = number(objective);
            for (long, short, burn, severity) in BURN_RATE_TIERS {
                let (long, short, burn) = (duration(long), duration(short), number(burn));
                let value = format!("job:{series}:ratio_rate{long}{{{}}}", self.job_selector);
                let mut rule = self.alert(
                    name,
                    severity,
                    value.clone(),
                    format!(
                        "{value} > ({burn} * (1 - {objective}))\nand\njob:{series}:ratio_rate{short}{{{}}} > ({burn} * (1 - {objective}))",
                        self.job_selector
                    ),
                    None,
            (summary, &format!(
                        "{{{{ $value | humanizePercentage }}}} of the requests of {{{{ $labels.job }}}} {what} over the last {long} (and over {short}): {burn}x the rate that spends the whole error budget of the {objective} objective in 30 days."
                    )),
        );
                rule.labels.push(("window".to_owned(), long));
                rules.push(rule);
            }
        }
        rules
    }

    /// The rule file, as YAML.
    pub fn rules_yaml(&self) -> String {
        let mut out = String::from(
            "# Generated by observe-alerts (crates/observe-alerts/src/prometheus/mod.rs):\n\
             # cargo run -p observe-alerts --example prometheus_rules -- rules\n\
             # Do not edit: a test fails when this file differs from what it writes.\n\
             groups:\n",
        );
        for group in self.groups() {
            let _ = writeln!(out, "  - name: {}", group.name);
            out.push_str("    rules:\n");
            for rule in &group.rules {
                let key = match rule.kind {
                    RuleKind::Record => "record",
                    RuleKind::Alert => "alert",
                };
                let _ = writeln!(out, "      - {key}: {}", rule.name);
                write_block(&mut out, 8, "expr", &rule.expr);
                if let Some(for_duration) = rule.for_duration.filter(|d| !d.is_zero()) {
                    let _ = writeln!(out, "        for: {}", duration(for_duration));
                }
                for (title, pairs) in [("labels", &rule.labels), ("annotations", &rule.annotations)]
                {
                    if pairs.is_empty() {
                        continue;
                    }
                    let _ = writeln!(out, "        {title}:");
                    for (name, value) in pairs {
                        let _ = writeln!(out, "          {name}: {}", quote(value));
                    }
                }
            }
        }
        out
    }
}

/// `le` as Prometheus 2 writes it (`1`) and as Prometheus 3 normalises it
/// (`1.0`).
fn latency_bucket() -> String {
    let bound = number(LATENCY_THRESHOLD);
    if bound.contains('.') {
        bound.replace('.', "\\\\.")
    } else {
        format!("{bound}(\\\\.0)?")
    }
}

/// A number as PromQL and people read it: `0.05`, `2`, `14.4`.
pub(crate) fn number(value: f64) -> String {
    let text = format!("{value:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// A duration in Prometheus's notation: `5m`, `1h`, `3d`.
pub(crate) fn duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if duration.subsec_nanos() != 0 {
        return format!("{}ms", duration.as_millis());
    }
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds >= size && seconds.is_multiple_of(size) {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// A YAML scalar in single quotes (nothing is escaped in them but `'`).
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `key: value`, or a literal block when the value has several lines.
fn write_block(out: &mut String, indent: usize, key: &str, value: &str) {
    let pad = " ".repeat(indent);
    if value.contains('\n') {
        let _ = writeln!(out, "{pad}{key}: |-");
        for line in value.lines() {
            let _ = writeln!(out, "{pad}  {line}");
        }
    } else {
        let _ = writeln!(out, "{pad}{key}: {}", quote(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_numbers_as_prometheus_writes_them() {
        assert_eq!(duration(Duration::from_secs(300)), "5m");
        assert_eq!(duration(Duration::from_secs(3_600)), "1h");
        assert_eq!(duration(Duration::from_secs(259_200)), "3d");
        assert_eq!(duration(Duration::from_secs(90)), "90s");
        assert_eq!(duration(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(number(0.05), "0.05");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(14.4), "14.4");
        assert_eq!(number(0.999), "0.999");
    }

    #[test]
    fn every_builtin_rule_has_an_alert_with_the_engines_threshold() {
        let rules = PrometheusRules::new("svc").thresholds(Thresholds {
            error_rate: 0.1,
            memory_percent: 95.0,
            ..Thresholds::default()
        });
        let groups = rules.groups();
        let alerts: Vec<&PromRule> = groups[1].rules.iter().collect();
        for builtin in BuiltinRule::ALL {
            let alert = alerts
                .iter()
                .find(|alert| alert.name == builtin.name())
                .unwrap_or_else(|| panic!("no {}", builtin.name()));
            assert_eq!(alert.labels[0].1, builtin.severity().as_str());
        }
        let high = alerts.iter().find(|alert| alert.name == "HighErrorRate");
        assert!(high.is_some_and(|alert| alert.expr.contains("> 0.1\n")));
        let memory = alerts.iter().find(|alert| alert.name == "HighMemoryUsage");
        assert!(memory.is_some_and(|alert| alert.expr.ends_with("> 0.95")));
        assert_eq!(groups[0].rules.len(), 5 * RECORDING_WINDOWS.len());
        assert_eq!(groups[2].rules.len(), 2 * BURN_RATE_TIERS.len());
    }
}
