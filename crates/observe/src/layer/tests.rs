use std::{
    convert::Infallible,
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::body::Body;
use http::{Request, Response, StatusCode};
use tower::{Layer, ServiceExt, service_fn};

use crate::Observability;

/// The request lines written, shared with the log writer.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn request_lines(&self, obs: &Observability) -> Vec<serde_json::Value> {
        obs.flush_logs(Duration::from_secs(5)).unwrap();
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .filter(|line| line["target"] == observe_core::REQUEST_LINE_TARGET)
            .collect()
    }
}

fn observability() -> (Observability, Lines) {
    let lines = Lines::default();
    let obs = Observability::builder("layer")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .log_writer(lines.clone())
        .env_vars([("OTEL_SDK_DISABLED", "true")])
        .init()
        .unwrap();
    (obs, lines)
}

/// The count of `http_requests_total` for `status`, 0 when absent.
fn requests(obs: &Observability, status: u16) -> u64 {
    let prefix = format!(
        r#"http_requests_total{{method="GET",endpoint="unmatched",status_code="{status}"}} "#
    );
    obs.metrics()
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or(0)
}

fn get() -> Request<Body> {
    Request::get("/things").body(Body::empty()).unwrap()
}

fn request_id(response: &Response<impl http_body::Body>) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn one_observation_gives_every_signal_the_same_request() {
    let (obs, lines) = observability();
    let _default = tracing::dispatcher::set_default(obs.dispatch());
    let service = obs.layer().layer(service_fn(|_: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::from("ok")))
    }));
    let response = service.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let id = request_id(&response);
    assert_eq!(requests(&obs, 200), 1);
    let lines = lines.request_lines(&obs);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["status_code"], 200);
    assert_eq!(lines[0]["request_id"], id.as_str());
    assert_eq!(lines[0]["endpoint"], "unmatched");
}

#[tokio::test]
async fn a_panic_in_call_is_one_500_everywhere() {
    let (obs, lines) = observability();
    let _default = tracing::dispatcher::set_default(obs.dispatch());
    let service = obs.layer().layer(service_fn(
        |_: Request<Body>| -> std::future::Ready<Result<Response<Body>, Infallible>> {
            panic!("in call")
        },
    ));
    let response = service.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let id = request_id(&response);
    assert_eq!(requests(&obs, 500), 1);
    let lines = lines.request_lines(&obs);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["status_code"], 500);
    assert_eq!(lines[0]["panic"], true);
    assert_eq!(lines[0]["request_id"], id.as_str());
}

#[tokio::test]
async fn a_panic_in_the_future_is_one_500_everywhere() {
    let (obs, lines) = observability();
    let _default = tracing::dispatcher::set_default(obs.dispatch());
    let service = obs.layer().layer(service_fn(|_: Request<Body>| async {
        if true {
            panic!("in the future");
        }
        Ok::<_, Infallible>(Response::new(Body::empty()))
    }));
    let response = service.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(requests(&obs, 500), 1);
    let lines = lines.request_lines(&obs);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["status_code"], 500);
    assert_eq!(lines[0]["panic"], true);
}

#[tokio::test]
async fn a_dropped_request_is_one_499_with_one_duration() {
    let (obs, lines) = observability();
    let _default = tracing::dispatcher::set_default(obs.dispatch());
    let (worked, has_worked) = tokio::sync::oneshot::channel::<()>();
    let mut worked = Some(worked);
    let service = obs.layer().layer(service_fn(move |_: Request<Body>| {
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
    let mut call = Box::pin(service.oneshot(get()));
    tokio::select! {
        _ = &mut call => panic!("the handler never answers"),
        _ = has_worked => {}
    }
    drop(call);
    assert_eq!(requests(&obs, observe_core::CLIENT_CLOSED_STATUS), 1);
    let lines = lines.request_lines(&obs);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["status_code"], observe_core::CLIENT_CLOSED_STATUS);
    assert_eq!(lines[0]["aborted"], true);
    let logged_ms = lines[0]["duration_ms"].as_f64().unwrap();
    // The histogram's sum, of this one request, is the line's duration
    // (whole microseconds there).
    let sum_line = obs
        .metrics()
        .render()
        .lines()
        .find(|line| {
            line.starts_with(
                r#"http_request_duration_seconds_sum{method="GET",endpoint="unmatched"}"#,
            )
        })
        .map(str::to_owned);
    let sum_seconds: f64 = sum_line
        .as_deref()
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no histogram sum in {sum_line:?}"));
    assert!(logged_ms >= 19.0, "{logged_ms}");
    assert!(
        (sum_seconds * 1000.0 - logged_ms).abs() < 0.001,
        "{sum_seconds} s against {logged_ms} ms"
    );
}
