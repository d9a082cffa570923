//! What is alerted on: the built-in rules over the RED window and the
//! health checks, and rules of the application's own.

use std::{fmt, sync::Arc, time::Duration};

use observe_health::{HealthReport, Status, Usage};
use observe_metrics::RedSnapshot;

use crate::{
    DEFAULT_DB_POOL_PERCENT, DEFAULT_DISK_PERCENT, DEFAULT_ERROR_RATE, DEFAULT_MEMORY_PERCENT,
    DEFAULT_MIN_REQUESTS, DEFAULT_RESPONSE_TIME, Labels,
};

/// How urgent an alert is: `critical` pages, `warning` is a ticket, `info`
/// goes nowhere by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// For the record.
    Info,
    /// Needs attention during working hours.
    Warning,
    /// Needs someone now.
    Critical,
}

impl Severity {
    /// `info`, `warning` or `critical`: the `severity` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a value is compared with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// The condition holds when the value is above the threshold.
    Above,
    /// The condition holds when the value is below the threshold.
    Below,
}

impl Comparison {
    pub(crate) fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Above => value > threshold,
            Self::Below => value < threshold,
        }
    }
}

/// The thresholds of the built-in rules, shared with the Prometheus rule
/// generator so both alert on the same numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// `HighErrorRate`: the 5xx share, 0 to 1.
    pub error_rate: f64,
    /// `HighErrorRate`: requests needed in the window.
    pub min_requests: u64,
    /// `SlowResponses` (mean) and `SlowResponsesP95`.
    pub response_time: Duration,
    /// `HighMemoryUsage`, percent.
    pub memory_percent: f64,
    /// `DiskAlmostFull`, percent.
    pub disk_percent: f64,
    /// `DatabasePoolSaturated`, percent.
    pub db_pool_percent: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            error_rate: DEFAULT_ERROR_RATE,
            min_requests: DEFAULT_MIN_REQUESTS,
            response_time: DEFAULT_RESPONSE_TIME,
            memory_percent: DEFAULT_MEMORY_PERCENT,
            disk_percent: DEFAULT_DISK_PERCENT,
            db_pool_percent: DEFAULT_DB_POOL_PERCENT,
        }
    }
}

/// A built-in rule, to turn off or look up by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinRule {
    /// `HighErrorRate`.
    HighErrorRate,
    /// `SlowResponses` (mean).
    SlowResponses,
    /// `SlowResponsesP95`.
    SlowResponsesP95,
    /// `HighMemoryUsage`.
    HighMemoryUsage,
    /// `DiskAlmostFull`.
    DiskAlmostFull,
    /// `DatabasePoolSaturated`.
    DatabasePoolSaturated,
    /// `HealthCheckFailing`.
    HealthCheckFailing,
}

impl BuiltinRule {
    /// Every built-in rule.
    pub const ALL: [Self; 7] = [
        Self::HighErrorRate,
        Self::SlowResponses,
        Self::SlowResponsesP95,
        Self::HighMemoryUsage,
        Self::DiskAlmostFull,
        Self::DatabasePoolSaturated,
        Self::HealthCheckFailing,
    ];

    /// The alert's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::HighErrorRate => "HighErrorRate",
            Self::SlowResponses => "SlowResponses",
            Self::SlowResponsesP95 => "SlowResponsesP95",
            Self::HighMemoryUsage => "HighMemoryUsage",
            Self::DiskAlmostFull => "DiskAlmostFull",
            Self::DatabasePoolSaturated => "DatabasePoolSaturated",
            Self::HealthCheckFailing => "HealthCheckFailing",
        }
    }

    /// The rule named `name`, if it is a built-in one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|rule| rule.name() == name)
    }

    /// Its severity.
    pub fn severity(self) -> Severity {
        match self {
            Self::HighErrorRate | Self::HighMemoryUsage | Self::HealthCheckFailing => {
                Severity::Critical
            }
            _ => Severity::Warning,
        }
    }

    /// The rule with `thresholds`.
    pub fn rule(self, thresholds: &Thresholds) -> Rule {
        let (threshold, unit, metric, summary, description) = match self {
            Self::HighErrorRate => (
                thresholds.error_rate,
                Unit::Ratio,
                "http_5xx_ratio",
                "Many requests fail with a 5xx status",
                "{value} of requests over the last {window} answered 5xx (threshold {threshold}, at least {min_requests} requests).",
            ),
            Self::SlowResponses => (
                thresholds.response_time.as_secs_f64(),
                Unit::Seconds,
                "http_mean_response_seconds",
                "Responses are slow on average",
                "The mean response time over the last {window} is {value} (threshold {threshold}).",
            ),
            Self::SlowResponsesP95 => (
                thresholds.response_time.as_secs_f64(),
                Unit::Seconds,
                "http_p95_response_seconds",
                "The slowest 5% of responses are slow",
                "The 95th percentile response time over the last {window} is {value} (threshold {threshold}).",
            ),
            Self::HighMemoryUsage => (
                thresholds.memory_percent / 100.0,
                Unit::Ratio,
                "memory_used_ratio",
                "Memory is almost exhausted",
                "{value} of the memory limit is in use (threshold {threshold}).",
            ),
            Self::DiskAlmostFull => (
                thresholds.disk_percent / 100.0,
                Unit::Ratio,
                "disk_used_ratio",
                "A filesystem is almost full",
                "{value} of {path} is used (threshold {threshold}).",
            ),
            Self::DatabasePoolSaturated => (
                thresholds.db_pool_percent / 100.0,
                Unit::Ratio,
                "db_pool_utilization_ratio",
                "A database connection pool is almost exhausted",
                "{value} of the connections of the pool of {check} are in use (threshold {threshold}).",
            ),
            Self::HealthCheckFailing => (
                0.0,
                Unit::Plain,
                "health_check_status",
                "A critical health check is failing",
                "The critical health check {check} is {status}.",
            ),
        };
        let description =
            description.replace("{min_requests}", &thresholds.min_requests.to_string());
        Rule {
            name: self.name().to_owned(),
            severity: self.severity(),
            threshold,
            comparison: Comparison::Above,
            labels: Labels::new(),
            annotations: Labels::from([
                ("summary".to_owned(), summary.to_owned()),
                ("description".to_owned(), description),
            ]),
            for_duration: None,
            keep_firing_for: None,
            unit,
            metric: metric.to_owned(),
            source: Source::Builtin {
                rule: self,
                min_requests: thresholds.min_requests,
            },
        }
    }
}

/// How a value is written in annotations and notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// A share, written as a percentage.
    Ratio,
    /// Seconds, written with milliseconds.
    Seconds,
    /// A number as it is.
    Plain,
}

impl Unit {
    pub(crate) fn format(self, value: f64) -> String {
        match self {
            Self::Ratio => format!("{:.2}%", value * 100.0),
            Self::Seconds => format!("{:.3}s", value),
            Self::Plain => {
                if value.fract() == 0.0 && value.abs() < 1e15 {
                    format!("{}", value as i64)
                } else {
                    format!("{value:.3}")
                }
            }
        }
    }
}

type ValueFn = Arc<dyn Fn() -> Option<f64> + Send + Sync>;

#[derive(Clone)]
pub(crate) enum Source {
    Builtin {
        rule: BuiltinRule,
        min_requests: u64,
    },
    Value(ValueFn),
}

/// What the rules read at one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The RED window, when a metrics registry is attached.
    pub red: Option<&'a RedSnapshot>,
    /// The latest health report, when health checks are attached.
    pub health: Option<&'a HealthReport>,
}

/// One value a rule produced, with the labels that tell it apart from the
/// rule's other values (a disk's `path`, a check's name).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) labels: Vec<(&'static str, String)>,
    /// Values for the annotations' placeholders that are not labels (they
    /// may change while the alert stays the same one).
    pub(crate) notes: Vec<(&'static str, String)>,
    pub(crate) value: f64,
}

/// A rule: a value, a threshold, and what the alert says.
///
/// ```
/// use std::time::Duration;
/// use observe_alerts::{Comparison, Rule, Severity};
///
/// let rule = Rule::new("FewWorkers", Severity::Critical, 2.0, || Some(1.0))
///     .comparison(Comparison::Below)
///     .label("team", "parsers")
///     .summary("Fewer than two workers are alive")
///     .description("{value} workers alive (threshold {threshold})")
///     .for_duration(Duration::from_secs(30));
/// assert_eq!(rule.name(), "FewWorkers");
/// ```
#[derive(Clone)]
pub struct Rule {
    name: String,
    pub(crate) severity: Severity,
    pub(crate) threshold: f64,
    pub(crate) comparison: Comparison,
    pub(crate) labels: Labels,
    pub(crate) annotations: Labels,
    pub(crate) for_duration: Option<Duration>,
    pub(crate) keep_firing_for: Option<Duration>,
    pub(crate) unit: Unit,
    pub(crate) metric: String,
    pub(crate) source: Source,
}

impl Rule {
    /// A rule named `name` (the `alertname` label) that fires when
    /// `value()` is above `threshold`. `value` returning `None` means no
    /// data: the condition does not hold. It runs on the evaluation task,
    /// so it must be quick and must not block.
    pub fn new(
        name: impl Into<String>,
        severity: Severity,
        threshold: f64,
        value: impl Fn() -> Option<f64> + Send + Sync + 'static,
    ) -> Self {
        let name = name.into();
        Self {
            metric: name.clone(),
            name,
            severity,
            threshold,
            comparison: Comparison::Above,
            labels: Labels::new(),
            annotations: Labels::from([(
                "description".to_owned(),
                "The value is {value} (threshold {threshold}).".to_owned(),
            )]),
            for_duration: None,
            keep_firing_for: None,
            unit: Unit::Plain,
            source: Source::Value(Arc::new(value)),
        }
    }

    /// Fires below the threshold instead of above it.
    pub fn comparison(mut self, comparison: Comparison) -> Self {
        self.comparison = comparison;
        self
    }

    /// Adds a label to every alert of this rule.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// Adds an annotation. In its text `{value}`, `{threshold}` and
    /// `{<label name>}` are replaced.
    pub fn annotation(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.annotations.insert(name.into(), text.into());
        self
    }

    /// The `summary` annotation.
    pub fn summary(self, text: impl Into<String>) -> Self {
        self.annotation("summary", text)
    }

    /// The `description` annotation.
    pub fn description(self, text: impl Into<String>) -> Self {
        self.annotation("description", text)
    }

    /// How long the condition must hold before the alert fires; the
    /// engine's default (`OBSERVE_ALERT_FOR`) otherwise.
    pub fn for_duration(mut self, duration: Duration) -> Self {
        self.for_duration = Some(duration);
        self
    }

    /// How long the alert keeps firing after the condition stops.
    pub fn keep_firing_for(mut self, duration: Duration) -> Self {
        self.keep_firing_for = Some(duration);
        self
    }

    /// The name notifications give the measured value (Slack's "Metric"
    /// field); the rule's name by default.
    pub fn metric(mut self, metric: impl Into<String>) -> Self {
        self.metric = metric.into();
        self
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its severity.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// Its threshold.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The built-in rule it is, if it is one.
    pub fn builtin(&self) -> Option<BuiltinRule> {
        match self.source {
            Source::Builtin { rule, .. } => Some(rule),
            Source::Value(_) => None,
        }
    }

    /// Appends this rule's values now to `out`.
    pub(crate) fn samples(&self, inputs: &Inputs<'_>, out: &mut Vec<Sample>) {
        let one = |value: f64| Sample {
            labels: Vec::new(),
            notes: Vec::new(),
            value,
        };
        match &self.source {
            Source::Value(value) => out.extend(value().map(one)),
            Source::Builtin { rule, min_requests } => match rule {
                BuiltinRule::HighErrorRate => {
                    if let Some(red) = inputs.red
                        && red.requests >= *min_requests
                        && red.requests > 0
                    {
                        out.push(one(red.error_rate));
                    }
                }
                BuiltinRule::SlowResponses => {
                    if let Some(red) = inputs.red.filter(|red| red.requests > 0) {
                        out.push(one(red.mean.as_secs_f64()));
                    }
                }
                BuiltinRule::SlowResponsesP95 => {
                    if let Some(red) = inputs.red.filter(|red| red.requests > 0) {
                        out.push(one(red.p95.as_secs_f64()));
                    }
                }
                BuiltinRule::HighMemoryUsage
                | BuiltinRule::DiskAlmostFull
                | BuiltinRule::DatabasePoolSaturated => {
                    let Some(health) = inputs.health else {
                        return;
                    };
                    for check in health.checks() {
                        let labels = match (rule, check.usage()) {
                            (BuiltinRule::HighMemoryUsage, Some(Usage::Memory { .. })) => {
                                vec![("check", check.name().to_owned())]
                            }
                            (BuiltinRule::DiskAlmostFull, Some(Usage::Disk { path, .. })) => {
                                vec![("check", check.name().to_owned()), ("path", path.clone())]
                            }
                            (BuiltinRule::DatabasePoolSaturated, Some(Usage::Pool { .. })) => {
                                vec![("check", check.name().to_owned())]
                            }
                            _ => continue,
                        };
                        if let Some(usage) = check.usage() {
                            out.push(Sample {
                                labels,
                                notes: Vec::new(),
                                value: usage.used_ratio(),
                            });
                        }
                    }
                }
                BuiltinRule::HealthCheckFailing => {
                    let Some(health) = inputs.health else {
                        return;
                    };
                    for check in health.checks().iter().filter(|check| check.is_critical()) {
                        let failing =
                            matches!(check.status(), Status::Critical | Status::Unhealthy);
                        out.push(Sample {
                            labels: vec![("check", check.name().to_owned())],
                            notes: vec![("status", check.status().as_str().to_owned())],
                            value: if failing { 1.0 } else { 0.0 },
                        });
                    }
                }
            },
        }
    }

    /// The `component` label of a built-in rule: what inhibition groups by.
    pub(crate) fn component(&self, sample: &Sample) -> Option<String> {
        match self.builtin()? {
            BuiltinRule::HighErrorRate
            | BuiltinRule::SlowResponses
            | BuiltinRule::SlowResponsesP95 => Some("http".to_owned()),
            _ => sample
                .labels
                .iter()
                .find(|(name, _)| *name == "check")
                .map(|(_, check)| check.clone()),
        }
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("severity", &self.severity)
            .field("threshold", &self.threshold)
            .field("comparison", &self.comparison)
            .field("labels", &self.labels)
            .field("for_duration", &self.for_duration)
            .field("keep_firing_for", &self.keep_firing_for)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_severities() {
        for rule in BuiltinRule::ALL {
            assert_eq!(BuiltinRule::from_name(rule.name()), Some(rule));
        }
        assert_eq!(BuiltinRule::from_name("Nope"), None);
        assert_eq!(BuiltinRule::HighErrorRate.severity(), Severity::Critical);
        assert_eq!(BuiltinRule::DiskAlmostFull.severity(), Severity::Warning);
    }

    #[test]
    fn values_are_written_in_their_unit() {
        assert_eq!(Unit::Ratio.format(0.125), "12.50%");
        assert_eq!(Unit::Seconds.format(2.5), "2.500s");
        assert_eq!(Unit::Plain.format(3.0), "3");
        assert_eq!(Unit::Plain.format(0.5), "0.500");
    }

    #[test]
    fn percent_thresholds_become_ratios() {
        let thresholds = Thresholds::default();
        assert_eq!(
            BuiltinRule::HighMemoryUsage.rule(&thresholds).threshold(),
            0.9
        );
        assert_eq!(
            BuiltinRule::DiskAlmostFull.rule(&thresholds).threshold(),
            0.85
        );
        assert_eq!(
            BuiltinRule::DatabasePoolSaturated
                .rule(&thresholds)
                .threshold(),
            0.8
        );
        assert_eq!(
            BuiltinRule::SlowResponses.rule(&thresholds).threshold(),
            2.0
        );
        assert_eq!(
            BuiltinRule::HighErrorRate.rule(&thresholds).threshold(),
            0.05
        );
    }
}
