//! Parse and read on SQLite and on PostgreSQL (the one on this machine), the
//! same behaviour on both: a second parse stores nothing twice, bad input
//! changes nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::Router;
use http::StatusCode;
use observe::Observability;
use observe_tests::postgres::TempDatabase;
use serde_json::{Value, json};
use vk_parser::{AppState, Cache, Store};

const REDIS: &str = "redis://127.0.0.1:6379/";

async fn app(url: &str, redis: bool) -> (Router, Observability) {
    let store = Store::connect(url).await.unwrap();
    let obs = common::observability("vk-parser-test");
    let base = common::standin(Default::default()).await;
    let mut vk = common::vk_client(&obs, &base, Duration::from_secs(5));
    let cache = if redis {
        Some(
            Cache::connect(REDIS, Duration::from_secs(60))
                .await
                .unwrap(),
        )
    } else {
        None
    };
    if let Some(cache) = &cache {
        vk = vk.with_cache(cache.clone());
    }
    let mut state = AppState::new(store, vk, obs.metrics().clone());
    if let Some(cache) = cache {
        state = state.with_cache(cache);
    }
    (obs.router(vk_parser::app(state)), obs)
}

async fn call(app: &Router, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let reply = common::call(app, method, path, &[], body).await;
    (reply.status, reply.json)
}

/// A group no earlier run has stored: the database outlives test runs.
fn fresh_group(backend: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{backend}_{}_{nanos}", std::process::id())
}

async fn parse_then_read(url: &str, backend: &str, redis: bool) {
    let (app, obs) = app(url, redis).await;
    let group = fresh_group(backend);
    let parse = format!("/api/v1/groups/{group}/parse");
    let job = json!({"posts_limit": 4, "comments_per_post": 6});

    // Nothing yet.
    let (status, problem) = call(&app, "GET", &format!("/api/v1/groups/{group}/stats"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem["error_type"], "group_not_parsed");

    let (status, first) = call(&app, "POST", &parse, Some(job.clone())).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["posts_fetched"], 4);
    assert_eq!(first["posts_added"], 4);
    let comments = first["comments_fetched"].as_u64().unwrap();
    assert!(comments > 0);
    assert_eq!(first["comments_added"], comments);

    let calls = |obs: &Observability| {
        let samples = observe_tests::prometheus::samples(&obs.metrics().render());
        (
            observe_tests::prometheus::sum(&samples, "vk_api_requests_total", &[]),
            observe_tests::prometheus::sum(&samples, "vk_api_cache_hits_total", &[]),
        )
    };
    let (vk_calls, hits) = calls(&obs);
    assert_eq!(hits, 0.0);
    let (status, second) = call(&app, "POST", &parse, Some(job)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["posts_added"], 0);
    assert_eq!(second["comments_added"], 0);
    // With Redis, the second parse reads VK's pages from the cache.
    let (vk_calls_after, hits_after) = calls(&obs);
    if redis {
        assert_eq!(vk_calls_after, vk_calls, "no VK call the second time");
        assert_eq!(hits_after, vk_calls);
    } else {
        assert_eq!(vk_calls_after, 2.0 * vk_calls);
        assert_eq!(hits_after, 0.0);
    }

    // Bad input of each kind: a clear 4xx, nothing stored.
    for (path, body, expected) in [
        (
            parse.clone(),
            json!({"posts_limit": 0, "comments_per_post": 6}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            parse.clone(),
            json!({"posts_limit": 101, "comments_per_post": 6}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            parse.clone(),
            json!({"posts_limit": "many"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/groups/Not-Valid/parse".to_owned(),
            json!({"posts_limit": 1, "comments_per_post": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, problem) = call(&app, "POST", &path, Some(body)).await;
        assert_eq!(status, expected, "{path} {problem}");
        assert!(
            problem["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty())
        );
    }

    let (status, stats) = call(&app, "GET", &format!("/api/v1/groups/{group}/stats"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["posts"], 4);
    assert_eq!(stats["comments"], comments);

    let (status, page) = call(
        &app,
        "GET",
        &format!("/api/v1/groups/{group}/comments?limit=3&offset=1"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], comments);
    let listed = page["comments"].as_array().unwrap();
    assert_eq!(listed.len() as u64, 3.min(comments - 1));
    let post_id = listed[0]["post_id"].as_u64().unwrap();
    let (_, by_post) = call(
        &app,
        "GET",
        &format!("/api/v1/groups/{group}/comments?post_id={post_id}&limit=100"),
        None,
    )
    .await;
    let by_post_comments = by_post["comments"].as_array().unwrap();
    assert_eq!(
        by_post["total"].as_u64().unwrap(),
        by_post_comments.len() as u64
    );
    assert!(
        by_post_comments
            .iter()
            .all(|comment| comment["post_id"] == post_id)
    );
}

#[tokio::test]
async fn parse_then_read_on_sqlite() {
    let (url, file) = common::sqlite("store");
    parse_then_read(&url, "sqlite", false).await;
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn parse_then_read_on_sqlite_with_redis() {
    let (url, file) = common::sqlite("store-redis");
    parse_then_read(&url, "sqlite_redis", true).await;
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn parse_then_read_on_postgresql_with_redis() {
    let database = TempDatabase::create("store_redis").await;
    parse_then_read(database.url(), "postgres_redis", true).await;
}

#[tokio::test]
async fn parse_then_read_on_postgresql() {
    let database = TempDatabase::create("store").await;
    parse_then_read(database.url(), "postgres", false).await;
}

/// Replicas starting together on a new database: the schema is applied
/// once, under the migrator's lock, and every one of them connects.
#[tokio::test]
async fn stores_connecting_at_once_to_a_new_database_all_succeed() {
    let database = TempDatabase::create("store_race").await;
    let connects = (0..4).map(|_| Store::connect(database.url()));
    for store in futures_util::future::join_all(connects).await {
        store.unwrap().ping().await.unwrap();
    }
    // One migration recorded, applied once.
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(database.url())
        .await
        .unwrap();
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    assert_eq!(applied, vec![(20261201000000, true)]);
}

/// A database made before the schema was a migration (tables, no
/// `_sqlx_migrations`) is adopted with its rows.
#[tokio::test]
async fn a_database_from_before_migrations_keeps_its_rows() {
    let database = TempDatabase::create("store_adopt").await;
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(database.url())
        .await
        .unwrap();
    sqlx::raw_sql(include_str!(
        "../migrations/20261201000000_posts_and_comments.sql"
    ))
    .execute(&mut connection)
    .await
    .unwrap();
    sqlx::query("INSERT INTO posts VALUES ('old', 1, 'kept', 0)")
        .execute(&mut connection)
        .await
        .unwrap();
    let (app, _obs) = app(database.url(), false).await;
    let (status, stats) = call(&app, "GET", "/api/v1/groups/old/stats", None).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["posts"], 1);
}

#[tokio::test]
async fn a_group_locked_by_another_instance_is_a_conflict() {
    let database = TempDatabase::create("store_locked").await;
    let (app, _obs) = app(database.url(), true).await;
    let group = fresh_group("locked");
    // Another instance holds the lock in Redis.
    let client = redis::Client::open(REDIS).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("vk-parser:lock:{group}");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("other-instance")
        .arg("PX")
        .arg(10_000)
        .query_async(&mut redis)
        .await
        .unwrap();
    let job = json!({"posts_limit": 1, "comments_per_post": 1});
    let (status, problem) = call(
        &app,
        "POST",
        &format!("/api/v1/groups/{group}/parse"),
        Some(job.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["error_type"], "duplicate_job");
    // Not ours to release: still there.
    let holder: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(holder.as_deref(), Some("other-instance"));
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    let (status, _) = call(
        &app,
        "POST",
        &format!("/api/v1/groups/{group}/parse"),
        Some(job),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Our lock is released after the parse.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let holder: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(holder, None);
}

#[tokio::test]
async fn a_database_url_of_another_kind_is_refused() {
    let error = Store::connect("mysql://root@127.0.0.1/test")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("DATABASE_URL"), "{error}");
}

/// A PostgreSQL that stalls mid-transaction (a proxy that stops passing
/// bytes once the comments' insert is sent): the parse answers 504 at the
/// statement deadline, and the half-written transaction is rolled back, so
/// the same parse stores everything once the database is back.
#[tokio::test]
async fn a_database_stalling_mid_transaction_answers_504_and_rolls_back() {
    let database = TempDatabase::create("store_stall").await;
    let proxy =
        observe_tests::proxy::FreezableProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let url = database
        .url()
        .replace("127.0.0.1:5432", &proxy.addr.to_string());
    assert_ne!(
        url,
        database.url(),
        "the test database is not on 127.0.0.1:5432"
    );
    let store = Store::connect(&url)
        .await
        .unwrap()
        .statement_timeout(Duration::from_millis(500))
        .transaction_timeout(Duration::from_secs(2));
    let obs = common::observability("vk-parser-test");
    let base = common::standin(Default::default()).await;
    let vk = common::vk_client(&obs, &base, Duration::from_secs(5));
    let app = obs.router(vk_parser::app(AppState::new(
        store,
        vk,
        obs.metrics().clone(),
    )));
    let job = json!({"posts_limit": 2, "comments_per_post": 2});

    proxy.freeze_on(b"INSERT INTO comments");
    let started = std::time::Instant::now();
    let (status, problem) = call(
        &app,
        "POST",
        "/api/v1/groups/stall/parse",
        Some(job.clone()),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{problem}");
    assert_eq!(problem["error_type"], "database_timeout");
    assert!(proxy.is_frozen(), "the stall was not reached");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "answered after {took:?}"
    );
    // Reads are bounded too.
    let (status, problem) = call(&app, "GET", "/api/v1/groups/stall/stats", None).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{problem}");

    proxy.thaw();
    // Had the first transaction committed, nothing would be new; had it
    // stayed open, its row locks would stall this one.
    let (status, parsed) = call(&app, "POST", "/api/v1/groups/stall/parse", Some(job)).await;
    assert_eq!(status, StatusCode::OK, "{parsed}");
    assert_eq!(parsed["posts_added"], 2);
    assert_eq!(parsed["comments_added"], 4);
}

/// The whole parse is bounded: a VK that answers slowly gets a 504 and
/// nothing is stored.
#[tokio::test]
async fn a_parse_past_its_deadline_answers_504_and_stores_nothing() {
    let database = TempDatabase::create("store_parse_deadline").await;
    let store = Store::connect(database.url()).await.unwrap();
    let obs = common::observability("vk-parser-test");
    let base = common::standin(vk_parser::standin::server::Faults {
        error_rate: 0.0,
        latency: Duration::from_millis(300),
    })
    .await;
    let vk = common::vk_client(&obs, &base, Duration::from_secs(5));
    let state =
        AppState::new(store, vk, obs.metrics().clone()).parse_timeout(Duration::from_millis(800));
    let app = obs.router(vk_parser::app(state));
    let started = std::time::Instant::now();
    let (status, problem) = call(
        &app,
        "POST",
        "/api/v1/groups/slow/parse",
        Some(json!({"posts_limit": 5, "comments_per_post": 1})),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{problem}");
    assert_eq!(problem["error_type"], "parse_timeout");
    assert!(
        took < Duration::from_millis(1500),
        "answered after {took:?}"
    );
    let (status, _) = call(&app, "GET", "/api/v1/groups/slow/stats", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
