//! Alerting end to end with the demo binary: failing requests fire
//! `HighErrorRate` once at a webhook and in `GET /alerts`, healthy traffic
//! resolves it once; and two replicas firing the same alert reach a real
//! Alertmanager's receiver once.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Running, start_with, url};
use observe_tests::{
    alertmanager::AlertmanagerServer,
    http_get, post_json,
    prometheus::{samples, sum},
    webhook::{Received, WebhookReceiver},
};
use serde_json::Value;

/// Fast alerting for a test: evaluated every second over 10 s.
const FAST: [(&str, &str); 3] = [
    ("OBSERVE_ALERT_EVAL_INTERVAL", "1s"),
    ("OBSERVE_ALERT_WINDOW", "10s"),
    ("OBSERVE_ALERT_FOR", "1s"),
];

/// Twelve parses that fail with a 5xx: the stand-in answers VK error 5 for
/// the group `error_5`, which the demo maps to 502.
async fn inject_errors(running: &Running) {
    let parse = url(running, "/api/v1/groups/error_5/parse");
    for _ in 0..12 {
        let reply = post_json(&parse, r#"{"posts_limit":1,"comments_per_post":1}"#).await;
        assert_eq!(reply.status, 502, "{reply:?}");
    }
}

/// 300 answered requests: 12 errors in 312 is under 5%.
async fn healthy_traffic(running: &Running) {
    for _ in 0..300 {
        assert_eq!(http_get(&url(running, "/"), &[]).await.status, 200);
    }
}

/// The webhook payloads about `alertname`, as `(status, alert count)`.
fn about(received: &[Received], alertname: &str) -> Vec<(String, usize)> {
    received
        .iter()
        .filter(|request| request.body["groupLabels"]["alertname"] == alertname)
        .map(|request| {
            (
                request.body["status"].as_str().unwrap_or("").to_owned(),
                request.body["alerts"].as_array().map_or(0, Vec::len),
            )
        })
        .collect()
}

#[tokio::test]
async fn high_error_rate_fires_once_at_the_webhook_and_resolves_once() {
    let (receiver, hook) = WebhookReceiver::start([]).await;
    let hook = format!("{hook}/hook");
    let mut vars = FAST.to_vec();
    vars.push(("OBSERVE_ALERT_WEBHOOK_URL", &hook));
    let (running, _) = start_with(&vars).await;

    inject_errors(&running).await;
    let received = receiver
        .wait_until(Duration::from_secs(20), |received| {
            !about(received, "HighErrorRate").is_empty()
        })
        .await;
    assert_eq!(
        about(&received, "HighErrorRate"),
        [("firing".to_owned(), 1)]
    );
    let firing = received
        .iter()
        .find(|request| request.body["groupLabels"]["alertname"] == "HighErrorRate")
        .unwrap();
    assert_eq!(firing.body["version"], "4");
    let alert = &firing.body["alerts"][0];
    assert_eq!(alert["labels"]["service"], "vk-parser");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["component"], "http");
    assert_eq!(
        alert["annotations"]["runbook_url"],
        "https://github.com/observe-rs/observe/blob/main/docs/runbooks/HighErrorRate.md"
    );

    // /alerts shows it firing, with the same fingerprint.
    let reply = http_get(&url(&running, "/alerts"), &[]).await;
    assert_eq!(reply.status, 200);
    let body: Value = reply.json();
    let shown: Vec<&Value> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|alert| alert["labels"]["alertname"] == "HighErrorRate")
        .collect();
    assert_eq!(shown.len(), 1, "{body}");
    assert_eq!(shown[0]["state"], "firing");
    assert_eq!(shown[0]["fingerprint"], alert["fingerprint"]);
    assert!(shown[0]["value"].as_f64().unwrap() > 0.05);

    // The injection stops; healthy traffic brings the rate under 5%.
    healthy_traffic(&running).await;
    receiver
        .wait_until(Duration::from_secs(20), |received| {
            about(received, "HighErrorRate").len() >= 2
        })
        .await;
    // Three more evaluations: nothing more is sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        about(&receiver.received(), "HighErrorRate"),
        [("firing".to_owned(), 1), ("resolved".to_owned(), 1)]
    );

    let metrics = http_get(&url(&running, "/metrics"), &[]).await;
    let metrics = samples(std::str::from_utf8(&metrics.body).unwrap());
    assert_eq!(
        sum(&metrics, "alerts_firing", &[("alertname", "HighErrorRate")]),
        0.0
    );
    assert!(
        sum(
            &metrics,
            "alert_notifications_total",
            &[("notifier", "webhook"), ("outcome", "sent")]
        ) >= 2.0
    );
}

#[tokio::test]
async fn two_replicas_firing_the_same_alert_reach_alertmanagers_receiver_once() {
    let (receiver, hook) = WebhookReceiver::start([]).await;
    let alertmanager = AlertmanagerServer::start(&format!("{hook}/alertmanager")).await;
    let am_url = alertmanager.url();
    let mut vars = FAST.to_vec();
    vars.push(("OBSERVE_ALERTMANAGER_URL", &am_url));
    vars.push(("OBSERVE_ALERT_FOR", "0s"));
    let ((first, _), (second, _)) = tokio::join!(start_with(&vars), start_with(&vars));

    tokio::join!(inject_errors(&first), inject_errors(&second));
    // Both replicas fire and send it.
    let deadline = Instant::now() + Duration::from_secs(20);
    for running in [&first, &second] {
        loop {
            let metrics = http_get(&url(running, "/metrics"), &[]).await;
            let metrics = samples(std::str::from_utf8(&metrics.body).unwrap());
            if sum(
                &metrics,
                "alert_notifications_total",
                &[("notifier", "alertmanager"), ("outcome", "sent")],
            ) >= 1.0
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a replica sent nothing: {}",
                alertmanager.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let received = receiver
        .wait_until(Duration::from_secs(20), |received| {
            !about(received, "HighErrorRate").is_empty()
        })
        .await;
    assert!(!received.is_empty(), "{}", alertmanager.log());
    // Several group intervals later: still one notification, one alert.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        about(&receiver.received(), "HighErrorRate"),
        [("firing".to_owned(), 1)]
    );

    // Alertmanager holds one alert, with the fingerprint both replicas show.
    let held: Vec<Value> = alertmanager
        .alerts()
        .await
        .into_iter()
        .filter(|alert| alert["labels"]["alertname"] == "HighErrorRate")
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    for running in [&first, &second] {
        let body: Value = http_get(&url(running, "/alerts"), &[]).await.json();
        let ours = body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|alert| alert["labels"]["alertname"] == "HighErrorRate")
            .cloned()
            .unwrap();
        assert_eq!(ours["fingerprint"], held[0]["fingerprint"]);
    }
    drop((first, second));
}
