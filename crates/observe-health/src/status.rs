use std::fmt;

use serde::Serialize;

/// How well a check, or the whole service, is doing; ordered from best to
/// worst.
///
/// `/health` answers `503 Service Unavailable` for [`Critical`](Self::Critical)
/// and [`Unhealthy`](Self::Unhealthy), `200 OK` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Working as it should.
    Healthy,
    /// Working, but close to a limit: a disk filling up, memory running short.
    Warning,
    /// Working with less than its full function: an optional dependency is
    /// down.
    Degraded,
    /// Past a limit the service cannot work beyond.
    Critical,
    /// Not working: a dependency is unreachable, refuses, or does not answer
    /// in time.
    Unhealthy,
}

impl Status {
    /// Every status, best first.
    pub const ALL: [Status; 5] = [
        Status::Healthy,
        Status::Warning,
        Status::Degraded,
        Status::Critical,
        Status::Unhealthy,
    ];

    /// The lowercase name used in bodies and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Warning => "warning",
            Self::Degraded => "degraded",
            Self::Critical => "critical",
            Self::Unhealthy => "unhealthy",
        }
    }

    /// `0` (healthy) to `4` (unhealthy): the value of the
    /// `health_check_status` gauge, so an alert reads
    /// `health_check_status >= 3`.
    pub const fn severity(self) -> u8 {
        self as u8
    }

    /// Whether the endpoints answer `503` for this status.
    pub const fn is_unavailable(self) -> bool {
        matches!(self, Self::Critical | Self::Unhealthy)
    }

    /// The HTTP status code of a health response with this status.
    pub const fn http_status(self) -> http::StatusCode {
        if self.is_unavailable() {
            http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            http::StatusCode::OK
        }
    }

    /// The status in the IETF health-check draft: `pass`, `warn` or `fail`.
    pub const fn ietf(self) -> &'static str {
        match self {
            Self::Healthy => "pass",
            Self::Warning | Self::Degraded => "warn",
            Self::Critical | Self::Unhealthy => "fail",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_severity_and_http_status() {
        let mut sorted = Status::ALL;
        sorted.sort();
        assert_eq!(sorted, Status::ALL);
        let severities: Vec<u8> = Status::ALL.iter().map(|s| s.severity()).collect();
        assert_eq!(severities, [0, 1, 2, 3, 4]);
        let codes: Vec<u16> = Status::ALL
            .iter()
            .map(|s| s.http_status().as_u16())
            .collect();
        assert_eq!(codes, [200, 200, 200, 503, 503]);
        let ietf: Vec<&str> = Status::ALL.iter().map(|s| s.ietf()).collect();
        assert_eq!(ietf, ["pass", "warn", "warn", "fail", "fail"]);
        assert_eq!(
            serde_json::to_string(&Status::Degraded).unwrap(),
            r#""degraded""#
        );
        assert_eq!(Status::Critical.to_string(), "critical");
    }
}
