//! The `vk-parser` binary as a user runs it: it starts with embedded
//! defaults, answers with the whole stack in place, and stops cleanly on
//! SIGTERM.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use common::{Running, free_port, start, start_with, url};
use observe_tests::{http_get, post_json, postgres::TempDatabase};
use serde_json::Value;

fn sigterm(running: &Running) {
    let status = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn exit_within(running: &mut Running, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(exit) = running.child.try_wait().unwrap() {
            return exit;
        }
        assert!(
            Instant::now() < deadline,
            "vk-parser did not stop within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn starts_answers_with_the_stack_and_stops_on_sigterm() {
    let mut running = start().await;

    let reply = http_get(&url(&running, "/"), &[("x-request-id", "demo-1")]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-request-id"), "demo-1");
    let body: Value = reply.json();
    assert_eq!(body["service"], "vk-parser");

    let parse = url(&running, "/api/v1/groups/durov/parse");
    let reply = post_json(&parse, r#"{"posts_limit":3,"comments_per_post":2}"#).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let first: Value = reply.json();
    assert_eq!(first["posts_fetched"], 3);
    assert_eq!(first["posts_added"], 3);
    let comments_added = first["comments_added"].as_u64().unwrap();
    assert_eq!(first["comments_fetched"].as_u64().unwrap(), comments_added);

    let reply = post_json(&parse, r#"{"posts_limit":3,"comments_per_post":2}"#).await;
    let second: Value = reply.json();
    assert_eq!(second["posts_added"], 0);
    assert_eq!(second["comments_added"], 0);

    let reply = http_get(&url(&running, "/api/v1/groups/durov/stats"), &[]).await;
    let stats: Value = reply.json();
    assert_eq!(stats["posts"], 3);
    assert_eq!(stats["comments"].as_u64().unwrap(), comments_added);

    let reply = http_get(&url(&running, "/api/v1/groups/durov/comments?limit=1"), &[]).await;
    let page: Value = reply.json();
    assert_eq!(page["total"].as_u64().unwrap(), comments_added);
    assert_eq!(
        page["comments"].as_array().unwrap().len(),
        usize::from(comments_added > 0)
    );

    let reply = http_get(&url(&running, "/api/v1/groups/Not%20Valid/stats"), &[]).await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.header("content-type"), "application/problem+json");
    let problem: Value = reply.json();
    assert_eq!(problem["error_type"], "invalid_group_id");
    assert_eq!(problem["request_id"], reply.header("x-request-id"));

    let reply = post_json(&parse, r#"{"posts_limit":0,"comments_per_post":2}"#).await;
    assert_eq!(reply.status, 422);
    let problem: Value = reply.json();
    assert_eq!(problem["error_type"], "invalid_parameter");
    assert_eq!(problem["detail"], "posts_limit must be between 1 and 100");

    let reply = http_get(&url(&running, "/api/v1/groups/nobody/stats"), &[]).await;
    assert_eq!(reply.status, 404);
    let problem: Value = reply.json();
    assert_eq!(problem["error_type"], "group_not_parsed");

    // Every request above is in /metrics, by route template.
    let reply = http_get(&url(&running, "/metrics"), &[]).await;
    assert_eq!(reply.status, 200);
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    let scraped = observe_tests::prometheus::samples(&text);
    let stats = [
        ("method", "GET"),
        ("endpoint", "/api/v1/groups/{group_id}/stats"),
    ];
    assert_eq!(
        observe_tests::prometheus::sum(&scraped, "http_requests_total", &stats),
        3.0,
        "{text}"
    );
    assert_eq!(
        observe_tests::prometheus::value(
            &scraped,
            "errors_total",
            &[("error_type", "group_not_parsed"), ("service", "vk-parser")]
        ),
        1.0
    );
    // Health: the binary's disk and memory checks, served beside the API.
    let reply = http_get(&url(&running, "/health"), &[]).await;
    let health: Value = reply.json();
    // Real readings: how full this machine's disk is decides the status.
    assert!(
        health["checks"]["disk"]["details"]["total_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(health["checks"]["memory"]["critical"], false, "{health}");
    let unavailable = ["critical", "unhealthy"].contains(&health["status"].as_str().unwrap());
    assert_eq!(
        reply.status,
        if unavailable { 503 } else { 200 },
        "{health}"
    );
    let reply = http_get(&url(&running, "/health/live"), &[]).await;
    assert_eq!(reply.status, 200);

    // At least the scrape's own; earlier clients' closes may not be seen yet.
    let open = observe_tests::prometheus::value(&scraped, "active_connections", &[]);
    assert!((1.0..=12.0).contains(&open), "{open}");

    let status = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = running.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "vk-parser did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn bad_address_fails_at_start_naming_the_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_vk-parser"))
        .env("VK_PARSER_ADDR", "not-an-address")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(r#"invalid VK_PARSER_ADDR="not-an-address""#),
        "{stderr}"
    );
}

#[test]
fn bad_observe_variable_fails_at_start_naming_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_vk-parser"))
        .env("VK_PARSER_ADDR", free_port().to_string())
        .env("OBSERVE_SHUTDOWN_TIMEOUT", "forever")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(r#"invalid OBSERVE_SHUTDOWN_TIMEOUT="forever""#),
        "{stderr}"
    );
}

/// Four replicas starting at the same moment on a database nobody has
/// used: the schema is migrated once, under a lock, and all come up.
#[tokio::test]
async fn four_instances_start_together_on_a_new_postgresql_database() {
    let database = TempDatabase::create("binary_race").await;
    let vars = [("DATABASE_URL", database.url())];
    let instances = futures_util::future::join_all((0..4).map(|_| start_with(&vars))).await;
    for (running, _) in &instances {
        let reply = http_get(&url(running, "/health/ready"), &[]).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let health: Value = reply.json();
        assert_eq!(
            health["checks"]["database"]["status"], "healthy",
            "{health}"
        );
    }
    // All four store into the one schema.
    let parse = url(&instances[0].0, "/api/v1/groups/durov/parse");
    let reply = post_json(&parse, r#"{"posts_limit":2,"comments_per_post":1}"#).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = http_get(&url(&instances[3].0, "/api/v1/groups/durov/stats"), &[]).await;
    let stats: Value = reply.json();
    assert_eq!(stats["posts"], 2, "{stats}");
    drop(instances);
}

#[tokio::test]
async fn sigterm_during_a_parse_lets_it_finish_then_exits_cleanly() {
    let (mut running, database) = start_with(&[("OBSERVE_SHUTDOWN_TIMEOUT", "20s")]).await;
    let parse = url(&running, "/api/v1/groups/drained/parse");
    // Seven VK calls at three a second: about two seconds of work.
    let request = tokio::spawn(async move {
        post_json(&parse, r#"{"posts_limit":6,"comments_per_post":3}"#).await
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    sigterm(&running);
    let reply = request.await.unwrap();
    assert_eq!(reply.status, 200, "{reply:?}");
    let parsed: Value = reply.json();
    assert_eq!(parsed["posts_added"], 6);
    let exit = exit_within(&mut running, Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit:?}");
    // Everything the answer reported is stored.
    let store = vk_parser::Store::connect(&database).await.unwrap();
    let (posts, comments) = store.stats("drained").await.unwrap().unwrap();
    assert_eq!(posts, 6);
    assert_eq!(comments, parsed["comments_added"].as_u64().unwrap());
}

#[tokio::test]
async fn sigterm_past_the_drain_limit_stores_nothing_half_written() {
    let (mut running, database) = start_with(&[("OBSERVE_SHUTDOWN_TIMEOUT", "1s")]).await;
    let parse = url(&running, "/api/v1/groups/cut_short/parse");
    // About ten seconds of VK calls: far past the one-second drain.
    let request = tokio::spawn(async move {
        post_json(&parse, r#"{"posts_limit":30,"comments_per_post":2}"#).await
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    sigterm(&running);
    let exit = exit_within(&mut running, Duration::from_secs(10)).await;
    assert!(exit.success(), "{exit:?}");
    request.abort();
    // The parse never reached its one transaction: nothing of it is stored.
    let store = vk_parser::Store::connect(&database).await.unwrap();
    assert_eq!(store.stats("cut_short").await.unwrap(), None);
}

#[tokio::test]
async fn the_index_names_the_vk_api_in_use_without_the_token() {
    let (running, _) = start_with(&[]).await;
    let body: Value = http_get(&url(&running, "/"), &[]).await.json();
    assert_eq!(body["vk_api"], "offline stand-in");
    drop(running);

    let (running, _) = start_with(&[
        ("VK_ACCESS_TOKEN", "s3cr3t-vk-token"),
        ("VK_API_BASE", "http://127.0.0.1:9"),
    ])
    .await;
    let reply = http_get(&url(&running, "/"), &[]).await;
    let body: Value = reply.json();
    assert_eq!(body["vk_api"], "VK API at http://127.0.0.1:9");
    assert!(!String::from_utf8_lossy(&reply.body).contains("s3cr3t-vk-token"));
}

#[tokio::test]
async fn redis_is_in_health_only_when_configured() {
    let (running, _) = start_with(&[]).await;
    let health: Value = http_get(&url(&running, "/health"), &[]).await.json();
    assert_eq!(health["checks"]["database"]["status"], "healthy");
    assert!(health["checks"].get("redis").is_none(), "{health}");
    drop(running);

    let (running, _) = start_with(&[("REDIS_URL", "redis://127.0.0.1:6379/")]).await;
    let health: Value = http_get(&url(&running, "/health"), &[]).await.json();
    assert_eq!(health["checks"]["redis"]["status"], "healthy", "{health}");
    assert_eq!(health["checks"]["database"]["status"], "healthy");
    let text =
        String::from_utf8_lossy(&http_get(&url(&running, "/metrics"), &[]).await.body).into_owned();
    let scraped = observe_tests::prometheus::samples(&text);
    assert_eq!(
        observe_tests::prometheus::value(&scraped, "redis_connections", &[]),
        1.0
    );
    // The pool's connections in use, sampled every second: none once idle
    // (health checks, of probes and of the alert engine, use one briefly).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&http_get(&url(&running, "/metrics"), &[]).await.body)
            .into_owned();
        let scraped = observe_tests::prometheus::samples(&text);
        let in_use = observe_tests::prometheus::value(&scraped, "database_connections", &[]);
        if in_use == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "database_connections stayed {in_use}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
