//! The VK API client: `wall.get` and `wall.getComments`, version 5.199, at
//! most three requests a second, errors 6 and 10 retried with backoff, every
//! other VK error mapped to a clear answer, every call a client span and a
//! count in `vk_api_requests_total{method, status}`.
//!
//! The token is a query parameter, as VK wants it: it never reaches a log
//! line (the request log redacts `access_token`, spans drop the query, and
//! transport errors are logged without their URL).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use observe::AppError;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::standin::{Comment, Post};

/// The API version the client speaks.
pub const API_VERSION: &str = "5.199";

/// VK's own API.
pub const DEFAULT_API_BASE: &str = "https://api.vk.com";

/// VK's limit for user tokens.
const REQUESTS_PER_SECOND: u32 = 3;

/// Calls that may wait for a rate-limit slot at once: ten seconds of VK's
/// limit. One more is answered `503` at once rather than queued.
pub const MAX_WAITING_CALLS: usize = 30;

/// How many times errors 6 and 10 are tried again.
const RETRIES: u32 = 3;

/// The first wait before a retry; it doubles each time.
const BACKOFF: Duration = Duration::from_millis(200);

/// How long one call may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to call VK.
#[derive(Clone)]
pub struct VkClient {
    inner: Arc<Inner>,
}

struct Inner {
    base: String,
    token: String,
    http: reqwest::Client,
    tracing: observe::trace::ClientTraceLayer,
    metrics: observe::Metrics,
    /// Fetched pages, when Redis is configured.
    cache: Option<crate::cache::Cache>,
    /// When the next request may start: one every 1/3 s. Held while its
    /// caller waits for that moment, so callers queue in order, and a
    /// caller dropped in the queue or while waiting takes no slot.
    next_slot: Mutex<Instant>,
    /// Calls in the queue for `next_slot`.
    waiting: AtomicUsize,
}

impl std::fmt::Debug for VkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("VkClient")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    response: Option<T>,
    error: Option<VkErrorBody>,
}

#[derive(Deserialize)]
struct VkErrorBody {
    error_code: u32,
    error_msg: String,
}

#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

#[derive(Deserialize)]
struct WallPost {
    id: u64,
    owner_id: i64,
    text: String,
    comments: Option<Count>,
}

#[derive(Deserialize)]
struct Count {
    count: u32,
}

#[derive(Deserialize)]
struct WallComment {
    id: u64,
    post_id: u64,
    from_id: i64,
    date: u64,
    text: String,
}

/// A page, and where it came from.
enum Page<T> {
    Fetched(T),
    Cached(T),
}

/// Why a VK call failed, before it becomes an answer.
#[derive(Debug)]
enum Failure {
    Vk {
        code: u32,
        message: String,
    },
    Timeout,
    Transport(String),
    Malformed(String),
    /// [`MAX_WAITING_CALLS`] wait for a rate-limit slot already.
    Busy,
}

impl VkClient {
    /// A client of `base` (`VK_API_BASE`) with `token` (`VK_ACCESS_TOKEN`).
    pub fn new(
        base: &str,
        token: &str,
        timeout: Duration,
        tracing: observe::trace::ClientTraceLayer,
        metrics: observe::Metrics,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|error| format!("cannot build the VK client: {}", error.without_url()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                base: base.trim_end_matches('/').to_owned(),
                token: token.to_owned(),
                http,
                tracing,
                metrics,
                cache: None,
                next_slot: Mutex::new(Instant::now()),
                waiting: AtomicUsize::new(0),
            }),
        })
    }

    /// Reuses fetched pages from Redis for the cache's TTL. Call it before
    /// the client is cloned.
    pub fn with_cache(mut self, cache: crate::cache::Cache) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.cache = Some(cache);
        }
        self
    }

    /// The newest `count` posts of `group` (a screen name or a numeric id),
    /// and the group's owner id.
    pub(crate) async fn posts(
        &self,
        group: &str,
        count: u32,
    ) -> Result<Vec<(i64, Post)>, AppError> {
        let target = match group.parse::<u64>() {
            Ok(id) => ("owner_id", format!("-{id}")),
            Err(_) => ("domain", group.to_owned()),
        };
        let count = count.to_string();
        let page: Items<WallPost> = self
            .call("wall.get", &[(target.0, &target.1), ("count", &count)])
            .await?;
        Ok(page
            .items
            .into_iter()
            .map(|post| {
                (
                    post.owner_id,
                    Post {
                        id: post.id,
                        text: post.text,
                        comments: post.comments.map_or(0, |comments| comments.count),
                    },
                )
            })
            .collect())
    }

    /// Up to `count` comments of one post.
    pub(crate) async fn comments(
        &self,
        owner_id: i64,
        post_id: u64,
        count: u32,
    ) -> Result<Vec<Comment>, AppError> {
        let (owner, post, count) = (owner_id.to_string(), post_id.to_string(), count.to_string());
        let page: Items<WallComment> = self
            .call(
                "wall.getComments",
                &[("owner_id", &owner), ("post_id", &post), ("count", &count)],
            )
            .await?;
        Ok(page
            .items
            .into_iter()
            .map(|comment| Comment {
                id: comment.id,
                post_id: comment.post_id,
                from_id: comment.from_id,
                date: comment.date,
                text: comment.text,
            })
            .collect())
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &'static str,
        params: &[(&str, &str)],
    ) -> Result<T, AppError> {
        let mut attempt = 0;
        loop {
            let outcome = match self.call_once::<T>(method, params).await {
                // Served by the cache: not a request to VK.
                Ok(Page::Cached(value)) => return Ok(value),
                Ok(Page::Fetched(value)) => Ok(value),
                Err(failure) => Err(failure),
            };
            let status = match &outcome {
                Ok(_) => "ok",
                Err(Failure::Vk { code, .. }) => vk_error_label(*code),
                Err(Failure::Timeout) => "timeout",
                Err(Failure::Transport(_)) => "unreachable",
                Err(Failure::Malformed(_)) => "malformed",
                Err(Failure::Busy) => "queue_full",
            };
            self.inner.metrics.in_scope(|| {
                metrics::counter!("vk_api_requests_total", "method" => method, "status" => status)
                    .increment(1);
            });
            match outcome {
                Ok(value) => return Ok(value),
                Err(Failure::Vk { code: 6 | 10, .. }) if attempt < RETRIES => {
                    tokio::time::sleep(BACKOFF * 2u32.pow(attempt)).await;
                    attempt += 1;
                }
                Err(failure) => return Err(answer(method, failure)),
            }
        }
    }

    async fn call_once<T: serde::de::DeserializeOwned>(
        &self,
        method: &'static str,
        params: &[(&str, &str)],
    ) -> Result<Page<T>, Failure> {
        // The token is not part of the key: pages are the same for any.
        let key = self.inner.cache.as_ref().map(|_| {
            let mut key = format!("vk-parser:page:{method}");
            for (name, value) in params {
                key.push(':');
                key.push_str(name);
                key.push('=');
                key.push_str(value);
            }
            key
        });
        if let (Some(cache), Some(key)) = (&self.inner.cache, &key)
            && let Some(page) = cache.page(key).await
            && let Ok(Envelope {
                response: Some(response),
                error: None,
            }) = serde_json::from_str::<Envelope<T>>(&page)
        {
            self.inner.metrics.in_scope(|| {
                metrics::counter!("vk_api_cache_hits_total", "method" => method).increment(1);
            });
            return Ok(Page::Cached(response));
        }
        self.wait_for_slot().await?;
        let url = format!("{}/method/{method}", self.inner.base);
        let request = self
            .inner
            .http
            .get(url)
            .query(params)
            .query(&[
                ("access_token", self.inner.token.as_str()),
                ("v", API_VERSION),
            ])
            .build()
            .map_err(|error| Failure::Transport(error.without_url().to_string()))?;
        let response = self
            .inner
            .tracing
            .send_reqwest(&self.inner.http, request)
            .await
            .map_err(|error| {
                if error.is_timeout() {
                    Failure::Timeout
                } else {
                    Failure::Transport(error.without_url().to_string())
                }
            })?;
        let page = response.text().await.map_err(|error| {
            if error.is_timeout() {
                Failure::Timeout
            } else {
                Failure::Transport(error.without_url().to_string())
            }
        })?;
        let envelope: Envelope<T> =
            serde_json::from_str(&page).map_err(|error| Failure::Malformed(error.to_string()))?;
        match (envelope.response, envelope.error) {
            (_, Some(error)) => Err(Failure::Vk {
                code: error.error_code,
                message: error.error_msg,
            }),
            (Some(response), None) => {
                if let (Some(cache), Some(key)) = (&self.inner.cache, &key) {
                    cache.keep(key, &page).await;
                }
                Ok(Page::Fetched(response))
            }
            (None, None) => Err(Failure::Malformed("neither response nor error".to_owned())),
        }
    }

    /// Waits for the next of the three slots a second, so bursts of parses
    /// stay under VK's limit; [`Failure::Busy`] at once when
    /// [`MAX_WAITING_CALLS`] wait already.
    async fn wait_for_slot(&self) -> Result<(), Failure> {
        let waiting = &self.inner.waiting;
        if waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING_CALLS {
            waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Failure::Busy);
        }
        let _queued = Queued(waiting);
        let interval = Duration::from_secs(1) / REQUESTS_PER_SECOND;
        // Fair: the lock is handed out in the order it was asked for.
        let mut next = self.inner.next_slot.lock().await;
        tokio::time::sleep_until((*next).into()).await;
        // Taken only now: a caller dropped before this point leaves the
        // slot to the next in the queue.
        *next = Instant::now() + interval;
        Ok(())
    }
}

/// A place in the queue for a rate-limit slot, left when dropped.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The `status` label of a VK error: the codes the demo knows by name, and
/// one value for the rest, so an upstream (or a client choosing a group
/// named like an error) cannot add series.
fn vk_error_label(code: u32) -> &'static str {
    match code {
        5 => "error_5",
        6 => "error_6",
        10 => "error_10",
        15 => "error_15",
        18 => "error_18",
        30 => "error_30",
        100 => "error_100",
        _ => "error_other",
    }
}

/// The answer a failed VK call gives the client.
fn answer(method: &'static str, failure: Failure) -> AppError {
    let (status, error_type, detail) = match &failure {
        Failure::Vk { code: 5, .. } => (
            StatusCode::BAD_GATEWAY,
            "vk_auth_failed",
            "VK refused the service's access token",
        ),
        Failure::Vk { code: 6, .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "vk_rate_limited",
            "VK is limiting requests, try again later",
        ),
        Failure::Vk { code: 10, .. } => (
            StatusCode::BAD_GATEWAY,
            "vk_internal_error",
            "VK failed to answer, try again later",
        ),
        Failure::Vk { code: 15, .. } => (
            StatusCode::FORBIDDEN,
            "vk_access_denied",
            "VK denies access to this group's wall",
        ),
        Failure::Vk { code: 18, .. } => (
            StatusCode::NOT_FOUND,
            "vk_group_deleted",
            "this group was deleted or banned",
        ),
        Failure::Vk { code: 30, .. } => (
            StatusCode::FORBIDDEN,
            "vk_group_private",
            "this group is private",
        ),
        Failure::Vk { code: 100, .. } => (
            StatusCode::BAD_REQUEST,
            "vk_bad_parameter",
            "VK refused a parameter of this request",
        ),
        Failure::Vk { .. } => (
            StatusCode::BAD_GATEWAY,
            "vk_error",
            "VK answered with an error",
        ),
        Failure::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "vk_timeout",
            "VK did not answer in time",
        ),
        Failure::Transport(_) | Failure::Malformed(_) => (
            StatusCode::BAD_GATEWAY,
            "vk_unavailable",
            "VK could not be reached",
        ),
        Failure::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "vk_queue_full",
            "too many requests are waiting for VK, try again later",
        ),
    };
    let cause = match failure {
        Failure::Vk { code, message } => format!("VK error {code}: {message}"),
        Failure::Timeout => "timed out".to_owned(),
        Failure::Busy => format!("{MAX_WAITING_CALLS} calls wait for a VK rate-limit slot"),
        Failure::Transport(error) | Failure::Malformed(error) => error,
    };
    AppError::new(status, error_type, detail)
        .with_context("vk_method", method)
        .with_source(std::io::Error::other(cause))
}
