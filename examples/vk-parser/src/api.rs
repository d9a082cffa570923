use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError, RwLock},
};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    routing::{get, post},
};
use observe::AppError;
use serde::{Deserialize, Serialize};

use crate::standin::{self, Comment, Post};

/// The most posts, or comments per post, one parse may ask for.
const MAX_LIMIT: u32 = 100;
/// The page size of `comments` when `limit` is not given.
const DEFAULT_PAGE: u32 = 50;

/// What the handlers share.
#[derive(Clone, Default)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    groups: RwLock<HashMap<String, Group>>,
    parsing: Mutex<HashSet<String>>,
}

#[derive(Default)]
struct Group {
    posts: BTreeMap<u64, Post>,
    comments: BTreeMap<u64, Comment>,
}

impl AppState {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads what is stored of `group`; `group_not_parsed` when nothing is.
    fn with_group<T>(&self, group: &str, read: impl FnOnce(&Group) -> T) -> Result<T, AppError> {
        let groups = self
            .inner
            .groups
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        groups.get(group).map(read).ok_or_else(|| not_parsed(group))
    }
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
            return Err(AppError::new(
                StatusCode::CONFLICT,
                "duplicate_job",
                "a parse of this group is already running",
            )
            .with_context("group_id", group));
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
        .with_state(state)
}

async fn index() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "service": "vk-parser",
        "version": env!("CARGO_PKG_VERSION"),
        "vk_api": "offline stand-in",
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
    posts_added: usize,
    comments_added: usize,
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

    let posts = standin::posts(group, posts_limit);
    let comments: Vec<Comment> = posts
        .iter()
        .flat_map(|post| standin::comments(group, post, comments_per_post))
        .collect();

    let mut groups = state
        .inner
        .groups
        .write()
        .unwrap_or_else(PoisonError::into_inner);
    let stored = groups.entry(group.to_owned()).or_default();
    let posts_fetched = posts.len();
    let comments_fetched = comments.len();
    let mut posts_added = 0;
    for post in posts {
        if let std::collections::btree_map::Entry::Vacant(slot) = stored.posts.entry(post.id) {
            slot.insert(post);
            posts_added += 1;
        }
    }
    let mut comments_added = 0;
    for comment in comments {
        if let std::collections::btree_map::Entry::Vacant(slot) = stored.comments.entry(comment.id)
        {
            slot.insert(comment);
            comments_added += 1;
        }
    }
    tracing::info!(
        group_id = group,
        posts_added,
        comments_added,
        "group parsed"
    );
    Ok(Json(ParseResult {
        group_id: group.to_owned(),
        posts_fetched,
        comments_fetched,
        posts_added,
        comments_added,
    }))
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
    total: usize,
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
    let (total, comments) = state.with_group(group, |stored| {
        let matching = stored.comments.values().filter(|comment| {
            query
                .post_id
                .is_none_or(|post_id| comment.post_id == post_id)
        });
        let total = matching.clone().count();
        (total, matching.skip(offset).take(limit).cloned().collect())
    })?;
    Ok(Json(CommentsPage {
        group_id: group.to_owned(),
        total,
        comments,
    }))
}

#[derive(Serialize)]
struct Stats {
    group_id: String,
    posts: usize,
    comments: usize,
}

async fn stats(
    State(state): State<AppState>,
    Path(group_id): Path<String>,
) -> Result<Json<Stats>, AppError> {
    let group = group_key(&group_id)?;
    let (posts, comments) =
        state.with_group(group, |stored| (stored.posts.len(), stored.comments.len()))?;
    Ok(Json(Stats {
        group_id: group.to_owned(),
        posts,
        comments,
    }))
}
