use tower_layer::Layer;

use super::ErrorCapture;

/// Turns panics and error responses into problem+json and reports them once.
///
/// Put it innermost, so every outer layer sees the `500` of a panic.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCaptureLayer {
    pub(super) config: Config,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Config {
    pub(super) log_errors: bool,
    pub(super) convert_plain_errors: bool,
    pub(super) print_panics: bool,
}

impl ErrorCaptureLayer {
    /// The defaults: errors are logged here, plain error responses become
    /// problem+json.
    ///
    /// The first call adds a step to the panic hook that remembers where a
    /// panic happened, for the report's `location` context.
    pub fn new() -> Self {
        super::location::install_hook();
        Self {
            config: Config {
                log_errors: true,
                convert_plain_errors: true,
                print_panics: true,
            },
        }
    }

    /// Whether this layer logs each [`ErrorReport`](crate::ErrorReport) with
    /// `tracing` (one event: `request_id`, `error_type`, `error_message`,
    /// `context`). Turn it off when a request-log layer outside logs them.
    pub fn log_errors(mut self, log_errors: bool) -> Self {
        self.config.log_errors = log_errors;
        self
    }

    /// Whether a panic this layer catches is also printed by the panic hook
    /// that was installed before (the default one writes it to stderr).
    /// `false` keeps the report the only account of it, with the backtrace
    /// in its `backtrace` context when `RUST_BACKTRACE` asks for one: every
    /// line a JSON-logging process writes stays JSON. `observe`'s stack
    /// turns it off.
    pub fn print_panics(mut self, print: bool) -> Self {
        self.config.print_panics = print;
        self
    }

    /// Whether error responses with an empty or `text/plain` body, such as
    /// axum's rejections, become problem+json.
    pub fn convert_plain_errors(mut self, convert_plain_errors: bool) -> Self {
        self.config.convert_plain_errors = convert_plain_errors;
        self
    }
}

impl Default for ErrorCaptureLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for ErrorCaptureLayer {
    type Service = ErrorCapture<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorCapture {
            inner,
            config: self.config,
        }
    }
}
