use std::{convert::Infallible, time::Duration};

use axum::body::Body;
use http::{Request, Response, StatusCode};
use observe_errors::ErrorCaptureLayer;
use observe_request_id::RequestIdLayer;
use serde_json::Value;
use tower::{Layer, ServiceExt, service_fn};

use super::*;
use crate::{Logging, test_support::Buffer};

/// Runs `test` under a subscriber writing to a buffer; returns the lines.
async fn lines<F: Future<Output = ()>>(test: F) -> Vec<Value> {
    lines_in(|logging| logging.dispatch("info"), test).await.0
}

/// Runs `test` under the subscriber `subscriber` makes of a [`Logging`]
/// writing to a buffer; returns the lines and that subscriber.
async fn lines_in<F: Future<Output = ()>>(
    subscriber: impl FnOnce(&Logging) -> Result<tracing::Dispatch, crate::FilterError>,
    test: F,
) -> (Vec<Value>, tracing::Dispatch) {
    let buffer = Buffer::default();
    let logging = Logging::builder("svc")
        .writer(buffer.clone())
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    let dispatch = subscriber(&logging).unwrap_or_else(|error| panic!("{error}"));
    {
        let _default = tracing::dispatcher::set_default(&dispatch);
        test.await;
    }
    assert_eq!(logging.handle().flush(Duration::from_secs(5)), Ok(()));
    let lines = buffer
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect();
    (lines, dispatch)
}

/// The status the test services answer `path` with.
fn status_of(path: &str) -> StatusCode {
    match path {
        "/missing" => StatusCode::NOT_FOUND,
        "/moved" => StatusCode::MOVED_PERMANENTLY,
        "/broken" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::OK,
    }
}

fn request_lines(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|line| line["target"] == LINE_TARGET)
        .collect()
}

fn stack<S>(
    inner: S,
) -> observe_request_id::RequestIdService<RequestLog<observe_errors::ErrorCapture<S>>> {
    RequestIdLayer::new().layer(
        RequestLogLayer::new().layer(ErrorCaptureLayer::new().log_errors(false).layer(inner)),
    )
}

#[tokio::test]
async fn a_request_gives_one_line_with_its_id() {
    let lines = lines(async {
        let service = stack(service_fn(|_: Request<Body>| async {
            tracing::info!("inside");
            Ok::<_, Infallible>(Response::new(Body::from("hello")))
        }));
        let request = Request::get("/things?token=s3cr3t&page=2")
            .header("user-agent", "curl/8")
            .body(Body::empty())
            .unwrap_or_default();
        let response = ok(service.oneshot(request).await);
        assert_eq!(response.status(), StatusCode::OK);
    })
    .await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    let line = request_lines(&lines)[0];
    assert_eq!(line["message"], "request finished");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["endpoint"], UNMATCHED);
    assert_eq!(line["path"], "/things?token=[REDACTED]&page=2");
    assert_eq!(line["status_code"], 200);
    assert_eq!(line["response_bytes"], 5);
    assert_eq!(line["request_bytes"], 0);
    assert_eq!(line["user_agent"], "curl/8");
    assert!(line["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert!(line.get("aborted").is_none() && line.get("error_type").is_none());
    let id = line["request_id"].as_str().unwrap_or_default();
    assert_eq!(id.len(), 36);
    assert_eq!(lines[0]["message"], "inside");
    assert_eq!(lines[0]["request_id"], id);
}

fn ok<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

const UNMATCHED: &str = crate::UNMATCHED_ENDPOINT;

#[tokio::test]
async fn a_panic_in_call_is_one_error_line_with_message_and_location() {
    let lines = lines(async {
        let service = stack(tower::service_fn(
            |_: Request<Body>| -> std::future::Ready<Result<Response<Body>, Infallible>> {
                panic!("broken in call")
            },
        ));
        let response = service
            .oneshot(Request::get("/p").body(Body::empty()).unwrap_or_default())
            .await;
        assert_eq!(ok(response).status(), StatusCode::INTERNAL_SERVER_ERROR);
    })
    .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["status_code"], 500);
    assert_eq!(line["error_type"], "panic");
    assert_eq!(line["error_message"], "broken in call");
    assert_eq!(line["panic"], true);
    assert!(
        line["context.location"]
            .as_str()
            .is_some_and(|location| location.contains("request/tests.rs:")),
        "{line}"
    );
    assert!(line.get("context").is_none(), "{line}");
}

#[tokio::test]
async fn a_panic_in_the_future_is_one_error_line() {
    let lines = lines(async {
        let service = stack(service_fn(|_: Request<Body>| async {
            if true {
                panic!("broken in future");
            }
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }));
        let response = service
            .oneshot(Request::get("/p").body(Body::empty()).unwrap_or_default())
            .await;
        assert_eq!(ok(response).status(), StatusCode::INTERNAL_SERVER_ERROR);
    })
    .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["error_message"], "broken in future");
    assert_eq!(lines[0]["request_id"].as_str().map(str::len), Some(36));
}

#[tokio::test]
async fn levels_follow_the_status_and_excluded_paths_are_silent() {
    let lines = lines(async {
        let service = stack(service_fn(|request: Request<Body>| async move {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = status_of(request.uri().path());
            Ok::<_, Infallible>(response)
        }));
        for path in [
            "/missing",
            "/moved",
            "/health/ready",
            "/metrics",
            "/metrics2",
        ] {
            let request = Request::get(path).body(Body::empty()).unwrap_or_default();
            let _ = service.clone().oneshot(request).await;
        }
    })
    .await;
    let seen: Vec<(&str, &str)> = lines
        .iter()
        .map(|line| {
            (
                line["path"].as_str().unwrap_or_default(),
                line["level"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("/missing", "WARN"),
            ("/moved", "INFO"),
            ("/metrics2", "INFO")
        ]
    );
    assert_eq!(lines[0]["error_type"], "not_found");
}

#[tokio::test]
async fn a_dropped_request_is_logged_as_aborted() {
    let lines = lines(async {
        // The handler says when it has worked 20 ms; then the request is
        // dropped, as when a client goes away.
        let (worked, has_worked) = tokio::sync::oneshot::channel::<()>();
        let mut worked = Some(worked);
        let service = stack(service_fn(move |_: Request<Body>| {
            let worked = worked.take();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Some(worked) = worked {
                    let _ = worked.send(());
                }
                std::future::pending::<()>().await;
                Ok::<_, Infallible>(Response::new(Body::empty()))
            }
        }));
        let request = Request::post("/slow")
            .body(Body::from("abc"))
            .unwrap_or_default();
        let mut call = Box::pin(service.oneshot(request));
        tokio::select! {
            _ = &mut call => panic!("the handler never answers"),
            _ = has_worked => {}
        }
        drop(call);
    })
    .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["status_code"], CLIENT_CLOSED_STATUS);
    assert_eq!(lines[0]["aborted"], true);
    assert_eq!(lines[0]["message"], "request aborted");
    assert_eq!(lines[0]["method"], "POST");
    assert_eq!(lines[0]["request_bytes"], 3);
    // tokio's timer works in whole milliseconds and may fire a fraction of
    // one before the 20 ms a finer clock reads; the duration is real, not 0.
    assert!(
        lines[0]["duration_ms"]
            .as_f64()
            .is_some_and(|ms| ms >= 19.0),
        "{lines:?}"
    );
}

#[tokio::test]
async fn user_id_from_the_response_extensions() {
    let lines = lines(async {
        let service = stack(service_fn(|_: Request<Body>| async {
            let mut response = Response::new(Body::empty());
            response.extensions_mut().insert(UserId::new("u-42"));
            Ok::<_, Infallible>(response)
        }));
        let _ = service
            .oneshot(Request::get("/me").body(Body::empty()).unwrap_or_default())
            .await;
    })
    .await;
    assert_eq!(lines[0]["user_id"], "u-42");
}

/// The lines of a few varied requests (every field of the request line, a
/// panic with its context, escaping, a value past the length cap, an
/// aborted request), as `dispatch` writes them; timestamps and durations
/// masked.
async fn varied_lines(
    format: crate::Format,
    schema: crate::Schema,
    dispatch: impl Fn(&Logging) -> tracing::Dispatch,
) -> Vec<String> {
    let buffer = Buffer::default();
    let logging = Logging::builder("svc")
        .format(format)
        .schema(schema)
        .writer(buffer.clone())
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    let dispatch = dispatch(&logging);
    {
        let _default = tracing::dispatcher::set_default(&dispatch);
        let service = stack(service_fn(|request: Request<Body>| async move {
            match request.uri().path() {
                "/panic" => panic!("broken \"here\""),
                "/slow" => std::future::pending().await,
                "/missing" => Ok::<_, Infallible>(
                    Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .body(Body::empty())
                        .unwrap_or_default(),
                ),
                _ => {
                    let mut response = Response::new(Body::from("hello"));
                    response.extensions_mut().insert(UserId::new("u-\"42\""));
                    Ok(response)
                }
            }
        }));
        let peer: std::net::SocketAddr = ([10, 1, 2, 3], 5000).into();
        let requests = [
            Request::get("/things?token=s3cr3t&page=2")
                .header("user-agent", "curl/8 \"quoted\" \u{2028} é")
                .extension(axum::extract::ConnectInfo(peer)),
            Request::builder()
                .method("PURGE")
                .uri("/missing")
                .header("user-agent", "x".repeat(crate::MAX_FIELD_BYTES + 10)),
            Request::get("/panic"),
        ];
        for (index, request) in requests.into_iter().enumerate() {
            // A client's id may hold a quote.
            let request = request
                .header("x-request-id", format!("req-\"{index}\""))
                .body(Body::from("abc"))
                .unwrap_or_default();
            let _ = service.clone().oneshot(request).await;
        }
        let request = Request::get("/slow")
            .header("x-request-id", "req-slow")
            .body(Body::empty())
            .unwrap_or_default();
        let mut call = Box::pin(service.oneshot(request));
        let pending =
            std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx).is_pending()))
                .await;
        assert!(pending);
        drop(call);
    }
    assert_eq!(logging.handle().flush(Duration::from_secs(5)), Ok(()));
    buffer.text().lines().map(mask).collect()
}

/// The line without its timestamp and with its duration as `D`.
fn mask(line: &str) -> String {
    let line = match line.strip_prefix('{') {
        // `{"timestamp":"...",` or `{"@timestamp":"...",`
        Some(json) => json.split_once("\",").map_or(line, |(_, rest)| rest),
        None => line.split_once(' ').map_or(line, |(_, rest)| rest),
    };
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = ["duration_ms\":", "event.duration\":", "duration_ms="]
        .iter()
        .filter_map(|key| rest.find(key).map(|at| at + key.len()))
        .min()
    {
        out.push_str(&rest[..at]);
        out.push('D');
        rest = rest[at..].trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn a_line_written_without_the_event_is_the_events_line() {
    use crate::{Format, Schema};

    for (format, schema) in [
        (Format::Json, Schema::Flat),
        (Format::Json, Schema::Ecs),
        (Format::Pretty, Schema::Flat),
    ] {
        // `dispatch` writes request lines itself; a subscriber with a layer
        // that may read them sends them through the event.
        let direct = varied_lines(format, schema, |logging| {
            logging
                .dispatch("info")
                .unwrap_or_else(|error| panic!("{error}"))
        })
        .await;
        let through_the_event = varied_lines(format, schema, |logging| {
            let other = tracing_subscriber::layer::Identity::new();
            logging
                .dispatch_with("info", Some(Box::new(other)))
                .unwrap_or_else(|error| panic!("{error}"))
        })
        .await;
        assert_eq!(direct.len(), 4, "{direct:#?}");
        assert_eq!(direct, through_the_event, "{format:?} {schema:?}");
        let all = direct.join("\n");
        for expected in [
            r#"req-\"0\""#,
            r#"req-\"2\""#,
            "req-slow",
            "PURGE",
            "10.1.2.3",
            "[REDACTED]",
        ] {
            assert!(all.contains(expected), "{expected}: {all}");
        }
    }
}

#[tokio::test]
async fn a_request_inside_a_span_carries_its_fields_on_the_line() {
    use tracing::Instrument;

    let lines = lines(async {
        let service = stack(service_fn(|_: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }));
        let request = Request::get("/p").body(Body::empty()).unwrap_or_default();
        let response = service
            .oneshot(request)
            .instrument(tracing::info_span!("outer", tenant = "t-1"))
            .await;
        assert_eq!(ok(response).status(), StatusCode::OK);
    })
    .await;
    let lines = request_lines(&lines);
    assert_eq!(lines.len(), 1, "{lines:?}");
    // The line goes through the event, which carries the parent's fields.
    assert_eq!(lines[0]["tenant"], "t-1", "{}", lines[0]);
    assert_eq!(lines[0]["path"], "/p");
}

/// The request lines (status and level) of a 200, a 404 and a 500 under
/// `filter`, in a subscriber that writes them itself (`direct`) or through
/// the event; and whether that subscriber writes them itself.
async fn lines_under(filter: &str, direct: bool) -> (Vec<(u64, String)>, bool) {
    let subscriber = |logging: &Logging| {
        if direct {
            logging.dispatch(filter)
        } else {
            let other = tracing_subscriber::layer::Identity::new();
            logging.dispatch_with(filter, Some(Box::new(other)))
        }
    };
    let (lines, dispatch) = lines_in(subscriber, async {
        let service = stack(service_fn(|request: Request<Body>| async move {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = status_of(request.uri().path());
            Ok::<_, Infallible>(response)
        }));
        for path in ["/ok", "/missing", "/broken"] {
            let request = Request::get(path).body(Body::empty()).unwrap_or_default();
            let _ = service.clone().oneshot(request).await;
        }
    })
    .await;
    let writes_itself = dispatch
        .downcast_ref::<crate::LogLayer>()
        .is_some_and(|layer| layer.request_lines.is_some());
    let lines = request_lines(&lines)
        .into_iter()
        .map(|line| {
            let status = line["status_code"].as_u64().unwrap_or_default();
            (
                status,
                line["level"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    (lines, writes_itself)
}

#[tokio::test]
async fn the_filter_decides_which_request_lines_are_written_either_way() {
    let all = vec![
        (200, "INFO".to_owned()),
        (404, "WARN".to_owned()),
        (500, "ERROR".to_owned()),
    ];
    let failures = all[1..].to_vec();
    for (filter, expected) in [
        ("info", all.clone()),
        ("info,observe_log::request=warn", failures.clone()),
        ("warn", failures),
        ("info,observe_log::request=off", Vec::new()),
        ("debug", all),
    ] {
        let (direct, writes_itself) = lines_under(filter, true).await;
        assert!(writes_itself, "{filter}");
        assert_eq!(direct, expected, "{filter}");
        let (through_the_event, writes_itself) = lines_under(filter, false).await;
        assert!(!writes_itself, "{filter}");
        assert_eq!(through_the_event, expected, "{filter}");
    }
    // Directives on spans or fields need `EnvFilter`: the event decides.
    let (lines, writes_itself) = lines_under("info,[request]=info", true).await;
    assert!(!writes_itself);
    assert_eq!(lines.len(), 3, "{lines:?}");
}
