use std::{borrow::Cow, error::Error as StdError, fmt, fmt::Write};

use axum_core::response::{IntoResponse, Response};
use http::{StatusCode, header::CONTENT_TYPE};

use crate::{ErrorReport, PROBLEM_JSON, Problem};

type Source = Box<dyn StdError + Send + Sync + 'static>;

/// The error a handler returns.
///
/// It has a status, a stable snake_case `error_type` (what dashboards and
/// alerts group by), a public message (what the client reads), private
/// context key-values and an optional source chain (what the logs read).
///
/// As a response it is `application/problem+json`, with an [`ErrorReport`]
/// and its [`Problem`] in the response extensions.
///
/// ```
/// use axum::http::StatusCode;
/// use observe_errors::AppError;
///
/// let error = AppError::new(
///     StatusCode::CONFLICT,
///     "duplicate_job",
///     "a parse of this group is already running",
/// )
/// .with_context("group_id", 42);
/// assert_eq!(error.status(), StatusCode::CONFLICT);
/// assert_eq!(error.error_type(), "duplicate_job");
///
/// let io = std::io::Error::other("connection reset by 10.0.0.7:5432");
/// let error = AppError::internal(io);
/// assert_eq!(error.message(), "internal server error");
/// ```
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    error_type: Cow<'static, str>,
    message: Cow<'static, str>,
    context: Vec<(Cow<'static, str>, String)>,
    source: Option<Source>,
}

impl AppError {
    /// An error with a status, a snake_case type and a public message.
    pub fn new(
        status: StatusCode,
        error_type: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            error_type: error_type.into(),
            message: message.into(),
            context: Vec::new(),
            source: None,
        }
    }

    /// A `500 internal_error` whose cause stays private.
    pub fn internal(source: impl Into<Source>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal server error",
        )
        .with_source(source)
    }

    /// Adds a private key-value for the logs.
    pub fn with_context(
        mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl fmt::Display,
    ) -> Self {
        self.context.push((key.into(), value.to_string()));
        self
    }

    /// Sets the underlying cause, logged and never shown to clients.
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The snake_case error type.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The public message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The private context.
    pub fn context(&self) -> &[(Cow<'static, str>, String)] {
        &self.context
    }

    /// The report the layers outside log and count.
    pub fn report(&self) -> ErrorReport {
        let mut message = self.message.to_string();
        let mut source = self.source.as_deref().map(|source| source as &dyn StdError);
        while let Some(cause) = source {
            let _ = write!(message, ": {cause}");
            source = cause.source();
        }
        ErrorReport::new(
            self.status,
            self.error_type.clone(),
            message,
            self.context.clone(),
            false,
        )
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl StdError for AppError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let report = self.report();
        let problem = Problem::new(self.status, self.error_type, self.message);
        // Without ErrorCapture outside, this body is what the client gets;
        // with it, the body is rendered again with the request path.
        let request_id = observe_request_id::current();
        let body = problem.to_json(None, request_id.as_ref().map(|id| id.as_str()));
        let mut response = (problem.status(), body).into_response();
        response.headers_mut().insert(CONTENT_TYPE, PROBLEM_JSON);
        response.extensions_mut().insert(report);
        response.extensions_mut().insert(problem);
        response
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn into_response_is_problem_json_with_report() {
        let error = AppError::new(StatusCode::CONFLICT, "duplicate_job", "already running")
            .with_context("group_id", 42)
            .with_source(std::io::Error::other("lock held by worker 3"));
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        let report = response.extensions().get::<ErrorReport>().unwrap().clone();
        assert_eq!(report.error_type(), "duplicate_job");
        assert_eq!(report.message(), "already running: lock held by worker 3");
        assert_eq!(report.context_json(), r#"{"group_id":"42"}"#);
        assert!(!report.is_panic());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "about:blank",
                "title": "Conflict",
                "status": 409,
                "detail": "already running",
                "error_type": "duplicate_job",
            })
        );
    }

    #[test]
    fn internal_hides_the_source_from_the_message() {
        let error = AppError::internal(std::io::Error::other("password=hunter2"));
        assert_eq!(error.message(), "internal server error");
        assert_eq!(error.to_string(), "internal_error: internal server error");
        assert_eq!(error.source().unwrap().to_string(), "password=hunter2");
    }
}
