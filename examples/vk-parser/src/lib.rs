//! The observe demo: a VK comment-parser API.
//!
//! It fetches a VK community's wall posts and their comments, keeps them, and
//! serves them. In this version the posts and comments come from an offline
//! stand-in that generates them deterministically from the group id; they
//! are kept in SQLite (a local file) or, with `DATABASE_URL=postgres://...`,
//! in PostgreSQL. The Redis cache and the real VK client arrive with the
//! demo issue.
//!
//! | route | what it does |
//! | --- | --- |
//! | `GET /` | the service's name, version and routes |
//! | `POST /api/v1/groups/{group_id}/parse` | fetches `posts_limit` posts with `comments_per_post` comments each and stores them, idempotently |
//! | `GET /api/v1/groups/{group_id}/comments?limit&offset&post_id` | stored comments |
//! | `GET /api/v1/groups/{group_id}/stats` | stored totals |

mod api;
mod standin;
mod store;

pub use api::{AppState, app};
pub use store::{Added, DEFAULT_DATABASE_URL, Store, StoreError};

use std::net::SocketAddr;

/// Where the service listens unless `VK_PARSER_ADDR` says otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// The service's own settings, from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// The listening address (`VK_PARSER_ADDR`).
    pub addr: SocketAddr,
    /// Where posts and comments are kept (`DATABASE_URL`).
    pub database_url: String,
}

impl Config {
    /// Reads the settings; a bad value names its variable.
    pub fn from_env() -> Result<Self, String> {
        let addr = match std::env::var("VK_PARSER_ADDR") {
            Ok(value) => value.parse().map_err(|_| {
                format!(
                    "invalid VK_PARSER_ADDR={value:?}: expected an address such as 127.0.0.1:8080"
                )
            })?,
            Err(std::env::VarError::NotPresent) => DEFAULT_ADDR
                .parse()
                .map_err(|_| format!("invalid default address {DEFAULT_ADDR}"))?,
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err("invalid VK_PARSER_ADDR: not valid UTF-8".to_owned());
            }
        };
        let database_url = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
            Ok(_) | Err(std::env::VarError::NotPresent) => store::DEFAULT_DATABASE_URL.to_owned(),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err("invalid DATABASE_URL: not valid UTF-8".to_owned());
            }
        };
        Ok(Self { addr, database_url })
    }
}
