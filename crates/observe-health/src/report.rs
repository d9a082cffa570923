use std::{
    borrow::Cow,
    sync::Arc,
    time::{Duration, SystemTime},
};

use serde_json::{Map, Value, json};

use crate::{CheckResult, Status, Usage, time::rfc3339_millis};

/// What one run of one check found, as the runner saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub(crate) name: Arc<str>,
    pub(crate) critical: bool,
    pub(crate) status: Status,
    pub(crate) response_time: Duration,
    pub(crate) details: Map<String, Value>,
    pub(crate) error: Option<String>,
    /// What the public body says instead of `error` when details are hidden.
    pub(crate) public_error: Cow<'static, str>,
    pub(crate) checked_at: SystemTime,
    pub(crate) usage: Option<Usage>,
}

impl CheckReport {
    pub(crate) fn from_result(
        name: Arc<str>,
        critical: bool,
        result: CheckResult,
        response_time: Duration,
    ) -> Self {
        let CheckResult {
            status,
            details,
            error,
            usage,
        } = result;
        Self {
            name,
            critical,
            status,
            response_time,
            details,
            error,
            public_error: Cow::Borrowed(HIDDEN_ERROR),
            checked_at: SystemTime::now(),
            usage,
        }
    }

    /// A run that produced no result: a timeout, a panic. `public_error` is
    /// our own text, safe to show.
    pub(crate) fn failure(
        name: Arc<str>,
        critical: bool,
        status: Status,
        response_time: Duration,
        error: String,
        public_error: Cow<'static, str>,
    ) -> Self {
        Self {
            name,
            critical,
            status,
            response_time,
            details: Map::new(),
            error: Some(error),
            public_error,
            checked_at: SystemTime::now(),
            usage: None,
        }
    }

    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the check is critical: its status counts in full in the
    /// aggregate, and in `/health/ready`.
    pub fn is_critical(&self) -> bool {
        self.critical
    }

    /// The check's status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// How long the check took.
    pub fn response_time(&self) -> Duration {
        self.response_time
    }

    /// The check's details.
    pub fn details(&self) -> &Map<String, Value> {
        &self.details
    }

    /// The raw error, if the check failed.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// How full the resource is that the check measured, if it says.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// When the check finished.
    pub fn checked_at(&self) -> SystemTime {
        self.checked_at
    }

    /// The status this check gives the whole: a non-critical check can make
    /// it `degraded` at worst.
    pub(crate) fn contribution(&self) -> Status {
        if self.critical {
            self.status
        } else {
            self.status.min(Status::Degraded)
        }
    }

    fn shown_error(&self, show_errors: bool) -> Option<&str> {
        let error = self.error.as_deref()?;
        Some(if show_errors {
            error
        } else {
            &self.public_error
        })
    }
}

/// The public text of an error whose details are hidden.
pub(crate) const HIDDEN_ERROR: &str = "check failed (details hidden)";

/// The result of a health probe: the aggregate status and every check's
/// report.
#[derive(Debug, Clone)]
pub struct HealthReport {
    pub(crate) status: Status,
    pub(crate) timestamp: SystemTime,
    pub(crate) checks: Vec<Arc<CheckReport>>,
    pub(crate) reason: Option<&'static str>,
}

impl HealthReport {
    pub(crate) fn aggregate(checks: Vec<Arc<CheckReport>>) -> Self {
        let status = checks
            .iter()
            .map(|check| check.contribution())
            .max()
            .unwrap_or(Status::Healthy);
        Self {
            status,
            timestamp: SystemTime::now(),
            checks,
            reason: None,
        }
    }

    pub(crate) fn unavailable(reason: &'static str) -> Self {
        Self {
            status: Status::Unhealthy,
            timestamp: SystemTime::now(),
            checks: Vec::new(),
            reason: Some(reason),
        }
    }

    /// The aggregate status: the worst among critical checks, and at worst
    /// `degraded` for a failing non-critical one.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Each check's report, in registration order.
    pub fn checks(&self) -> &[Arc<CheckReport>] {
        &self.checks
    }

    /// The report of the check named `name`.
    pub fn check(&self, name: &str) -> Option<&CheckReport> {
        self.checks
            .iter()
            .find(|check| &*check.name == name)
            .map(AsRef::as_ref)
    }

    /// Why the report has no checks, when it was not run: `shutting down`.
    pub fn reason(&self) -> Option<&str> {
        self.reason
    }

    /// The body of DESIGN.md's format: `{status, timestamp, checks: {name:
    /// {status, critical, response_time_ms, details, error?}}}`.
    pub fn to_json(&self, show_errors: bool) -> Value {
        let mut checks = Map::new();
        for check in &self.checks {
            let mut entry = Map::new();
            entry.insert("status".into(), check.status.as_str().into());
            entry.insert("critical".into(), check.critical.into());
            entry.insert(
                "response_time_ms".into(),
                millis(check.response_time).into(),
            );
            entry.insert("details".into(), Value::Object(check.details.clone()));
            if let Some(error) = check.shown_error(show_errors) {
                entry.insert("error".into(), error.into());
            }
            checks.insert(check.name.to_string(), Value::Object(entry));
        }
        let mut body = json!({
            "status": self.status.as_str(),
            "timestamp": rfc3339_millis(self.timestamp),
            "checks": checks,
        });
        if let (Some(reason), Value::Object(body)) = (self.reason, &mut body) {
            body.insert("reason".into(), reason.into());
        }
        body
    }

    /// The body of the IETF health-check draft (`application/health+json`):
    /// `status` is `pass`, `warn` or `fail`, and each check is one
    /// `name:responseTime` measurement.
    pub fn to_ietf_json(&self, service_id: Option<&str>, show_errors: bool) -> Value {
        let mut checks = Map::new();
        for check in &self.checks {
            let mut measurement = json!({
                "componentId": &*check.name,
                "status": check.status.ietf(),
                "observedValue": millis(check.response_time),
                "observedUnit": "ms",
                "time": rfc3339_millis(check.checked_at),
            });
            if let (Some(error), Value::Object(measurement)) =
                (check.shown_error(show_errors), &mut measurement)
            {
                measurement.insert("output".into(), error.into());
            }
            checks.insert(
                format!("{}:responseTime", check.name),
                Value::Array(vec![measurement]),
            );
        }
        let mut body = Map::new();
        body.insert("status".into(), self.status.ietf().into());
        if let Some(service_id) = service_id {
            body.insert("serviceId".into(), service_id.into());
        }
        if let Some(reason) = self.reason {
            body.insert("output".into(), reason.into());
        }
        body.insert("checks".into(), Value::Object(checks));
        Value::Object(body)
    }
}

/// Milliseconds with microsecond precision.
fn millis(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, critical: bool, status: Status) -> Arc<CheckReport> {
        Arc::new(CheckReport::from_result(
            name.into(),
            critical,
            CheckResult::new(status),
            Duration::from_micros(1_500),
        ))
    }

    #[test]
    fn aggregate_is_the_worst_critical_status_and_degraded_at_worst_for_the_rest() {
        let cases = [
            (vec![], Status::Healthy),
            (vec![("a", true, Status::Healthy)], Status::Healthy),
            (
                vec![("a", true, Status::Warning), ("b", true, Status::Healthy)],
                Status::Warning,
            ),
            (
                vec![
                    ("a", true, Status::Critical),
                    ("b", true, Status::Unhealthy),
                ],
                Status::Unhealthy,
            ),
            (
                vec![
                    ("a", true, Status::Healthy),
                    ("b", false, Status::Unhealthy),
                ],
                Status::Degraded,
            ),
            (
                vec![("a", true, Status::Healthy), ("b", false, Status::Critical)],
                Status::Degraded,
            ),
            (
                vec![("a", true, Status::Healthy), ("b", false, Status::Warning)],
                Status::Warning,
            ),
            (
                vec![
                    ("a", true, Status::Critical),
                    ("b", false, Status::Unhealthy),
                ],
                Status::Critical,
            ),
        ];
        for (checks, expected) in cases {
            let reports = checks
                .iter()
                .map(|(name, critical, status)| report(name, *critical, *status))
                .collect();
            assert_eq!(
                HealthReport::aggregate(reports).status(),
                expected,
                "{checks:?}"
            );
        }
    }

    #[test]
    fn errors_are_hidden_unless_asked_for() {
        let failing = Arc::new(CheckReport::from_result(
            "db".into(),
            true,
            CheckResult::unhealthy("connect to db.internal:5432 as admin refused").detail("n", 1),
            Duration::from_micros(2_250),
        ));
        let report = HealthReport::aggregate(vec![failing]);
        let hidden = report.to_json(false);
        assert_eq!(hidden["status"], "unhealthy");
        assert_eq!(hidden["checks"]["db"]["error"], HIDDEN_ERROR);
        assert_eq!(hidden["checks"]["db"]["details"]["n"], 1);
        assert_eq!(hidden["checks"]["db"]["response_time_ms"], 2.25);
        assert!(!hidden.to_string().contains("db.internal"));
        let shown = report.to_json(true);
        assert_eq!(
            shown["checks"]["db"]["error"],
            "connect to db.internal:5432 as admin refused"
        );
        let ietf = report.to_ietf_json(Some("svc"), false);
        assert_eq!(ietf["status"], "fail");
        assert_eq!(ietf["serviceId"], "svc");
        assert_eq!(ietf["checks"]["db:responseTime"][0]["output"], HIDDEN_ERROR);
        assert!(!ietf.to_string().contains("db.internal"));
    }
}
