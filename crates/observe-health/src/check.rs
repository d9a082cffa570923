use std::{fmt, future::Future, pin::Pin, time::Duration};

use serde_json::{Map, Value};

use crate::{DEFAULT_CHECK_TIMEOUT, Status, Usage};

/// A health check: one dependency or resource, probed on demand.
///
/// The runner gives every check its own timeout and runs all of them at once,
/// so `check` can simply await its dependency: a check that hangs is cut off
/// at its timeout and reported [`failure_status`](Self::failure_status).
/// It measures `response_time_ms` itself, and catches a panic.
///
/// A check shares the runtime with the requests: work that blocks (a
/// synchronous client, a slow file system) belongs in
/// `tokio::task::spawn_blocking`, as [`DiskCheck`](crate::DiskCheck) does.
///
/// # Example
///
/// ```
/// use observe_health::{Check, CheckResult, Status};
///
/// struct QueueDepth(std::sync::Arc<std::sync::atomic::AtomicUsize>);
///
/// impl Check for QueueDepth {
///     async fn check(&self) -> CheckResult {
///         let depth = self.0.load(std::sync::atomic::Ordering::Relaxed);
///         let status = if depth < 1_000 { Status::Healthy } else { Status::Warning };
///         CheckResult::new(status).detail("depth", depth)
///     }
/// }
/// ```
pub trait Check: Send + Sync + 'static {
    /// Probes the dependency once.
    fn check(&self) -> impl Future<Output = CheckResult> + Send;

    /// The timeout when the registration does not set one.
    fn default_timeout(&self) -> Duration {
        DEFAULT_CHECK_TIMEOUT
    }

    /// What a timeout or a panic of this check counts as.
    fn failure_status(&self) -> Status {
        Status::Unhealthy
    }
}

/// A check made of an async closure; from [`check_fn`].
#[derive(Clone)]
pub struct FnCheck<F> {
    f: F,
}

impl<F> fmt::Debug for FnCheck<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnCheck").finish_non_exhaustive()
    }
}

/// Makes a [`Check`] of an async closure.
///
/// ```
/// use observe_health::{CheckResult, check_fn};
///
/// let always_fine = check_fn(|| async { CheckResult::healthy() });
/// # let _ = always_fine;
/// ```
pub fn check_fn<F, Fut>(f: F) -> FnCheck<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CheckResult> + Send,
{
    FnCheck { f }
}

impl<F, Fut> Check for FnCheck<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CheckResult> + Send,
{
    fn check(&self) -> impl Future<Output = CheckResult> + Send {
        (self.f)()
    }
}

/// What one run of a check found: a status, details for the body, and the
/// error when it failed.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub(crate) status: Status,
    pub(crate) details: Map<String, Value>,
    pub(crate) error: Option<String>,
    pub(crate) usage: Option<Usage>,
}

impl CheckResult {
    /// A result with `status` and nothing else.
    pub fn new(status: Status) -> Self {
        Self {
            status,
            details: Map::new(),
            error: None,
            usage: None,
        }
    }

    /// A healthy result.
    pub fn healthy() -> Self {
        Self::new(Status::Healthy)
    }

    /// An unhealthy result with its error.
    pub fn unhealthy(error: impl fmt::Display) -> Self {
        Self::new(Status::Unhealthy).error(error)
    }

    /// Adds a detail, shown in the body under `details`.
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// Sets the error. It is logged, and shown in the body only when the
    /// health router shows details (see
    /// [`DetailsPolicy`](crate::DetailsPolicy)): raw errors name hosts, users
    /// and ports.
    pub fn error(mut self, error: impl fmt::Display) -> Self {
        self.error = Some(error.to_string());
        self
    }

    /// How full the resource is that this check measured: published as a
    /// gauge on every run, and read by alert rules (see [`Usage`]).
    pub fn usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Replaces the status.
    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The details.
    pub fn details(&self) -> &Map<String, Value> {
        &self.details
    }

    /// The error, if any.
    pub fn error_message(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The usage measured, if any.
    pub fn usage_reading(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Check`] made object-safe, so checks of different types share a list.
pub(crate) trait DynCheck: Send + Sync + 'static {
    fn run(&self) -> BoxFuture<'_, CheckResult>;
    fn default_timeout(&self) -> Duration;
    fn failure_status(&self) -> Status;
}

impl<C: Check> DynCheck for C {
    fn run(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(self.check())
    }

    fn default_timeout(&self) -> Duration {
        Check::default_timeout(self)
    }

    fn failure_status(&self) -> Status {
        Check::failure_status(self)
    }
}
