//! Alerting through the facade: `OBSERVE_ALERT*` configuration, transitions
//! as structured log lines, `GET /alerts` behind the metrics token, receiver
//! secrets kept out of every signal, and requests unaffected by a receiver
//! that hangs.
#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, routing::get};
use observe::{
    Observability,
    alerts::{Rule, Severity},
};
use observe_tests::{
    TestServer, http_get,
    logs::{LogBuffer, runtime_with},
    otlp::closed_port,
    webhook::WebhookReceiver,
};
use serde_json::Value;

const SECRET: &str = "s3cr3t-hook-token";

fn app() -> Router {
    Router::new().route("/", get(|| async { "ok" }))
}

/// A handle whose `Switch` rule fires while `on` is set.
fn observability(buffer: &LogBuffer, vars: &[(&str, &str)], on: &Arc<AtomicBool>) -> Observability {
    let on = on.clone();
    Observability::builder("alerts-test")
        .environment("test")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .log_writer(buffer.clone())
        .env_vars(vars.iter().copied())
        .configure_alerts(move |alerts| {
            let on = on.clone();
            alerts
                .retries(2, Duration::from_millis(10))
                .notify_timeout(Duration::from_millis(500))
                .queue_capacity(2)
                .rule(
                    Rule::new("Switch", Severity::Critical, 0.5, move || {
                        Some(if on.load(Ordering::Relaxed) { 1.0 } else { 0.0 })
                    })
                    .summary("The switch is on"),
                )
        })
        .init()
        .unwrap()
}

fn alert_lines(buffer: &LogBuffer) -> Vec<Value> {
    buffer
        .lines()
        .into_iter()
        .filter(|line| line["target"] == "observe_alerts" && line["alertname"] == "Switch")
        .collect()
}

#[test]
fn transitions_are_log_lines_alerts_need_the_token_and_secrets_stay_out() {
    let buffer = LogBuffer::default();
    let on = Arc::new(AtomicBool::new(false));
    // Nothing listens at the webhook: every delivery fails, and its error
    // (which would name the URL) is logged.
    let hook = format!("http://{}/hook/{SECRET}", closed_port());
    let obs = observability(
        &buffer,
        &[
            ("OBSERVE_ALERT_EVAL_INTERVAL", "100ms"),
            ("OBSERVE_ALERT_FOR", "300ms"),
            ("OBSERVE_ALERT_WEBHOOK_URL", hook.as_str()),
            ("OBSERVE_METRICS_TOKEN", "metrics-token"),
        ],
        &on,
    );
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let server = TestServer::serve(&obs, obs.router(app())).await;
        on.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !obs
            .alerts()
            .unwrap()
            .active()
            .iter()
            .any(|alert| alert.state == observe::alerts::AlertState::Firing)
        {
            assert!(Instant::now() < deadline, "Switch did not fire");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // /alerts: 401 without the metrics token, the firing alert with it.
        let reply = http_get(&server.url("/alerts"), &[]).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.header("www-authenticate"), "Bearer");
        // A refusal too carries a request id, as every answer of obs.router.
        assert_eq!(reply.header("x-request-id").len(), 36);
        let refused = http_get(&server.url("/metrics"), &[("x-request-id", "scrape-7")]).await;
        assert_eq!(refused.status, 401);
        assert_eq!(refused.header("x-request-id"), "scrape-7");
        let reply = http_get(
            &server.url("/alerts"),
            &[("authorization", "Bearer metrics-token")],
        )
        .await;
        assert_eq!(reply.status, 200);
        let body: Value = reply.json();
        let alerts = body["alerts"].as_array().unwrap();
        let switch: Vec<&Value> = alerts
            .iter()
            .filter(|alert| alert["labels"]["alertname"] == "Switch")
            .collect();
        assert_eq!(switch.len(), 1, "{body}");
        let alert = switch[0];
        assert_eq!(alert["state"], "firing");
        assert_eq!(alert["value"], 1.0);
        assert_eq!(alert["threshold"], 0.5);
        assert_eq!(alert["labels"]["service"], "alerts-test");
        assert_eq!(alert["labels"]["environment"], "test");
        assert_eq!(alert["labels"]["severity"], "critical");
        assert_eq!(alert["annotations"]["summary"], "The switch is on");
        assert!(alert["since"].as_str().unwrap().ends_with('Z'));
        let states: Vec<&str> = body["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|transition| transition["alertname"] == "Switch")
            .map(|transition| transition["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["pending", "firing"]);

        on.store(false, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !obs.alerts().unwrap().active().is_empty() {
            assert!(Instant::now() < deadline, "Switch did not resolve");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The failed delivery is counted (and given up) before the check.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let metrics = obs.metrics().render();
            if metrics
                .contains("alert_notifications_total{notifier=\"webhook\",outcome=\"failed\"} 2")
            {
                break;
            }
            assert!(Instant::now() < deadline, "{metrics}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let metrics = http_get(
            &server.url("/metrics"),
            &[("authorization", "Bearer metrics-token")],
        )
        .await;
        let metrics = String::from_utf8(metrics.body.to_vec()).unwrap();
        assert!(
            metrics.contains("alerts_firing{alertname=\"Switch\",severity=\"critical\"} 0"),
            "{metrics}"
        );
        assert!(!metrics.contains(SECRET));
        server.stop(Duration::from_secs(5)).await.unwrap();
    });

    // One line per transition, with the alert's fields.
    let lines = alert_lines(&buffer);
    let summary: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|line| {
            (
                line["state"].as_str().unwrap(),
                line["level"].as_str().unwrap(),
                line["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("pending", "INFO", "alert pending"),
            ("firing", "ERROR", "alert firing"),
            ("resolved", "INFO", "alert resolved"),
        ]
    );
    for line in &lines {
        assert_eq!(line["severity"], "critical");
        assert_eq!(line["threshold"], 0.5);
        assert_eq!(line["service"], "alerts-test");
        assert_eq!(line["fingerprint"].as_str().unwrap().len(), 16);
    }
    assert_eq!(lines[1]["value"], 1.0);
    assert_eq!(lines[2]["value"], 0.0);
    // The deliveries failed and said so, without the URL.
    let text = buffer.text();
    assert!(text.contains("alert notification given up"), "{text}");
    assert!(!text.contains(SECRET), "the webhook URL reached the log");
}

/// Median and 99th percentile of `count` sequential `GET /` at `url`.
async fn latencies(url: &str, count: usize) -> (Duration, Duration) {
    let mut took = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let reply = http_get(url, &[]).await;
        took.push(started.elapsed());
        assert_eq!(reply.status, 200);
    }
    took.sort_unstable();
    (took[count / 2], took[count * 99 / 100])
}

#[test]
fn a_hanging_receiver_changes_nothing_for_requests() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (receiver, url) = WebhookReceiver::start([]).await;
        receiver.hang();
        let hook = format!("{url}/hook");
        let on = Arc::new(AtomicBool::new(true));
        let vars = [
            ("OBSERVE_ALERT_EVAL_INTERVAL", "50ms"),
            ("OBSERVE_ALERT_FOR", "0s"),
            // A notification every evaluation, into a receiver that never
            // answers: the queue fills and drops.
            ("OBSERVE_ALERT_REPEAT_INTERVAL", "50ms"),
            ("OBSERVE_ALERT_WEBHOOK_URL", hook.as_str()),
        ];
        let hanging = observability(&LogBuffer::default(), &vars, &on);
        let quiet = observability(
            &LogBuffer::default(),
            &[("OBSERVE_ALERT_EVAL_INTERVAL", "50ms")],
            &on,
        );
        let with_receiver = TestServer::serve(&hanging, hanging.router(app())).await;
        let without = TestServer::serve(&quiet, quiet.router(app())).await;
        // Let the hanging receiver's queue fill.
        receiver.wait_for(1, Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;

        // Side by side, interleaved rounds.
        let mut hung = Vec::new();
        let mut bare = Vec::new();
        for _ in 0..3 {
            hung.push(latencies(&with_receiver.url("/"), 200).await);
            bare.push(latencies(&without.url("/"), 200).await);
        }
        let median = |runs: &[(Duration, Duration)]| {
            let mut medians: Vec<Duration> = runs.iter().map(|run| run.0).collect();
            medians.sort_unstable();
            medians[1]
        };
        let (hung_median, bare_median) = (median(&hung), median(&bare));
        eprintln!("median GET / with a hanging receiver {hung_median:?}, without {bare_median:?}");
        // Generous for a shared machine; a request waiting on the receiver
        // would take its whole 500 ms timeout.
        assert!(
            hung_median < bare_median * 3 + Duration::from_millis(2),
            "with a hanging receiver {hung_median:?}, without {bare_median:?}"
        );
        assert!(
            hung.iter().all(|run| run.1 < Duration::from_millis(250)),
            "{hung:?}"
        );

        // The receiver did hang, and the queue overflowed meanwhile.
        let metrics = hanging.metrics().render();
        let dropped: u64 = metrics
            .lines()
            .find_map(|line| {
                line.strip_prefix(
                    "alert_notifications_total{notifier=\"webhook\",outcome=\"dropped\"} ",
                )
            })
            .unwrap()
            .parse()
            .unwrap();
        assert!(dropped > 0, "{metrics}");
        assert!(
            hanging
                .alerts()
                .unwrap()
                .active()
                .iter()
                .any(|alert| alert.name() == "Switch")
        );
        with_receiver.stop(Duration::from_secs(5)).await.unwrap();
        without.stop(Duration::from_secs(5)).await.unwrap();
    });
}
