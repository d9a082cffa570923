//! The observe demo: a VK comment-parser API.
//!
//! It fetches a VK community's wall posts and their comments, keeps them, and
//! serves them. The posts and comments come from VK's API (`VK_ACCESS_TOKEN`)
//! or, without a token, from an offline stand-in in the same process that
//! speaks VK's JSON and generates them deterministically from the group id;
//! they are kept in SQLite (a local file) or, with
//! `DATABASE_URL=postgres://...`, in PostgreSQL; with `REDIS_URL`, fetched
//! pages are cached and parses of one group are kept apart across instances.
//!
//! | route | what it does |
//! | --- | --- |
//! | `GET /` | the service's name, version and routes |
//! | `POST /api/v1/groups/{group_id}/parse` | fetches `posts_limit` posts with `comments_per_post` comments each and stores them, idempotently |
//! | `GET /api/v1/groups/{group_id}/comments?limit&offset&post_id` | stored comments |
//! | `GET /api/v1/groups/{group_id}/stats` | stored totals |

mod api;
mod cache;
pub mod standin;
mod store;
mod vk;

pub use api::{AppState, DEFAULT_LABELLED_GROUPS, OFFLINE_VK_API, PARSE_TIMEOUT, app};
pub use cache::{Cache, DEFAULT_CACHE_TTL};
pub use store::{
    Added, DEFAULT_DATABASE_URL, STATEMENT_TIMEOUT, Store, StoreError, TRANSACTION_TIMEOUT,
};
pub use vk::{API_VERSION, DEFAULT_API_BASE, DEFAULT_TIMEOUT, MAX_WAITING_CALLS, VkClient};

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
    /// VK's API (`VK_API_BASE`).
    pub vk_api_base: String,
    /// The token (`VK_ACCESS_TOKEN`); `None` runs the offline stand-in.
    pub vk_access_token: Option<String>,
    /// How long one VK call may take (`VK_TIMEOUT_MS`).
    pub vk_timeout: std::time::Duration,
    /// What the stand-in injects (`VK_STANDIN_ERROR_RATE`, `VK_STANDIN_LATENCY_MS`).
    pub standin_faults: standin::server::Faults,
    /// Redis (`REDIS_URL`): VK page cache and parse locks; `None`: neither.
    pub redis_url: Option<String>,
    /// How long a VK page is reused (`VK_CACHE_TTL_SECS`).
    pub cache_ttl: std::time::Duration,
    /// Groups with their own label in `comments_parsed_total`
    /// (`VK_PARSER_GROUPS`, comma-separated); `None`: the defaults.
    pub labelled_groups: Option<Vec<String>>,
}

fn var(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(Some(value.trim().to_owned())),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("invalid {name}: not valid UTF-8")),
    }
}

fn number<T: std::str::FromStr>(name: &str, expected: &str) -> Result<Option<T>, String> {
    var(name)?
        .map(|value| {
            value
                .parse()
                .map_err(|_| format!("invalid {name}={value:?}: expected {expected}"))
        })
        .transpose()
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
        let error_rate: f64 =
            number("VK_STANDIN_ERROR_RATE", "a share from 0 to 1, such as 0.1")?.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&error_rate) {
            return Err(format!(
                "invalid VK_STANDIN_ERROR_RATE={error_rate}: expected a share from 0 to 1"
            ));
        }
        let latency: u64 =
            number("VK_STANDIN_LATENCY_MS", "milliseconds, such as 200")?.unwrap_or(0);
        let timeout: u64 = number("VK_TIMEOUT_MS", "milliseconds, such as 10000")?
            .unwrap_or(vk::DEFAULT_TIMEOUT.as_millis() as u64);
        Ok(Self {
            addr,
            database_url,
            vk_api_base: var("VK_API_BASE")?.unwrap_or_else(|| vk::DEFAULT_API_BASE.to_owned()),
            vk_access_token: var("VK_ACCESS_TOKEN")?,
            vk_timeout: std::time::Duration::from_millis(timeout.max(1)),
            standin_faults: standin::server::Faults {
                error_rate,
                latency: std::time::Duration::from_millis(latency),
            },
            redis_url: var("REDIS_URL")?,
            cache_ttl: std::time::Duration::from_secs(
                number("VK_CACHE_TTL_SECS", "seconds, such as 300")?
                    .unwrap_or(cache::DEFAULT_CACHE_TTL.as_secs()),
            ),
            labelled_groups: var("VK_PARSER_GROUPS")?.map(|groups| {
                groups
                    .split(',')
                    .map(str::trim)
                    .filter(|group| !group.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        })
    }
}
