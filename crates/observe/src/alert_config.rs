//! The alerting part of the configuration: the `OBSERVE_ALERT*` variables,
//! then the builder's own settings.

use std::{fmt, sync::Arc};

use observe_alerts::{Alerts, AlertsBuilder, BuiltinRule, Thresholds};
use observe_health::Health;
use observe_metrics::Metrics;

use crate::{ConfigError, config::Env};

/// What a receiver URL is written as in an error: it is a credential.
const HIDDEN_URL: &str = "[REDACTED]";

type Configure = Arc<dyn Fn(AlertsBuilder) -> AlertsBuilder + Send + Sync>;

/// What the builder's alert setters hold.
#[derive(Clone, Default)]
pub(crate) struct AlertOptions {
    pub(crate) enabled: Option<bool>,
    pub(crate) configure: Option<Configure>,
}

impl fmt::Debug for AlertOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertOptions")
            .field("enabled", &self.enabled)
            .field("configure", &self.configure.is_some())
            .finish()
    }
}

fn number<T: std::str::FromStr>(
    env: &Env,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<T>, ConfigError> {
    env.get(name)?
        .map(|text| {
            text.trim()
                .parse::<T>()
                .map_err(|_| ConfigError::new(name, text.clone(), expected))
        })
        .transpose()
}

impl AlertOptions {
    /// The engine, or `None` when alerting is off (`OBSERVE_ALERTS=false`).
    pub(crate) fn build(
        self,
        env: &Env,
        service: &str,
        environment: &str,
        metrics: &Metrics,
        health: &Health,
    ) -> Result<Option<Alerts>, ConfigError> {
        let enabled = match self.enabled {
            Some(enabled) => enabled,
            None => env.bool("OBSERVE_ALERTS")?.unwrap_or(true),
        };
        if !enabled {
            return Ok(None);
        }
        let mut builder = Alerts::builder(service)
            .environment(environment)
            .metrics(metrics.clone())
            .health(health.clone());
        if let Some(interval) = env.duration("OBSERVE_ALERT_EVAL_INTERVAL")? {
            builder = builder.eval_interval(interval);
        }
        if let Some(window) = env.duration("OBSERVE_ALERT_WINDOW")? {
            builder = builder.window(window);
        }
        let mut thresholds = Thresholds::default();
        if let Some(rate) = number::<f64>(
            env,
            "OBSERVE_ALERT_ERROR_RATE",
            "expected a share from 0 to 1, such as 0.05",
        )? {
            thresholds.error_rate = rate;
        }
        if let Some(requests) = number::<u64>(
            env,
            "OBSERVE_ALERT_MIN_REQUESTS",
            "expected a number of requests, such as 10",
        )? {
            thresholds.min_requests = requests;
        }
        if let Some(time) = env.duration("OBSERVE_ALERT_RESPONSE_TIME")? {
            thresholds.response_time = time;
        }
        for (name, field) in [
            (
                "OBSERVE_ALERT_MEMORY_PERCENT",
                &mut thresholds.memory_percent,
            ),
            ("OBSERVE_ALERT_DISK_PERCENT", &mut thresholds.disk_percent),
            (
                "OBSERVE_ALERT_DB_POOL_PERCENT",
                &mut thresholds.db_pool_percent,
            ),
        ] {
            if let Some(percent) =
                number::<f64>(env, name, "expected a percentage from 0 to 100, such as 90")?
            {
                *field = percent;
            }
        }
        builder = builder.thresholds(thresholds);
        if let Some(duration) = env.duration("OBSERVE_ALERT_FOR")? {
            builder = builder.for_duration(duration);
        }
        if let Some(duration) = env.duration("OBSERVE_ALERT_KEEP_FIRING_FOR")? {
            builder = builder.keep_firing_for(duration);
        }
        if let Some(interval) = env.duration("OBSERVE_ALERT_REPEAT_INTERVAL")? {
            builder = builder.repeat_interval(interval);
        }
        if let Some(disabled) = env.get("OBSERVE_ALERT_DISABLED")? {
            for name in disabled
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
            {
                let rule = BuiltinRule::from_name(name).ok_or_else(|| {
                    ConfigError::new(
                        "OBSERVE_ALERT_DISABLED",
                        disabled.clone(),
                        format!(
                            "{name:?} is not a built-in rule; expected some of {}",
                            BuiltinRule::ALL.map(BuiltinRule::name).join(", ")
                        ),
                    )
                })?;
                builder = builder.disable(rule);
            }
        }
        if let Some(url) = env.get("OBSERVE_ALERT_RUNBOOK_URL")? {
            builder = builder.runbook_url(url);
        }
        if let Some(url) = env.get("OBSERVE_ALERT_EXTERNAL_URL")? {
            builder = builder.external_url(url);
        }
        if let Some(url) = env.get("OBSERVE_ALERT_WEBHOOK_URL")? {
            builder = builder.webhook(url);
        }
        if let Some(url) = env.get("OBSERVE_ALERT_SLACK_WEBHOOK_URL")? {
            builder = builder.slack(url);
        }
        if let Some(url) = env.get("OBSERVE_ALERT_DISCORD_WEBHOOK_URL")? {
            builder = builder.discord(url);
        }
        if let Some(url) = env.get("OBSERVE_ALERTMANAGER_URL")? {
            builder = builder.alertmanager(url);
        }
        if let Some(configure) = &self.configure {
            builder = configure(builder);
        }
        builder.build().map(Some).map_err(|error| {
            let setting = error.setting();
            // The variable is named; a receiver URL's value never is.
            let value = if setting.ends_with("_URL") {
                HIDDEN_URL.to_owned()
            } else {
                env.get(setting).ok().flatten().unwrap_or_default()
            };
            ConfigError::new(setting, value, error.reason())
        })
    }
}
