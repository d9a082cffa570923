//! Each notifier against a real HTTP receiver on loopback: the exact
//! payloads, retries on 500 and 429 (with the asked delay), giving up,
//! dropping when the queue is full, and counting each outcome.
#![allow(clippy::unwrap_used)]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use observe_alerts::{Alerts, AlertsBuilder, Inputs, Rule, Severity};
use observe_metrics::Metrics;
use observe_tests::webhook::{Answer, WebhookReceiver as Receiver};
use serde_json::json;

/// A rule the test switches on and off.
fn switch() -> (Rule, Arc<Mutex<f64>>) {
    let value = Arc::new(Mutex::new(0.0));
    let read = value.clone();
    let rule = Rule::new("Switch", Severity::Critical, 0.5, move || {
        Some(*read.lock().unwrap())
    })
    .summary("The switch is on")
    .description("switch at {value} (threshold {threshold})")
    .for_duration(Duration::ZERO);
    (rule, value)
}

fn builder(metrics: &Metrics, rule: Rule) -> AlertsBuilder {
    Alerts::builder("svc")
        .environment("test")
        .builtin_rules(false)
        .rule(rule)
        .metrics(metrics.clone())
        .external_url("http://svc.test:8080")
        .retries(4, Duration::from_millis(50))
}

const NO_INPUTS: Inputs<'static> = Inputs {
    red: None,
    health: None,
};

fn counter(metrics: &Metrics, notifier: &str, outcome: &str) -> u64 {
    let text = metrics.render();
    let prefix =
        format!("alert_notifications_total{{notifier=\"{notifier}\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {text}"))
        .parse()
        .unwrap()
}

async fn counted(metrics: &Metrics, notifier: &str, outcome: &str, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter(metrics, notifier, outcome) != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        counter(metrics, notifier, outcome),
        expected,
        "{notifier} {outcome}"
    );
}

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
}

#[tokio::test]
async fn the_webhook_gets_alertmanagers_version_4_payload_exactly() {
    let (receiver, url) = Receiver::start([]).await;
    let metrics = Metrics::new();
    let (rule, value) = switch();
    let alerts = builder(&metrics, rule.label("team", "parsers"))
        .webhook(format!("{url}/hook/s3cr3t"))
        .build()
        .unwrap();
    *value.lock().unwrap() = 1.0;
    alerts.evaluate_at(at(0), &NO_INPUTS);
    let received = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/hook/s3cr3t");
    let fingerprint = format!("{:016x}", alerts.active()[0].fingerprint);
    let labels = json!({
        "alertname": "Switch",
        "environment": "test",
        "service": "svc",
        "severity": "critical",
        "team": "parsers",
    });
    let annotations = json!({
        "description": "switch at 1 (threshold 0.500)",
        "runbook_url": "https://github.com/observe-rs/observe/blob/main/docs/runbooks/Switch.md",
        "summary": "The switch is on",
    });
    assert_eq!(
        received[0].body,
        json!({
            "version": "4",
            "groupKey": "{}:{alertname=\"Switch\"}",
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "svc",
            "groupLabels": {"alertname": "Switch"},
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "externalURL": "http://svc.test:8080",
            "alerts": [{
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": "2027-01-15T08:00:00.000Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://svc.test:8080/alerts",
                "fingerprint": fingerprint,
            }],
        })
    );

    // While it fires, nothing more; when it stops, one resolved payload.
    alerts.evaluate_at(at(15), &NO_INPUTS);
    *value.lock().unwrap() = 0.0;
    alerts.evaluate_at(at(30), &NO_INPUTS);
    let received = receiver.wait_for(2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.received().len(), 2);
    let resolved = &received[1].body;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_eq!(
        resolved["alerts"][0]["startsAt"],
        "2027-01-15T08:00:00.000Z"
    );
    assert_eq!(resolved["alerts"][0]["endsAt"], "2027-01-15T08:00:30.000Z");
    // As Prometheus sends it: the annotations of the last active evaluation.
    assert_eq!(
        resolved["alerts"][0]["annotations"]["description"],
        "switch at 1 (threshold 0.500)"
    );
    assert_eq!(resolved["alerts"][0]["fingerprint"], fingerprint.as_str());
    counted(&metrics, "webhook", "sent", 2).await;
    counted(&metrics, "webhook", "failed", 0).await;
    counted(&metrics, "webhook", "dropped", 0).await;
    // The URL's secret is in no metric.
    assert!(!metrics.render().contains("s3cr3t"));
}

#[tokio::test]
async fn slack_gets_coloured_attachments_with_metric_value_and_time() {
    let (receiver, url) = Receiver::start([]).await;
    let metrics = Metrics::new();
    let (rule, value) = switch();
    let alerts = builder(&metrics, rule.metric("switch_position"))
        .slack(format!("{url}/services/T0/B0/s3cr3t"))
        .build()
        .unwrap();
    *value.lock().unwrap() = 1.0;
    alerts.evaluate_at(at(0), &NO_INPUTS);
    *value.lock().unwrap() = 0.0;
    alerts.evaluate_at(at(60), &NO_INPUTS);
    let received = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(received.len(), 2);
    let fingerprint = format!("{:016x}", alerts.history()[0].fingerprint);
    let firing = &received[0].body;
    assert_eq!(firing["text"], "[FIRING:1] Switch");
    let attachment = &firing["attachments"][0];
    assert_eq!(attachment["color"], "danger");
    assert_eq!(attachment["title"], "[FIRING] Switch");
    assert_eq!(attachment["text"], "switch at 1 (threshold 0.500)");
    assert_eq!(
        attachment["fields"],
        json!([
            {"title": "Metric", "value": "switch_position", "short": true},
            {"title": "Value", "value": "1", "short": true},
            {"title": "Time", "value": "2027-01-15T08:00:00.000Z", "short": true},
            {"title": "Severity", "value": "critical", "short": true},
        ])
    );
    assert_eq!(attachment["footer"], format!("svc · {fingerprint}"));
    assert_eq!(attachment["ts"], 1_800_000_000);
    let resolved = &received[1].body;
    assert_eq!(resolved["text"], "[RESOLVED] Switch");
    assert_eq!(resolved["attachments"][0]["color"], "good");
    assert_eq!(resolved["attachments"][0]["fields"][1]["value"], "0");
    assert_eq!(
        resolved["attachments"][0]["fields"][2]["value"],
        "2027-01-15T08:01:00.000Z"
    );
    counted(&metrics, "slack", "sent", 2).await;
}

#[tokio::test]
async fn discord_gets_an_embed_per_alert_and_its_retry_after_is_honoured() {
    let (receiver, url) = Receiver::start([Answer::TooManyRequests {
        header: None,
        body: r#"{"message":"You are being rate limited.","retry_after":0.4,"global":false}"#,
    }])
    .await;
    let metrics = Metrics::new();
    let (rule, value) = switch();
    let alerts = builder(&metrics, rule)
        .discord(format!("{url}/api/webhooks/1/s3cr3t"))
        .build()
        .unwrap();
    *value.lock().unwrap() = 1.0;
    alerts.evaluate_at(at(0), &NO_INPUTS);
    let received = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(received.len(), 2, "the 429, then the retry");
    let waited = received[1].at - received[0].at;
    assert!(
        waited >= Duration::from_millis(400),
        "retried after {waited:?}"
    );
    assert_eq!(received[0].body, received[1].body);
    let fingerprint = format!("{:016x}", alerts.active()[0].fingerprint);
    assert_eq!(
        received[1].body,
        json!({
            "content": "[FIRING:1] Switch",
            "embeds": [{
                "title": "[FIRING] Switch",
                "description": "switch at 1 (threshold 0.500)",
                "url": "https://github.com/observe-rs/observe/blob/main/docs/runbooks/Switch.md",
                "color": 0xE7_4C_3C,
                "fields": [
                    {"name": "Metric", "value": "Switch", "inline": true},
                    {"name": "Value", "value": "1", "inline": true},
                    {"name": "Time", "value": "2027-01-15T08:00:00.000Z", "inline": true},
                    {"name": "Severity", "value": "critical", "inline": true},
                ],
                "footer": {"text": format!("fingerprint {fingerprint}")},
                "timestamp": "2027-01-15T08:00:00.000Z",
            }],
        })
    );
    counted(&metrics, "discord", "sent", 1).await;
}

#[tokio::test]
async fn a_500_is_retried_and_a_429_waits_its_retry_after() {
    let (receiver, url) = Receiver::start([
        Answer::Status(500),
        Answer::Status(503),
        Answer::TooManyRequests {
            header: Some("1"),
            body: "",
        },
    ])
    .await;
    let metrics = Metrics::new();
    let (rule, value) = switch();
    let alerts = builder(&metrics, rule)
        .webhook(format!("{url}/hook"))
        .build()
        .unwrap();
    *value.lock().unwrap() = 1.0;
    alerts.evaluate_at(at(0), &NO_INPUTS);
    let received = receiver.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 4);
    // Backoff with jitter: 25-50 ms, then 50-100 ms; then the asked 1 s.
    let gaps: Vec<Duration> = received
        .windows(2)
        .map(|pair| pair[1].at - pair[0].at)
        .collect();
    assert!(gaps[0] >= Duration::from_millis(25), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(50), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_secs(1), "{gaps:?}");
    counted(&metrics, "webhook", "sent", 1).await;
    counted(&metrics, "webhook", "failed", 0).await;
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_is_given_up_and_counted() {
    let (receiver, url) = Receiver::start([Answer::Status(500); 10]).await;
    let metrics = Metrics::new();
    let (rule, value) = switch();
    let alerts = builder(&metrics, rule)
        .retries(3, Duration::from_millis(10))
        .webhook(format!("{url}/hook"))
        .build()
        .unwrap();
    *value.lock().unwrap() = 1.0;
    alerts.evaluate_at(at(0), &NO_INPUTS);
    counted(&metrics, "webhook", "failed", 1).await;
    assert_eq!(receiver.received().len(), 3);
    counted(&metrics, "webhook", "sent", 0).await;

    // A 4xx other than 429 is not retried.
    let (receiver, url) = Receiver::start([Answer::Status(404)]).await;
    let metrics = Metrics::new();
    let (rule, value) = switch();
    let alerts = builder(&metrics, rule)
        .slack(format!("{url}/gone"))
        .build()
        .unwrap();
    *value.lock().unwrap() = 1.0;
    alerts.evaluate_at(at(0), &NO_INPUTS);
    counted(&metrics, "slack", "failed", 1).await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_refused_or_hanging_receiver_is_given_up_and_a_full_queue_drops() {
    // Nothing listens.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let metrics = Metrics::new();
    let (rule, value) = switch();
    let alerts = builder(&metrics, rule)
        .retries(2, Duration::from_millis(10))
        .webhook(format!("http://{closed}/hook"))
        .build()
        .unwrap();
    *value.lock().unwrap() = 1.0;
    alerts.evaluate_at(at(0), &NO_INPUTS);
    counted(&metrics, "webhook", "failed", 1).await;

    // Hangs: every attempt ends at the timeout, evaluation goes on, and
    // the queue (capacity 1) drops what does not fit.
    let (receiver, url) = Receiver::start([Answer::Hang; 20]).await;
    let metrics = Metrics::new();
    let (rule, value) = switch();
    let alerts = builder(&metrics, rule)
        .retries(1, Duration::from_millis(10))
        .notify_timeout(Duration::from_millis(300))
        .queue_capacity(1)
        .repeat_interval(Duration::from_secs(1))
        .webhook(format!("{url}/hook"))
        .build()
        .unwrap();
    *value.lock().unwrap() = 1.0;
    alerts.evaluate_at(at(0), &NO_INPUTS);
    // The first is in flight, hanging.
    assert_eq!(receiver.wait_for(1, Duration::from_secs(5)).await.len(), 1);
    let started = Instant::now();
    for second in 1..4 {
        alerts.evaluate_at(at(second), &NO_INPUTS);
    }
    // Three more evaluations, each with a notification (repeat every
    // second), took no time: nothing waits for the receiver.
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    // One in flight, one queued, two dropped; both taken are given up.
    counted(&metrics, "webhook", "dropped", 2).await;
    counted(&metrics, "webhook", "failed", 2).await;
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn alertmanager_gets_every_firing_alert_with_an_expiry_and_the_end_on_resolve() {
    let (receiver, url) = Receiver::start([]).await;
    let metrics = Metrics::new();
    let (rule, value) = switch();
    let alerts = builder(&metrics, rule)
        .eval_interval(Duration::from_secs(15))
        .alertmanager(url.clone())
        .build()
        .unwrap();
    *value.lock().unwrap() = 1.0;
    alerts.evaluate_at(at(0), &NO_INPUTS);
    alerts.evaluate_at(at(30), &NO_INPUTS);
    alerts.evaluate_at(at(60), &NO_INPUTS);
    *value.lock().unwrap() = 0.0;
    alerts.evaluate_at(at(75), &NO_INPUTS);
    let received = receiver.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(received.len(), 3, "fired, re-sent after 60 s, resolved");
    assert!(
        received
            .iter()
            .all(|request| request.path == "/api/v2/alerts"
                && request.content_type == "application/json")
    );
    let first = &received[0].body[0];
    assert_eq!(first["labels"]["alertname"], "Switch");
    assert_eq!(first["startsAt"], "2027-01-15T08:00:00.000Z");
    // Four resend periods: it expires unless re-sent.
    assert_eq!(first["endsAt"], "2027-01-15T08:04:00.000Z");
    assert_eq!(first["generatorURL"], "http://svc.test:8080/alerts");
    assert_eq!(received[1].body[0]["endsAt"], "2027-01-15T08:05:00.000Z");
    assert_eq!(received[2].body[0]["endsAt"], "2027-01-15T08:01:15.000Z");
    counted(&metrics, "alertmanager", "sent", 3).await;
}

#[tokio::test]
async fn alerts_firing_counts_by_name_and_severity() {
    let metrics = Metrics::new();
    let (rule, value) = switch();
    let alerts = builder(&metrics, rule).build().unwrap();
    let gauge = || {
        let text = metrics.render();
        text.lines()
            .find_map(|line| {
                line.strip_prefix("alerts_firing{alertname=\"Switch\",severity=\"critical\"} ")
            })
            .map(str::to_owned)
    };
    assert_eq!(gauge().as_deref(), Some("0"));
    *value.lock().unwrap() = 1.0;
    alerts.evaluate_at(at(0), &NO_INPUTS);
    assert_eq!(gauge().as_deref(), Some("1"));
    *value.lock().unwrap() = 0.0;
    alerts.evaluate_at(at(15), &NO_INPUTS);
    assert_eq!(gauge().as_deref(), Some("0"));
}
