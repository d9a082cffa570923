//! Parse and read on SQLite and on PostgreSQL (the one on this machine), the
//! same behaviour on both: a second parse stores nothing twice, bad input
//! changes nothing.
#![allow(clippy::unwrap_used)]

use axum::{Router, body::Body};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use observe::Observability;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

use vk_parser::{AppState, Store, VkClient};

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

async fn app(url: &str) -> Router {
    let store = Store::connect(url).await.unwrap();
    let obs = Observability::builder("vk-parser-test")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .env_vars::<&str, &str>([])
        .init()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let standin = vk_parser::standin::server::router(Default::default());
    tokio::spawn(async move { axum::serve(listener, standin).await });
    let vk = VkClient::new(
        &base,
        "offline",
        Duration::from_secs(5),
        obs.client_layer(),
        obs.metrics().clone(),
    )
    .unwrap();
    obs.router(vk_parser::app(AppState::new(
        store,
        vk,
        obs.metrics().clone(),
    )))
}

async fn call(app: &Router, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A group no earlier run has stored: the database outlives test runs.
fn fresh_group(backend: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{backend}_{}_{nanos}", std::process::id())
}

async fn parse_then_read(url: &str, backend: &str) {
    let app = app(url).await;
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

    let (status, second) = call(&app, "POST", &parse, Some(job)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["posts_added"], 0);
    assert_eq!(second["comments_added"], 0);

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
    let file = std::env::temp_dir().join(format!("vk-parser-store-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&file);
    parse_then_read(&format!("sqlite://{}?mode=rwc", file.display()), "sqlite").await;
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn parse_then_read_on_postgresql() {
    parse_then_read(POSTGRES, "postgres").await;
}

#[tokio::test]
async fn a_database_url_of_another_kind_is_refused() {
    let error = Store::connect("mysql://root@127.0.0.1/test")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("DATABASE_URL"), "{error}");
}
