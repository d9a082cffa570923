//! Every VK error the issue names, injected through the stand-in: the mapped
//! status as problem+json, one log line with the error type, the counters,
//! and nothing stored.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

mod common;

use axum::Router;
use http::StatusCode;
use observe::Observability;
use observe_tests::{
    logs::{LogBuffer, runtime_with},
    prometheus,
};
use serde_json::{Value, json};
use vk_parser::{AppState, Store, VkClient};

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String, Value) {
    let reply = common::call(app, method, path, &[], body).await;
    (reply.status, reply.content_type, reply.json)
}

#[test]
fn each_vk_error_maps_to_its_answer_log_line_and_counters() {
    let buffer = LogBuffer::default();
    let obs = Observability::builder("vk-parser")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .log_writer(buffer.clone())
        // As the demo does with VK_ACCESS_TOKEN.
        .log_redact_value("s3cr3t-token")
        .env_vars::<&str, &str>([])
        .init()
        .unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let (url, file) = common::sqlite("errors");
        let store = Store::connect(&url).await.unwrap();
        let base = common::standin(Default::default()).await;
        let vk = VkClient::new(
            &base,
            "s3cr3t-token",
            Duration::from_millis(500),
            obs.client_layer(),
            obs.metrics().clone(),
        )
        .unwrap();
        let app = obs.router(vk_parser::app(AppState::new(
            store,
            vk,
            obs.metrics().clone(),
        )));
        let job = json!({"posts_limit": 2, "comments_per_post": 2});

        for (group, status, error_type, vk_status, calls) in [
            (
                "error_5",
                StatusCode::BAD_GATEWAY,
                "vk_auth_failed",
                "error_5",
                1,
            ),
            (
                "error_15",
                StatusCode::FORBIDDEN,
                "vk_access_denied",
                "error_15",
                1,
            ),
            (
                "error_18",
                StatusCode::NOT_FOUND,
                "vk_group_deleted",
                "error_18",
                1,
            ),
            (
                "error_30",
                StatusCode::FORBIDDEN,
                "vk_group_private",
                "error_30",
                1,
            ),
            (
                "error_100",
                StatusCode::BAD_REQUEST,
                "vk_bad_parameter",
                "error_100",
                1,
            ),
            // Retried three times with backoff, then given up.
            (
                "error_6",
                StatusCode::SERVICE_UNAVAILABLE,
                "vk_rate_limited",
                "error_6",
                4,
            ),
            (
                "error_10",
                StatusCode::BAD_GATEWAY,
                "vk_internal_error",
                "error_10",
                4,
            ),
            (
                "slow",
                StatusCode::GATEWAY_TIMEOUT,
                "vk_timeout",
                "timeout",
                1,
            ),
            // A code the demo does not know: one label value for all such.
            (
                "error_777",
                StatusCode::BAD_GATEWAY,
                "vk_error",
                "error_other",
                1,
            ),
        ] {
            let (got, content_type, problem) = call(
                &app,
                "POST",
                &format!("/api/v1/groups/{group}/parse"),
                Some(job.clone()),
            )
            .await;
            assert_eq!(got, status, "{group}: {problem}");
            assert_eq!(content_type, "application/problem+json", "{group}");
            assert_eq!(problem["error_type"], error_type, "{group}");
            let request_id = problem["request_id"].as_str().unwrap().to_owned();
            // Nothing stored.
            let (stats, _, _) =
                call(&app, "GET", &format!("/api/v1/groups/{group}/stats"), None).await;
            assert_eq!(stats, StatusCode::NOT_FOUND, "{group}");

            obs.flush_logs(Duration::from_secs(5)).unwrap();
            let lines: Vec<Value> = buffer
                .request_lines()
                .into_iter()
                .filter(|line| line["request_id"] == request_id.as_str())
                .collect();
            assert_eq!(lines.len(), 1, "{group}");
            assert_eq!(lines[0]["error_type"], error_type);
            assert_eq!(lines[0]["status_code"], status.as_u16());

            let samples = prometheus::samples(&obs.metrics().render());
            assert_eq!(
                prometheus::value(
                    &samples,
                    "errors_total",
                    &[("error_type", error_type), ("service", "vk-parser")]
                ),
                1.0,
                "{group}"
            );
            assert_eq!(
                prometheus::value(
                    &samples,
                    "vk_api_requests_total",
                    &[("method", "wall.get"), ("status", vk_status)]
                ),
                f64::from(calls),
                "{group}"
            );
        }

        // A transient error 6 is retried and the parse succeeds.
        let (status, _, parsed) =
            call(&app, "POST", "/api/v1/groups/flaky_6/parse", Some(job)).await;
        assert_eq!(status, StatusCode::OK, "{parsed}");
        assert_eq!(parsed["posts_added"], 2);
        let samples = prometheus::samples(&obs.metrics().render());
        assert_eq!(
            prometheus::value(
                &samples,
                "vk_api_requests_total",
                &[("method", "wall.get"), ("status", "error_6")]
            ),
            5.0
        );
        // An upstream that echoes the token in its error text: the log line
        // has the text, with the token replaced.
        let job = json!({"posts_limit": 1, "comments_per_post": 1});
        let (status, _, problem) = call(
            &app,
            "POST",
            "/api/v1/groups/echo_token/parse",
            Some(job.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(!problem.to_string().contains("s3cr3t-token"));
        obs.flush_logs(Duration::from_secs(5)).unwrap();
        let echoed = buffer
            .request_lines()
            .into_iter()
            .find(|line| line["request_id"] == problem["request_id"])
            .unwrap();
        assert_eq!(
            echoed["error_message"],
            "VK refused the service's access token: VK error 5: User authorization failed: access_token [REDACTED] is invalid"
        );

        // Thirty groups named like unknown VK errors add no series: the
        // label keeps to the known codes and `error_other`.
        for code in 201..231 {
            let path = format!("/api/v1/groups/error_{code}/parse");
            let (status, _, _) = call(&app, "POST", &path, Some(job.clone())).await;
            assert_eq!(status, StatusCode::BAD_GATEWAY);
        }
        let samples = prometheus::samples(&obs.metrics().render());
        let statuses: std::collections::BTreeSet<&str> = samples
            .iter()
            .filter(|sample| sample.name == "vk_api_requests_total")
            .map(|sample| sample.labels["status"].as_str())
            .collect();
        assert_eq!(
            statuses.into_iter().collect::<Vec<_>>(),
            [
                "error_10",
                "error_100",
                "error_15",
                "error_18",
                "error_30",
                "error_5",
                "error_6",
                "error_other",
                "ok",
                "timeout"
            ]
        );
        assert_eq!(
            prometheus::value(
                &samples,
                "vk_api_requests_total",
                &[("method", "wall.get"), ("status", "error_other")]
            ),
            31.0
        );
        obs.flush_logs(Duration::from_secs(5)).unwrap();
        // The token was sent on every call and is in no log line.
        assert!(!buffer.text().contains("s3cr3t-token"));
        let _ = std::fs::remove_file(&file);
    });
}

#[test]
fn the_client_keeps_to_three_requests_a_second_and_the_standin_injects_errors() {
    let obs = common::observability("vk-parser");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (url, file) = common::sqlite("rate");
        let store = Store::connect(&url).await.unwrap();
        let healthy = common::standin(Default::default()).await;
        let vk = common::vk_client(&obs, &healthy, Duration::from_secs(5));
        let app = obs.router(vk_parser::app(AppState::new(
            store.clone(),
            vk,
            obs.metrics().clone(),
        )));
        // Seven calls (one wall.get, six wall.getComments): at three a
        // second, the last starts two seconds after the first.
        let started = std::time::Instant::now();
        let (status, _, parsed) = call(
            &app,
            "POST",
            "/api/v1/groups/rate/parse",
            Some(json!({"posts_limit": 6, "comments_per_post": 1})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{parsed}");
        assert!(
            started.elapsed() >= Duration::from_millis(1990),
            "{:?}",
            started.elapsed()
        );

        // A numeric group id is VK's owner id.
        let (status, _, parsed) = call(
            &app,
            "POST",
            "/api/v1/groups/123456/parse",
            Some(json!({"posts_limit": 1, "comments_per_post": 1})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{parsed}");
        assert_eq!(parsed["posts_added"], 1);

        // Every call failing: error 6 or 10, retried, then answered.
        let failing = common::standin(vk_parser::standin::server::Faults {
            error_rate: 1.0,
            latency: Duration::ZERO,
        })
        .await;
        let vk = common::vk_client(&obs, &failing, Duration::from_secs(5));
        let app = obs.router(vk_parser::app(AppState::new(
            store,
            vk,
            obs.metrics().clone(),
        )));
        let (status, _, problem) = call(
            &app,
            "POST",
            "/api/v1/groups/flaky/parse",
            Some(json!({"posts_limit": 1, "comments_per_post": 1})),
        )
        .await;
        assert!(
            [StatusCode::SERVICE_UNAVAILABLE, StatusCode::BAD_GATEWAY].contains(&status),
            "{status} {problem}"
        );
        assert!(
            ["vk_rate_limited", "vk_internal_error"]
                .contains(&problem["error_type"].as_str().unwrap())
        );
        let _ = std::fs::remove_file(&file);
    });
}

#[test]
fn abandoned_parses_free_their_rate_limit_slots_and_a_full_queue_answers_503_at_once() {
    let obs = common::observability("vk-parser");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (url, file) = common::sqlite("slots");
        let store = Store::connect(&url).await.unwrap();
        let base = common::standin(Default::default()).await;
        let vk = common::vk_client(&obs, &base, Duration::from_secs(5));
        let app = obs.router(vk_parser::app(AppState::new(
            store,
            vk,
            obs.metrics().clone(),
        )));
        let job = json!({"posts_limit": 3, "comments_per_post": 1});

        // Twenty parses, each queued for a slot, given up after 200 ms: at
        // three calls a second they held 6.7 s of slots before.
        let abandoned: Vec<_> = (0..20)
            .map(|n| {
                let (app, job) = (app.clone(), job.clone());
                tokio::spawn(async move {
                    let path = format!("/api/v1/groups/abandoned{n}/parse");
                    tokio::time::timeout(
                        Duration::from_millis(200),
                        call(&app, "POST", &path, Some(job)),
                    )
                    .await
                    .is_err()
                })
            })
            .collect();
        for parse in abandoned {
            assert!(parse.await.unwrap(), "a parse finished within 200 ms");
        }
        let started = std::time::Instant::now();
        let (status, _, parsed) = call(
            &app,
            "POST",
            "/api/v1/groups/after/parse",
            Some(json!({"posts_limit": 1, "comments_per_post": 1})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{parsed}");
        // Two calls: at most one slot's wait before each.
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "waited {took:?}");

        // The queue full: the next call is refused at once.
        let queued: Vec<_> = (0..vk_parser::MAX_WAITING_CALLS + 5)
            .map(|n| {
                let (app, job) = (app.clone(), job.clone());
                tokio::spawn(async move {
                    let path = format!("/api/v1/groups/queued{n}/parse");
                    call(&app, "POST", &path, Some(job)).await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        let (status, content_type, problem) = call(
            &app,
            "POST",
            "/api/v1/groups/one_too_many/parse",
            Some(job.clone()),
        )
        .await;
        let took = started.elapsed();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(problem["error_type"], "vk_queue_full");
        assert!(took < Duration::from_millis(300), "refused after {took:?}");
        for parse in queued {
            parse.abort();
        }
        let text = obs.metrics().render();
        let samples = prometheus::samples(&text);
        assert!(
            prometheus::sum(
                &samples,
                "vk_api_requests_total",
                &[("status", "queue_full")]
            ) >= 6.0,
            "{text}"
        );
        let _ = std::fs::remove_file(&file);
    });
}
