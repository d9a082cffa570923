use std::{fmt, time::Instant};

use redis::{AsyncConnectionConfig, Client, aio::MultiplexedConnection};
use tokio::sync::Mutex;

use crate::{Check, CheckResult};

/// Redis: `PING` and its round-trip time, with `connected_clients` and
/// `used_memory` from `INFO` in the details.
///
/// The check keeps one multiplexed connection and opens a new one after an
/// error. Its own timeouts are off: the runner's timeout bounds it.
///
/// ```
/// use observe_health::{Health, RedisCheck};
///
/// # fn example() -> redis::RedisResult<()> {
/// let client = redis::Client::open("redis://127.0.0.1:6379")?;
/// let health = Health::builder().check("redis", RedisCheck::new(client)).build();
/// # let _ = health;
/// # Ok(())
/// # }
/// ```
pub struct RedisCheck {
    client: Client,
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl RedisCheck {
    /// Checks the server `client` points at.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            connection: Mutex::new(None),
        }
    }

    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let mut cached = self.connection.lock().await;
        if let Some(connection) = &*cached {
            return Ok(connection.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(None)
            .set_response_timeout(None);
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *cached = Some(connection.clone());
        Ok(connection)
    }

    async fn probe(&self) -> redis::RedisResult<CheckResult> {
        let mut connection = self.connection().await?;
        let started = Instant::now();
        let pong: String = redis::cmd("PING").query_async(&mut connection).await?;
        let round_trip = started.elapsed();
        if pong != "PONG" {
            return Ok(CheckResult::unhealthy(format!(
                "PING answered {pong:?}, not PONG"
            )));
        }
        // One section per INFO: servers before Redis 7 take only one.
        let (clients, memory): (String, String) = redis::pipe()
            .cmd("INFO")
            .arg("clients")
            .cmd("INFO")
            .arg("memory")
            .query_async(&mut connection)
            .await?;
        let mut result =
            CheckResult::healthy().detail("round_trip_ms", round_trip.as_micros() as f64 / 1000.0);
        if let Some(clients) = info_value(&clients, "connected_clients") {
            result = result.detail("connected_clients", clients);
        }
        if let Some(memory) = info_value(&memory, "used_memory") {
            result = result.detail("used_memory_bytes", memory);
        }
        Ok(result)
    }
}

impl Check for RedisCheck {
    async fn check(&self) -> CheckResult {
        match self.probe().await {
            Ok(result) => result,
            Err(error) => {
                *self.connection.lock().await = None;
                CheckResult::unhealthy(format!("redis: {error}"))
            }
        }
    }
}

impl fmt::Debug for RedisCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client's connection info can hold a password.
        f.debug_struct("RedisCheck").finish_non_exhaustive()
    }
}

/// `key:value` from an `INFO` answer.
fn info_value(info: &str, key: &str) -> Option<u64> {
    info.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_values() {
        let info = "# Clients\r\nconnected_clients:7\r\nblocked_clients:0\r\n";
        assert_eq!(info_value(info, "connected_clients"), Some(7));
        assert_eq!(info_value(info, "used_memory"), None);
    }
}
