//! Where parsed posts and comments are kept: SQLite in a local file by
//! default, PostgreSQL when `DATABASE_URL` says so, through one code path
//! (sqlx's `Any` driver: the statements below are valid in both).
//!
//! A parse is stored in one transaction, and every row is unique per group,
//! post and comment, so a second parse of the same posts adds nothing and a
//! failed one leaves nothing half-written.

use std::{fmt, time::Duration};

use sqlx::{
    AnyPool, Row,
    any::{AnyPoolOptions, install_default_drivers},
    migrate::Migrator,
};
use tracing::Instrument;

use crate::standin::{Comment, Post};

/// The database when `DATABASE_URL` is not set: a file next to where the
/// demo runs, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://vk-parser.db?mode=rwc";

/// How long a query may wait for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one statement may take, the wait for its connection included.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a parse's whole write transaction may take; past it the
/// transaction's connection is closed, so the database rolls it back.
pub const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(15);

/// The schema: `migrations/`, compiled in. sqlx's migrator records what it
/// applied and, on PostgreSQL, holds an advisory lock while it runs, so
/// replicas starting together on a new database apply it once.
static MIGRATOR: Migrator = sqlx::migrate!();

const INSERT_POST: &str = "INSERT INTO posts (group_id, post_id, text, comments) \
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
const INSERT_COMMENT: &str = "INSERT INTO comments (group_id, post_id, comment_id, from_id, date, text) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";
const COUNT_POSTS: &str = "SELECT COUNT(*) FROM posts WHERE group_id = $1";
const COUNT_COMMENTS: &str = "SELECT COUNT(*) FROM comments WHERE group_id = $1";
const COUNT_POST_COMMENTS: &str =
    "SELECT COUNT(*) FROM comments WHERE group_id = $1 AND post_id = $2";
const PAGE: &str = "SELECT post_id, comment_id, from_id, date, text FROM comments \
     WHERE group_id = $1 ORDER BY post_id, comment_id LIMIT $2 OFFSET $3";
const POST_PAGE: &str = "SELECT post_id, comment_id, from_id, date, text FROM comments \
     WHERE group_id = $1 AND post_id = $2 ORDER BY comment_id LIMIT $3 OFFSET $4";

/// The store failed: connecting, migrating, or a query. The text is for
/// logs; clients get a generic 503, or 504 when the database did not answer
/// in time.
#[derive(Debug)]
pub struct StoreError {
    message: String,
    timed_out: bool,
}

impl StoreError {
    fn new(message: String) -> Self {
        Self {
            message,
            timed_out: false,
        }
    }

    fn timeout(what: &str, limit: Duration) -> Self {
        Self {
            message: format!("{what} took longer than {limit:?}"),
            timed_out: true,
        }
    }

    /// Whether a statement or transaction deadline passed.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::new(error.to_string())
    }
}

/// The connection pool and what the demo asks of it.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    system: &'static str,
    statement_timeout: Duration,
    transaction_timeout: Duration,
}

/// What one parse added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// New posts.
    pub posts: u64,
    /// New comments.
    pub comments: u64,
}

impl Store {
    /// Connects to `url` (`sqlite://...` or `postgres://...`) and applies
    /// the schema's migrations. A URL of another kind is refused, naming `DATABASE_URL`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let system = if url.starts_with("sqlite:") {
            "sqlite"
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            "postgresql"
        } else {
            return Err(StoreError::new(
                "invalid DATABASE_URL: expected sqlite://FILE or postgres://USER@HOST/DB"
                    .to_owned(),
            ));
        };
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            // SQLite allows one writer; more connections only wait on its lock.
            .max_connections(if system == "sqlite" { 1 } else { 10 })
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(|error| StoreError::new(format!("cannot open the database: {error}")))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|error| StoreError::new(format!("cannot migrate the database: {error}")))?;
        Ok(Self {
            pool,
            system,
            statement_timeout: STATEMENT_TIMEOUT,
            transaction_timeout: TRANSACTION_TIMEOUT,
        })
    }

    /// Bounds each statement (default [`STATEMENT_TIMEOUT`]).
    pub fn statement_timeout(mut self, limit: Duration) -> Self {
        self.statement_timeout = limit;
        self
    }

    /// Bounds each write transaction (default [`TRANSACTION_TIMEOUT`]).
    pub fn transaction_timeout(mut self, limit: Duration) -> Self {
        self.transaction_timeout = limit;
        self
    }

    /// Runs one statement under the statement deadline.
    async fn bounded<T>(
        &self,
        query: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.statement_timeout, query).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(StoreError::timeout("a statement", self.statement_timeout)),
        }
    }

    /// Whether the database answers, for the health check.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(sqlx::query("SELECT 1").execute(&self.pool))
            .await?;
        Ok(())
    }

    /// `sqlite` or `postgresql`.
    pub fn system(&self) -> &'static str {
        self.system
    }

    /// The pool's maximum of connections.
    pub fn max_connections(&self) -> u32 {
        self.pool.options().get_max_connections()
    }

    /// Connections in use now, for the `database_connections` gauge.
    pub fn connections_in_use(&self) -> u32 {
        self.pool.size().saturating_sub(self.pool.num_idle() as u32)
    }

    /// Stores `posts` and `comments` of `group` in one transaction; rows
    /// already there are left as they are.
    pub(crate) async fn save(
        &self,
        group: &str,
        posts: &[Post],
        comments: &[Comment],
    ) -> Result<Added, StoreError> {
        let mut connection = self.bounded(self.pool.acquire()).await?;
        let batch = async {
            let mut transaction = self
                .bounded(sqlx::Connection::begin(&mut *connection))
                .await?;
            let mut added = Added {
                posts: 0,
                comments: 0,
            };
            for post in posts {
                added.posts += self
                    .bounded(
                        sqlx::query(INSERT_POST)
                            .bind(group)
                            .bind(post.id as i64)
                            .bind(&post.text)
                            .bind(i64::from(post.comments))
                            .execute(&mut *transaction),
                    )
                    .await?
                    .rows_affected();
            }
            for comment in comments {
                added.comments += self
                    .bounded(
                        sqlx::query(INSERT_COMMENT)
                            .bind(group)
                            .bind(comment.post_id as i64)
                            .bind(comment.id as i64)
                            .bind(comment.from_id)
                            .bind(comment.date as i64)
                            .bind(&comment.text)
                            .execute(&mut *transaction),
                    )
                    .await?
                    .rows_affected();
            }
            self.bounded(transaction.commit()).await?;
            Ok::<_, StoreError>(added)
        };
        // sqlx keeps the `tracing` span of a connection's last command until
        // its next one (SQLite's worker thread does), which would hold this
        // span and the parse above it open: the statements run under no span,
        // the batch span times them from outside.
        let batch = batch
            .instrument(tracing::Span::none())
            .instrument(observe::trace::db::query(self.system, INSERT_COMMENT));
        let outcome = match tokio::time::timeout(self.transaction_timeout, batch).await {
            Ok(outcome) => outcome,
            Err(_) => Err(StoreError::timeout(
                "the write transaction",
                self.transaction_timeout,
            )),
        };
        if outcome.is_err() {
            // Mid-transaction, maybe mid-statement: not a connection to hand
            // to the next caller. Closing it makes the database roll back.
            connection.close_on_drop();
        }
        outcome
    }

    /// Totals of `group`: `None` when nothing of it is stored.
    pub async fn stats(&self, group: &str) -> Result<Option<(u64, u64)>, StoreError> {
        let posts: i64 = self
            .bounded(
                sqlx::query(COUNT_POSTS)
                    .bind(group)
                    .fetch_one(&self.pool)
                    .instrument(observe::trace::db::query(self.system, COUNT_POSTS)),
            )
            .await?
            .try_get(0)?;
        if posts == 0 {
            return Ok(None);
        }
        let comments: i64 = self
            .bounded(
                sqlx::query(COUNT_COMMENTS)
                    .bind(group)
                    .fetch_one(&self.pool)
                    .instrument(observe::trace::db::query(self.system, COUNT_COMMENTS)),
            )
            .await?
            .try_get(0)?;
        Ok(Some((posts as u64, comments as u64)))
    }

    /// A page of `group`'s comments, with the number there are in all.
    pub(crate) async fn comments(
        &self,
        group: &str,
        post_id: Option<u64>,
        limit: u32,
        offset: u32,
    ) -> Result<(u64, Vec<Comment>), StoreError> {
        let (total, rows) = match post_id {
            None => {
                let total: i64 = self
                    .bounded(
                        sqlx::query(COUNT_COMMENTS)
                            .bind(group)
                            .fetch_one(&self.pool),
                    )
                    .await?
                    .try_get(0)?;
                let rows = self
                    .bounded(
                        sqlx::query(PAGE)
                            .bind(group)
                            .bind(i64::from(limit))
                            .bind(i64::from(offset))
                            .fetch_all(&self.pool)
                            .instrument(observe::trace::db::query(self.system, PAGE)),
                    )
                    .await?;
                (total, rows)
            }
            Some(post_id) => {
                let total: i64 = self
                    .bounded(
                        sqlx::query(COUNT_POST_COMMENTS)
                            .bind(group)
                            .bind(post_id as i64)
                            .fetch_one(&self.pool),
                    )
                    .await?
                    .try_get(0)?;
                let rows = self
                    .bounded(
                        sqlx::query(POST_PAGE)
                            .bind(group)
                            .bind(post_id as i64)
                            .bind(i64::from(limit))
                            .bind(i64::from(offset))
                            .fetch_all(&self.pool)
                            .instrument(observe::trace::db::query(self.system, POST_PAGE)),
                    )
                    .await?;
                (total, rows)
            }
        };
        let comments = rows
            .iter()
            .map(|row| {
                Ok(Comment {
                    post_id: row.try_get::<i64, _>(0)? as u64,
                    id: row.try_get::<i64, _>(1)? as u64,
                    from_id: row.try_get(2)?,
                    date: row.try_get::<i64, _>(3)? as u64,
                    text: row.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok((total as u64, comments))
    }
}
