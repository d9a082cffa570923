use axum::{
    Router,
    body::Body,
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderMap, HeaderValue, header};

use crate::{
    DetailsPolicy, HEALTH_JSON_CONTENT_TYPE, HEALTH_PATH, Health, HealthReport, LIVE_PATH,
    READY_PATH,
};

impl Health {
    /// A router serving `GET /health` (every check), `GET /health/live` (the
    /// process only) and `GET /health/ready` (critical checks; `503` once
    /// shutdown has begun).
    ///
    /// Bodies are `application/json` in the format of [`HealthReport::to_json`],
    /// or the IETF draft format ([`HealthReport::to_ietf_json`]) for requests
    /// that accept `application/health+json`. Answers are never cached by
    /// proxies (`Cache-Control: no-store`).
    ///
    /// Merge it outside the observability layer, so probes neither skew the
    /// request metrics nor flood the request log.
    pub fn router(&self) -> Router {
        Router::new()
            .route(HEALTH_PATH, get(all))
            .route(LIVE_PATH, get(live))
            .route(READY_PATH, get(ready))
            .with_state(self.clone())
    }
}

async fn all(State(health): State<Health>, headers: HeaderMap) -> Response {
    let report = health.check_all().await;
    respond(&health, &headers, &report)
}

async fn ready(State(health): State<Health>, headers: HeaderMap) -> Response {
    let report = health.check_ready().await;
    respond(&health, &headers, &report)
}

async fn live(State(health): State<Health>, headers: HeaderMap) -> Response {
    respond(&health, &headers, &health.check_live())
}

fn respond(health: &Health, headers: &HeaderMap, report: &HealthReport) -> Response {
    let show_errors = match health.details_policy() {
        DetailsPolicy::Always => true,
        DetailsPolicy::Hidden => health
            .details_token()
            .is_some_and(|token| observe_core::bearer_token_matches(headers, token)),
    };
    let (body, content_type) = if accepts_health_json(headers) {
        (
            report.to_ietf_json(health.service_id(), show_errors),
            HEALTH_JSON_CONTENT_TYPE,
        )
    } else {
        (report.to_json(show_errors), "application/json")
    };
    // Serialising a `Value` cannot fail.
    let body = serde_json::to_vec(&body).unwrap_or_default();
    (
        report.status().http_status(),
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Body::from(body),
    )
        .into_response()
}

/// Whether any `Accept` header lists `application/health+json`.
fn accepts_health_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| {
            let media = media.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case(HEALTH_JSON_CONTENT_TYPE)
        })
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use http::{Request, StatusCode};
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::{CheckOptions, CheckResult, Status, check_fn};

    fn failing_health(builder: crate::HealthBuilder) -> Health {
        builder
            .check(
                "disk",
                check_fn(|| async { CheckResult::healthy().detail("free_percent", 42.5) }),
            )
            .check(
                "db",
                check_fn(|| async {
                    CheckResult::unhealthy("connect to 10.0.0.7:5432 as admin: refused")
                }),
            )
            .check_with(
                "upstream",
                check_fn(|| async { CheckResult::new(Status::Degraded).error("HTTP 502") }),
                CheckOptions::new().critical(false),
            )
            .service_id("svc")
            .build()
    }

    async fn get(
        health: &Health,
        path: &str,
        headers: &[(header::HeaderName, &str)],
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let response = health
            .router()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn health_answers_503_with_every_check_and_hides_raw_errors() {
        let health = failing_health(Health::builder());
        let (status, headers, body) = get(&health, "/health", &[]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(body["status"], "unhealthy");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        let checks = body["checks"].as_object().unwrap();
        assert_eq!(checks.len(), 3);
        assert_eq!(checks["disk"]["status"], "healthy");
        assert_eq!(checks["disk"]["details"]["free_percent"], 42.5);
        assert!(checks["disk"].get("error").is_none());
        assert!(checks["disk"]["response_time_ms"].as_f64().unwrap() >= 0.0);
        assert_eq!(checks["db"]["status"], "unhealthy");
        assert_eq!(checks["db"]["critical"], true);
        assert_eq!(checks["db"]["error"], "check failed (details hidden)");
        assert_eq!(checks["upstream"]["status"], "degraded");
        assert_eq!(checks["upstream"]["critical"], false);
        assert!(!body.to_string().contains("10.0.0.7"));
        assert!(!body.to_string().contains("HTTP 502"));
    }

    #[tokio::test]
    async fn the_token_or_the_always_policy_shows_raw_errors() {
        let health = failing_health(Health::builder().details_token("s3cret"));
        let (_, _, body) = get(
            &health,
            "/health",
            &[(header::AUTHORIZATION, "Bearer wrong")],
        )
        .await;
        assert_eq!(
            body["checks"]["db"]["error"],
            "check failed (details hidden)"
        );
        let (_, _, body) = get(
            &health,
            "/health",
            &[(header::AUTHORIZATION, "Bearer s3cret")],
        )
        .await;
        assert_eq!(
            body["checks"]["db"]["error"],
            "connect to 10.0.0.7:5432 as admin: refused"
        );

        let open = failing_health(Health::builder().details(DetailsPolicy::Always));
        let (_, _, body) = get(&open, "/health", &[]).await;
        assert_eq!(body["checks"]["upstream"]["error"], "HTTP 502");
    }

    #[tokio::test]
    async fn the_ietf_format_on_request() {
        let health = failing_health(Health::builder());
        let (status, headers, body) = get(
            &health,
            "/health",
            &[(header::ACCEPT, "application/health+json")],
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::CONTENT_TYPE], "application/health+json");
        assert_eq!(body["status"], "fail");
        assert_eq!(body["serviceId"], "svc");
        let checks = body["checks"].as_object().unwrap();
        let mut keys: Vec<&str> = checks.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "db:responseTime",
                "disk:responseTime",
                "upstream:responseTime"
            ]
        );
        let disk = &checks["disk:responseTime"][0];
        assert_eq!(disk["componentId"], "disk");
        assert_eq!(disk["status"], "pass");
        assert_eq!(disk["observedUnit"], "ms");
        assert!(disk["observedValue"].is_number());
        assert!(disk["time"].as_str().unwrap().ends_with('Z'));
        assert!(disk.get("output").is_none());
        assert_eq!(checks["upstream:responseTime"][0]["status"], "warn");
        let db = &checks["db:responseTime"][0];
        assert_eq!(db["status"], "fail");
        assert_eq!(db["output"], "check failed (details hidden)");
    }

    #[tokio::test]
    async fn live_needs_no_dependency_and_ready_fails_at_shutdown() {
        let health = failing_health(Health::builder());
        let (status, _, body) = get(&health, "/health/live", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "healthy");
        assert_eq!(body["checks"].as_object().unwrap().len(), 0);

        let (status, _, body) = get(&health, "/health/ready", &[]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let mut ready: Vec<&str> = body["checks"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        ready.sort_unstable();
        assert_eq!(ready, ["db", "disk"], "critical checks only");

        let fine = Health::builder()
            .check("disk", check_fn(|| async { CheckResult::healthy() }))
            .build();
        assert_eq!(get(&fine, "/health/ready", &[]).await.0, StatusCode::OK);
        fine.begin_shutdown();
        let (status, _, body) = get(&fine, "/health/ready", &[]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "unhealthy");
        assert_eq!(body["reason"], "shutting down");
        assert_eq!(get(&fine, "/health/live", &[]).await.0, StatusCode::OK);
        assert_eq!(get(&fine, "/health", &[]).await.0, StatusCode::OK);
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    #[test]
    fn accept_negotiation() {
        assert!(!accepts_health_json(&headers(&[])));
        assert!(!accepts_health_json(&headers(&[(
            header::ACCEPT,
            "application/json"
        )])));
        assert!(accepts_health_json(&headers(&[(
            header::ACCEPT,
            "text/html, Application/Health+JSON;q=0.9"
        )])));
    }

    #[test]
    fn bearer_token() {
        let with = |value: &str| headers(&[(header::AUTHORIZATION, value)]);
        assert!(observe_core::bearer_token_matches(
            &with("Bearer s3cret"),
            "s3cret"
        ));
        assert!(observe_core::bearer_token_matches(
            &with("Bearer s3cret "),
            "s3cret"
        ));
        assert!(!observe_core::bearer_token_matches(
            &with("Bearer s3cre"),
            "s3cret"
        ));
        assert!(!observe_core::bearer_token_matches(
            &with("Bearer s3creT"),
            "s3cret"
        ));
        assert!(!observe_core::bearer_token_matches(
            &with("Basic s3cret"),
            "s3cret"
        ));
        assert!(!observe_core::bearer_token_matches(&headers(&[]), "s3cret"));
    }
}
