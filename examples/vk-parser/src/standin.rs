//! The offline VK stand-in: deterministic posts and comments for any group.

/// A wall post, as `wall.get` gives it (the fields the parser keeps).
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Post {
    pub(crate) id: u64,
    pub(crate) text: String,
    pub(crate) comments: u32,
}

/// A comment, as `wall.getComments` gives it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Comment {
    pub(crate) id: u64,
    pub(crate) post_id: u64,
    pub(crate) from_id: i64,
    pub(crate) date: u64,
    pub(crate) text: String,
}

const WORDS: [&str; 16] = [
    "great",
    "post",
    "thanks",
    "agree",
    "interesting",
    "why",
    "not",
    "sure",
    "love",
    "this",
    "news",
    "again",
    "finally",
    "wow",
    "really",
    "cool",
];

/// A small, fast, deterministic mixer (SplitMix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn group_seed(group: &str) -> u64 {
    group.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn sentence(seed: u64, words: usize) -> String {
    (0..words)
        .map(|i| WORDS[(mix(seed.wrapping_add(i as u64)) % WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `count` newest posts of `group`.
pub(crate) fn posts(group: &str, count: u32) -> Vec<Post> {
    let seed = group_seed(group);
    (0..u64::from(count))
        .map(|n| {
            let id = 1000 - n;
            let post_seed = mix(seed ^ id);
            Post {
                id,
                text: sentence(post_seed, 8),
                comments: (post_seed % 150) as u32,
            }
        })
        .collect()
}

/// Up to `count` comments of `post`.
pub(crate) fn comments(group: &str, post: &Post, count: u32) -> Vec<Comment> {
    let seed = group_seed(group);
    (0..u64::from(count.min(post.comments)))
        .map(|n| {
            let comment_seed = mix(seed ^ (post.id << 20) ^ n);
            Comment {
                id: post.id * 10_000 + n + 1,
                post_id: post.id,
                from_id: (comment_seed % 900_000_000) as i64 + 1,
                date: 1_700_000_000 + post.id * 3600 + n * 60,
                text: sentence(comment_seed, 3 + (comment_seed % 6) as usize),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        let first = posts("durov", 3);
        let again = posts("durov", 3);
        assert_eq!(first.len(), 3);
        assert_eq!(first[0].text, again[0].text);
        assert_eq!(first[0].id, 1000);
        let comments_a = comments("durov", &first[0], 5);
        let comments_b = comments("durov", &first[0], 5);
        assert_eq!(comments_a.len(), 5.min(first[0].comments as usize));
        assert_eq!(
            comments_a.iter().map(|c| &c.text).collect::<Vec<_>>(),
            comments_b.iter().map(|c| &c.text).collect::<Vec<_>>()
        );
        assert_ne!(posts("other", 1)[0].text, first[0].text);
    }
}

/// The stand-in as a server speaking VK's JSON (`/method/wall.get`,
/// `/method/wall.getComments`), so the demo's VK client runs for real
/// against it.
///
/// Errors can be asked for, to see them in the metrics and logs:
/// `VK_STANDIN_ERROR_RATE` (0 to 1) answers that share of calls with error 6
/// or 10 (which the client retries), `VK_STANDIN_LATENCY_MS` delays every
/// answer. Group names force one error, for tests and demos: `error_5`,
/// `error_15`, `error_18`, `error_30`, `error_100` (that VK error on every
/// call), `flaky_6` and `flaky_10` (the error on the first call, then
/// answers), `slow` (an answer after two seconds).
pub mod server {
    use std::{
        collections::HashMap,
        sync::{
            Arc, Mutex, PoisonError,
            atomic::{AtomicU64, Ordering::Relaxed},
        },
        time::Duration,
    };

    use axum::{
        Json, Router,
        extract::{Query, State},
        routing::get,
    };
    use serde_json::{Value, json};

    use super::{comments, group_seed, mix, posts};

    /// What the stand-in injects.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Faults {
        /// Share of calls answered with error 6 or 10.
        pub error_rate: f64,
        /// Delay of every answer.
        pub latency: Duration,
    }

    #[derive(Clone, Default)]
    struct Standin {
        faults: Faults,
        calls: Arc<AtomicU64>,
        /// Calls so far per flaky group.
        flaky: Arc<Mutex<HashMap<String, u32>>>,
    }

    /// The stand-in's routes.
    pub fn router(faults: Faults) -> Router {
        let state = Standin {
            faults,
            ..Standin::default()
        };
        Router::new()
            .route("/method/wall.get", get(wall_get))
            .route("/method/wall.getComments", get(wall_get_comments))
            .with_state(state)
    }

    fn error(code: u32, params: &HashMap<String, String>) -> Json<Value> {
        // The group `echo_token` answers as an upstream that echoes the
        // request into its error text: the token with it.
        if group_of(params) == "echo_token" {
            let token = params.get("access_token").map_or("", String::as_str);
            return Json(json!({"error": {
                "error_code": code,
                "error_msg": format!("User authorization failed: access_token {token} is invalid"),
            }}));
        }
        let message = match code {
            5 => "User authorization failed: invalid access_token (4).",
            6 => "Too many requests per second",
            10 => "Internal server error",
            15 => "Access denied: wall is disabled",
            18 => "User was deleted or banned",
            30 => "This profile is private",
            100 => "One of the parameters specified was missing or invalid",
            _ => "Unknown error",
        };
        Json(json!({"error": {"error_code": code, "error_msg": message}}))
    }

    /// The group a call is about: its screen name, or `-owner_id`.
    fn group_of(params: &HashMap<String, String>) -> String {
        match params.get("domain") {
            Some(domain) => domain.clone(),
            None => params
                .get("owner_id")
                .map(|owner| owner.trim_start_matches('-').to_owned())
                .unwrap_or_default(),
        }
    }

    /// The error this call must answer with, if any.
    async fn fault(state: &Standin, params: &HashMap<String, String>) -> Option<u32> {
        if !state.faults.latency.is_zero() {
            tokio::time::sleep(state.faults.latency).await;
        }
        if params.get("v").map(String::as_str) != Some("5.199") {
            return Some(100);
        }
        let group = group_of(params);
        if group == "echo_token" {
            return Some(5);
        }
        if let Some(code) = group
            .strip_prefix("error_")
            .and_then(|code| code.parse().ok())
        {
            return Some(code);
        }
        if let Some(code) = group
            .strip_prefix("flaky_")
            .and_then(|code| code.parse().ok())
        {
            let mut flaky = state.flaky.lock().unwrap_or_else(PoisonError::into_inner);
            let calls = flaky.entry(group.clone()).or_default();
            *calls += 1;
            if *calls == 1 {
                return Some(code);
            }
        }
        if group == "slow" {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let call = state.calls.fetch_add(1, Relaxed);
        let roll = (mix(call) % 10_000) as f64 / 10_000.0;
        if roll < state.faults.error_rate {
            return Some(if call.is_multiple_of(2) { 6 } else { 10 });
        }
        None
    }

    /// The owner id VK gives a group: negative.
    fn owner_id(group: &str) -> i64 {
        match group.parse::<i64>() {
            Ok(id) => -id,
            Err(_) => -((group_seed(group) % 900_000_000) as i64 + 1),
        }
    }

    async fn wall_get(
        State(state): State<Standin>,
        Query(params): Query<HashMap<String, String>>,
    ) -> Json<Value> {
        if let Some(code) = fault(&state, &params).await {
            return error(code, &params);
        }
        let group = group_of(&params);
        let count = params
            .get("count")
            .and_then(|count| count.parse().ok())
            .unwrap_or(20u32)
            .min(100);
        let owner = owner_id(&group);
        let items: Vec<Value> = posts(&group, count)
            .into_iter()
            .map(|post| {
                json!({
                    "id": post.id,
                    "owner_id": owner,
                    "from_id": owner,
                    "date": 1_700_000_000 + post.id * 3600,
                    "text": post.text,
                    "comments": {"count": post.comments},
                })
            })
            .collect();
        Json(json!({"response": {"count": 1000, "items": items}}))
    }

    async fn wall_get_comments(
        State(state): State<Standin>,
        Query(params): Query<HashMap<String, String>>,
    ) -> Json<Value> {
        if let Some(code) = fault(&state, &params).await {
            return error(code, &params);
        }
        let group = group_of(&params);
        let (Some(post_id), Some(count)) = (
            params.get("post_id").and_then(|id| id.parse::<u64>().ok()),
            params
                .get("count")
                .and_then(|count| count.parse::<u32>().ok()),
        ) else {
            return error(100, &params);
        };
        // The post as wall.get made it, found again by its id.
        let Some(post) = posts(&group, 100)
            .into_iter()
            .find(|post| post.id == post_id)
        else {
            return error(100, &params);
        };
        let owner = owner_id(&group);
        let items: Vec<Value> = comments(&group, &post, count.min(100))
            .into_iter()
            .map(|comment| {
                json!({
                    "id": comment.id,
                    "from_id": comment.from_id,
                    "post_id": comment.post_id,
                    "owner_id": owner,
                    "date": comment.date,
                    "text": comment.text,
                })
            })
            .collect();
        Json(json!({"response": {"count": post.comments, "items": items}}))
    }
}
