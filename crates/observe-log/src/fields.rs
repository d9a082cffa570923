//! Every field observe writes into a log line, under its flat and its ECS
//! name, with its type: what log shippers and Elasticsearch index templates
//! must agree with (the repository's `monitoring/` files are tested against
//! this list).
//!
//! ```
//! use observe_log::fields::{FIELDS, FieldType};
//!
//! let duration = FIELDS.iter().find(|field| field.name == "duration_ms").unwrap();
//! assert_eq!(duration.ecs, "event.duration");
//! assert_eq!(duration.kind, FieldType::Double); // milliseconds
//! assert_eq!(duration.ecs_kind, FieldType::Long); // nanoseconds, as ECS has it
//! ```

/// A field's type, as an index maps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// An RFC 3339 UTC timestamp with microseconds.
    Date,
    /// A string matched whole (ids, names, codes).
    Keyword,
    /// Free text.
    Text,
    /// An integer.
    Long,
    /// A floating-point number.
    Double,
    /// `true` or `false`.
    Boolean,
    /// An IPv4 or IPv6 address.
    Ip,
}

impl FieldType {
    /// The Elasticsearch mapping type.
    pub fn elasticsearch(self) -> &'static str {
        match self {
            Self::Date => "date",
            Self::Keyword => "keyword",
            Self::Text => "text",
            Self::Long => "long",
            Self::Double => "double",
            Self::Boolean => "boolean",
            Self::Ip => "ip",
        }
    }
}

/// One field of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Its name in the flat schema (`OBSERVE_LOG_SCHEMA=flat`, the default).
    pub name: &'static str,
    /// Its name in the ECS schema (`OBSERVE_LOG_SCHEMA=ecs`).
    pub ecs: &'static str,
    /// Its type in the flat schema.
    pub kind: FieldType,
    /// Its type in the ECS schema.
    pub ecs_kind: FieldType,
    /// Whether every line has it (the others: request lines, errors, or
    /// when known).
    pub always: bool,
}

const fn field(name: &'static str, ecs: &'static str, kind: FieldType, always: bool) -> Field {
    Field {
        name,
        ecs,
        kind,
        ecs_kind: kind,
        always,
    }
}

use FieldType::{Boolean, Date, Double, Ip, Keyword, Long, Text};

/// Every field observe writes, leading keys first. Events of the
/// application add their own fields beside these.
pub const FIELDS: &[Field] = &[
    field("timestamp", "@timestamp", Date, true),
    field("level", "log.level", Keyword, true),
    field("target", "log.logger", Keyword, true),
    field("message", "message", Text, true),
    field("service", "service.name", Keyword, true),
    field("environment", "service.environment", Keyword, true),
    field("request_id", "http.request.id", Keyword, false),
    field("trace_id", "trace.id", Keyword, false),
    field("span_id", "span.id", Keyword, false),
    // The request line.
    field("method", "http.request.method", Keyword, false),
    field("endpoint", "http.route", Keyword, false),
    field("path", "url.path", Keyword, false),
    field("status_code", "http.response.status_code", Long, false),
    Field {
        name: "duration_ms",
        ecs: "event.duration",
        kind: Double,
        ecs_kind: Long,
        always: false,
    },
    field("request_bytes", "http.request.body.bytes", Long, false),
    field("response_bytes", "http.response.body.bytes", Long, false),
    field("user_agent", "user_agent.original", Keyword, false),
    field("client_ip", "client.ip", Ip, false),
    field("user_id", "user.id", Keyword, false),
    field("aborted", "event.aborted", Boolean, false),
    field("error_type", "error.type", Keyword, false),
    field("error_message", "error.message", Text, false),
    // One field per key of the error's context (`AppError::with_context`).
    field("context.*", "labels.*", Keyword, false),
    field("panic", "panic", Boolean, false),
    // The writer's summary after dropping lines.
    field("dropped_lines", "dropped_lines", Long, false),
];

/// The field named `name` in either schema; a key of the error's context
/// (`context.group_id`, ECS `labels.group_id`) finds `context.*`.
pub fn find(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|field| {
        field.name == name
            || field.ecs == name
            || field.family().is_some_and(|(flat, ecs)| {
                name.strip_prefix(flat)
                    .or_else(|| name.strip_prefix(ecs))
                    .is_some_and(|key| !key.is_empty())
            })
    })
}

/// The name of the field the request log hands the error's context in; the
/// line has a field per key instead, under [`CONTEXT_PREFIX`].
pub(crate) const CONTEXT: &str = "context";

/// The prefix of the error context's fields in the flat schema.
pub const CONTEXT_PREFIX: &str = "context.";

/// The prefix of the error context's fields in the ECS schema (ECS's
/// `labels`: keyword values).
pub const ECS_CONTEXT_PREFIX: &str = "labels.";

impl Field {
    /// For a family of fields (`context.*`), its flat and ECS prefixes.
    pub fn family(&self) -> Option<(&'static str, &'static str)> {
        Some((self.name.strip_suffix('*')?, self.ecs.strip_suffix('*')?))
    }
}
