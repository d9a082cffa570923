//! `GET /alerts`: the pending and firing alerts and the last transitions,
//! as JSON.

use std::time::SystemTime;

use axum::{Json, Router, routing::get};
use serde_json::{Value, json};

use crate::{ALERTS_PATH, Alert, AlertState, Alerts, Labels, Transition, labels::fingerprint_hex};

fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn labels(labels: &Labels) -> Value {
    serde_json::to_value(labels).unwrap_or_default()
}

fn alert(alert: &Alert) -> Value {
    let since = match alert.state {
        AlertState::Firing => alert.fired_at.unwrap_or(alert.active_at),
        _ => alert.active_at,
    };
    json!({
        "fingerprint": fingerprint_hex(alert.fingerprint),
        "state": alert.state.as_str(),
        "since": time(since),
        "active_at": time(alert.active_at),
        "value": alert.value,
        "value_text": alert.value_text,
        "threshold": alert.threshold,
        "inhibited": alert.inhibited,
        "labels": labels(&alert.labels),
        "annotations": labels(&alert.annotations),
    })
}

fn transition(transition: &Transition) -> Value {
    json!({
        "at": time(transition.at),
        "alertname": transition.alertname,
        "fingerprint": fingerprint_hex(transition.fingerprint),
        "state": transition.state.as_str(),
        "severity": transition.severity.as_str(),
        "value": transition.value,
        "threshold": transition.threshold,
        "labels": labels(&transition.labels),
    })
}

impl Alerts {
    /// A router serving `GET /alerts`: `{"alerts": [...], "transitions":
    /// [...]}`, the pending and firing alerts (labels, annotations, state,
    /// since, value) and the last transitions, oldest first.
    /// `observe`'s `obs.router(app)` serves it beside `/metrics`, behind the
    /// same token.
    pub fn router(&self) -> Router {
        let alerts = self.clone();
        Router::new().route(
            ALERTS_PATH,
            get(move || {
                let alerts = alerts.clone();
                async move { Json(alerts.to_json()) }
            }),
        )
    }

    /// What `GET /alerts` answers.
    pub fn to_json(&self) -> Value {
        let active: Vec<Value> = self.active().iter().map(alert).collect();
        let history: Vec<Value> = self.history().iter().map(transition).collect();
        json!({
            "alerts": active,
            "transitions": history,
        })
    }
}
