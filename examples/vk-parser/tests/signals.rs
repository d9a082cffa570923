//! The demo's signals agree: for a burst of requests, the counters in
//! `/metrics`, the request lines in the log and the spans a real OTLP
//! receiver gets match exactly, joined by `request_id` and `trace_id`; a
//! parse is a span with a child per VK call and database batch; business
//! metrics and `user_id` are there.
#![allow(clippy::unwrap_used)]

use std::{collections::HashSet, time::Duration};

mod common;

use axum::Router;
use http::StatusCode;
use observe::Observability;
use observe_tests::{
    logs::{LogBuffer, runtime_with},
    otlp::OtlpReceiver,
    prometheus,
};
use serde_json::{Value, json};
use vk_parser::{AppState, Store};

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, String, Value) {
    let reply = common::call(app, method, path, headers, body).await;
    (reply.status, reply.request_id, reply.json)
}

#[test]
fn metrics_logs_and_spans_agree_for_a_burst() {
    let buffer = LogBuffer::default();
    let receiver_runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = receiver_runtime.block_on(OtlpReceiver::start());
    let endpoint = receiver.grpc_endpoint();
    let obs = Observability::builder("vk-parser")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .log_writer(buffer.clone())
        .env_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())])
        .init()
        .unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let (url, file) = common::sqlite("signals");
        let store = Store::connect(&url).await.unwrap();
        let base = common::standin(Default::default()).await;
        let vk = common::vk_client(&obs, &base, Duration::from_secs(5));
        let app = obs.router(vk_parser::app(AppState::new(
            store,
            vk,
            obs.metrics().clone(),
        )));

        let job = json!({"posts_limit": 2, "comments_per_post": 3});
        let (status, parse_id, first) = call(
            &app,
            "POST",
            "/api/v1/groups/durov/parse",
            &[("x-user-id", "12345")],
            Some(job.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{first}");
        let added = first["comments_added"].as_u64().unwrap();
        let (_, _, second) = call(
            &app,
            "POST",
            "/api/v1/groups/durov/parse",
            &[("x-user-id", "not a number")],
            Some(job.clone()),
        )
        .await;
        assert_eq!(second["comments_added"], 0);
        let (status, _, _) = call(
            &app,
            "POST",
            "/api/v1/groups/someone_else/parse",
            &[],
            Some(job),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let mut ids = vec![parse_id.clone()];
        for n in 0..12 {
            let path = match n % 3 {
                0 => "/api/v1/groups/durov/stats".to_owned(),
                1 => format!("/api/v1/groups/durov/comments?limit={}", n + 1),
                _ => "/api/v1/groups/Bad-Name/stats".to_owned(),
            };
            let (_, id, _) = call(&app, "GET", &path, &[], None).await;
            ids.push(id);
        }
        obs.tracing()
            .handle()
            .unwrap()
            .flush(Duration::from_secs(10))
            .unwrap();
        obs.flush_logs(Duration::from_secs(5)).unwrap();

        // Counters, request lines and server spans: 15 requests each.
        let samples = prometheus::samples(&obs.metrics().render());
        assert_eq!(prometheus::sum(&samples, "http_requests_total", &[]), 15.0);
        let lines = buffer.request_lines();
        assert_eq!(lines.len(), 15);
        let spans = receiver.spans();
        let servers: Vec<_> = spans.iter().filter(|span| span.kind == 2).collect();
        assert_eq!(servers.len(), 15);
        // Joined by request_id and trace_id, one to one.
        let mut joined = HashSet::new();
        for line in &lines {
            let request_id = line["request_id"].as_str().unwrap();
            let span = servers
                .iter()
                .find(|span| {
                    span.attributes.get("request_id").map(String::as_str) == Some(request_id)
                })
                .unwrap_or_else(|| panic!("no span for {request_id}"));
            assert_eq!(line["trace_id"], span.trace_id.as_str());
            assert_eq!(line["span_id"], span.span_id.as_str());
            assert_eq!(
                line["status_code"].to_string(),
                span.attribute("http.response.status_code")
            );
            assert!(joined.insert(request_id.to_owned()));
        }
        assert!(ids.iter().all(|id| joined.contains(id)));
        // Per route too.
        let by_route = |route: &str| {
            lines
                .iter()
                .filter(|line| line["endpoint"] == route)
                .count() as f64
        };
        for route in [
            "/api/v1/groups/{group_id}/parse",
            "/api/v1/groups/{group_id}/stats",
            "/api/v1/groups/{group_id}/comments",
        ] {
            assert_eq!(
                prometheus::sum(&samples, "http_requests_total", &[("endpoint", route)]),
                by_route(route),
                "{route}"
            );
        }

        // The first parse: a span under the server span, with a child per VK
        // call (1 wall.get + 2 wall.getComments) and one database batch.
        let line = lines
            .iter()
            .find(|line| line["request_id"] == parse_id.as_str())
            .unwrap();
        assert_eq!(line["user_id"], "12345");
        let trace = line["trace_id"].as_str().unwrap();
        let server = servers.iter().find(|span| span.trace_id == trace).unwrap();
        // The parse is a span under the server span, with a child per VK
        // call (one wall.get, two wall.getComments) and one database batch.
        let parse = spans
            .iter()
            .find(|span| span.trace_id == trace && span.name == "parse")
            .unwrap();
        assert_eq!(parse.kind, 1);
        assert_eq!(parse.parent_span_id, server.span_id);
        let children: Vec<_> = spans
            .iter()
            .filter(|span| span.trace_id == trace && span.parent_span_id == parse.span_id)
            .collect();
        let vk_calls = children
            .iter()
            .filter(|span| span.kind == 3 && span.attributes.contains_key("url.full"))
            .count();
        assert_eq!(vk_calls, 3);
        let batches = children
            .iter()
            .filter(|span| {
                span.attributes.get("db.system.name").map(String::as_str) == Some("sqlite")
            })
            .count();
        assert_eq!(batches, 1);
        assert_eq!(children.len(), 4);
        // Every parse of the burst is there.
        assert_eq!(spans.iter().filter(|span| span.name == "parse").count(), 3);
        // The second parse's malformed user id is not logged.
        assert!(
            lines
                .iter()
                .filter(|line| line.get("user_id").is_some())
                .count()
                == 1
        );

        // Business metrics, with a bounded group label.
        assert_eq!(
            prometheus::value(
                &samples,
                "comments_parsed_total",
                &[("group_id", "durov"), ("status", "stored")]
            ),
            added as f64
        );
        assert_eq!(
            prometheus::value(
                &samples,
                "comments_parsed_total",
                &[("group_id", "durov"), ("status", "duplicate")]
            ),
            added as f64
        );
        assert!(
            prometheus::value(
                &samples,
                "comments_parsed_total",
                &[("group_id", "other"), ("status", "stored")]
            ) > 0.0
        );
        assert_eq!(
            prometheus::value(
                &samples,
                "vk_parse_duration_seconds_count",
                &[("status", "ok")]
            ),
            3.0
        );
        assert_eq!(
            prometheus::sum(&samples, "vk_api_requests_total", &[("status", "ok")]),
            9.0
        );
        let _ = std::fs::remove_file(&file);
    });
    drop(receiver);
}
