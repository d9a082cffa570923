use std::{borrow::Cow, fmt, sync::Arc};

use http::StatusCode;

/// What went wrong in one request, for the layers outside to log and count.
///
/// [`AppError`](crate::AppError) and [`ErrorCapture`](crate::ErrorCapture)
/// put one into the response extensions of every error response. Cloning is
/// cheap.
#[derive(Clone)]
pub struct ErrorReport(Arc<Inner>);

struct Inner {
    status: StatusCode,
    error_type: Cow<'static, str>,
    message: String,
    context: Vec<(Cow<'static, str>, String)>,
    panic: bool,
}

impl ErrorReport {
    pub(crate) fn new(
        status: StatusCode,
        error_type: Cow<'static, str>,
        message: String,
        context: Vec<(Cow<'static, str>, String)>,
        panic: bool,
    ) -> Self {
        Self(Arc::new(Inner {
            status,
            error_type,
            message,
            context,
            panic,
        }))
    }

    /// The status of the response.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The stable snake_case kind of the error (`panic` for panics).
    pub fn error_type(&self) -> &str {
        &self.0.error_type
    }

    /// The full message, with the source chain or the panic message: for logs
    /// only, never for clients.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Private key-values that help to understand the error.
    pub fn context(&self) -> &[(Cow<'static, str>, String)] {
        &self.0.context
    }

    /// Whether a panic caused the error.
    pub fn is_panic(&self) -> bool {
        self.0.panic
    }

    /// The context as one JSON object, for a log field.
    pub fn context_json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .0
            .context
            .iter()
            .map(|(key, value)| (key.to_string(), serde_json::Value::from(capped(value))))
            .collect();
        serde_json::Value::Object(map).to_string()
    }
}

/// `value`, cut at [`MAX_CONTEXT_VALUE_BYTES`](crate::MAX_CONTEXT_VALUE_BYTES)
/// on a character boundary and marked when cut.
fn capped(value: &str) -> std::borrow::Cow<'_, str> {
    if value.len() <= crate::MAX_CONTEXT_VALUE_BYTES {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut end = crate::MAX_CONTEXT_VALUE_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…[truncated]", &value[..end]))
}

impl fmt::Debug for ErrorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorReport")
            .field("status", &self.0.status)
            .field("error_type", &self.0.error_type)
            .field("message", &self.0.message)
            .field("context", &self.0.context)
            .field("panic", &self.0.panic)
            .finish()
    }
}
