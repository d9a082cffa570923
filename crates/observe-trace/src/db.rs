//! Child spans for database and cache work.
//!
//! A span from these helpers is a `tracing` span that the OpenTelemetry
//! bridge exports as a client span under the request's server span, with
//! the database semantic-convention attributes `db.system.name`,
//! `db.operation.name` and `db.query.text`. The query text is the statement
//! as written, with its placeholders (`$1`), never the bound values; for
//! Redis it is the command name only, never keys or values.
//!
//! ```
//! use tracing::Instrument;
//!
//! # async fn demo() {
//! const QUERY: &str = "SELECT count(*) FROM comments WHERE owner_id = $1";
//! // sqlx::query_scalar(QUERY).bind(group).fetch_one(&pool)
//! let count = async { 42 }
//!     .instrument(observe_trace::db::query("postgresql", QUERY))
//!     .await;
//! # let _ = count;
//! let cached = async { None::<String> }
//!     .instrument(observe_trace::db::redis("GET"))
//!     .await;
//! # let _ = cached;
//! # }
//! ```

/// The span of one SQL statement on `system` (`postgresql`, `sqlite`,
/// `mysql`): named after its operation (`SELECT`, `INSERT`, ...), the first
/// word of `statement`.
pub fn query(system: &'static str, statement: &str) -> tracing::Span {
    let operation = operation_of(statement);
    tracing::info_span!(
        target: "observe_trace::db",
        "db",
        otel.name = operation,
        otel.kind = "client",
        db.system.name = system,
        db.operation.name = operation,
        db.query.text = statement,
    )
}

/// The span of one Redis command, such as `GET` or `SET`.
pub fn redis(command: &str) -> tracing::Span {
    let command = command.trim();
    tracing::info_span!(
        target: "observe_trace::db",
        "db",
        otel.name = command,
        otel.kind = "client",
        db.system.name = "redis",
        db.operation.name = command,
        db.query.text = command,
    )
}

/// The first word of a statement, upper-cased only if it is a known verb.
fn operation_of(statement: &str) -> &str {
    let word = statement
        .trim_start()
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or_default();
    const VERBS: &[&str] = &[
        "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "CREATE", "DROP", "ALTER", "BEGIN",
        "COMMIT", "ROLLBACK", "TRUNCATE", "COPY", "MERGE", "UPSERT", "SET", "SHOW", "CALL",
    ];
    VERBS
        .iter()
        .find(|verb| verb.eq_ignore_ascii_case(word))
        .copied()
        .unwrap_or("QUERY")
}

#[cfg(test)]
mod tests {
    use super::operation_of;

    #[test]
    fn operations() {
        assert_eq!(operation_of("SELECT 1"), "SELECT");
        assert_eq!(operation_of("  insert into t values ($1)"), "INSERT");
        assert_eq!(operation_of("with x as (select 1) select * from x"), "WITH");
        assert_eq!(operation_of("VACUUM"), "QUERY");
        assert_eq!(operation_of(""), "QUERY");
    }
}
