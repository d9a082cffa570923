//! Health against the real PostgreSQL (127.0.0.1:5432, database `test`) and
//! Redis (127.0.0.1:6379) of every development and CI machine: no mocks.
//! `TEST_DATABASE_URL` and `TEST_REDIS_URL` point elsewhere.
#![allow(clippy::unwrap_used)]

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use axum::{Router, routing::get};
use observe::{
    Observability,
    health::{Check, CheckOptions, HttpCheck, PostgresCheck, RedisCheck, Status},
};
use observe_tests::{TestServer, http_get, postgres::TempDatabase, prometheus::free_port};
use serde_json::Value;
use sqlx::{PgPool, postgres::PgPoolOptions};
use tokio::net::TcpListener;

fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn obs(vars: &[(&str, &str)]) -> Observability {
    Observability::builder("health-test")
        .install_metrics_recorder(false)
        .install_subscriber(false)
        .env_vars(vars.iter().copied())
        .init()
        .unwrap()
}

fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(5)
        .connect_lazy(url)
        .unwrap()
}

fn redis(url: &str) -> RedisCheck {
    RedisCheck::new(redis::Client::open(url).unwrap())
}

fn with_port(url: &str, addr: SocketAddr) -> String {
    let (scheme, _) = url.split_once("://").unwrap();
    let user = if scheme == "postgres" {
        "postgres@"
    } else {
        ""
    };
    let path = if scheme == "postgres" { "/test" } else { "" };
    format!("{scheme}://{user}{addr}{path}")
}

/// A listener that accepts connections and never says a word.
async fn silent_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

async fn serve(obs: &Observability) -> TestServer {
    TestServer::start(obs, Router::new().merge(obs.health_router())).await
}

async fn get_json(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let reply = http_get(&server.url(path), headers).await;
    (reply.status.as_u16(), reply.json())
}

#[tokio::test]
async fn real_postgres_and_redis_are_healthy_with_real_round_trips() {
    let obs = obs(&[]);
    obs.health()
        .add_check("postgres", PostgresCheck::new(pool(&database_url())));
    obs.health().add_check("redis", redis(&redis_url()));
    let server = serve(&obs).await;

    let (status, body) = get_json(&server, "/health", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "healthy");
    let postgres = &body["checks"]["postgres"];
    assert_eq!(postgres["status"], "healthy");
    assert!(postgres["response_time_ms"].as_f64().unwrap() > 0.0);
    assert!(postgres["details"]["round_trip_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(postgres["details"]["pool_max"], 5);
    // The first probe found the lazy pool empty and opened one connection.
    assert_eq!(postgres["details"]["pool_size"], 0);
    let redis = &body["checks"]["redis"];
    assert_eq!(redis["status"], "healthy", "{redis}");
    assert!(redis["response_time_ms"].as_f64().unwrap() > 0.0);
    assert!(redis["details"]["round_trip_ms"].as_f64().unwrap() > 0.0);
    assert!(redis["details"]["connected_clients"].as_u64().unwrap() >= 1);
    assert!(redis["details"]["used_memory_bytes"].as_u64().unwrap() > 0);

    // The pool now holds the connection the first probe opened.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (_, body) = get_json(&server, "/health", &[]).await;
    assert_eq!(body["checks"]["postgres"]["details"]["pool_size"], 1);
    assert_eq!(body["checks"]["postgres"]["details"]["pool_idle"], 1);

    let metrics = obs.metrics().render();
    for check in ["postgres", "redis"] {
        assert!(
            metrics.contains(&format!("health_check_status{{check=\"{check}\"}} 0\n")),
            "{metrics}"
        );
        assert!(
            metrics.contains(&format!(
                "health_check_duration_seconds_count{{check=\"{check}\"}} 2\n"
            )),
            "{metrics}"
        );
    }
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_wrong_port_is_unhealthy_at_once_and_liveness_stays_up() {
    let closed = free_port();
    let obs = obs(&[]);
    obs.health().add_check(
        "postgres",
        PostgresCheck::new(pool(&with_port(&database_url(), closed))),
    );
    obs.health()
        .add_check("redis", redis(&with_port(&redis_url(), closed)));
    let server = serve(&obs).await;

    let started = Instant::now();
    let report = obs.health().check_all().await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert_eq!(report.status(), Status::Unhealthy);
    for check in ["postgres", "redis"] {
        let check = report.check(check).unwrap();
        assert_eq!(check.status(), Status::Unhealthy);
        let error = check.error().unwrap();
        assert!(error.contains("refused"), "{error}");
    }

    // Served: 503, raw errors hidden, in both formats.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, body) = get_json(&server, "/health", &[]).await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(
        body["checks"]["postgres"]["error"],
        "check failed (details hidden)"
    );
    assert_eq!(
        body["checks"]["redis"]["error"],
        "check failed (details hidden)"
    );
    let port = closed.port().to_string();
    assert!(!body.to_string().contains(&port), "{body}");

    let (status, body) =
        get_json(&server, "/health", &[("accept", "application/health+json")]).await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "fail");
    assert_eq!(body["serviceId"], "health-test");
    assert_eq!(body["checks"]["postgres:responseTime"][0]["status"], "fail");
    assert_eq!(
        body["checks"]["redis:responseTime"][0]["observedUnit"],
        "ms"
    );
    assert!(!body.to_string().contains(&port), "{body}");

    let (status, body) = get_json(&server, "/health/ready", &[]).await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "unhealthy");
    let (status, body) = get_json(&server, "/health/live", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy");
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn the_token_shows_the_raw_error() {
    let closed = free_port();
    let obs = obs(&[("OBSERVE_HEALTH_TOKEN", "s3cret")]);
    obs.health()
        .add_check("redis", redis(&with_port(&redis_url(), closed)));
    let server = serve(&obs).await;
    let (_, hidden) = get_json(&server, "/health", &[]).await;
    assert_eq!(
        hidden["checks"]["redis"]["error"],
        "check failed (details hidden)"
    );
    let (_, shown) = get_json(&server, "/health", &[("authorization", "Bearer s3cret")]).await;
    let error = shown["checks"]["redis"]["error"].as_str().unwrap();
    assert!(error.contains("refused"), "{error}");
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_silent_dependency_times_out_and_health_answers_within_the_timeout() {
    let silent = silent_listener().await;
    let timeout = Duration::from_millis(600);
    let obs = obs(&[]);
    let options = CheckOptions::new().timeout(timeout);
    obs.health().add_check_with(
        "postgres",
        PostgresCheck::new(pool(&with_port(&database_url(), silent))),
        options,
    );
    obs.health()
        .add_check_with("redis", redis(&with_port(&redis_url(), silent)), options);
    let server = serve(&obs).await;

    let started = Instant::now();
    let (status, body) = get_json(&server, "/health", &[]).await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(700),
        "answered after {took:?}"
    );
    for check in ["postgres", "redis"] {
        assert_eq!(body["checks"][check]["status"], "unhealthy");
        assert_eq!(body["checks"][check]["error"], "timed out after 600ms");
        let took = body["checks"][check]["response_time_ms"].as_f64().unwrap();
        assert!((600.0..1_000.0).contains(&took), "{check}: {took} ms");
    }
    let (status, _) = get_json(&server, "/health/live", &[]).await;
    assert_eq!(status, 200);
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_thousand_concurrent_probes_cost_one_query() {
    // A database of its own: the sequence counts this run's queries only.
    let database = TempDatabase::create("health_probes").await;
    let url = database.url().to_owned();
    let admin = PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE SEQUENCE observe_health_probe_seq")
        .execute(&admin)
        .await
        .unwrap();

    let ttl = Duration::from_secs(10);
    let obs = obs(&[("OBSERVE_HEALTH_CACHE_TTL", "10s")]);
    obs.health().add_check(
        "postgres",
        PostgresCheck::new(pool(&url)).query("SELECT nextval('observe_health_probe_seq')"),
    );
    let server = serve(&obs).await;

    let started = Instant::now();
    let probes = (0..1_000).map(|_| {
        let url = server.url("/health");
        tokio::spawn(async move { http_get(&url, &[]).await.status.as_u16() })
    });
    let statuses = futures_util::future::join_all(probes).await;
    let took = started.elapsed();
    assert!(
        statuses
            .iter()
            .all(|status| *status.as_ref().unwrap() == 200)
    );
    assert!(took < ttl, "the probes took {took:?}, longer than the TTL");

    let (last_value, is_called): (i64, bool) =
        sqlx::query_as("SELECT last_value, is_called FROM observe_health_probe_seq")
            .fetch_one(&admin)
            .await
            .unwrap();
    let queries = if is_called { last_value } else { 0 };
    assert_eq!(queries, 1, "1000 probes within one TTL");
    server.stop(Duration::from_secs(5)).await.unwrap();
    admin.close().await;
}

#[tokio::test]
async fn readiness_turns_503_on_shutdown_while_liveness_stays_200() {
    let obs = obs(&[("OBSERVE_READINESS_DELAY", "800ms")]);
    obs.health()
        .add_check("postgres", PostgresCheck::new(pool(&database_url())));
    let mut server = serve(&obs).await;
    let (status, body) = get_json(&server, "/health/ready", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["postgres"]["status"], "healthy");

    server.signal_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Still accepting during the readiness delay, and saying no.
    let (status, body) = get_json(&server, "/health/ready", &[]).await;
    assert_eq!(status, 503);
    assert_eq!(body["reason"], "shutting down");
    let (status, _) = get_json(&server, "/health/live", &[]).await;
    assert_eq!(status, 200);
    assert!(obs.health().is_shutting_down());
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn an_http_upstream_failure_is_degraded_not_unhealthy() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let app = Router::new().route("/ok", get(|| async { "ok" })).route(
        "/broken",
        get(|| async { (http::StatusCode::BAD_GATEWAY, "no") }),
    );
    tokio::spawn(async move { axum::serve(upstream, app).await });

    let obs = obs(&[("OBSERVE_HEALTH_DETAILS", "always")]);
    let check = |path: &str| HttpCheck::new(&format!("http://{upstream_addr}{path}")).unwrap();
    obs.health().add_check("ok", check("/ok"));
    obs.health().add_check("broken", check("/broken"));
    obs.health().add_check(
        "down",
        HttpCheck::new(&format!("http://{}/", free_port())).unwrap(),
    );
    let server = serve(&obs).await;
    let (status, body) = get_json(&server, "/health", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["ok"]["status"], "healthy");
    assert_eq!(body["checks"]["ok"]["details"]["status_code"], 200);
    assert_eq!(body["checks"]["broken"]["status"], "degraded");
    assert_eq!(body["checks"]["broken"]["details"]["status_code"], 502);
    assert_eq!(
        body["checks"]["broken"]["error"],
        "the upstream answered 502 Bad Gateway"
    );
    assert_eq!(body["checks"]["down"]["status"], "degraded");
    let error = body["checks"]["down"]["error"].as_str().unwrap();
    assert!(error.starts_with("request failed: "), "{error}");
    assert!(!error.contains("http://"), "the URL stays out: {error}");
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_pool_80_percent_in_use_is_a_warning() {
    let pool = pool(&database_url());
    let check = PostgresCheck::new(pool.clone());
    let mut held = Vec::new();
    for (in_use, expected) in [
        (0, Status::Healthy),
        (3, Status::Healthy),
        (4, Status::Warning),
    ] {
        while held.len() < in_use {
            held.push(pool.acquire().await.unwrap());
        }
        // The previous check's own connection goes back to the pool in a
        // task of sqlx's: wait for it, or it counts as in use.
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.num_idle() + held.len() < pool.size() as usize {
            assert!(
                Instant::now() < deadline,
                "the check's connection not returned"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let result = check.check().await;
        assert_eq!(
            result.status(),
            expected,
            "{in_use} of 5 in use: {result:?}"
        );
        let details = result.details();
        assert_eq!(details["pool_in_use"], in_use);
        assert_eq!(details["pool_max"], 5);
        assert_eq!(
            details["pool_utilization_percent"].as_f64().unwrap(),
            in_use as f64 * 20.0
        );
        assert!(details["round_trip_ms"].as_f64().unwrap() > 0.0);
    }
    drop(held);
    // sqlx returns dropped connections to the pool in a task of their own.
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.num_idle() < pool.size() as usize {
        assert!(Instant::now() < deadline, "connections not returned");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let result = check.check().await;
    assert_eq!(result.status(), Status::Healthy);
    assert_eq!(result.details()["pool_in_use"], 0);
}

#[tokio::test]
async fn a_silent_http_upstream_is_degraded_after_five_seconds() {
    let silent = silent_listener().await;
    let obs = obs(&[]);
    obs.health().add_check(
        "upstream",
        HttpCheck::new(&format!("http://{silent}/")).unwrap(),
    );
    let started = Instant::now();
    let report = obs.health().check_all().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_millis(5_800),
        "{took:?}"
    );
    assert_eq!(report.status(), Status::Degraded);
    let upstream = report.check("upstream").unwrap();
    assert_eq!(upstream.status(), Status::Degraded);
    assert!(upstream.error().is_some());
}

/// One rule for both tokens: surrounding whitespace is not part of it.
#[tokio::test]
async fn the_metrics_and_health_tokens_agree_on_what_they_accept() {
    use tower::ServiceExt;
    let obs = obs(&[
        ("OBSERVE_METRICS_TOKEN", "s3cret"),
        ("OBSERVE_HEALTH_TOKEN", "s3cret"),
    ]);
    obs.health().add_check_with(
        "flaky",
        observe::health::check_fn(|| async {
            observe::health::CheckResult::unhealthy("boom at db:5432")
        }),
        CheckOptions::new().critical(false),
    );
    let app = obs.router(Router::new());
    let call = |path: &'static str, token: &'static str| {
        let app = app.clone();
        async move {
            let response = app
                .oneshot(
                    http::Request::get(path)
                        .header("authorization", token)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    for token in ["Bearer s3cret", "Bearer s3cret ", "Bearer  s3cret"] {
        assert_eq!(call("/metrics", token).await.0, 200, "{token:?}");
        let (status, body) = call("/health", token).await;
        assert_eq!(status, 200);
        assert!(body.contains("boom at db:5432"), "{token:?}: {body}");
    }
    for token in ["Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret"] {
        assert_eq!(call("/metrics", token).await.0, 401, "{token:?}");
        let (_, body) = call("/health", token).await;
        assert!(!body.contains("boom at db:5432"), "{token:?}: {body}");
    }
}
