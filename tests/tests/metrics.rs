//! RED metrics end to end: over real TCP through `obs.serve()`, checked by
//! promtool and scraped by a real Prometheus server.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use axum::{
    Router,
    body::Body,
    http::{Method, Request, StatusCode},
    routing::{get, post},
};
use observe::{AppError, Observability};
use observe_tests::{
    TestServer, http_get,
    prometheus::{self, PrometheusServer, free_port, promtool_check, samples, sum, value},
    raw_exchange,
};
use tokio::{io::AsyncWriteExt, net::TcpStream};
use tower::ServiceExt;

fn obs(vars: &[(&str, &str)]) -> Observability {
    Observability::builder("metrics-test")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .env_vars(vars.iter().copied().chain([("RUST_LOG", "error")]))
        .init()
        .unwrap()
}

fn app() -> Router {
    let groups = Router::new()
        .route("/{group_id}/parse", post(|| async { "parsed" }))
        .route(
            "/{group_id}/stats",
            get(|| async {
                Err::<(), _>(AppError::new(
                    StatusCode::NOT_FOUND,
                    "group_not_found",
                    "no such group",
                ))
            }),
        );
    Router::new()
        .route("/hello/{name}", get(|| async { "hello" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .nest("/api/v1/groups", groups)
}

/// Samples of the in-process registry: exact, with no scrape of its own.
fn scrape(obs: &Observability) -> Vec<prometheus::Sample> {
    samples(&obs.metrics().render())
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn n_requests_over_tcp_are_n_in_the_counter_and_the_histogram() {
    let obs = obs(&[]);
    let server = TestServer::start(&obs, app()).await;
    const N: usize = 40;
    for i in 0..N {
        let reply = http_get(&server.url(&format!("/hello/user{i}")), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    for _ in 0..3 {
        let reply = observe_tests::post_json(&server.url("/api/v1/groups/7/parse"), "{}").await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let reply = http_get(&server.url("/api/v1/groups/7/stats"), &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    let scraped = scrape(&obs);
    assert_eq!(sum(&scraped, "http_requests_total", &[]), (N + 4) as f64);
    let hello = [("method", "GET"), ("endpoint", "/hello/{name}")];
    assert_eq!(
        value(
            &scraped,
            "http_requests_total",
            &[hello[0], hello[1], ("status_code", "200")]
        ),
        N as f64
    );
    assert_eq!(
        value(&scraped, "http_request_duration_seconds_count", &hello),
        N as f64
    );
    assert_eq!(
        value(
            &scraped,
            "http_request_duration_seconds_bucket",
            &[hello[0], hello[1], ("le", "+Inf")]
        ),
        N as f64
    );
    assert_eq!(
        value(
            &scraped,
            "http_requests_total",
            &[
                ("method", "POST"),
                ("endpoint", "/api/v1/groups/{group_id}/parse"),
                ("status_code", "200")
            ]
        ),
        3.0
    );
    assert_eq!(
        value(
            &scraped,
            "errors_total",
            &[
                ("error_type", "group_not_found"),
                ("service", "metrics-test")
            ]
        ),
        1.0
    );
    let red = obs.red(Duration::from_secs(60));
    assert_eq!(red.requests, (N + 4) as u64);
    assert_eq!(red.errors, 0);
    assert!(red.p99 > Duration::ZERO && red.p99 < Duration::from_secs(1));
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_hundred_thousand_random_paths_add_no_series() {
    let obs = obs(&[]);
    let app = app().layer(obs.layer());
    let send = |method: Method, path: String| {
        let app = app.clone();
        async move {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            app.oneshot(request).await.unwrap().status()
        }
    };
    assert_eq!(
        send(Method::GET, "/random/warm-up".into()).await,
        StatusCode::NOT_FOUND
    );
    let odd = Method::from_bytes(b"PURGE").unwrap();
    assert_eq!(
        send(odd.clone(), "/warm/up".into()).await,
        StatusCode::NOT_FOUND
    );
    let before = scrape(&obs).len();

    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    for i in 0..100_000u64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let path = format!("/{seed:x}/{i}/{}", seed.rotate_left(17) % 977);
        let method = if i % 10 == 0 {
            odd.clone()
        } else {
            Method::GET
        };
        assert_eq!(send(method, path).await, StatusCode::NOT_FOUND);
    }
    let after = scrape(&obs);
    assert_eq!(after.len(), before);
    assert_eq!(
        value(
            &after,
            "http_requests_total",
            &[
                ("method", "GET"),
                ("endpoint", "unmatched"),
                ("status_code", "404")
            ]
        ),
        90_001.0
    );
    assert_eq!(
        value(
            &after,
            "http_requests_total",
            &[
                ("method", "_OTHER"),
                ("endpoint", "unmatched"),
                ("status_code", "404")
            ]
        ),
        10_001.0
    );
}

#[tokio::test]
async fn in_flight_returns_to_zero_when_clients_abort_mid_request() {
    let obs = obs(&[]);
    let server = TestServer::start(&obs, app()).await;
    let in_flight = [("method", "GET"), ("endpoint", "/slow")];
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\n\r\n")
            .await
            .unwrap();
        clients.push(stream);
    }
    wait_until("4 requests in flight", || {
        prometheus::sum(&scrape(&obs), "http_requests_in_flight", &in_flight) == 4.0
    })
    .await;
    drop(clients);
    wait_until("in flight back to 0", || {
        prometheus::sum(&scrape(&obs), "http_requests_in_flight", &in_flight) == 0.0
    })
    .await;
    let scraped = scrape(&obs);
    assert_eq!(
        value(
            &scraped,
            "http_requests_total",
            &[in_flight[0], in_flight[1], ("status_code", "499")]
        ),
        4.0
    );
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn active_connections_follows_keep_alive_connections() {
    let obs = obs(&[]);
    let server = TestServer::start(&obs, app()).await;
    let open = || value(&scrape(&obs), "active_connections", &[]);
    let mut connections = Vec::new();
    for expected in 1..=5 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let (head, body) = raw_exchange(
            &mut stream,
            b"GET /hello/keep HTTP/1.1\r\nhost: test\r\n\r\n",
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, "hello");
        connections.push(stream);
        assert_eq!(open(), f64::from(expected));
    }
    // A second request on each keeps the count: they are the same connections.
    for stream in &mut connections {
        raw_exchange(stream, b"GET /hello/again HTTP/1.1\r\nhost: test\r\n\r\n").await;
    }
    assert_eq!(open(), 5.0);
    connections.truncate(2);
    wait_until("3 closed", || open() == 2.0).await;
    drop(connections);
    wait_until("all closed", || open() == 0.0).await;
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn the_scrape_passes_promtool_and_a_real_prometheus_reads_it() {
    let obs = obs(&[]);
    let server = TestServer::start(&obs, app().merge(obs.metrics_router())).await;
    const N: usize = 25;
    for i in 0..N {
        http_get(&server.url(&format!("/hello/{i}")), &[]).await;
    }
    http_get(&server.url("/api/v1/groups/1/stats"), &[]).await;
    let scrape = http_get(&server.url("/metrics"), &[]).await;
    assert_eq!(scrape.status, StatusCode::OK);
    assert_eq!(
        scrape.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8(scrape.body.to_vec()).unwrap();
    for name in [
        "http_requests_total",
        "http_request_duration_seconds",
        "http_requests_in_flight",
        "errors_total",
        "active_connections",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "process_threads",
    ] {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no help for {name}"
        );
    }
    assert!(text.contains("# TYPE http_request_duration_seconds histogram\n"));
    promtool_check(&text).unwrap_or_else(|problems| panic!("promtool: {problems}\n{text}"));

    let prometheus = PrometheusServer::start(server.addr, "/metrics", None).await;
    let query = r#"sum(http_requests_total{job="app",endpoint="/hello/{name}",status_code="200"})"#;
    let scraped = prometheus
        .wait_for_value(query, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("no sample in 30 s; prometheus said:\n{}", prometheus.log()));
    assert_eq!(scraped, N as f64);
    let errors = prometheus
        .wait_for_value(
            r#"errors_total{job="app",error_type="group_not_found",service="metrics-test"}"#,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(errors, Some(1.0));
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn the_token_guards_metrics_and_prometheus_scrapes_with_it() {
    let obs = obs(&[("OBSERVE_METRICS_TOKEN", "s3cret-token")]);
    let server = TestServer::start(&obs, app().merge(obs.metrics_router())).await;
    let url = server.url("/metrics");
    let missing = http_get(&url, &[]).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.header("www-authenticate"), "Bearer");
    assert_eq!(missing.header("content-type"), "application/problem+json");
    let body: serde_json::Value = missing.json();
    assert_eq!(body["error_type"], "unauthorized");
    for wrong in [
        "Bearer s3cret-tokeN",
        "Bearer s3cret",
        "s3cret-token",
        "Basic s3cret-token",
    ] {
        let reply = http_get(&url, &[("authorization", wrong)]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{wrong}");
    }
    let reply = http_get(&url, &[("authorization", "Bearer s3cret-token")]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        String::from_utf8_lossy(&reply.body).contains("# TYPE http_requests_total counter"),
        "the guarded scrape sees earlier requests"
    );

    let prometheus = PrometheusServer::start(server.addr, "/metrics", Some("s3cret-token")).await;
    let up = prometheus
        .wait_for_value(r#"up{job="app"} == 1"#, Duration::from_secs(30))
        .await;
    assert_eq!(up, Some(1.0), "{}", prometheus.log());
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_separate_metrics_server_keeps_metrics_off_the_public_port() {
    let metrics_addr = free_port();
    let obs = obs(&[("OBSERVE_METRICS_ADDR", &metrics_addr.to_string())]);
    assert_eq!(obs.metrics_addr(), Some(metrics_addr));
    let mut server = TestServer::start(&obs, app()).await;
    http_get(&server.url("/hello/x"), &[]).await;
    let public = http_get(&server.url("/metrics"), &[]).await;
    assert_eq!(public.status, StatusCode::NOT_FOUND);

    let private_url = format!("http://{metrics_addr}/metrics");
    let mut reply = None;
    for _ in 0..100 {
        if observe_tests::try_get(&private_url).await == Some(StatusCode::OK) {
            reply = Some(http_get(&private_url, &[]).await);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reply = reply.expect("the metrics server answers");
    let scraped = samples(&String::from_utf8_lossy(&reply.body));
    assert_eq!(
        value(
            &scraped,
            "http_requests_total",
            &[("endpoint", "/hello/{name}"), ("status_code", "200")]
        ),
        1.0
    );
    // The metrics server stops with the application's.
    server.signal_shutdown();
    server.stop(Duration::from_secs(5)).await.unwrap();
    assert_eq!(observe_tests::try_get(&private_url).await, None);
}

#[tokio::test]
async fn a_taken_metrics_address_fails_serve_naming_the_variable() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let obs = obs(&[("OBSERVE_METRICS_ADDR", &addr.to_string())]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = obs
        .serve_with_shutdown(listener, app(), std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
    assert!(
        error.to_string().starts_with(&format!(
            "cannot serve metrics on OBSERVE_METRICS_ADDR={addr}"
        )),
        "{error}"
    );
}
