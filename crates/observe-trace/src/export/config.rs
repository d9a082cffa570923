//! Where spans go: the `OTEL_EXPORTER_OTLP_*` variables, checked.

use std::{fmt, time::Duration};

use super::{DEFAULT_EXPORT_TIMEOUT, DEFAULT_QUEUE_CAPACITY};

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// `grpc`, usually port 4317.
    Grpc,
    /// `http/protobuf`, usually port 4318, path `/v1/traces`.
    HttpProtobuf,
}

/// A variable that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidExportConfig {
    /// The variable.
    pub variable: &'static str,
    /// Its value.
    pub value: String,
    /// Why it is refused.
    pub reason: String,
}

impl fmt::Display for InvalidExportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={:?}: {}",
            self.variable, self.value, self.reason
        )
    }
}

impl std::error::Error for InvalidExportConfig {}

/// A checked export configuration.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    pub(crate) endpoint: String,
    pub(crate) protocol: Protocol,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Duration,
    pub(crate) queue_capacity: usize,
}

impl ExportConfig {
    /// Sends to `endpoint` (for `http/protobuf`, the whole URL, with
    /// `/v1/traces`) with `protocol`.
    pub fn new(endpoint: impl Into<String>, protocol: Protocol) -> Self {
        Self {
            endpoint: endpoint.into(),
            protocol,
            headers: Vec::new(),
            timeout: DEFAULT_EXPORT_TIMEOUT,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }

    /// Adds a header (gRPC metadata) to every export request, such as an
    /// API key.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// How long one export may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many finished spans may wait for export.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(2);
        self
    }

    /// The URL spans are sent to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The transport.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// From the standard variables, read through `get`: `None` when no
    /// endpoint is set, or `OTEL_SDK_DISABLED=true` (nothing is exported).
    pub fn from_env(
        get: impl Fn(&'static str) -> Option<String>,
    ) -> Result<Option<Self>, InvalidExportConfig> {
        let invalid = |variable: &'static str, value: &str, reason: &str| InvalidExportConfig {
            variable,
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(disabled) = get("OTEL_SDK_DISABLED") {
            match disabled.trim().to_ascii_lowercase().as_str() {
                "true" => return Ok(None),
                "false" | "" => {}
                _ => {
                    return Err(invalid(
                        "OTEL_SDK_DISABLED",
                        &disabled,
                        "expected true or false",
                    ));
                }
            }
        }
        let protocol_variable = if get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").is_some() {
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
        } else {
            "OTEL_EXPORTER_OTLP_PROTOCOL"
        };
        let protocol = match get(protocol_variable) {
            None => Protocol::Grpc,
            Some(text) => match text.trim() {
                "grpc" => Protocol::Grpc,
                "http/protobuf" => Protocol::HttpProtobuf,
                _ => {
                    return Err(invalid(
                        protocol_variable,
                        &text,
                        "expected grpc or http/protobuf",
                    ));
                }
            },
        };
        let (variable, endpoint) = match (
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").filter(|value| !value.trim().is_empty()),
            get("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|value| !value.trim().is_empty()),
        ) {
            (Some(endpoint), _) => (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                endpoint.trim().to_owned(),
            ),
            (None, Some(base)) => {
                let base = base.trim().to_owned();
                let endpoint = match protocol {
                    Protocol::Grpc => base.clone(),
                    // The generic endpoint is a base: the signal's path is added.
                    Protocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
                };
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            }
            (None, None) => return Ok(None),
        };
        let uri: http::Uri = endpoint.parse().map_err(|_| {
            invalid(
                variable,
                &endpoint,
                "expected a URL such as http://collector:4317",
            )
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(invalid(
                variable,
                &endpoint,
                "expected an http:// or https:// URL with a host, such as http://collector:4317",
            ));
        }
        let mut config = Self::new(endpoint, protocol);
        let headers_variable = if get("OTEL_EXPORTER_OTLP_TRACES_HEADERS").is_some() {
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
        } else {
            "OTEL_EXPORTER_OTLP_HEADERS"
        };
        if let Some(text) = get(headers_variable) {
            for pair in text
                .split(',')
                .map(str::trim)
                .filter(|pair| !pair.is_empty())
            {
                let Some((name, value)) = pair.split_once('=') else {
                    return Err(invalid(
                        headers_variable,
                        "(not shown: it may hold credentials)",
                        "expected name=value pairs separated by commas",
                    ));
                };
                let name = name.trim();
                let valid_name = http::HeaderName::from_bytes(name.as_bytes()).is_ok();
                // `%20`-style escapes, as the specification allows in values.
                let value = percent_encoding::percent_decode_str(value.trim())
                    .decode_utf8_lossy()
                    .into_owned();
                if !valid_name || http::HeaderValue::from_str(&value).is_err() {
                    return Err(invalid(
                        headers_variable,
                        "(not shown: it may hold credentials)",
                        "a header name or value is not valid in HTTP",
                    ));
                }
                config = config.header(name.to_ascii_lowercase(), value);
            }
        }
        let timeout_variable = if get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT").is_some() {
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
        } else {
            "OTEL_EXPORTER_OTLP_TIMEOUT"
        };
        if let Some(text) = get(timeout_variable) {
            // Milliseconds, as the specification says.
            let millis = text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|millis| *millis > 0)
                .ok_or_else(|| {
                    invalid(
                        timeout_variable,
                        &text,
                        "expected milliseconds, such as 10000",
                    )
                })?;
            config = config.timeout(Duration::from_millis(millis));
        }
        if let Some(text) = get("OTEL_BSP_MAX_QUEUE_SIZE") {
            let size = text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|size| *size > 0)
                .ok_or_else(|| {
                    invalid(
                        "OTEL_BSP_MAX_QUEUE_SIZE",
                        &text,
                        "expected a number of spans, such as 2048",
                    )
                })?;
            config = config.queue_capacity(size);
        }
        Ok(Some(config))
    }

    /// Where log records go over `http/protobuf`: the traces' URL with
    /// `/v1/logs` for `/v1/traces`, else `/v1/logs` on its host.
    pub(crate) fn logs_endpoint(&self) -> String {
        match self.endpoint.strip_suffix("/v1/traces") {
            Some(base) => format!("{base}/v1/logs"),
            None => {
                let after_scheme = self.endpoint.find("://").map_or(0, |index| index + 3);
                let host_end = self.endpoint[after_scheme..]
                    .find('/')
                    .map_or(self.endpoint.len(), |index| after_scheme + index);
                format!("{}/v1/logs", &self.endpoint[..host_end])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logs_endpoint_sits_beside_the_traces() {
        let config = |url: &str| ExportConfig::new(url, Protocol::HttpProtobuf);
        assert_eq!(
            config("http://c:4318/v1/traces").logs_endpoint(),
            "http://c:4318/v1/logs"
        );
        assert_eq!(
            config("https://c/otlp/v1/traces").logs_endpoint(),
            "https://c/otlp/v1/logs"
        );
        assert_eq!(
            config("http://c:4318/custom/path").logs_endpoint(),
            "http://c:4318/v1/logs"
        );
    }

    fn from(vars: &[(&'static str, &str)]) -> Result<Option<ExportConfig>, InvalidExportConfig> {
        ExportConfig::from_env(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn no_endpoint_or_disabled_means_no_export() {
        assert!(from(&[]).unwrap_or_default().is_none());
        let disabled = from(&[
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
        ]);
        assert!(disabled.unwrap_or_default().is_none());
    }

    #[test]
    fn endpoints_protocols_headers_and_timeouts() {
        let grpc = from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4317")])
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("configured"));
        assert_eq!(grpc.endpoint(), "http://jaeger:4317");
        assert_eq!(grpc.protocol(), Protocol::Grpc);
        let http = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=s%20cret, x-tenant = a",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ])
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("configured"));
        assert_eq!(http.endpoint(), "http://collector:4318/v1/traces");
        assert_eq!(
            http.headers,
            [
                ("api-key".to_owned(), "s cret".to_owned()),
                ("x-tenant".to_owned(), "a".to_owned())
            ]
        );
        assert_eq!(http.timeout, Duration::from_millis(2500));
        let specific = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://traces:9999/custom",
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ])
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("configured"));
        assert_eq!(specific.endpoint(), "http://traces:9999/custom");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (vars, variable) in [
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://x")],
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
                ],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                    ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
                ],
                "OTEL_EXPORTER_OTLP_HEADERS",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                    ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
                ],
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ),
            (vec![("OTEL_SDK_DISABLED", "maybe")], "OTEL_SDK_DISABLED"),
        ] {
            let error = from(&vars)
                .err()
                .unwrap_or_else(|| panic!("{vars:?} refused"));
            assert_eq!(error.variable, variable);
        }
        // Header values may be credentials: never echoed.
        let error = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization"),
        ])
        .err()
        .unwrap_or_else(|| panic!("refused"));
        assert!(!error.to_string().contains("authorization"));
    }
}
