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
            .is_some_and(|token| bearer_matches(headers, token)),
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

/// `Authorization: Bearer <token>`, compared in constant time.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(presented) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (presented, expected) = (presented.trim().as_bytes(), token.as_bytes());
    presented.len() == expected.len()
        && presented
            .iter()
            .zip(expected)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(bearer_matches(&with("Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(&with("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(&with("Bearer s3creT"), "s3cret"));
        assert!(!bearer_matches(&with("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(&headers(&[]), "s3cret"));
    }
}
