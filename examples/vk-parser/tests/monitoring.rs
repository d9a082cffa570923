//! The shipped `monitoring/` files with the real tools: Prometheus (Debian's
//! `prometheus`) scrapes the demo with `monitoring/prometheus/prometheus.yml`
//! and evaluates the generated rules, Alertmanager (`prometheus-alertmanager`)
//! routes with `monitoring/alertmanager/alertmanager.yml`, and a webhook
//! receiver in the test stands for the pager and for Slack.
//!
//! The test override, and all it changes in the shipped files: addresses
//! (the demo's, Alertmanager's, the pager's and Slack's URLs, on loopback
//! ports the test picks; secret files in a temporary folder), the scrape and
//! evaluation intervals (1 s instead of 15 s), Alertmanager's group wait and
//! interval (1 s), and the rules' `for:` (1 s instead of 1 m, written by the
//! generator with `PrometheusRules::for_duration`).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Running, start_with, url};
use observe::alerts::prometheus::PrometheusRules;
use observe_tests::{
    alertmanager::AlertmanagerServer,
    http_get, post_json,
    prometheus::PrometheusServer,
    webhook::{Received, WebhookReceiver},
};
use serde_json::Value;

fn shipped(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// `text` with each `(from, to)` replaced; every `from` must be there, so
/// the override cannot silently miss a changed file.
fn override_(mut text: String, replacements: &[(&str, &str)]) -> String {
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "{from:?} is no longer in the shipped file"
        );
        text = text.replace(from, to);
    }
    text
}

/// Failing parses: VK error 5 for `error_5`, answered 502.
async fn inject_errors(running: &Running, count: usize) {
    let parse = url(running, "/api/v1/groups/error_5/parse");
    for _ in 0..count {
        let reply = post_json(&parse, r#"{"posts_limit":1,"comments_per_post":1}"#).await;
        assert_eq!(reply.status, 502, "{reply:?}");
    }
}

fn high_error_rate(received: &[Received], path: &str) -> Vec<String> {
    received
        .iter()
        .filter(|request| request.path == path)
        .filter(|request| request.body["groupLabels"]["alertname"] == "HighErrorRate")
        .map(|request| request.body["status"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_fire_through_prometheus_and_alertmanager_once_and_resolve() {
    let (receiver, hook) = WebhookReceiver::start([]).await;
    let (demo, _) = start_with(&[]).await;

    let alertmanager_config = override_(
        shipped("monitoring/alertmanager/alertmanager.yml"),
        &[
            ("group_wait: 30s", "group_wait: 1s"),
            ("group_interval: 5m", "group_interval: 1s"),
            (
                "http://127.0.0.1:9095/alertmanager",
                &format!("{hook}/pager"),
            ),
            ("/etc/alertmanager/secrets/", "{dir}/"),
        ],
    );
    let slack_url = format!("{hook}/slack");
    let alertmanager = AlertmanagerServer::start_with_config(
        &alertmanager_config,
        &[
            ("pager-token", "test-pager-token"),
            ("slack-webhook-url", &slack_url),
        ],
    )
    .await;

    let prometheus_config = override_(
        shipped("monitoring/prometheus/prometheus.yml"),
        &[
            ("scrape_interval: 15s", "scrape_interval: 1s"),
            ("evaluation_interval: 15s", "evaluation_interval: 1s"),
            ("'127.0.0.1:9093'", &format!("'{}'", alertmanager.addr)),
            ("'127.0.0.1:8080'", &format!("'{}'", demo.addr)),
        ],
    );
    let rules = PrometheusRules::new("vk-parser").for_duration(Duration::from_secs(1));
    // The shipped rules, with only `for:` shortened.
    assert_eq!(
        override_(rules.rules_yaml(), &[("for: 1s", "for: 1m")]),
        shipped("monitoring/prometheus/rules/observe.rules.yml")
    );
    let prometheus = PrometheusServer::start_with_config(
        &prometheus_config,
        &[("rules/observe.rules.yml", &rules.rules_yaml())],
    )
    .await;

    // Errors: Prometheus fires HighErrorRate, Alertmanager pages once and
    // posts to Slack.
    // A counter's first sample is its baseline in Prometheus: one error
    // creates the 502 series and two scrapes see it, then the burst counts.
    inject_errors(&demo, 1).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    inject_errors(&demo, 20).await;
    let received = receiver
        .wait_until(Duration::from_secs(40), |received| {
            !high_error_rate(received, "/pager").is_empty()
        })
        .await;
    assert_eq!(
        high_error_rate(&received, "/pager"),
        ["firing"],
        "prometheus: {:?}\nrequests in 5m: {:?}, 5xx share: {:?}\nalertmanager: {}",
        prometheus.alerts().await,
        prometheus.query("job:http_requests:rate5m * 300").await,
        prometheus.query("job:http_requests_5xx:ratio_rate5m").await,
        alertmanager.log()
    );
    let page = received
        .iter()
        .find(|request| {
            request.path == "/pager" && request.body["groupLabels"]["alertname"] == "HighErrorRate"
        })
        .unwrap();
    let alert = &page.body["alerts"][0];
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["service"], "vk-parser");
    assert_eq!(
        alert["annotations"]["runbook_url"],
        "https://github.com/observe-rs/observe/blob/main/docs/runbooks/HighErrorRate.md"
    );
    let is_slack_page = |request: &Received| {
        request.path == "/slack"
            && request.body["attachments"][0]["title"]
                .as_str()
                .is_some_and(|title| title.starts_with("[FIRING:1] HighErrorRate (vk-parser)"))
    };
    let slack = receiver
        .wait_until(Duration::from_secs(10), |received| {
            received.iter().any(is_slack_page)
        })
        .await;
    let slack = slack.iter().find(|request| is_slack_page(request)).unwrap();
    assert_eq!(slack.body["channel"], "#alerts");

    // Every burn-rate tier fires at a 100% 5xx share, but the page carries
    // only the fastest: Alertmanager's inhibition holds back the slower.
    let pages = receiver
        .wait_until(Duration::from_secs(20), |received| {
            received.iter().any(|request| {
                request.path == "/pager"
                    && request.body["groupLabels"]["alertname"] == "AvailabilityBurnRate"
            })
        })
        .await;
    let windows: Vec<&str> = pages
        .iter()
        .filter(|request| {
            request.path == "/pager"
                && request.body["groupLabels"]["alertname"] == "AvailabilityBurnRate"
        })
        .flat_map(|request| request.body["alerts"].as_array().unwrap())
        .map(|alert| alert["labels"]["window"].as_str().unwrap())
        .collect();
    assert!(
        !windows.is_empty() && windows.iter().all(|window| *window == "1h"),
        "{windows:?}"
    );
    let firing: Vec<String> = prometheus
        .alerts()
        .await
        .iter()
        .filter(|alert| alert["labels"]["alertname"] == "AvailabilityBurnRate")
        .map(|alert| alert["labels"]["window"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(firing.len(), 4, "{firing:?}");

    // Every expression's value returns a series from the demo's metrics.
    for group in rules.groups() {
        for rule in group.rules {
            assert!(
                !prometheus.query(&rule.value_expr).await.is_empty(),
                "{} returned nothing: {}",
                rule.name,
                rule.value_expr
            );
        }
    }

    // Healthy traffic brings the 5xx share under 5%: resolved, once. (Its
    // series too gets a baseline first, or a fast burst would not count.)
    assert_eq!(http_get(&url(&demo, "/"), &[]).await.status, 200);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for _ in 0..800 {
        assert_eq!(http_get(&url(&demo, "/"), &[]).await.status, 200);
    }
    receiver
        .wait_until(Duration::from_secs(40), |received| {
            high_error_rate(received, "/pager").len() >= 2
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        high_error_rate(&receiver.received(), "/pager"),
        ["firing", "resolved"],
        "{}",
        alertmanager.log()
    );
    let held: Vec<Value> = alertmanager.alerts().await;
    assert!(
        held.iter()
            .all(|alert| alert["labels"]["alertname"] != "HighErrorRate"),
        "{held:?}"
    );
}

/// Every query of the shipped Grafana dashboards, with the variables as
/// Grafana fills them, returns a series from a real Prometheus scraping the
/// demo under a short mixed load (with Redis, so `redis_connections` is
/// there): a renamed metric fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_the_demo() {
    let (demo, _) = start_with(&[("REDIS_URL", "redis://127.0.0.1:6379/")]).await;
    let nowhere = observe_tests::prometheus::free_port();
    let prometheus_config = override_(
        shipped("monitoring/prometheus/prometheus.yml"),
        &[
            ("scrape_interval: 15s", "scrape_interval: 1s"),
            ("evaluation_interval: 15s", "evaluation_interval: 1s"),
            ("'127.0.0.1:9093'", &format!("'{nowhere}'")),
            ("'127.0.0.1:8080'", &format!("'{}'", demo.addr)),
        ],
    );
    let prometheus = PrometheusServer::start_with_config(
        &prometheus_config,
        &[(
            "rules/observe.rules.yml",
            &shipped("monitoring/prometheus/rules/observe.rules.yml"),
        )],
    )
    .await;

    // A successful parse (comments, VK calls, parse duration), VK errors
    // (5xx, errors_total, the VK error ratio) and plain requests.
    let parse = url(&demo, "/api/v1/groups/durov/parse");
    let reply = post_json(&parse, r#"{"posts_limit":2,"comments_per_post":2}"#).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    inject_errors(&demo, 3).await;
    for _ in 0..20 {
        assert_eq!(http_get(&url(&demo, "/"), &[]).await.status, 200);
    }

    let mut queries = 0;
    for name in ["observe-http", "vk-parser"] {
        let dashboard: Value = serde_json::from_str(&shipped(&format!(
            "monitoring/grafana/dashboards/{name}.json"
        )))
        .unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$__rate_interval", "30s")
                    .replace("$job", "vk-parser")
                    .replace("$instance", ".*");
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while prometheus.query(&expr).await.is_empty() {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{name} / {}: no data for {expr}",
                        panel["title"]
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                queries += 1;
            }
        }
    }
    assert!(queries >= 25, "{queries}");
}
