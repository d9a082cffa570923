//! Metric and label names, in one place.

use http::Method;

use crate::OTHER_METHOD;

/// How the HTTP series are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Naming {
    /// `http_requests_total`, `http_request_duration_seconds`,
    /// `http_requests_in_flight`, labelled `method`, `endpoint`, `status_code`.
    #[default]
    Prometheus,
    /// OpenTelemetry's HTTP semantic conventions, as Prometheus names them.
    OtelSemconv,
}

pub(crate) struct Names {
    pub(crate) duration: &'static str,
    pub(crate) in_flight: &'static str,
    pub(crate) method: &'static str,
    pub(crate) route: &'static str,
    pub(crate) status: &'static str,
}

pub(crate) const REQUESTS_TOTAL: &str = "http_requests_total";
pub(crate) const ERRORS_TOTAL: &str = "errors_total";
pub(crate) const ACTIVE_CONNECTIONS: &str = "active_connections";

impl Naming {
    pub(crate) fn names(self) -> &'static Names {
        match self {
            Self::Prometheus => &Names {
                duration: "http_request_duration_seconds",
                in_flight: "http_requests_in_flight",
                method: "method",
                route: "endpoint",
                status: "status_code",
            },
            Self::OtelSemconv => &Names {
                duration: "http_server_request_duration_seconds",
                in_flight: "http_server_active_requests",
                method: "http_request_method",
                route: "http_route",
                status: "http_response_status_code",
            },
        }
    }
}

/// The methods that get a label of their own, in the order of their index.
pub(crate) const METHODS: [&str; 10] = [
    "GET",
    "POST",
    "PUT",
    "DELETE",
    "HEAD",
    "OPTIONS",
    "PATCH",
    "CONNECT",
    "TRACE",
    OTHER_METHOD,
];

/// The index of `method` in [`METHODS`]; an extension method is the last.
pub(crate) fn method_index(method: &Method) -> usize {
    match method.as_str() {
        "GET" => 0,
        "POST" => 1,
        "PUT" => 2,
        "DELETE" => 3,
        "HEAD" => 4,
        "OPTIONS" => 5,
        "PATCH" => 6,
        "CONNECT" => 7,
        "TRACE" => 8,
        _ => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_methods_keep_their_name_and_others_are_one_value() {
        for name in &METHODS[..9] {
            let method = Method::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(METHODS[method_index(&method)], *name);
        }
        for odd in ["PROPFIND", "get", "BREW", "X"] {
            let method = Method::from_bytes(odd.as_bytes()).unwrap();
            assert_eq!(METHODS[method_index(&method)], "_OTHER");
        }
    }
}
