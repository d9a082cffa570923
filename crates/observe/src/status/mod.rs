//! `GET /status`: one self-contained page (no CDN, no build step, compiled
//! in) with the service, its version and uptime, request rate, 5xx share
//! and latency of the last minutes as small live charts, the health checks
//! and the alerts; and `GET /status/red`, the JSON it draws from.
//!
//! Behind the metrics token when one is set: a browser cannot send a header
//! when it opens a page, so the page also takes the token as `?token=`
//! (redacted in the request log like every `token` query value) and sends it
//! as a bearer token to the JSON endpoints.

use std::time::Duration;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, header},
    response::IntoResponse,
    routing::get,
};
use serde_json::{Value, json};

use crate::{
    Observability,
    defaults::{STATUS_PATH, STATUS_RED_PATH, STATUS_SPAN, STATUS_STEP},
};

/// The page.
const PAGE: &str = include_str!("page.html");

/// The page's content security policy: nothing from anywhere else.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:";

async fn page() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
        ],
        PAGE,
    )
}

async fn red(State(obs): State<Observability>) -> Json<Value> {
    Json(obs.status_json())
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

impl Observability {
    /// What `GET /status/red` answers: the service, its uptime, the request
    /// totals since start and the RED figures of the last five minutes in
    /// ten-second steps.
    pub fn status_json(&self) -> Value {
        let (requests, errors) = self.metrics().request_totals();
        let points: Vec<Value> = self
            .metrics()
            .red_series(STATUS_SPAN, STATUS_STEP)
            .iter()
            .map(|point| {
                json!({
                    "ago_seconds": point.ago.as_secs(),
                    "requests": point.red.requests,
                    "errors": point.red.errors,
                    "rate": point.red.request_rate,
                    "error_ratio": point.red.error_rate,
                    "p50_ms": millis(point.red.p50),
                    "p95_ms": millis(point.red.p95),
                    "p99_ms": millis(point.red.p99),
                })
            })
            .collect();
        json!({
            "service": self.service_name(),
            "environment": self.environment(),
            "version": self.service_version().unwrap_or("unknown"),
            "uptime_seconds": self.started().elapsed().as_secs_f64(),
            "requests_total": requests,
            "errors_total": errors,
            "step_seconds": STATUS_STEP.as_secs(),
            "points": points,
            "health_details": match self.health().details_policy() {
                observe_health::DetailsPolicy::Always => "shown to everyone",
                _ => "hidden unless the request has the health token",
            },
            "alerts": self.alerts().is_some(),
        })
    }

    /// A router serving `GET /status` and `GET /status/red`, behind the
    /// metrics token (as a header, or `?token=`) when one is set.
    /// [`router`](Self::router) includes it.
    pub fn status_router(&self) -> Router {
        let router = Router::new()
            .route(STATUS_PATH, get(page))
            .route(STATUS_RED_PATH, get(red))
            .with_state(self.clone());
        match self.metrics_token() {
            Some(token) => observe_metrics::require_bearer_or_query_token(router, token),
            None => router,
        }
    }
}
