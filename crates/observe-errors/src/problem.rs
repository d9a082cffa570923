use std::borrow::Cow;

use http::{HeaderValue, StatusCode};
use serde::Serialize;

/// The media type of problem details, RFC 9457.
pub const PROBLEM_JSON: HeaderValue = HeaderValue::from_static("application/problem+json");

/// The public face of an error: what a problem+json body says.
///
/// [`AppError`](crate::AppError) puts one into its response extensions so
/// that [`ErrorCapture`](crate::ErrorCapture) can render the body again with
/// the request's path as `instance`.
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    error_type: Cow<'static, str>,
    detail: Cow<'static, str>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    problem_type: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
    error_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl Problem {
    /// A problem with a status, a snake_case error type and a public detail.
    pub fn new(
        status: StatusCode,
        error_type: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            error_type: error_type.into(),
            detail: detail.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The snake_case error type.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The public detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The problem+json body.
    pub fn to_json(&self, instance: Option<&str>, request_id: Option<&str>) -> Vec<u8> {
        let body = Body {
            problem_type: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            instance,
            error_type: &self.error_type,
            request_id,
        };
        // Serialising plain strings and numbers into a Vec cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}
