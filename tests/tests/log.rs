//! The logs, end to end: the real subscriber and writer, each line parsed
//! as JSON. Every test owns its subscriber (`Observability::dispatch` on
//! every runtime thread), so tests run in parallel without sharing output.
#![allow(clippy::unwrap_used)]

use std::{
    fs,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::Duration,
};

use axum::{
    Extension, Router,
    body::Body,
    extract::Path,
    http::{Request, StatusCode},
    routing::{get, post},
};
use observe::{
    AppError, Observability, UserId,
    logging::{FileOutput, Rotation},
};
use observe_tests::{
    TestServer, http_get,
    logs::{LogBuffer, SlowWriter, StalledWriter, keys_in_order, runtime_with},
    post_json, prometheus, raw_exchange, raw_header,
};
use serde_json::Value;
use tokio::{io::AsyncWriteExt, net::TcpStream};
use tower::ServiceExt;
use tracing::Instrument;

const SERVICE: &str = "logs-test";

fn builder() -> observe::ObservabilityBuilder {
    Observability::builder(SERVICE)
        .environment("test")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .env_vars::<&str, &str>([])
}

async fn user(Path(id): Path<u32>) -> (Extension<UserId>, String) {
    (
        Extension(UserId::new(format!("u-{id}"))),
        format!("user {id}"),
    )
}

async fn failing() -> Result<(), AppError> {
    Err(
        AppError::internal(std::io::Error::other("database at 10.0.0.7 refused"))
            .with_context("group_id", 7),
    )
}

async fn deep() -> &'static str {
    fn inner_step() {
        tracing::info!(step = 2, "deep inside");
    }
    inner_step();
    tokio::spawn(async { tracing::info!("in a spawned task") }.in_current_span())
        .await
        .unwrap();
    tokio::spawn(async { tracing::info!("in a detached task") })
        .await
        .unwrap();
    "ok"
}

async fn echo(Path(text): Path<String>) -> &'static str {
    // Client text in an application field, and a secret the app logs by mistake.
    tracing::info!(text = %text, authorization = "Bearer s3cr3t-in-field", "echo");
    "ok"
}

async fn panicking() -> &'static str {
    let detail = String::from("the parser lost its place");
    if !detail.is_empty() {
        panic!("{detail}");
    }
    "unreachable"
}

async fn burst() -> &'static str {
    for line in 0..BURST {
        tracing::info!(line, "burst");
    }
    "ok"
}

const BURST: usize = 300;

fn app() -> Router {
    Router::new()
        .route("/panic", get(panicking))
        .route("/burst", get(burst))
        .route("/users/{id}", get(user))
        .route(
            "/jobs",
            post(|body: String| async move { format!("{} bytes", body.len()) }),
        )
        .route("/failing", get(failing))
        .route("/deep", get(deep))
        .route("/echo/{text}", get(echo))
}

fn full_app(obs: &Observability) -> Router {
    app().merge(obs.health_router()).merge(obs.metrics_router())
}

/// The one line of a request id; fails unless there is exactly one.
fn line_of<'a>(lines: &'a [Value], request_id: &str) -> &'a Value {
    let found: Vec<&Value> = lines
        .iter()
        .filter(|line| line["request_id"] == request_id)
        .collect();
    assert_eq!(found.len(), 1, "lines of {request_id}: {found:?}");
    found[0]
}

#[test]
fn each_request_gives_one_line_with_every_field_and_the_response_id() {
    let buffer = LogBuffer::default();
    let obs = builder().log_writer(buffer.clone()).init().unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let server = TestServer::start(&obs, full_app(&obs)).await;
        let user = http_get(
            &server.url("/users/42?access_token=s3cr3t-query&page=2"),
            &[
                ("user-agent", "curl/8.5 \"quoted\""),
                ("x-forwarded-for", "203.0.113.9"),
                ("authorization", "Bearer s3cr3t-header"),
            ],
        )
        .await;
        assert_eq!(user.status, StatusCode::OK);
        let job = post_json(&server.url("/jobs"), "{\"posts_limit\":10}").await;
        assert_eq!(job.status, StatusCode::OK);
        let failing = http_get(&server.url("/failing"), &[]).await;
        assert_eq!(failing.status, StatusCode::INTERNAL_SERVER_ERROR);
        let missing = http_get(&server.url("/nowhere/9"), &[]).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        for probe in ["/health", "/health/live", "/health/ready", "/metrics"] {
            assert_eq!(
                http_get(&server.url(probe), &[]).await.status,
                StatusCode::OK
            );
        }
        server.stop(Duration::from_secs(10)).await.unwrap();

        let lines = buffer.request_lines();
        assert_eq!(lines.len(), 4, "{lines:#?}");

        let line = line_of(&lines, user.header("x-request-id"));
        let keys = keys_in_order(&buffer.raw_request_line(user.header("x-request-id")));
        assert_eq!(
            keys,
            [
                "timestamp",
                "level",
                "target",
                "message",
                "service",
                "environment",
                "request_id",
                "trace_id",
                "span_id",
                "method",
                "endpoint",
                "path",
                "status_code",
                "duration_ms",
                "request_bytes",
                "response_bytes",
                "user_agent",
                "client_ip",
                "user_id",
            ]
        );
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], "observe_log::request");
        assert_eq!(line["message"], "request finished");
        assert_eq!(line["service"], SERVICE);
        assert_eq!(line["environment"], "test");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["endpoint"], "/users/{id}");
        assert_eq!(line["path"], "/users/42?access_token=[REDACTED]&page=2");
        assert_eq!(line["status_code"], 200);
        assert_eq!(line["request_bytes"], 0);
        assert_eq!(line["response_bytes"], "user 42".len());
        assert_eq!(line["user_agent"], "curl/8.5 \"quoted\"");
        // X-Forwarded-For is not believed without trusted proxies.
        assert_eq!(line["client_ip"], "127.0.0.1");
        assert_eq!(line["user_id"], "u-42");
        let timestamp = line["timestamp"].as_str().unwrap();
        assert_eq!(timestamp.len(), "2026-11-25T21:49:36.123456Z".len());
        assert!(timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T');
        let duration = line["duration_ms"].as_f64().unwrap();
        assert!(duration > 0.0 && duration < 10_000.0);
        // Microsecond precision: at most three decimals.
        assert!((duration * 1000.0 - (duration * 1000.0).round()).abs() < 1e-6);

        let line = line_of(&lines, job.header("x-request-id"));
        assert_eq!(line["method"], "POST");
        assert_eq!(line["endpoint"], "/jobs");
        assert_eq!(line["request_bytes"], "{\"posts_limit\":10}".len());
        assert_eq!(line["response_bytes"], "18 bytes".len());

        let line = line_of(&lines, failing.header("x-request-id"));
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["status_code"], 500);
        assert_eq!(line["error_type"], "internal_error");
        assert_eq!(
            line["error_message"],
            "internal server error: database at 10.0.0.7 refused"
        );
        // Each key of the context is a field a shipper can index.
        assert_eq!(line["context.group_id"], "7");
        assert!(line.get("context").is_none(), "{line}");

        let line = line_of(&lines, missing.header("x-request-id"));
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["endpoint"], "unmatched");
        assert_eq!(line["status_code"], 404);
        assert_eq!(line["error_type"], "not_found");

        // Each error is in the log once: in its request line, nowhere else.
        let all = buffer.lines();
        let mentions = all
            .iter()
            .filter(|line| line.get("error_type").is_some())
            .count();
        assert_eq!(mentions, 2);
        assert!(!buffer.text().contains("s3cr3t"));
    });
}

#[test]
fn events_deep_in_a_handler_and_in_an_instrumented_task_carry_the_request_id() {
    let buffer = LogBuffer::default();
    let obs = builder().log_writer(buffer.clone()).init().unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let server = TestServer::start(&obs, full_app(&obs)).await;
        let reply = http_get(&server.url("/deep"), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        server.stop(Duration::from_secs(10)).await.unwrap();
    });
    let lines = buffer.lines();
    let by_message = |message: &str| -> &Value {
        let found: Vec<&Value> = lines
            .iter()
            .filter(|line| line["message"] == message)
            .collect();
        assert_eq!(found.len(), 1, "{message}: {lines:#?}");
        found[0]
    };
    let request = by_message("request finished");
    let id = request["request_id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    let deep = by_message("deep inside");
    assert_eq!(deep["request_id"], id);
    assert_eq!(deep["step"], 2);
    assert_eq!(deep["target"], "log");
    assert_eq!(by_message("in a spawned task")["request_id"], id);
    // The id comes from span context: a task spawned without it has none.
    assert!(by_message("in a detached task").get("request_id").is_none());
}

#[test]
fn malicious_paths_and_headers_give_one_valid_line_each_and_no_secret() {
    let buffer = LogBuffer::default();
    let obs = builder().log_writer(buffer.clone()).init().unwrap();
    let runtime = runtime_with(obs.dispatch());
    let long = "A".repeat(10 * 1024);
    runtime.block_on(async {
        let server = TestServer::start(&obs, full_app(&obs)).await;
        let forged = "%0D%0A%7B%22level%22:%22ERROR%22,%22message%22:%22forged%22%7D%0A%00%1B%5B31m";
        let requests: Vec<Vec<u8>> = vec![
            // CRLF, quotes, NUL and an ANSI escape, decoded into a handler field.
            format!("GET /echo/{forged} HTTP/1.1\r\nhost: x\r\n\r\n").into_bytes(),
            // Invalid UTF-8, raw in a header and encoded in the path.
            b"GET /echo/%FF%FE HTTP/1.1\r\nhost: x\r\nuser-agent: bad\xff\xfe\"\\ agent\r\n\r\n"
                .to_vec(),
            // Quotes and backslashes in the path itself.
            b"GET /echo/\"quoted\"\\back HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            // 10 kB in the path and in a header.
            format!("GET /echo/{long} HTTP/1.1\r\nhost: x\r\nuser-agent: {long}\r\n\r\n")
                .into_bytes(),
            // Secrets in every place a client can put them.
            b"GET /users/1?token=s3cr3t-1&password=s3cr3t-2&api_key=s3cr3t-3&%6Bey=s3cr3t-4 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer s3cr3t-5\r\ncookie: session=s3cr3t-6\r\nx-api-key: s3cr3t-7\r\nproxy-authorization: Basic s3cr3t-8\r\n\r\n"
                .to_vec(),
        ];
        let mut ids = Vec::new();
        for request in &requests {
            let mut stream = TcpStream::connect(server.addr).await.unwrap();
            let (head, _) = raw_exchange(&mut stream, request).await;
            ids.push(raw_header(&head, "x-request-id").unwrap().to_owned());
            stream.shutdown().await.unwrap();
        }
        server.stop(Duration::from_secs(10)).await.unwrap();

        let text = buffer.text();
        assert!(!text.contains("s3cr3t"), "a secret reached the log");
        assert!(!text.contains('\u{1b}') && !text.contains('\0'));
        let lines = buffer.lines();
        let requests = buffer.request_lines();
        assert_eq!(requests.len(), 5);
        for id in &ids {
            line_of(&requests, id);
        }
        let forged_line = line_of(&requests, &ids[0]);
        assert_eq!(forged_line["status_code"], 200);
        assert!(lines.iter().all(|line| line["message"] != "forged"));
        let echo: Vec<&Value> = lines.iter().filter(|line| line["message"] == "echo").collect();
        assert_eq!(echo.len(), 3, "{echo:#?}");
        assert_eq!(
            echo[0]["text"],
            "\r\n{\"level\":\"ERROR\",\"message\":\"forged\"}\n\u{0}\u{1b}[31m"
        );
        assert_eq!(echo[0]["authorization"], "[REDACTED]");
        let bad_utf8 = line_of(&requests, &ids[1]);
        // axum refuses a path segment that is not UTF-8; the line is still whole.
        assert_eq!(bad_utf8["status_code"], 400);
        assert_eq!(bad_utf8["path"], "/echo/%FF%FE");
        assert_eq!(bad_utf8["user_agent"], "bad\u{fffd}\u{fffd}\"\\ agent");
        assert_eq!(echo[1]["text"], "\"quoted\"\\back");
        let long_line = line_of(&requests, &ids[3]);
        // 10 kB values are cut at MAX_FIELD_BYTES, and say so.
        let capped = observe::logging::MAX_FIELD_BYTES + observe::logging::TRUNCATED_MARK.len();
        for value in [&long_line["user_agent"], &echo[2]["text"]] {
            let value = value.as_str().unwrap();
            assert_eq!(value.len(), capped);
            assert!(value.ends_with(observe::logging::TRUNCATED_MARK));
        }
        let secrets = line_of(&requests, &ids[4]);
        assert_eq!(
            secrets["path"],
            "/users/1?token=[REDACTED]&password=[REDACTED]&api_key=[REDACTED]&%6Bey=[REDACTED]"
        );
    });
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("observe-log-e2e-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_log_file_rotates_by_size_and_keeps_max_files_from_the_environment() {
    let dir = temp_dir("size");
    let path = dir.join("service.log");
    let obs = Observability::builder(SERVICE)
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .env_vars([
            ("OBSERVE_LOG_FILE", path.to_str().unwrap()),
            ("OBSERVE_LOG_MAX_BYTES", "4KB"),
            ("OBSERVE_LOG_MAX_FILES", "3"),
            ("OBSERVE_LOG_ROTATION", "daily"),
        ])
        .init()
        .unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let app = app().layer(obs.layer());
        for user in 0..200 {
            let request = Request::get(format!("/users/{user}"))
                .body(Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    });
    obs.flush_logs(Duration::from_secs(5)).unwrap();
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    // 200 lines of about 400 bytes: about 20 files were written, 3 rotated kept.
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names[3], "service.log");
    let mut users = Vec::new();
    for name in &names {
        let text = fs::read_to_string(dir.join(name)).unwrap();
        assert!(text.len() <= 4096, "{name} has {} bytes", text.len());
        for line in text.lines() {
            let line: Value = serde_json::from_str(line).unwrap();
            users.push(line["path"].as_str().unwrap().to_owned());
        }
    }
    // What is kept is the newest lines, in order, none lost between files.
    let last = users.len();
    let expected: Vec<String> = (200 - last..200)
        .map(|user| format!("/users/{user}"))
        .collect();
    assert_eq!(users, expected);
    assert!(last >= 3 * 8, "{last}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn file_and_stdout_outputs_and_bad_values_are_named() {
    for (variable, value) in [
        ("OBSERVE_LOG_FORMAT", "xml"),
        ("OBSERVE_LOG_SCHEMA", "gelf"),
        ("OBSERVE_LOG_OUTPUT", "file"),
        ("OBSERVE_LOG_LOSSLESS", "maybe"),
        ("OBSERVE_LOG_QUEUE_CAPACITY", "0"),
        ("OBSERVE_LOG_TRUSTED_PROXIES", "10.0.0.0/33"),
        ("RUST_LOG", "info,[=bad"),
    ] {
        let error = builder().env_vars([(variable, value)]).init().unwrap_err();
        assert_eq!(error.variable(), variable, "{error}");
        assert_eq!(error.value(), value);
    }
    let dir = temp_dir("bad-file");
    fs::write(dir.join("not-a-dir"), "").unwrap();
    let path = dir.join("not-a-dir").join("app.log");
    let error = builder()
        .env_vars([
            ("OBSERVE_LOG_FILE", path.to_str().unwrap()),
            ("OBSERVE_LOG_MAX_BYTES", "10MB"),
        ])
        .init()
        .unwrap_err();
    assert_eq!(error.variable(), "OBSERVE_LOG_FILE");
    let error = builder()
        .env_vars([
            ("OBSERVE_LOG_FILE", dir.join("ok.log").to_str().unwrap()),
            ("OBSERVE_LOG_MAX_BYTES", "ten"),
        ])
        .init()
        .unwrap_err();
    assert_eq!(error.variable(), "OBSERVE_LOG_MAX_BYTES");

    // Both: the same lines in the file and in the writer standing in for stdout.
    let buffer = LogBuffer::default();
    let path = dir.join("both.log");
    let obs = builder()
        .log_writer(buffer.clone())
        .log_file(FileOutput::new(&path).rotation(Rotation::Hourly))
        .log_output(observe::LogOutput::Both)
        .init()
        .unwrap();
    tracing::dispatcher::with_default(obs.dispatch(), || tracing::warn!(code = 7, "to both"));
    obs.flush_logs(Duration::from_secs(5)).unwrap();
    let in_file = fs::read_to_string(&path).unwrap();
    assert_eq!(in_file, buffer.text());
    assert_eq!(buffer.lines().len(), 1);
    assert_eq!(buffer.lines()[0]["code"], 7);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn lossless_mode_keeps_every_line_of_ten_thousand_concurrent_requests() {
    const REQUESTS: usize = 10_000;
    let stalled = StalledWriter::default();
    let obs = builder()
        .log_writer(stalled.clone())
        .log_lossless(true)
        .log_queue_capacity(64)
        .init()
        .unwrap();
    let runtime = runtime_with(obs.dispatch());
    // The writer starts stalled, so the queue is full at once and loggers wait.
    let opener = {
        let stalled = stalled.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            stalled.open();
        })
    };
    let ok = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        let app = app().layer(obs.layer());
        let tasks: Vec<_> = (0..REQUESTS)
            .map(|user| {
                let app = app.clone();
                let ok = ok.clone();
                tokio::spawn(async move {
                    let request = Request::get(format!("/users/{user}"))
                        .body(Body::empty())
                        .unwrap();
                    if app.oneshot(request).await.unwrap().status() == StatusCode::OK {
                        ok.fetch_add(1, Relaxed);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    opener.join().unwrap();
    obs.flush_logs(Duration::from_secs(10)).unwrap();
    assert_eq!(ok.load(Relaxed), REQUESTS);
    let lines = stalled.buffer.request_lines();
    assert_eq!(lines.len(), REQUESTS);
    let mut users: Vec<String> = lines
        .iter()
        .map(|line| line["user_id"].as_str().unwrap().to_owned())
        .collect();
    users.sort();
    users.dedup();
    assert_eq!(users.len(), REQUESTS);
    assert_eq!(obs.log_handle().dropped_lines(), 0);
    assert_eq!(obs.log_handle().written_lines(), REQUESTS as u64);
}

#[test]
fn a_stalled_writer_drops_and_counts_without_holding_requests() {
    const REQUESTS: usize = 2_000;
    let stalled = StalledWriter::default();
    let obs = builder()
        .log_writer(stalled.clone())
        .log_queue_capacity(64)
        .init()
        .unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let app = app().layer(obs.layer());
        let tasks: Vec<_> = (0..REQUESTS)
            .map(|user| {
                let app = app.clone();
                tokio::spawn(async move {
                    let request = Request::get(format!("/users/{user}"))
                        .body(Body::empty())
                        .unwrap();
                    app.oneshot(request).await.unwrap().status()
                })
            })
            .collect();
        // The writer never moves while they run: had a request waited for
        // it, this would time out.
        let all = futures_util::future::join_all(tasks);
        let statuses = tokio::time::timeout(Duration::from_secs(30), all)
            .await
            .expect("requests finish while the writer is stalled");
        assert!(
            statuses
                .into_iter()
                .all(|status| status.unwrap() == StatusCode::OK)
        );
    });
    let dropped = obs.log_handle().dropped_lines();
    // The queue holds 64 and the writer one in hand; the rest are dropped.
    assert!(
        (REQUESTS as u64 - 65..=REQUESTS as u64 - 64).contains(&dropped),
        "{dropped}"
    );
    let samples = prometheus::samples(&obs.metrics().render());
    assert_eq!(
        prometheus::value(&samples, "log_lines_dropped_total", &[("service", SERVICE)]),
        dropped as f64
    );

    stalled.open();
    obs.flush_logs(Duration::from_secs(10)).unwrap();
    let lines = stalled.buffer.lines();
    let requests = stalled.buffer.request_lines();
    assert_eq!(requests.len() as u64 + dropped, REQUESTS as u64);
    assert_eq!(obs.log_handle().written_lines(), requests.len() as u64);
    // One warning says how many were lost, once writing resumed.
    let summaries: Vec<&Value> = lines
        .iter()
        .filter(|line| line.get("dropped_lines").is_some())
        .collect();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0]["level"], "WARN");
    assert_eq!(summaries[0]["dropped_lines"], dropped);
    assert_eq!(lines.last(), Some(summaries[0]));
}

#[test]
fn the_ecs_schema_uses_ecs_names() {
    let buffer = LogBuffer::default();
    let obs = builder()
        .log_writer(buffer.clone())
        .env_vars([("OBSERVE_LOG_SCHEMA", "ecs")])
        .init()
        .unwrap();
    let runtime = runtime_with(obs.dispatch());
    let id = runtime.block_on(async {
        let app = app().layer(obs.layer());
        let request = Request::get("/failing?token=s3cr3t")
            .header("user-agent", "ecs-test")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let span = tracing::info_span!(
            "traced",
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
            span_id = "00f067aa0ba902b7"
        );
        span.in_scope(|| tracing::info!("in a traced span"));
        response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned()
    });
    obs.flush_logs(Duration::from_secs(5)).unwrap();
    let lines = buffer.lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let line = &lines[0];
    let keys = keys_in_order(&buffer.raw_request_line(&id));
    assert_eq!(
        keys,
        [
            "@timestamp",
            "log.level",
            "log.logger",
            "message",
            "service.name",
            "service.environment",
            "ecs.version",
            "http.request.id",
            "trace.id",
            "span.id",
            "http.request.method",
            "http.route",
            "url.path",
            "http.response.status_code",
            "event.duration",
            "http.request.body.bytes",
            "http.response.body.bytes",
            "user_agent.original",
            "error.type",
            "error.message",
            "labels.group_id",
        ]
    );
    assert_eq!(line["log.level"], "error");
    assert_eq!(line["service.name"], SERVICE);
    assert_eq!(line["http.request.id"], id);
    assert_eq!(line["http.request.method"], "GET");
    assert_eq!(line["url.path"], "/failing?token=[REDACTED]");
    assert_eq!(line["http.response.status_code"], 500);
    assert!(
        line["event.duration"]
            .as_u64()
            .is_some_and(|nanos| nanos > 0)
    );
    assert_eq!(line["error.type"], "internal_error");
    assert_eq!(
        line["error.message"],
        "internal server error: database at 10.0.0.7 refused"
    );
    assert_eq!(line["labels.group_id"], "7");
    let traced = &lines[1];
    assert_eq!(traced["trace.id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(traced["span.id"], "00f067aa0ba902b7");
    assert_eq!(traced["log.level"], "info");
}

#[test]
fn a_panic_is_one_error_line_with_its_message_and_location() {
    let buffer = LogBuffer::default();
    let obs = builder().log_writer(buffer.clone()).init().unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let server = TestServer::start(&obs, full_app(&obs)).await;
        let reply = http_get(&server.url("/panic"), &[]).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        // The client sees none of it.
        assert!(!String::from_utf8_lossy(&reply.body).contains("lost its place"));
        server.stop(Duration::from_secs(10)).await.unwrap();
        let lines = buffer.request_lines();
        let line = line_of(&lines, reply.header("x-request-id"));
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["status_code"], 500);
        assert_eq!(line["endpoint"], "/panic");
        assert_eq!(line["error_type"], "panic");
        assert_eq!(line["error_message"], "the parser lost its place");
        assert_eq!(line["panic"], true);
        let location = line["context.location"].as_str().unwrap();
        assert!(location.starts_with("tests/tests/log.rs:"), "{location}");
        let mentions = buffer
            .lines()
            .iter()
            .filter(|line| line.get("error_type").is_some())
            .count();
        assert_eq!(mentions, 1);
    });
}

#[test]
fn serve_flushes_every_accepted_line_before_it_returns() {
    let slow = SlowWriter {
        delay: Duration::from_millis(1),
        buffer: LogBuffer::default(),
    };
    let obs = builder().log_writer(slow.clone()).init().unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let server = TestServer::start(&obs, full_app(&obs)).await;
        let reply = http_get(&server.url("/burst"), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        // At a millisecond a line, the writer is far behind here.
        let written_before_stop = slow.buffer.lines().len();
        assert!(written_before_stop < BURST, "{written_before_stop}");
        server.stop(Duration::from_secs(20)).await.unwrap();
        let lines = slow.buffer.lines();
        let bursts = lines
            .iter()
            .filter(|line| line["message"] == "burst")
            .count();
        assert_eq!(bursts, BURST);
        assert_eq!(slow.buffer.request_lines().len(), 1);
        // Lines logged during the shutdown itself are in too.
        let drained = lines
            .iter()
            .filter(|line| line["message"] == "drained, shutdown complete")
            .count();
        assert_eq!(drained, 1);
    });
}

#[test]
fn rust_log_filters_events_but_never_the_request_id() {
    let buffer = LogBuffer::default();
    let obs = builder()
        .log_writer(buffer.clone())
        .env_vars([("RUST_LOG", "warn")])
        .init()
        .unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let app = Router::new()
            .route(
                "/",
                get(|| async {
                    tracing::info!("filtered out");
                    tracing::warn!("kept");
                    "ok"
                }),
            )
            .layer(obs.layer());
        let response = app
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        obs.flush_logs(Duration::from_secs(5)).unwrap();
        let lines = buffer.lines();
        // The INFO request line is filtered too; the warning keeps its id.
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert_eq!(lines[0]["message"], "kept");
        assert_eq!(lines[0]["request_id"], id.as_str());
    });
}

#[test]
fn forwarded_for_names_the_client_behind_a_trusted_proxy() {
    let buffer = LogBuffer::default();
    let obs = builder()
        .log_writer(buffer.clone())
        .env_vars([("OBSERVE_LOG_TRUSTED_PROXIES", "127.0.0.0/8, ::1")])
        .init()
        .unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let server = TestServer::start(&obs, full_app(&obs)).await;
        let reply = http_get(
            &server.url("/users/1"),
            &[("x-forwarded-for", "198.51.100.7, 203.0.113.9")],
        )
        .await;
        server.stop(Duration::from_secs(10)).await.unwrap();
        let lines = buffer.request_lines();
        let line = line_of(&lines, reply.header("x-request-id"));
        // The rightmost address the trusted proxy saw; the left one is the
        // client's own claim.
        assert_eq!(line["client_ip"], "203.0.113.9");
    });
}

#[test]
fn obs_router_logs_and_ids_unmatched_requests_and_keeps_probes_out() {
    let buffer = LogBuffer::default();
    let obs = builder().log_writer(buffer.clone()).init().unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = {
            let obs = obs.clone();
            let app = obs.router(app());
            tokio::spawn(async move {
                obs.serve_with_shutdown(listener, app, async {
                    let _ = stopped.await;
                })
                .await
            })
        };
        let url = |path: &str| format!("http://{addr}{path}");
        let missing = http_get(&url("/no/such/route"), &[]).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.header("content-type"), "application/problem+json");
        let problem: Value = missing.json();
        assert_eq!(problem["request_id"], missing.header("x-request-id"));
        let user = http_get(&url("/users/5"), &[]).await;
        assert_eq!(user.status, StatusCode::OK);
        for probe in [
            "/metrics",
            "/health",
            "/health/live",
            "/alerts",
            "/status/red",
        ] {
            let reply = http_get(&url(probe), &[]).await;
            assert_eq!(reply.status, StatusCode::OK, "{probe}");
            // Outside the stack (no line, no count), but with an id.
            assert_eq!(reply.header("x-request-id").len(), 36, "{probe}");
            let kept = http_get(&url(probe), &[("x-request-id", "probe-1")]).await;
            assert_eq!(kept.header("x-request-id"), "probe-1", "{probe}");
        }
        let scrape = http_get(&url("/metrics"), &[]).await;
        let samples = prometheus::samples(std::str::from_utf8(&scrape.body).unwrap());
        assert_eq!(
            prometheus::sum(
                &samples,
                "http_requests_total",
                &[("endpoint", "unmatched")]
            ),
            1.0
        );
        assert_eq!(
            prometheus::sum(
                &samples,
                "http_requests_total",
                &[("endpoint", "/users/{id}")]
            ),
            1.0
        );
        let _ = stop.send(());
        server.await.unwrap().unwrap();
        let lines = buffer.request_lines();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        let line = line_of(&lines, missing.header("x-request-id"));
        assert_eq!(line["endpoint"], "unmatched");
        assert_eq!(line["status_code"], 404);
        assert_eq!(line["path"], "/no/such/route");
        assert_eq!(
            line_of(&lines, user.header("x-request-id"))["endpoint"],
            "/users/{id}"
        );
    });
}

#[test]
fn obs_router_observes_the_app_fallback_and_app_routes_at_paths_it_does_not_serve() {
    let buffer = LogBuffer::default();
    // Alerting off: `/alerts` is not a built-in route, so the app's own is
    // observed like any other.
    let obs = builder()
        .log_writer(buffer.clone())
        .env_vars([("OBSERVE_ALERTS", "false")])
        .init()
        .unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let app = Router::new()
            .route("/alerts", get(|| async { "the app's alerts" }))
            .fallback(|| async { (StatusCode::IM_A_TEAPOT, "the app's fallback") });
        let server = TestServer::serve(&obs, obs.router(app)).await;
        let alerts = http_get(&server.url("/alerts"), &[]).await;
        assert_eq!(alerts.status, StatusCode::OK);
        assert_eq!(&alerts.body[..], b"the app's alerts");
        let missing = http_get(&server.url("/no/such/route"), &[]).await;
        assert_eq!(missing.status, StatusCode::IM_A_TEAPOT);
        let live = http_get(&server.url("/health/live"), &[]).await;
        assert_eq!(live.status, StatusCode::OK);
        assert_eq!(live.header("x-request-id").len(), 36);
        server.stop(Duration::from_secs(10)).await.unwrap();
        let lines = buffer.request_lines();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert_eq!(
            line_of(&lines, alerts.header("x-request-id"))["endpoint"],
            "/alerts"
        );
        let fallback = line_of(&lines, missing.header("x-request-id"));
        assert_eq!(fallback["endpoint"], "unmatched");
        assert_eq!(fallback["status_code"], 418);
    });
}

#[test]
#[should_panic(expected = "Overlapping method route")]
fn obs_router_refuses_an_app_route_at_a_built_in_path() {
    let obs = builder().init().unwrap();
    let app = Router::new().route("/metrics", get(|| async { "mine" }));
    let _ = obs.router(app);
}

#[test]
fn request_line_levels_and_excluded_paths_are_configurable() {
    let buffer = LogBuffer::default();
    let obs = builder()
        .log_writer(buffer.clone())
        .log_levels(
            tracing::Level::DEBUG,
            tracing::Level::INFO,
            tracing::Level::WARN,
        )
        .env_vars([
            ("RUST_LOG", "debug"),
            ("OBSERVE_LOG_EXCLUDE_PATHS", "/users/1, /jobs*"),
        ])
        .init()
        .unwrap();
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let app = app().layer(obs.layer());
        for path in ["/users/1", "/users/2", "/nowhere", "/failing", "/jobs"] {
            let request = Request::get(path).body(Body::empty()).unwrap();
            let _ = app.clone().oneshot(request).await.unwrap();
        }
    });
    obs.flush_logs(Duration::from_secs(5)).unwrap();
    let seen: Vec<(String, String)> = buffer
        .request_lines()
        .iter()
        .map(|line| {
            (
                line["path"].as_str().unwrap().to_owned(),
                line["level"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("/users/2", "DEBUG"),
        ("/nowhere", "INFO"),
        ("/failing", "WARN"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(path, level)| ((*path).to_owned(), (*level).to_owned()))
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn the_pretty_format_is_one_readable_line_per_event() {
    let buffer = LogBuffer::default();
    let obs = builder()
        .log_writer(buffer.clone())
        .env_vars([("OBSERVE_LOG_FORMAT", "pretty")])
        .init()
        .unwrap();
    tracing::dispatcher::with_default(obs.dispatch(), || {
        tracing::info!(group_id = 42, text = "two\nlines", "parsed");
    });
    obs.flush_logs(Duration::from_secs(5)).unwrap();
    let text = buffer.text();
    assert_eq!(text.lines().count(), 1, "{text:?}");
    let line = text.trim_end();
    assert!(
        serde_json::from_str::<Value>(line).is_err(),
        "not JSON: {line}"
    );
    // A writer is not a terminal: no colours.
    assert!(!line.contains('\u{1b}'));
    assert!(
        line.ends_with(" INFO log: parsed group_id=42 text=\"two\\nlines\""),
        "{line}"
    );
}

#[test]
fn a_100_kb_header_value_is_cut_and_marked_not_written_whole() {
    let buffer = LogBuffer::default();
    let obs = builder().log_writer(buffer.clone()).init().unwrap();
    let runtime = runtime_with(obs.dispatch());
    let agent = format!("agent/{}", "x".repeat(100 * 1024));
    runtime.block_on(async {
        let server = TestServer::start(&obs, app()).await;
        let reply = http_get(&server.url("/users/3"), &[("user-agent", &agent)]).await;
        assert_eq!(reply.status, StatusCode::OK);
        server.stop(Duration::from_secs(5)).await.unwrap();
    });
    obs.flush_logs(Duration::from_secs(5)).unwrap();
    let text = buffer.text();
    let line = text
        .lines()
        .find(|line| line.contains("\"user_agent\""))
        .unwrap();
    assert!(line.len() < 6 * 1024, "{} bytes", line.len());
    let parsed: Value = serde_json::from_str(line).unwrap();
    let logged = parsed["user_agent"].as_str().unwrap();
    assert!(
        logged.ends_with(observe::logging::TRUNCATED_MARK),
        "{}",
        &logged[logged.len() - 40..]
    );
    assert_eq!(
        logged.len(),
        observe::logging::MAX_FIELD_BYTES + observe::logging::TRUNCATED_MARK.len()
    );
    assert!(agent.starts_with(logged.trim_end_matches(observe::logging::TRUNCATED_MARK)));
}
