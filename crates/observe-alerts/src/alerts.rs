//! [`Alerts`]: the engine, its inputs, its notifiers and its loop.

use std::{
    collections::{BTreeSet, HashSet},
    fmt,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use observe_health::Health;
use observe_metrics::Metrics;

use crate::{
    ALERTMANAGER_RESEND, DEFAULT_EVAL_INTERVAL, DEFAULT_FOR, DEFAULT_GROUP_BY,
    DEFAULT_INHIBIT_EQUAL, DEFAULT_KEEP_FIRING_FOR, DEFAULT_REPEAT_INTERVAL, DEFAULT_RUNBOOK_URL,
    DEFAULT_WINDOW, MAX_WINDOW, MIN_WINDOW, NOTIFY_ATTEMPTS, NOTIFY_BACKOFF, NOTIFY_MAX_BACKOFF,
    NOTIFY_QUEUE_CAPACITY, NOTIFY_TIMEOUT,
    engine::{Alert, AlertState, Engine, Evaluation, Settings, Transition},
    labels::fingerprint_hex,
    notify::{
        Channel, Channels, Context, NotifierKind, RetryPolicy, alertmanager_body, group_bodies,
    },
    rule::{BuiltinRule, Inputs, Rule, Severity, Thresholds},
};

/// A configuration that cannot work, from [`AlertsBuilder::build`]. It names
/// the setting (or variable) and never repeats a receiver URL: those are
/// credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidAlertConfig {
    setting: &'static str,
    reason: String,
}

impl InvalidAlertConfig {
    fn new(setting: &'static str, reason: impl Into<String>) -> Self {
        Self {
            setting,
            reason: reason.into(),
        }
    }

    /// The setting at fault, as its environment variable is named.
    pub fn setting(&self) -> &'static str {
        self.setting
    }

    /// Why it is refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for InvalidAlertConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.setting, self.reason)
    }
}

impl std::error::Error for InvalidAlertConfig {}

/// Configures [`Alerts`]; from [`Alerts::builder`].
#[must_use = "call build() to get the Alerts handle"]
pub struct AlertsBuilder {
    service: String,
    environment: String,
    eval_interval: Duration,
    window: Duration,
    thresholds: Thresholds,
    disabled: HashSet<BuiltinRule>,
    builtin: bool,
    rules: Vec<Rule>,
    for_duration: Duration,
    keep_firing_for: Duration,
    repeat_interval: Duration,
    group_by: Vec<String>,
    inhibit_equal: Vec<String>,
    runbook_url: String,
    external_url: String,
    receivers: Vec<(NotifierKind, &'static str, String)>,
    metrics: Option<Metrics>,
    health: Option<Health>,
    retry: RetryPolicy,
    queue_capacity: usize,
}

impl fmt::Debug for AlertsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertsBuilder")
            .field("service", &self.service)
            .field("eval_interval", &self.eval_interval)
            .field("window", &self.window)
            .field("thresholds", &self.thresholds)
            .field(
                "notifiers",
                &self
                    .receivers
                    .iter()
                    .map(|(kind, _, _)| kind.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl AlertsBuilder {
    /// The `environment` label of every alert (default `development`).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = environment.into();
        self
    }

    /// How often the rules are evaluated (`OBSERVE_ALERT_EVAL_INTERVAL`).
    pub fn eval_interval(mut self, interval: Duration) -> Self {
        self.eval_interval = interval;
        self
    }

    /// The RED window the request rules read, from [`MIN_WINDOW`] to
    /// [`MAX_WINDOW`] (`OBSERVE_ALERT_WINDOW`).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The built-in rules' thresholds.
    pub fn thresholds(mut self, thresholds: Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// Turns one built-in rule off.
    pub fn disable(mut self, rule: BuiltinRule) -> Self {
        self.disabled.insert(rule);
        self
    }

    /// Whether the built-in rules run at all (default yes).
    pub fn builtin_rules(mut self, enabled: bool) -> Self {
        self.builtin = enabled;
        self
    }

    /// Adds a rule of the application's own.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// How long a condition must hold before its alert fires, for rules
    /// without their own (`OBSERVE_ALERT_FOR`).
    pub fn for_duration(mut self, duration: Duration) -> Self {
        self.for_duration = duration;
        self
    }

    /// How long alerts keep firing after their condition stops, for rules
    /// without their own (`OBSERVE_ALERT_KEEP_FIRING_FOR`).
    pub fn keep_firing_for(mut self, duration: Duration) -> Self {
        self.keep_firing_for = duration;
        self
    }

    /// How often a group still firing is notified again
    /// (`OBSERVE_ALERT_REPEAT_INTERVAL`).
    pub fn repeat_interval(mut self, interval: Duration) -> Self {
        self.repeat_interval = interval;
        self
    }

    /// The labels notifications are grouped by.
    pub fn group_by<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.group_by = labels.into_iter().map(Into::into).collect();
        self
    }

    /// The labels a critical alert and a warning must share for the first
    /// to inhibit the second.
    pub fn inhibit_equal<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inhibit_equal = labels.into_iter().map(Into::into).collect();
        self
    }

    /// The runbook URL pattern; `{alertname}` is replaced
    /// (`OBSERVE_ALERT_RUNBOOK_URL`).
    pub fn runbook_url(mut self, pattern: impl Into<String>) -> Self {
        self.runbook_url = pattern.into();
        self
    }

    /// The service's own URL, for `externalURL` and `generatorURL`
    /// (`{url}/alerts`) in payloads (`OBSERVE_ALERT_EXTERNAL_URL`).
    pub fn external_url(mut self, url: impl Into<String>) -> Self {
        self.external_url = url.into();
        self
    }

    /// Sends Alertmanager's webhook payload (version 4) to `url`
    /// (`OBSERVE_ALERT_WEBHOOK_URL`).
    pub fn webhook(self, url: impl Into<String>) -> Self {
        self.receiver(NotifierKind::Webhook, "OBSERVE_ALERT_WEBHOOK_URL", url)
    }

    /// Sends to a Slack incoming webhook (`OBSERVE_ALERT_SLACK_WEBHOOK_URL`).
    pub fn slack(self, url: impl Into<String>) -> Self {
        self.receiver(NotifierKind::Slack, "OBSERVE_ALERT_SLACK_WEBHOOK_URL", url)
    }

    /// Sends to a Discord webhook (`OBSERVE_ALERT_DISCORD_WEBHOOK_URL`).
    pub fn discord(self, url: impl Into<String>) -> Self {
        self.receiver(
            NotifierKind::Discord,
            "OBSERVE_ALERT_DISCORD_WEBHOOK_URL",
            url,
        )
    }

    /// Sends to Alertmanager at `url` (its base, as `http://alertmanager:9093`)
    /// (`OBSERVE_ALERTMANAGER_URL`).
    pub fn alertmanager(self, url: impl Into<String>) -> Self {
        self.receiver(NotifierKind::Alertmanager, "OBSERVE_ALERTMANAGER_URL", url)
    }

    fn receiver(
        mut self,
        kind: NotifierKind,
        setting: &'static str,
        url: impl Into<String>,
    ) -> Self {
        self.receivers.push((kind, setting, url.into()));
        self
    }

    /// Reads the RED window of `metrics`, and records
    /// `alert_notifications_total` and `alerts_firing` into it.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Reads the latest results of `health`'s checks.
    pub fn health(mut self, health: Health) -> Self {
        self.health = Some(health);
        self
    }

    /// Attempts per notification (default [`NOTIFY_ATTEMPTS`]) and the
    /// first retry's delay (default [`NOTIFY_BACKOFF`]).
    pub fn retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.retry.attempts = attempts.max(1);
        self.retry.backoff = backoff;
        self
    }

    /// How long one delivery attempt may take (default [`NOTIFY_TIMEOUT`]).
    pub fn notify_timeout(mut self, timeout: Duration) -> Self {
        self.retry.timeout = timeout;
        self
    }

    /// Notifications that may wait per notifier (default
    /// [`NOTIFY_QUEUE_CAPACITY`]).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Checks the configuration and builds the handle. Nothing runs until
    /// [`Alerts::spawn`] (which `observe`'s `serve` calls).
    pub fn build(self) -> Result<Alerts, InvalidAlertConfig> {
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&self.window) {
            return Err(InvalidAlertConfig::new(
                "OBSERVE_ALERT_WINDOW",
                format!(
                    "{} is outside {} to {}",
                    humantime::format_duration(self.window),
                    humantime::format_duration(MIN_WINDOW),
                    humantime::format_duration(MAX_WINDOW)
                ),
            ));
        }
        if self.eval_interval.is_zero() {
            return Err(InvalidAlertConfig::new(
                "OBSERVE_ALERT_EVAL_INTERVAL",
                "must be longer than zero",
            ));
        }
        let thresholds = &self.thresholds;
        let checks: [(&'static str, f64, std::ops::RangeInclusive<f64>); 4] = [
            ("OBSERVE_ALERT_ERROR_RATE", thresholds.error_rate, 0.0..=1.0),
            (
                "OBSERVE_ALERT_MEMORY_PERCENT",
                thresholds.memory_percent,
                0.0..=100.0,
            ),
            (
                "OBSERVE_ALERT_DISK_PERCENT",
                thresholds.disk_percent,
                0.0..=100.0,
            ),
            (
                "OBSERVE_ALERT_DB_POOL_PERCENT",
                thresholds.db_pool_percent,
                0.0..=100.0,
            ),
        ];
        for (setting, value, range) in checks {
            if !range.contains(&value) {
                return Err(InvalidAlertConfig::new(
                    setting,
                    format!("{value} is outside {} to {}", range.start(), range.end()),
                ));
            }
        }
        let mut names = BTreeSet::new();
        let mut rules: Vec<Rule> = if self.builtin {
            BuiltinRule::ALL
                .into_iter()
                .filter(|rule| !self.disabled.contains(rule))
                .map(|rule| rule.rule(&self.thresholds))
                .collect()
        } else {
            Vec::new()
        };
        rules.extend(self.rules);
        for rule in &rules {
            if rule.name().is_empty() || !names.insert(rule.name().to_owned()) {
                return Err(InvalidAlertConfig::new(
                    "rule",
                    format!("rule names must be unique and not empty: {:?}", rule.name()),
                ));
            }
        }

        let recorder = self.metrics.as_ref().map(Metrics::recorder);
        let client = reqwest::Client::builder()
            .timeout(self.retry.timeout)
            .build()
            .map_err(|_| InvalidAlertConfig::new("notifier", "cannot build an HTTP client"))?;
        let mut channels = Vec::new();
        let mut alertmanager = false;
        for (kind, setting, url) in self.receivers {
            let mut url = reqwest::Url::parse(url.trim())
                .ok()
                .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
                .ok_or_else(|| {
                    InvalidAlertConfig::new(setting, "expected an http:// or https:// URL")
                })?;
            if kind == NotifierKind::Alertmanager {
                alertmanager = true;
                let path = format!("{}/api/v2/alerts", url.path().trim_end_matches('/'));
                url.set_path(&path);
            }
            channels.push(Channel::new(
                kind,
                url,
                client.clone(),
                self.retry,
                self.queue_capacity,
                recorder.as_deref(),
            ));
        }

        let settings = Settings {
            service: self.service.clone(),
            environment: self.environment,
            window: self.window,
            for_duration: self.for_duration,
            keep_firing_for: self.keep_firing_for,
            repeat_interval: self.repeat_interval,
            group_by: self.group_by,
            inhibit_equal: self.inhibit_equal,
            runbook_url: self.runbook_url,
            alertmanager_resend: alertmanager.then_some(ALERTMANAGER_RESEND),
        };
        let context = Context {
            receiver: self.service,
            external_url: self.external_url,
            alertmanager_validity: 4 * ALERTMANAGER_RESEND.max(self.eval_interval),
        };
        let alerts = Alerts {
            inner: Arc::new(Inner {
                engine: Mutex::new(Engine::new(settings, rules)),
                metrics: self.metrics,
                health: self.health,
                window: self.window,
                eval_interval: self.eval_interval,
                thresholds: self.thresholds,
                channels: channels.into(),
                context,
                recorder,
                firing_series: Mutex::new(BTreeSet::new()),
                started: AtomicBool::new(false),
                workers_started: AtomicBool::new(false),
            }),
        };
        alerts.publish_firing();
        Ok(alerts)
    }
}

/// The alert engine of a service: cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Mutex<Engine>,
    metrics: Option<Metrics>,
    health: Option<Health>,
    window: Duration,
    eval_interval: Duration,
    thresholds: Thresholds,
    channels: Channels,
    context: Context,
    recorder: Option<Arc<dyn metrics::Recorder + Send + Sync>>,
    /// `alerts_firing` series set so far, to bring them back to zero.
    firing_series: Mutex<BTreeSet<(String, Severity)>>,
    started: AtomicBool,
    workers_started: AtomicBool,
}

impl fmt::Debug for Alerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alerts")
            .field("eval_interval", &self.inner.eval_interval)
            .field("window", &self.inner.window)
            .field("channels", &self.inner.channels)
            .finish_non_exhaustive()
    }
}

impl Alerts {
    /// Starts configuring the alerts of `service` (the `service` label).
    pub fn builder(service: impl Into<String>) -> AlertsBuilder {
        AlertsBuilder {
            service: service.into(),
            environment: "development".to_owned(),
            eval_interval: DEFAULT_EVAL_INTERVAL,
            window: DEFAULT_WINDOW,
            thresholds: Thresholds::default(),
            disabled: HashSet::new(),
            builtin: true,
            rules: Vec::new(),
            for_duration: DEFAULT_FOR,
            keep_firing_for: DEFAULT_KEEP_FIRING_FOR,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            group_by: DEFAULT_GROUP_BY
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
            inhibit_equal: DEFAULT_INHIBIT_EQUAL
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
            runbook_url: DEFAULT_RUNBOOK_URL.to_owned(),
            external_url: String::new(),
            receivers: Vec::new(),
            metrics: None,
            health: None,
            retry: RetryPolicy {
                attempts: NOTIFY_ATTEMPTS,
                timeout: NOTIFY_TIMEOUT,
                backoff: NOTIFY_BACKOFF,
                max_backoff: NOTIFY_MAX_BACKOFF,
            },
            queue_capacity: NOTIFY_QUEUE_CAPACITY,
        }
    }

    /// Starts evaluating every interval on the current tokio runtime, until
    /// every handle is dropped. Calling it again does nothing; outside a
    /// runtime it does nothing and returns `false`.
    pub fn spawn(&self) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        if self.inner.started.swap(true, Ordering::AcqRel) {
            return true;
        }
        let weak = Arc::downgrade(&self.inner);
        let interval = self.inner.eval_interval;
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                Alerts { inner }.evaluate().await;
            }
        });
        true
    }

    /// Evaluates the rules now: reads the RED window and runs the health
    /// checks (their cache applies), then logs transitions, updates
    /// `alerts_firing` and queues notifications.
    pub async fn evaluate(&self) -> Evaluation {
        let red = self
            .inner
            .metrics
            .as_ref()
            .map(|metrics| metrics.red(self.inner.window));
        let health = match &self.inner.health {
            Some(health) => Some(health.check_all().await),
            None => None,
        };
        let inputs = Inputs {
            red: red.as_ref(),
            health: health.as_ref(),
        };
        self.evaluate_at(SystemTime::now(), &inputs)
    }

    /// Evaluates the rules at `now` over `inputs`, then logs, records and
    /// notifies as [`evaluate`](Self::evaluate) does. Notifications need a
    /// tokio runtime to leave.
    pub fn evaluate_at(&self, now: SystemTime, inputs: &Inputs<'_>) -> Evaluation {
        let evaluation = self.engine().evaluate(now, inputs);
        for transition in &evaluation.transitions {
            log(transition);
        }
        if evaluation
            .transitions
            .iter()
            .any(|transition| matches!(transition.state, AlertState::Firing | AlertState::Resolved))
        {
            self.publish_firing();
        }
        self.dispatch(&evaluation, now);
        evaluation
    }

    fn dispatch(&self, evaluation: &Evaluation, now: SystemTime) {
        if evaluation.notifications.is_empty() && evaluation.alertmanager.is_none() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if !self.inner.workers_started.swap(true, Ordering::AcqRel) {
            for channel in self.inner.channels.iter() {
                channel.start();
            }
        }
        for channel in self.inner.channels.iter() {
            if channel.kind == NotifierKind::Alertmanager {
                if let Some(alerts) = &evaluation.alertmanager {
                    channel.send(alertmanager_body(alerts, now, &self.inner.context));
                }
                continue;
            }
            for notification in &evaluation.notifications {
                for body in group_bodies(channel.kind, notification, &self.inner.context) {
                    channel.send(body);
                }
            }
        }
    }

    /// Sets `alerts_firing{alertname, severity}` to the firing count, zero
    /// for names that fired before and for every rule at start.
    fn publish_firing(&self) {
        let Some(recorder) = &self.inner.recorder else {
            return;
        };
        let engine = self.engine();
        let mut counts: std::collections::BTreeMap<(String, Severity), u32> = engine
            .rules()
            .iter()
            .map(|rule| ((rule.name().to_owned(), rule.severity()), 0))
            .collect();
        for alert in engine.active() {
            if alert.state == AlertState::Firing {
                *counts
                    .entry((alert.name().to_owned(), alert.severity))
                    .or_default() += 1;
            }
        }
        drop(engine);
        let mut series = self
            .inner
            .firing_series
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for key in series.iter() {
            counts.entry(key.clone()).or_default();
        }
        metrics::with_local_recorder(recorder.as_ref(), || {
            metrics::describe_gauge!(
                "alerts_firing",
                metrics::Unit::Count,
                "Alerts firing now, by name and severity (in-process engine)."
            );
            for ((name, severity), count) in &counts {
                metrics::gauge!(
                    "alerts_firing",
                    "alertname" => name.clone(),
                    "severity" => severity.as_str()
                )
                .set(f64::from(*count));
            }
        });
        series.extend(counts.into_keys());
    }

    fn engine(&self) -> MutexGuard<'_, Engine> {
        self.inner
            .engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Pending and firing alerts now.
    pub fn active(&self) -> Vec<Alert> {
        self.engine().active().into_iter().cloned().collect()
    }

    /// The last transitions, oldest first.
    pub fn history(&self) -> Vec<Transition> {
        self.engine().history().cloned().collect()
    }

    /// How often the rules are evaluated.
    pub fn eval_interval(&self) -> Duration {
        self.inner.eval_interval
    }

    /// The RED window the request rules read.
    pub fn window(&self) -> Duration {
        self.inner.window
    }

    /// The built-in rules' thresholds.
    pub fn thresholds(&self) -> Thresholds {
        self.inner.thresholds
    }

    /// The names of the rules evaluated, built-in ones first.
    pub fn rule_names(&self) -> Vec<String> {
        self.engine()
            .rules()
            .iter()
            .map(|rule| rule.name().to_owned())
            .collect()
    }

    /// The notifiers configured.
    pub fn notifiers(&self) -> Vec<NotifierKind> {
        self.inner
            .channels
            .iter()
            .map(|channel| channel.kind)
            .collect()
    }
}

/// One structured line per transition.
fn log(transition: &Transition) {
    let alertname = transition.alertname.as_str();
    let severity = transition.severity.as_str();
    let state = transition.state.as_str();
    let fingerprint = fingerprint_hex(transition.fingerprint);
    let (value, threshold) = (transition.value, transition.threshold);
    match transition.state {
        AlertState::Firing if transition.severity == Severity::Critical => tracing::error!(
            target: "observe_alerts", alertname, state, severity, value, threshold, fingerprint,
            "alert firing"
        ),
        AlertState::Firing => tracing::warn!(
            target: "observe_alerts", alertname, state, severity, value, threshold, fingerprint,
            "alert firing"
        ),
        AlertState::Pending => tracing::info!(
            target: "observe_alerts", alertname, state, severity, value, threshold, fingerprint,
            "alert pending"
        ),
        AlertState::Resolved => tracing::info!(
            target: "observe_alerts", alertname, state, severity, value, threshold, fingerprint,
            "alert resolved"
        ),
        AlertState::Inactive => tracing::info!(
            target: "observe_alerts", alertname, state, severity, value, threshold, fingerprint,
            "alert inactive"
        ),
    }
}
