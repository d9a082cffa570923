//! `GET /metrics`, optionally behind a bearer token.

use std::sync::Arc;

use axum::{
    Router,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use observe_errors::AppError;

use crate::{METRICS_PATH, Metrics, PROMETHEUS_CONTENT_TYPE};

impl Metrics {
    /// A router that serves `GET /metrics` in the Prometheus text format,
    /// to anyone who can reach it.
    pub fn router(&self) -> Router {
        self.guarded_router(None)
    }

    /// [`router`](Self::router), answering `401` unless the request carries
    /// `Authorization: Bearer <token>`.
    pub fn router_with_token(&self, token: impl Into<String>) -> Router {
        self.guarded_router(Some(Arc::from(token.into())))
    }

    fn guarded_router(&self, token: Option<Arc<str>>) -> Router {
        let metrics = self.clone();
        Router::new().route(
            METRICS_PATH,
            get(move |headers: HeaderMap| {
                let metrics = metrics.clone();
                let token = token.clone();
                async move {
                    if let Some(token) = &token
                        && !observe_core::bearer_token_matches(&headers, token)
                    {
                        return unauthorized();
                    }
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE),
                        )],
                        metrics.render_bytes(),
                    )
                        .into_response()
                }
            }),
        )
    }
}

/// `router` answering `401` problem+json to every request without
/// `Authorization: Bearer <token>`: the guard of `/metrics`, for routes that
/// share its token (such as `/alerts`).
pub fn require_bearer_token(router: Router, token: impl Into<String>) -> Router {
    guard(router, token.into(), false)
}

/// [`require_bearer_token`], also accepting the token as `?token=`: for a
/// page a browser opens, which cannot send a header then. The query value
/// is compared as given, not percent-decoded.
pub fn require_bearer_or_query_token(router: Router, token: impl Into<String>) -> Router {
    guard(router, token.into(), true)
}

fn guard(router: Router, token: String, in_query: bool) -> Router {
    let token: Arc<str> = Arc::from(token);
    router.route_layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let allowed = (in_query && query_token_matches(request.uri().query(), &token))
                || observe_core::bearer_token_matches(request.headers(), &token);
            async move {
                if allowed {
                    next.run(request).await
                } else {
                    unauthorized()
                }
            }
        },
    ))
}

fn query_token_matches(query: Option<&str>, token: &str) -> bool {
    query.is_some_and(|query| {
        query.split('&').any(|pair| {
            pair.strip_prefix("token=")
                .is_some_and(|given| observe_core::token_matches(given.as_bytes(), token))
        })
    })
}

#[cold]
fn unauthorized() -> Response {
    let mut response = AppError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a bearer token is required to read the metrics",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
