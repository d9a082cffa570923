use std::{fmt, time::Duration};

use reqwest::{Client, Url};

use crate::{Check, CheckResult, HTTP_CHECK_TIMEOUT, Status};

/// An HTTP upstream: `GET` a URL with a 5 s timeout. A `2xx` or `3xx` answer
/// is healthy; an error status, a refused connection or a timeout is
/// `degraded`, not unhealthy: the service still serves without it.
///
/// The URL never appears in errors or logs (it can hold a token).
///
/// ```
/// use observe_health::{CheckOptions, Health, HttpCheck};
///
/// # fn example() -> Result<(), observe_health::HttpCheckError> {
/// let health = Health::builder()
///     .check_with(
///         "upstream",
///         HttpCheck::new("http://127.0.0.1:9000/ping")?,
///         CheckOptions::new().critical(false),
///     )
///     .build();
/// # let _ = health;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HttpCheck {
    client: Client,
    url: Url,
}

/// A URL or client that [`HttpCheck::new`] cannot use.
#[derive(Debug)]
pub struct HttpCheckError(String);

impl fmt::Display for HttpCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpCheckError {}

impl HttpCheck {
    /// Checks `url` with a client of its own that times out after
    /// [`HTTP_CHECK_TIMEOUT`].
    pub fn new(url: &str) -> Result<Self, HttpCheckError> {
        let url = Url::parse(url)
            .map_err(|error| HttpCheckError(format!("invalid health check URL: {error}")))?;
        let client = Client::builder()
            .timeout(HTTP_CHECK_TIMEOUT)
            .build()
            .map_err(|error| HttpCheckError(format!("cannot build the HTTP client: {error}")))?;
        Ok(Self { client, url })
    }

    /// Checks `url` with the application's own client.
    pub fn with_client(client: Client, url: Url) -> Self {
        Self { client, url }
    }
}

impl fmt::Debug for HttpCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Scheme, host and port only: the path and query can hold a token.
        f.debug_struct("HttpCheck")
            .field("scheme", &self.url.scheme())
            .field("host", &self.url.host_str())
            .field("port", &self.url.port_or_known_default())
            .finish_non_exhaustive()
    }
}

impl Check for HttpCheck {
    async fn check(&self) -> CheckResult {
        match self.client.get(self.url.clone()).send().await {
            Ok(response) => {
                let status = response.status();
                let result = CheckResult::healthy().detail("status_code", status.as_u16());
                if status.is_success() || status.is_redirection() {
                    result
                } else {
                    result
                        .with_status(Status::Degraded)
                        .error(format!("the upstream answered {status}"))
                }
            }
            Err(error) => CheckResult::new(Status::Degraded)
                .error(format!("request failed: {}", chain(&error.without_url()))),
        }
    }

    fn default_timeout(&self) -> Duration {
        HTTP_CHECK_TIMEOUT
    }

    fn failure_status(&self) -> Status {
        Status::Degraded
    }
}

/// An error and its sources, `outer: inner: root`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_errors_keep_the_url_out() {
        let check = HttpCheck::new("http://user:pw@upstream:9000/ping?token=abc").unwrap();
        let debug = format!("{check:?}");
        assert_eq!(
            debug,
            r#"HttpCheck { scheme: "http", host: Some("upstream"), port: Some(9000), .. }"#
        );
        let error = HttpCheck::new("not a url ?token=abc")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "invalid health check URL: relative URL without a base"
        );
    }
}
