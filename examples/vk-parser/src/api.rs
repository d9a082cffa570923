use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    routing::{get, post},
};
use observe::{AppError, UserId};
use serde::{Deserialize, Serialize};

use crate::{
    cache::Cache,
    standin::Comment,
    store::{Store, StoreError},
    vk::VkClient,
};

/// The most posts, or comments per post, one parse may ask for.
const MAX_LIMIT: u32 = 100;
/// The page size of `comments` when `limit` is not given.
const DEFAULT_PAGE: u32 = 50;

/// How long one parse may take in all: its VK calls, their waits for a
/// rate-limit slot and its write transaction. Past it the client gets `504`
/// and nothing of the parse is stored.
pub const PARSE_TIMEOUT: Duration = Duration::from_secs(120);

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    vk: VkClient,
    metrics: observe::Metrics,
    /// Groups with their own `group_id` label; the rest are `other`.
    labelled_groups: HashSet<String>,
    /// Redis, when configured: the lock that keeps a group's parses apart
    /// across instances.
    cache: Option<Cache>,
    parsing: Mutex<HashSet<String>>,
    /// What `GET /` says the VK API is.
    vk_api: String,
    parse_timeout: Duration,
}

/// What `GET /` says when the VK calls go to the offline stand-in.
pub const OFFLINE_VK_API: &str = "offline stand-in";

/// Groups counted under their own name in `comments_parsed_total` unless
/// `VK_PARSER_GROUPS` names others: a bounded label, whatever clients ask.
pub const DEFAULT_LABELLED_GROUPS: &[&str] = &["durov", "team", "vk"];

impl AppState {
    /// The handlers' state: where parses are kept, where they come from, and
    /// the registry the business metrics go to.
    pub fn new(store: Store, vk: VkClient, metrics: observe::Metrics) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                vk,
                metrics,
                labelled_groups: DEFAULT_LABELLED_GROUPS
                    .iter()
                    .map(|group| (*group).to_owned())
                    .collect(),
                cache: None,
                parsing: Mutex::new(HashSet::new()),
                vk_api: OFFLINE_VK_API.to_owned(),
                parse_timeout: PARSE_TIMEOUT,
            }),
        }
    }

    /// What `GET /` reports as the VK API (default: the offline stand-in).
    /// Call it before the state is cloned.
    pub fn vk_api_description(mut self, description: impl Into<String>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.vk_api = description.into();
        }
        self
    }

    /// Bounds each parse (default [`PARSE_TIMEOUT`]). Call it before the
    /// state is cloned.
    pub fn parse_timeout(mut self, limit: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.parse_timeout = limit;
        }
        self
    }

    /// Locks groups in Redis too, so instances do not parse one group at
    /// once. Call it before the state is cloned.
    pub fn with_cache(mut self, cache: Cache) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.cache = Some(cache);
        }
        self
    }

    /// Counts these groups under their own name (at most a few dozen).
    pub fn labelled_groups<I, G>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = G>,
        G: Into<String>,
    {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.labelled_groups = groups.into_iter().map(Into::into).collect();
        }
        self
    }

    fn group_label(&self, group: &str) -> String {
        if self.inner.labelled_groups.contains(group) {
            group.to_owned()
        } else {
            "other".to_owned()
        }
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// A store failure: the cause goes to the log, the client gets a 503, or a
/// 504 when the database did not answer in time.
fn unavailable(error: StoreError) -> AppError {
    let problem = if error.timed_out() {
        AppError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "database_timeout",
            "the database did not answer in time, try again later",
        )
    } else {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is not available, try again later",
        )
    };
    problem.with_source(std::io::Error::other(error.to_string()))
}

fn duplicate(group: &str) -> AppError {
    AppError::new(
        StatusCode::CONFLICT,
        "duplicate_job",
        "a parse of this group is already running",
    )
    .with_context("group_id", group)
}

/// Marks a group as being parsed until dropped, even if the parse panics.
struct ParseGuard {
    state: AppState,
    group: String,
}

impl ParseGuard {
    fn start(state: &AppState, group: &str) -> Result<Self, AppError> {
        let mut parsing = state
            .inner
            .parsing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !parsing.insert(group.to_owned()) {
            return Err(duplicate(group));
        }
        Ok(Self {
            state: state.clone(),
            group: group.to_owned(),
        })
    }
}

impl Drop for ParseGuard {
    fn drop(&mut self) {
        self.state
            .inner
            .parsing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.group);
    }
}

/// The API's routes, with `state`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/api/v1/groups/{group_id}/parse", post(parse))
        .route("/api/v1/groups/{group_id}/comments", get(comments))
        .route("/api/v1/groups/{group_id}/stats", get(stats))
        .layer(axum::middleware::from_fn(user_id))
        .with_state(state)
}

/// A well-formed `X-User-Id` (a VK user id: 1 to 20 digits) becomes the
/// request log's `user_id`; anything else is ignored.
async fn user_id(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let user = request
        .headers()
        .get("x-user-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()))
        .map(UserId::new);
    let mut response = next.run(request).await;
    if let Some(user) = user {
        response.extensions_mut().insert(user);
    }
    response
}

async fn index(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "service": "vk-parser",
        "version": env!("CARGO_PKG_VERSION"),
        "vk_api": state.inner.vk_api,
        "database": state.store().system(),
        "routes": [
            "POST /api/v1/groups/{group_id}/parse",
            "GET /api/v1/groups/{group_id}/comments",
            "GET /api/v1/groups/{group_id}/stats",
        ],
    }))
}

/// A numeric id or a screen name: `[a-z0-9_.]{1,64}`.
fn group_key(group_id: &str) -> Result<&str, AppError> {
    let valid = (1..=64).contains(&group_id.len())
        && group_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if valid {
        Ok(group_id)
    } else {
        Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_group_id",
            "group_id must be a numeric id or a screen name of 1 to 64 characters [a-z0-9_.]",
        ))
    }
}

fn bounded(name: &'static str, value: u32) -> Result<u32, AppError> {
    if (1..=MAX_LIMIT).contains(&value) {
        Ok(value)
    } else {
        Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_parameter",
            format!("{name} must be between 1 and {MAX_LIMIT}"),
        )
        .with_context(name, value))
    }
}

#[derive(Deserialize)]
struct ParseRequest {
    posts_limit: u32,
    comments_per_post: u32,
}

#[derive(Serialize)]
struct ParseResult {
    group_id: String,
    posts_fetched: usize,
    comments_fetched: usize,
    posts_added: u64,
    comments_added: u64,
}

async fn parse(
    State(state): State<AppState>,
    Path(group_id): Path<String>,
    Json(request): Json<ParseRequest>,
) -> Result<Json<ParseResult>, AppError> {
    let group = group_key(&group_id)?;
    let posts_limit = bounded("posts_limit", request.posts_limit)?;
    let comments_per_post = bounded("comments_per_post", request.comments_per_post)?;
    let _guard = ParseGuard::start(&state, group)?;
    let lock = match &state.inner.cache {
        Some(cache) => match cache.lock(group).await {
            Ok(Some(lock)) => Some(lock),
            Ok(None) => return Err(duplicate(group)),
            Err(error) => {
                return Err(AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cache_unavailable",
                    "the cache is not available, try again later",
                )
                .with_source(std::io::Error::other(error)));
            }
        },
        None => None,
    };
    let started = std::time::Instant::now();
    // A span of the trace, with a child per VK call and database batch.
    let parse_timeout = state.inner.parse_timeout;
    let outcome = observe::trace::in_span("parse", async {
        // Dropping the parse drops its transaction before it commits.
        tokio::time::timeout(
            parse_timeout,
            run_parse(&state, group, posts_limit, comments_per_post),
        )
        .await
        .unwrap_or_else(|_| {
            Err(AppError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "parse_timeout",
                "the parse took too long, try again with fewer posts",
            )
            .with_source(std::io::Error::other(format!(
                "the parse took longer than {parse_timeout:?}"
            ))))
        })
    })
    .await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    let label = state.group_label(group);
    let elapsed = started.elapsed().as_secs_f64();
    state.inner.metrics.in_scope(|| {
        let status = if outcome.is_ok() { "ok" } else { "failed" };
        metrics::histogram!("vk_parse_duration_seconds", "status" => status).record(elapsed);
        if let Ok(result) = &outcome {
            metrics::counter!("comments_parsed_total", "group_id" => label.clone(), "status" => "stored")
                .increment(result.comments_added);
            metrics::counter!("comments_parsed_total", "group_id" => label, "status" => "duplicate")
                .increment(result.comments_fetched as u64 - result.comments_added);
        }
    });
    outcome.map(Json)
}

async fn run_parse(
    state: &AppState,
    group: &str,
    posts_limit: u32,
    comments_per_post: u32,
) -> Result<ParseResult, AppError> {
    let vk = &state.inner.vk;
    let fetched = vk.posts(group, posts_limit).await?;
    let mut comments: Vec<Comment> = Vec::new();
    for (owner_id, post) in &fetched {
        if post.comments > 0 {
            comments.extend(vk.comments(*owner_id, post.id, comments_per_post).await?);
        }
    }
    let posts: Vec<_> = fetched.into_iter().map(|(_, post)| post).collect();
    let added = state
        .store()
        .save(group, &posts, &comments)
        .await
        .map_err(unavailable)?;
    tracing::info!(
        group_id = group,
        posts_added = added.posts,
        comments_added = added.comments,
        "group parsed"
    );
    Ok(ParseResult {
        group_id: group.to_owned(),
        posts_fetched: posts.len(),
        comments_fetched: comments.len(),
        posts_added: added.posts,
        comments_added: added.comments,
    })
}

#[derive(Deserialize)]
struct CommentsQuery {
    limit: Option<u32>,
    offset: Option<u32>,
    post_id: Option<u64>,
}

#[derive(Serialize)]
struct CommentsPage {
    group_id: String,
    total: u64,
    comments: Vec<Comment>,
}

fn not_parsed(group: &str) -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "group_not_parsed",
        "this group has not been parsed yet",
    )
    .with_context("group_id", group)
}

async fn comments(
    State(state): State<AppState>,
    Path(group_id): Path<String>,
    Query(query): Query<CommentsQuery>,
) -> Result<Json<CommentsPage>, AppError> {
    let group = group_key(&group_id)?;
    let limit = bounded("limit", query.limit.unwrap_or(DEFAULT_PAGE))? as usize;
    let offset = query.offset.unwrap_or(0) as usize;
    let offset = u32::try_from(offset).unwrap_or(u32::MAX);
    let (total, comments) = state
        .store()
        .comments(group, query.post_id, limit as u32, offset)
        .await
        .map_err(unavailable)?;
    if total == 0
        && state
            .store()
            .stats(group)
            .await
            .map_err(unavailable)?
            .is_none()
    {
        return Err(not_parsed(group));
    }
    Ok(Json(CommentsPage {
        group_id: group.to_owned(),
        total,
        comments,
    }))
}

#[derive(Serialize)]
struct Stats {
    group_id: String,
    posts: u64,
    comments: u64,
}

async fn stats(
    State(state): State<AppState>,
    Path(group_id): Path<String>,
) -> Result<Json<Stats>, AppError> {
    let group = group_key(&group_id)?;
    let (posts, comments) = state
        .store()
        .stats(group)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| not_parsed(group))?;
    Ok(Json(Stats {
        group_id: group.to_owned(),
        posts,
        comments,
    }))
}
