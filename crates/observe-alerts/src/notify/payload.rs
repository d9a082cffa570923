//! The bodies each receiver gets, built once per notification on the
//! evaluation task.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::NotifierKind;
use crate::{
    Alert, AlertState, GroupNotification, Labels, labels::fingerprint_hex, rule::Severity,
};

/// Go's zero time, which Alertmanager writes as a firing alert's `endsAt`.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Discord takes at most ten embeds a message.
const DISCORD_EMBEDS: usize = 10;

/// Discord refuses an embed description longer than this.
const DISCORD_DESCRIPTION: usize = 4_096;

/// What the payloads say besides the alerts.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// `receiver` of the webhook payload.
    pub(crate) receiver: String,
    /// `externalURL`; the alerts' `generatorURL` is it with `/alerts`.
    pub(crate) external_url: String,
    /// When a firing alert sent to Alertmanager expires unless re-sent.
    pub(crate) alertmanager_validity: Duration,
}

fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn labels_json(labels: &Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
            .collect::<Map<_, _>>(),
    )
}

/// The pairs every one of `sets` has, with the same value.
fn common<'a>(mut sets: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = sets.next() else {
        return Labels::new();
    };
    let mut common = first.clone();
    for set in sets {
        common.retain(|name, value| set.get(name) == Some(value));
    }
    common
}

fn generator_url(context: &Context) -> String {
    if context.external_url.is_empty() {
        String::new()
    } else {
        format!("{}/alerts", context.external_url.trim_end_matches('/'))
    }
}

fn status_text(state: AlertState) -> &'static str {
    match state {
        AlertState::Firing | AlertState::Pending => "firing",
        AlertState::Resolved | AlertState::Inactive => "resolved",
    }
}

/// The bodies for `notification` in the format of `kind` (one, or for
/// Discord one per ten alerts). Alertmanager takes another call, see
/// [`alertmanager_body`].
pub(crate) fn group_bodies(
    kind: NotifierKind,
    notification: &GroupNotification,
    context: &Context,
) -> Vec<Bytes> {
    match kind {
        NotifierKind::Webhook => vec![to_bytes(&webhook(notification, context))],
        NotifierKind::Slack => vec![to_bytes(&slack(notification))],
        NotifierKind::Discord => discord(notification).iter().map(to_bytes).collect(),
        NotifierKind::Alertmanager => Vec::new(),
    }
}

fn to_bytes(value: &Value) -> Bytes {
    Bytes::from(value.to_string())
}

/// Alertmanager's webhook payload, version 4.
fn webhook(notification: &GroupNotification, context: &Context) -> Value {
    let generator = generator_url(context);
    let alerts: Vec<Value> = notification
        .alerts
        .iter()
        .map(|alert| {
            json!({
                "status": status_text(alert.state),
                "labels": labels_json(&alert.labels),
                "annotations": labels_json(&alert.annotations),
                "startsAt": time(alert.fired_at.unwrap_or(alert.active_at)),
                "endsAt": alert.resolved_at.map_or_else(|| ZERO_TIME.to_owned(), time),
                "generatorURL": generator,
                "fingerprint": fingerprint_hex(alert.fingerprint),
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": 0,
        "status": status_text(notification.status),
        "receiver": context.receiver,
        "groupLabels": labels_json(&notification.group_labels),
        "commonLabels": labels_json(&common(notification.alerts.iter().map(|alert| &alert.labels))),
        "commonAnnotations": labels_json(&common(notification.alerts.iter().map(|alert| &alert.annotations))),
        "externalURL": context.external_url,
        "alerts": alerts,
    })
}

fn headline(notification: &GroupNotification) -> String {
    let firing = notification
        .alerts
        .iter()
        .filter(|alert| alert.state == AlertState::Firing)
        .count();
    let names = notification
        .group_labels
        .values()
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    match notification.status {
        AlertState::Firing => format!("[FIRING:{firing}] {names}"),
        _ => format!("[RESOLVED] {names}"),
    }
}

fn annotation<'a>(alert: &'a Alert, name: &str) -> &'a str {
    alert.annotations.get(name).map_or("", String::as_str)
}

/// The time a notification line shows: when it fired, or resolved.
fn alert_time(alert: &Alert) -> SystemTime {
    alert
        .resolved_at
        .or(alert.fired_at)
        .unwrap_or(alert.active_at)
}

fn alert_title(alert: &Alert) -> String {
    format!(
        "[{}] {}",
        status_text(alert.state).to_ascii_uppercase(),
        alert.name()
    )
}

/// A Slack incoming webhook message: an attachment per alert, coloured
/// `danger`, `warning` or `good` once resolved.
fn slack(notification: &GroupNotification) -> Value {
    let attachments: Vec<Value> = notification
        .alerts
        .iter()
        .map(|alert| {
            let color = match (alert.state, alert.severity) {
                (AlertState::Resolved, _) => "good",
                (_, Severity::Critical) => "danger",
                (_, Severity::Warning) => "warning",
                (_, Severity::Info) => "#439FE0",
            };
            json!({
                "fallback": format!("{}: {}", alert_title(alert), annotation(alert, "summary")),
                "color": color,
                "title": alert_title(alert),
                "title_link": annotation(alert, "runbook_url"),
                "text": annotation(alert, "description"),
                "fields": [
                    {"title": "Metric", "value": alert.metric, "short": true},
                    {"title": "Value", "value": alert.value_text, "short": true},
                    {"title": "Time", "value": time(alert_time(alert)), "short": true},
                    {"title": "Severity", "value": alert.severity.as_str(), "short": true},
                ],
                "footer": format!("{} · {}", label(alert, "service"), fingerprint_hex(alert.fingerprint)),
                "ts": alert_time(alert)
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs(),
            })
        })
        .collect();
    json!({
        "text": headline(notification),
        "attachments": attachments,
    })
}

fn label<'a>(alert: &'a Alert, name: &str) -> &'a str {
    alert.labels.get(name).map_or("", String::as_str)
}

/// Discord webhook messages: an embed per alert, at most ten a message.
fn discord(notification: &GroupNotification) -> Vec<Value> {
    let embeds: Vec<Value> = notification
        .alerts
        .iter()
        .map(|alert| {
            let color: u32 = match (alert.state, alert.severity) {
                (AlertState::Resolved, _) => 0x2E_CC_71,
                (_, Severity::Critical) => 0xE7_4C_3C,
                (_, Severity::Warning) => 0xF1_C4_0F,
                (_, Severity::Info) => 0x34_98_DB,
            };
            let description: String = annotation(alert, "description")
                .chars()
                .take(DISCORD_DESCRIPTION)
                .collect();
            let mut embed = json!({
                "title": alert_title(alert),
                "description": description,
                "color": color,
                "fields": [
                    {"name": "Metric", "value": alert.metric, "inline": true},
                    {"name": "Value", "value": alert.value_text, "inline": true},
                    {"name": "Time", "value": time(alert_time(alert)), "inline": true},
                    {"name": "Severity", "value": alert.severity.as_str(), "inline": true},
                ],
                "footer": {"text": format!("fingerprint {}", fingerprint_hex(alert.fingerprint))},
                "timestamp": time(alert_time(alert)),
            });
            let runbook = annotation(alert, "runbook_url");
            if runbook.starts_with("http://") || runbook.starts_with("https://") {
                embed["url"] = Value::from(runbook);
            }
            embed
        })
        .collect();
    let content = headline(notification);
    embeds
        .chunks(DISCORD_EMBEDS)
        .map(|chunk| json!({"content": content, "embeds": chunk}))
        .collect()
}

/// Alertmanager's `POST /api/v2/alerts` body: firing alerts valid for
/// `alertmanager_validity` from `now` unless re-sent, resolved ones ending
/// when they resolved.
pub(crate) fn alertmanager_body(alerts: &[Alert], now: SystemTime, context: &Context) -> Bytes {
    let generator = generator_url(context);
    let body: Vec<Value> = alerts
        .iter()
        .map(|alert| {
            let ends = alert
                .resolved_at
                .unwrap_or(now + context.alertmanager_validity);
            json!({
                "labels": labels_json(&alert.labels),
                "annotations": labels_json(&alert.annotations),
                "startsAt": time(alert.fired_at.unwrap_or(alert.active_at)),
                "endsAt": time(ends),
                "generatorURL": generator,
            })
        })
        .collect();
    to_bytes(&Value::Array(body))
}
