//! Redis, when `REDIS_URL` is set: a cache of VK pages with a TTL, and a
//! lock per group so one group is not parsed twice at once, whichever
//! instance of the service is asked.

use std::time::Duration;

use redis::{AsyncCommands, aio::MultiplexedConnection};
use tracing::Instrument;

/// How long a fetched VK page is reused unless `VK_CACHE_TTL_SECS` says
/// otherwise.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);

/// How long a parse may hold its group's lock; a crashed instance's lock
/// expires after this.
const LOCK_TTL: Duration = Duration::from_secs(120);

/// Deletes the lock only if it is still ours.
const UNLOCK: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;

/// The Redis side of the demo. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    connection: MultiplexedConnection,
    ttl: Duration,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A group's lock, released when dropped.
pub(crate) struct GroupLock {
    connection: MultiplexedConnection,
    key: String,
    token: String,
}

impl GroupLock {
    /// Releases the lock now, so the next parse of the group finds it free.
    pub(crate) async fn release(mut self) {
        let key = std::mem::take(&mut self.key);
        let token = std::mem::take(&mut self.token);
        let _: redis::RedisResult<i64> = redis::Script::new(UNLOCK)
            .key(key)
            .arg(token)
            .invoke_async(&mut self.connection)
            .instrument(observe::trace::db::redis("EVALSHA"))
            .await;
    }
}

impl Drop for GroupLock {
    // A parse that was cancelled or panicked: released in the background.
    fn drop(&mut self) {
        if self.key.is_empty() {
            return;
        }
        let mut connection = self.connection.clone();
        let key = std::mem::take(&mut self.key);
        let token = std::mem::take(&mut self.token);
        // A lost release only waits for the TTL.
        tokio::spawn(async move {
            let _: redis::RedisResult<i64> = redis::Script::new(UNLOCK)
                .key(key)
                .arg(token)
                .invoke_async(&mut connection)
                .await;
        });
    }
}

impl Cache {
    /// Connects to `url` (`REDIS_URL`).
    pub async fn connect(url: &str, ttl: Duration) -> Result<Self, String> {
        let client =
            redis::Client::open(url).map_err(|error| format!("invalid REDIS_URL: {error}"))?;
        let connection = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|error| format!("cannot connect to REDIS_URL: {error}"))?;
        Ok(Self { connection, ttl })
    }

    /// A cached VK page.
    pub(crate) async fn page(&self, key: &str) -> Option<String> {
        let mut connection = self.connection.clone();
        let cached: redis::RedisResult<Option<String>> = connection
            .get(key)
            .instrument(observe::trace::db::redis("GET"))
            .await;
        // A cache that fails is a cache miss, not an error.
        cached.ok().flatten()
    }

    /// Keeps a VK page for the TTL.
    pub(crate) async fn keep(&self, key: &str, page: &str) {
        let mut connection = self.connection.clone();
        let _: redis::RedisResult<()> = connection
            .set_ex(key, page, self.ttl.as_secs().max(1))
            .instrument(observe::trace::db::redis("SET"))
            .await;
    }

    /// Takes `group`'s lock; `Ok(None)` when another parse holds it.
    pub(crate) async fn lock(&self, group: &str) -> Result<Option<GroupLock>, String> {
        let key = format!("vk-parser:lock:{group}");
        let token = format!("{}-{}", std::process::id(), observe::RequestId::new_v7());
        let mut connection = self.connection.clone();
        let taken: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(LOCK_TTL.as_millis() as u64)
            .query_async(&mut connection)
            .instrument(observe::trace::db::redis("SET"))
            .await
            .map_err(|error| error.to_string())?;
        Ok(taken.map(|_| GroupLock {
            connection,
            key,
            token,
        }))
    }

    /// Whether Redis answers, for the health check.
    pub async fn ping(&self) -> Result<(), String> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(|_| ())
            .map_err(|error| error.to_string())
    }
}
