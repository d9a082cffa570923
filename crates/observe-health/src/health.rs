use std::{
    borrow::Cow,
    fmt,
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use futures_util::FutureExt;
use metrics::Recorder;
use tokio::sync::watch;

use crate::{
    Check, CheckReport, DEFAULT_CACHE_TTL, HealthReport, Status, Usage,
    check::{BoxFuture, DynCheck},
};

/// Who sees raw error texts in health bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetailsPolicy {
    /// Only requests with the configured bearer token
    /// ([`HealthBuilder::details_token`]); everyone else reads
    /// `check failed (details hidden)`. Errors are logged either way.
    #[default]
    Hidden,
    /// Everyone: for services whose health port is private.
    Always,
}

/// How a check is registered: critical or not, and its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    critical: bool,
    timeout: Option<Duration>,
}

impl CheckOptions {
    /// Critical, with the check's own default timeout
    /// ([`DEFAULT_CHECK_TIMEOUT`](crate::DEFAULT_CHECK_TIMEOUT) unless the
    /// check says otherwise).
    pub const fn new() -> Self {
        Self {
            critical: true,
            timeout: None,
        }
    }

    /// Whether the check is critical: its status counts in full, and it is
    /// part of `/health/ready`. A failing non-critical check makes the whole
    /// `degraded`, never unavailable.
    pub const fn critical(mut self, critical: bool) -> Self {
        self.critical = critical;
        self
    }

    /// The check's timeout.
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// The health checks of a service and the runner that probes them. Cheap to
/// clone; clones share checks and cached results.
///
/// Every check runs in its own task with its own timeout, so one hung
/// dependency delays no other. Probes that arrive while a check runs wait
/// for that run (single flight), and a finished result is reused for
/// [`cache_ttl`](HealthBuilder::cache_ttl): a storm of probes costs the
/// database one query per TTL.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    entries: ArcSwap<Vec<Arc<Entry>>>,
    cache_ttl: Duration,
    refresh_interval: Option<Duration>,
    refresh_started: AtomicBool,
    details: DetailsPolicy,
    details_token: Option<String>,
    service_id: Option<String>,
    shutting_down: AtomicBool,
    recorder: Option<Arc<dyn Recorder + Send + Sync>>,
}

/// Configures [`Health`]; from [`Health::builder`].
#[must_use = "call build() to get the Health handle"]
pub struct HealthBuilder {
    entries: Vec<Arc<Entry>>,
    cache_ttl: Duration,
    refresh_interval: Option<Duration>,
    details: DetailsPolicy,
    details_token: Option<String>,
    service_id: Option<String>,
    recorder: Option<Arc<dyn Recorder + Send + Sync>>,
}

impl Health {
    /// Starts configuring a set of checks.
    pub fn builder() -> HealthBuilder {
        HealthBuilder {
            entries: Vec::new(),
            cache_ttl: DEFAULT_CACHE_TTL,
            refresh_interval: None,
            details: DetailsPolicy::default(),
            details_token: None,
            service_id: None,
            recorder: None,
        }
    }

    /// No checks: `/health` is `healthy` until some are added.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Adds a critical check with its default timeout, replacing any check of
    /// the same name. Checks can be added while the service runs, for
    /// dependencies set up after the handle.
    pub fn add_check(&self, name: impl Into<Arc<str>>, check: impl Check) {
        self.add_check_with(name, check, CheckOptions::new());
    }

    /// Adds a check with `options`, replacing any check of the same name.
    pub fn add_check_with(
        &self,
        name: impl Into<Arc<str>>,
        check: impl Check,
        options: CheckOptions,
    ) {
        let entry = Entry::new(name.into(), Arc::new(check), options);
        self.inner.entries.rcu(|entries| {
            let mut entries: Vec<_> = entries
                .iter()
                .filter(|existing| existing.name != entry.name)
                .cloned()
                .collect();
            entries.push(entry.clone());
            entries
        });
    }

    /// The names of the registered checks, in order.
    pub fn check_names(&self) -> Vec<Arc<str>> {
        self.inner
            .entries
            .load()
            .iter()
            .map(|entry| entry.name.clone())
            .collect()
    }

    /// Runs every check (or reuses a fresh result) and aggregates them: what
    /// `GET /health` answers.
    pub async fn check_all(&self) -> HealthReport {
        self.run(|_| true).await
    }

    /// Runs the critical checks: what `GET /health/ready` answers. Once
    /// [`begin_shutdown`](Self::begin_shutdown) has been called it runs
    /// nothing and reports `unhealthy`, so load balancers stop sending
    /// traffic while open requests drain.
    pub async fn check_ready(&self) -> HealthReport {
        if self.is_shutting_down() {
            return HealthReport::unavailable(SHUTTING_DOWN);
        }
        self.run(|entry| entry.critical).await
    }

    /// The process's own health, with no dependency: what
    /// `GET /health/live` answers. If this can answer, the process lives.
    pub fn check_live(&self) -> HealthReport {
        HealthReport::aggregate(Vec::new())
    }

    /// Marks the service as shutting down: readiness answers `503` from now
    /// on. [`Observability::serve`] calls it on SIGTERM, before draining.
    ///
    /// [`Observability::serve`]: https://docs.rs/observe
    pub fn begin_shutdown(&self) {
        if !self.inner.shutting_down.swap(true, Ordering::AcqRel) {
            tracing::info!("shutting down: readiness now answers 503");
        }
    }

    /// Whether [`begin_shutdown`](Self::begin_shutdown) has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// Who sees raw error texts.
    pub fn details_policy(&self) -> DetailsPolicy {
        self.inner.details
    }

    pub(crate) fn details_token(&self) -> Option<&str> {
        self.inner.details_token.as_deref()
    }

    pub(crate) fn service_id(&self) -> Option<&str> {
        self.inner.service_id.as_deref()
    }

    async fn run(&self, include: impl Fn(&Entry) -> bool) -> HealthReport {
        self.ensure_refresh();
        let entries = self.inner.entries.load_full();
        let runs = entries
            .iter()
            .filter(|entry| include(entry))
            .map(|entry| entry.report(&self.inner, false));
        HealthReport::aggregate(futures_util::future::join_all(runs).await)
    }

    /// Starts the background refresh, once, when one is configured and a
    /// runtime is at hand.
    fn ensure_refresh(&self) {
        let Some(interval) = self.inner.refresh_interval else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.refresh_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::downgrade(&self.inner);
        runtime.spawn(refresh(inner, interval));
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field("checks", &self.check_names())
            .field("cache_ttl", &self.inner.cache_ttl)
            .field("refresh_interval", &self.inner.refresh_interval)
            .field("details", &self.inner.details)
            .field("shutting_down", &self.is_shutting_down())
            .finish_non_exhaustive()
    }
}

/// Re-runs every check each `interval` until the handle is dropped.
async fn refresh(inner: Weak<Inner>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let entries = inner.entries.load_full();
        let runs = entries.iter().map(|entry| entry.report(&inner, true));
        futures_util::future::join_all(runs).await;
    }
}

const SHUTTING_DOWN: &str = "shutting down";

impl HealthBuilder {
    /// Adds a critical check with its default timeout.
    pub fn check(self, name: impl Into<Arc<str>>, check: impl Check) -> Self {
        self.check_with(name, check, CheckOptions::new())
    }

    /// Adds a check with `options`.
    pub fn check_with(
        mut self,
        name: impl Into<Arc<str>>,
        check: impl Check,
        options: CheckOptions,
    ) -> Self {
        let name = name.into();
        self.entries.retain(|entry| entry.name != name);
        self.entries
            .push(Entry::new(name, Arc::new(check), options));
        self
    }

    /// How long a finished result is reused
    /// ([`DEFAULT_CACHE_TTL`](crate::DEFAULT_CACHE_TTL)). Zero runs the checks
    /// for every probe that does not find a run under way.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Re-runs every check in the background this often, so probes find warm
    /// results (default: never; checks run when probed).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = Some(interval).filter(|interval| !interval.is_zero());
        self
    }

    /// Who sees raw error texts (default [`DetailsPolicy::Hidden`]).
    pub fn details(mut self, policy: DetailsPolicy) -> Self {
        self.details = policy;
        self
    }

    /// A bearer token that shows raw error texts to the requests that carry
    /// it (`Authorization: Bearer <token>`).
    pub fn details_token(mut self, token: impl Into<String>) -> Self {
        self.details_token = Some(token.into()).filter(|token| !token.is_empty());
        self
    }

    /// The `serviceId` of the IETF format.
    pub fn service_id(mut self, service: impl Into<String>) -> Self {
        self.service_id = Some(service.into());
        self
    }

    /// Records `health_check_status{check}`, `health_check_critical{check}`
    /// (1 for a critical check), `health_check_duration_seconds{check}` and
    /// the usage gauges into this recorder rather than the global one.
    pub fn metrics_recorder(mut self, recorder: Arc<dyn Recorder + Send + Sync>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Builds the handle. With a refresh interval, the refresh starts now
    /// when called inside a Tokio runtime, else at the first probe.
    pub fn build(self) -> Health {
        let health = Health {
            inner: Arc::new(Inner {
                entries: ArcSwap::from_pointee(self.entries),
                cache_ttl: self.cache_ttl,
                refresh_interval: self.refresh_interval,
                refresh_started: AtomicBool::new(false),
                details: self.details,
                details_token: self.details_token,
                service_id: self.service_id,
                shutting_down: AtomicBool::new(false),
                recorder: self.recorder,
            }),
        };
        health.ensure_refresh();
        health
    }
}

impl fmt::Debug for HealthBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthBuilder")
            .field(
                "checks",
                &self.entries.iter().map(|e| &e.name).collect::<Vec<_>>(),
            )
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

/// One registered check, its cached result and its last status.
struct Entry {
    name: Arc<str>,
    check: Arc<dyn DynCheck>,
    critical: bool,
    timeout: Duration,
    slot: Mutex<Slot>,
    last_status: Mutex<Option<Status>>,
}

enum Slot {
    Empty,
    Running(watch::Receiver<Option<Arc<CheckReport>>>),
    Fresh {
        finished: Instant,
        report: Arc<CheckReport>,
    },
}

impl Entry {
    fn new(name: Arc<str>, check: Arc<dyn DynCheck>, options: CheckOptions) -> Arc<Self> {
        let timeout = options.timeout.unwrap_or_else(|| check.default_timeout());
        Arc::new(Self {
            name,
            check,
            critical: options.critical,
            timeout,
            slot: Mutex::new(Slot::Empty),
            last_status: Mutex::new(None),
        })
    }

    /// A fresh cached result, the result of the run under way, or of a new
    /// run. `force` skips the cache.
    fn report(
        self: &Arc<Self>,
        inner: &Arc<Inner>,
        force: bool,
    ) -> BoxFuture<'static, Arc<CheckReport>> {
        let mut receiver = {
            let mut slot = lock(&self.slot);
            match &*slot {
                Slot::Fresh { finished, report }
                    if !force && finished.elapsed() < inner.cache_ttl =>
                {
                    let report = report.clone();
                    return Box::pin(std::future::ready(report));
                }
                // A run whose task is gone (its runtime shut down) is no run.
                Slot::Running(receiver) if receiver.has_changed().is_ok() => receiver.clone(),
                _ => {
                    let (sender, receiver) = watch::channel(None);
                    *slot = Slot::Running(receiver.clone());
                    tokio::spawn(self.clone().run(inner.recorder.clone(), sender));
                    receiver
                }
            }
        };
        let entry = self.clone();
        Box::pin(async move {
            let finished = receiver
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|report| report.clone());
            finished.unwrap_or_else(|| {
                Arc::new(CheckReport::failure(
                    entry.name.clone(),
                    entry.critical,
                    entry.check.failure_status(),
                    Duration::ZERO,
                    "the check's run was cancelled".to_owned(),
                    Cow::Borrowed("the check's run was cancelled"),
                ))
            })
        })
    }

    async fn run(
        self: Arc<Self>,
        recorder: Option<Arc<dyn Recorder + Send + Sync>>,
        sender: watch::Sender<Option<Arc<CheckReport>>>,
    ) {
        let started = Instant::now();
        // `run()` is called inside the guarded future: a closure check can
        // panic before it returns its future.
        let guarded = AssertUnwindSafe(async { self.check.run().await }).catch_unwind();
        let outcome = tokio::time::timeout(self.timeout, guarded).await;
        let elapsed = started.elapsed();
        let report = match outcome {
            Ok(Ok(result)) => {
                CheckReport::from_result(self.name.clone(), self.critical, result, elapsed)
            }
            Ok(Err(panic)) => CheckReport::failure(
                self.name.clone(),
                self.critical,
                self.check.failure_status(),
                elapsed,
                format!(
                    "the check panicked: {}",
                    observe_core::panic_message(&*panic)
                ),
                Cow::Borrowed("the check panicked"),
            ),
            Err(_) => {
                let text = format!("timed out after {:?}", self.timeout);
                CheckReport::failure(
                    self.name.clone(),
                    self.critical,
                    self.check.failure_status(),
                    elapsed,
                    text.clone(),
                    Cow::Owned(text),
                )
            }
        };
        let report = Arc::new(report);
        self.observe(&report, recorder.as_deref());
        *lock(&self.slot) = Slot::Fresh {
            finished: Instant::now(),
            report: report.clone(),
        };
        // Nobody waiting is fine: the result is cached.
        let _ = sender.send(Some(report));
    }

    /// Logs a change of status once, and records the metrics.
    fn observe(&self, report: &CheckReport, recorder: Option<&(dyn Recorder + Send + Sync)>) {
        let status = report.status;
        let previous = lock(&self.last_status).replace(status);
        let check = &*self.name;
        let error = report.error.as_deref().unwrap_or("");
        match previous {
            Some(previous) if previous == status => {
                if report.error.is_some() {
                    tracing::debug!(check, %status, error, "health check still failing");
                }
            }
            None if status == Status::Healthy => {
                tracing::debug!(check, %status, "health check passed");
            }
            previous => {
                let from = previous.map_or("unknown", Status::as_str);
                let change = format!("{from} -> {status}");
                if status.is_unavailable() {
                    tracing::error!(check, change, error, "health check status changed");
                } else if status > Status::Healthy {
                    tracing::warn!(check, change, error, "health check status changed");
                } else {
                    tracing::info!(check, change, "health check status changed");
                }
            }
        }

        let record = || {
            let label = [("check", self.name.to_string())];
            metrics::gauge!("health_check_status", &label).set(f64::from(status.severity()));
            // Which checks are critical, so a Prometheus rule can alert on
            // exactly those (`HealthCheckFailing`).
            metrics::gauge!("health_check_critical", &label).set(if self.critical {
                1.0
            } else {
                0.0
            });
            metrics::histogram!("health_check_duration_seconds", &label)
                .record(report.response_time.as_secs_f64());
            match &report.usage {
                Some(Usage::Memory { used_ratio }) => {
                    metrics::gauge!("memory_used_ratio").set(*used_ratio);
                }
                Some(Usage::Disk { path, used_ratio }) => {
                    metrics::gauge!("disk_used_ratio", "path" => path.clone()).set(*used_ratio);
                }
                Some(usage @ Usage::Pool { .. }) => {
                    metrics::gauge!("db_pool_utilization_ratio", &label).set(usage.used_ratio());
                }
                None => {}
            }
        };
        match recorder {
            Some(recorder) => metrics::with_local_recorder(recorder, record),
            None => record(),
        }
    }
}

/// Locks a mutex that only ever guards plain data; a poisoning panic cannot
/// leave it half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::{CheckResult, check_fn};

    /// A check that counts its runs and takes `delay`.
    fn counting(runs: &Arc<AtomicUsize>, delay: Duration) -> impl Check {
        let runs = runs.clone();
        check_fn(move || {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                CheckResult::healthy()
            }
        })
    }

    fn hanging() -> impl Check {
        check_fn(|| async {
            std::future::pending::<()>().await;
            CheckResult::healthy()
        })
    }

    #[tokio::test]
    async fn checks_run_in_parallel_and_a_hung_one_is_cut_at_its_timeout() {
        let runs = Arc::new(AtomicUsize::new(0));
        let health = Health::builder()
            .check("slow_a", counting(&runs, Duration::from_millis(300)))
            .check("slow_b", counting(&runs, Duration::from_millis(300)))
            .check_with(
                "hung",
                hanging(),
                CheckOptions::new().timeout(Duration::from_millis(400)),
            )
            .build();
        let started = Instant::now();
        let report = health.check_all().await;
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(400) && elapsed < Duration::from_millis(900),
            "{elapsed:?}"
        );
        assert_eq!(report.status(), Status::Unhealthy);
        let hung = report.check("hung").unwrap();
        assert_eq!(hung.status(), Status::Unhealthy);
        assert_eq!(hung.error(), Some("timed out after 400ms"));
        assert!(hung.response_time() >= Duration::from_millis(400));
        assert_eq!(report.check("slow_a").unwrap().status(), Status::Healthy);
        assert!(report.check("slow_a").unwrap().response_time() >= Duration::from_millis(300));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let body = report.to_json(false);
        // Our own timeout text is safe to show.
        assert_eq!(body["checks"]["hung"]["error"], "timed out after 400ms");
    }

    #[tokio::test]
    async fn a_check_that_panics_before_its_future_is_caught_too() {
        fn explode() -> std::future::Ready<CheckResult> {
            panic!("no future for you")
        }
        let health = Health::builder().check("early", check_fn(explode)).build();
        let report = health.check_all().await;
        let early = report.check("early").unwrap();
        assert_eq!(early.status(), Status::Unhealthy);
        assert_eq!(early.error(), Some("the check panicked: no future for you"));
    }

    #[tokio::test]
    async fn the_default_timeout_is_two_seconds() {
        let health = Health::builder().check("hung", hanging()).build();
        let started = Instant::now();
        let report = health.check_all().await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_millis(2_600),
            "{took:?}"
        );
        assert_eq!(
            report.check("hung").unwrap().error(),
            Some("timed out after 2s")
        );
    }

    #[tokio::test]
    async fn a_panicking_check_is_unhealthy_not_a_crash() {
        let health = Health::builder()
            .check(
                "boom",
                check_fn(|| async {
                    if true {
                        panic!("the check exploded");
                    }
                    CheckResult::healthy()
                }),
            )
            .build();
        let report = health.check_all().await;
        let boom = report.check("boom").unwrap();
        assert_eq!(boom.status(), Status::Unhealthy);
        assert_eq!(boom.error(), Some("the check panicked: the check exploded"));
        assert_eq!(
            report.to_json(false)["checks"]["boom"]["error"],
            "the check panicked"
        );
    }

    #[tokio::test]
    async fn concurrent_probes_share_one_run_and_results_are_cached_for_the_ttl() {
        let runs = Arc::new(AtomicUsize::new(0));
        let health = Health::builder()
            .check("db", counting(&runs, Duration::from_millis(50)))
            .cache_ttl(Duration::from_millis(300))
            .build();
        let probes = (0..500).map(|_| {
            let health = health.clone();
            tokio::spawn(async move { health.check_all().await.status() })
        });
        for status in futures_util::future::join_all(probes).await {
            assert_eq!(status.unwrap(), Status::Healthy);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        health.check_all().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "fresh within the TTL");
        tokio::time::sleep(Duration::from_millis(350)).await;
        health.check_all().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2, "stale after the TTL");
    }

    #[tokio::test]
    async fn a_zero_ttl_runs_every_probe() {
        let runs = Arc::new(AtomicUsize::new(0));
        let health = Health::builder()
            .check("db", counting(&runs, Duration::ZERO))
            .cache_ttl(Duration::ZERO)
            .build();
        for _ in 0..3 {
            health.check_all().await;
        }
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn background_refresh_keeps_results_warm() {
        let runs = Arc::new(AtomicUsize::new(0));
        let health = Health::builder()
            .check("db", counting(&runs, Duration::ZERO))
            .cache_ttl(Duration::from_secs(60))
            .refresh_interval(Duration::from_millis(50))
            .build();
        tokio::time::sleep(Duration::from_millis(280)).await;
        let refreshed = runs.load(Ordering::SeqCst);
        assert!((3..=7).contains(&refreshed), "{refreshed} runs");
        drop(health);
        tokio::time::sleep(Duration::from_millis(120)).await;
        let after_drop = runs.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            after_drop,
            "the refresh ends with the handle"
        );
    }

    #[tokio::test]
    async fn readiness_covers_critical_checks_and_fails_once_shutting_down() {
        let health = Health::builder()
            .check("db", check_fn(|| async { CheckResult::healthy() }))
            .check_with(
                "upstream",
                check_fn(|| async { CheckResult::unhealthy("refused") }),
                CheckOptions::new().critical(false),
            )
            .build();
        let all = health.check_all().await;
        assert_eq!(all.status(), Status::Degraded);
        assert_eq!(all.checks().len(), 2);
        let ready = health.check_ready().await;
        assert_eq!(ready.status(), Status::Healthy);
        assert_eq!(ready.checks().len(), 1);
        assert_eq!(ready.checks()[0].name(), "db");

        health.begin_shutdown();
        assert!(health.is_shutting_down());
        let ready = health.check_ready().await;
        assert_eq!(ready.status(), Status::Unhealthy);
        assert_eq!(ready.reason(), Some("shutting down"));
        assert_eq!(health.check_live().status(), Status::Healthy);
    }

    #[tokio::test]
    async fn checks_added_later_replace_by_name() {
        let health = Health::new();
        assert_eq!(health.check_all().await.status(), Status::Healthy);
        health.add_check("a", check_fn(|| async { CheckResult::unhealthy("x") }));
        health.add_check("b", check_fn(|| async { CheckResult::healthy() }));
        health.add_check("a", check_fn(|| async { CheckResult::healthy() }));
        let names: Vec<String> = health.check_names().iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(health.check_all().await.status(), Status::Healthy);
    }
}
