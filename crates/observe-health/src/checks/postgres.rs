use std::time::Instant;

use sqlx::{Connection, PgConnection, PgPool, Postgres, pool::PoolConnection};

use crate::{Check, CheckResult, POOL_WARNING_PERCENT, Status, Usage, checks::percent};

/// PostgreSQL through an sqlx pool: `SELECT 1`, its round-trip time, and the
/// pool's size, idle and maximum connections. `warning` when 80% or more of
/// the pool's connections are in use.
///
/// A database that refuses connections is reported at once, even though an
/// sqlx pool retries refused connections until its acquire timeout: when
/// the pool holds no connection at all, the check also tries one connection
/// of its own and reports its error.
///
/// ```no_run
/// use observe_health::{Health, PostgresCheck};
///
/// # async fn example() -> Result<(), sqlx::Error> {
/// let pool = sqlx::PgPool::connect("postgres://127.0.0.1/test").await?;
/// let health = Health::builder()
///     .check("postgres", PostgresCheck::new(pool))
///     .build();
/// # let _ = health;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresCheck {
    pool: PgPool,
    query: &'static str,
}

impl PostgresCheck {
    /// Checks the database behind `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            query: "SELECT 1",
        }
    }

    /// The query to run (default `SELECT 1`).
    pub fn query(mut self, query: &'static str) -> Self {
        self.query = query;
        self
    }

    async fn acquire(&self) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        if let Some(connection) = self.pool.try_acquire() {
            return Ok(connection);
        }
        if self.pool.size() > 0 {
            return self.pool.acquire().await;
        }
        let probe = async {
            match PgConnection::connect_with(&self.pool.connect_options()).await {
                Ok(connection) => {
                    let _ = connection.close().await;
                    // Reachable: the pool's own connection will come.
                    std::future::pending().await
                }
                Err(error) => error,
            }
        };
        tokio::select! {
            connection = self.pool.acquire() => connection,
            error = probe => Err(error),
        }
    }
}

impl Check for PostgresCheck {
    async fn check(&self) -> CheckResult {
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        let max = self.pool.options().get_max_connections();
        let in_use = size.saturating_sub(idle);
        let busy = u64::from(in_use) * 100 >= u64::from(max) * u64::from(POOL_WARNING_PERCENT);
        let with_pool = |result: CheckResult| {
            result
                .usage(Usage::pool(in_use, max))
                .detail("pool_size", size)
                .detail("pool_idle", idle)
                .detail("pool_in_use", in_use)
                .detail("pool_max", max)
                .detail(
                    "pool_utilization_percent",
                    percent(u64::from(in_use), u64::from(max)),
                )
        };

        let mut connection = match self.acquire().await {
            Ok(connection) => connection,
            Err(error) => {
                return with_pool(CheckResult::unhealthy(format!(
                    "cannot get a connection: {error}"
                )));
            }
        };
        let started = Instant::now();
        if let Err(error) = sqlx::query(self.query).execute(&mut *connection).await {
            return with_pool(CheckResult::unhealthy(format!("query failed: {error}")));
        }
        let round_trip = started.elapsed();
        let status = if busy {
            Status::Warning
        } else {
            Status::Healthy
        };
        with_pool(CheckResult::new(status))
            .detail("round_trip_ms", round_trip.as_micros() as f64 / 1000.0)
    }
}
