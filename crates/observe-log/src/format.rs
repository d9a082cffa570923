//! [`LogLayer`]: the `tracing-subscriber` layer that turns events into lines.
//!
//! Spans carry the request's ids. A span with a `request_id`, `trace_id` or
//! `span_id` field sets them for itself and every span under it; other span
//! fields are rendered once, when the span opens, and added to each event
//! inside it. An event then costs one formatting pass into a thread-local
//! buffer and one copy into the writer's queue.

use std::{
    cell::RefCell,
    collections::HashMap,
    fmt::{self, Write as _},
    rc::Rc,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use arrayvec::ArrayString;
use tracing::{
    Event, Level, Subscriber,
    callsite::Identifier,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
};
use tracing_subscriber::{layer::Context, registry::LookupSpan};

use crate::{
    Redaction,
    json::{CappedEscaper, Escaper, escape_into, float_into, integer_into, string_into},
    redact::REDACTED,
    time::rfc3339_micros_into,
    writer::Sink,
};

/// The ECS version the `ecs` schema follows.
const ECS_VERSION: &str = "8.11.0";

/// How lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// Aligned text for a person at a terminal, coloured when `ansi` is on.
    Pretty,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "pretty" | "text" => Ok(Format::Pretty),
            _ => Err("expected json or pretty".to_owned()),
        }
    }
}

/// The field names of JSON lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Schema {
    /// Flat keys: `timestamp`, `level`, `target`, `message`, `service`,
    /// `environment`, `request_id`, `trace_id`, `span_id`, then the fields.
    Flat,
    /// Elastic Common Schema: `@timestamp`, `log.level`, `service.name`,
    /// `trace.id`, `http.request.method`, `event.duration` (nanoseconds), ...
    Ecs,
}

impl std::str::FromStr for Schema {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "flat" | "default" => Ok(Schema::Flat),
            "ecs" => Ok(Schema::Ecs),
            _ => Err("expected flat or ecs".to_owned()),
        }
    }
}

/// What every line is built with; shared by the layer and the writer.
#[derive(Debug)]
pub(crate) struct Formatter {
    pub(crate) format: Format,
    pub(crate) schema: Schema,
    pub(crate) ansi: bool,
    pub(crate) redaction: Redaction,
    /// `,"service":"...","environment":"..."` (or the ECS names), escaped once.
    service_fields: String,
    /// The keys of [`REQUEST_LINE_FIELDS`] as [`render_key`] writes them, each
    /// with whether its value is written.
    request_keys: [(Box<str>, bool); REQUEST_LINE_FIELDS.len()],
    /// Its keys' cache in each thread.
    id: u64,
}

impl Formatter {
    pub(crate) fn new(
        format: Format,
        schema: Schema,
        ansi: bool,
        redaction: Redaction,
        service: &str,
        environment: &str,
    ) -> Self {
        let mut service_fields = String::new();
        let (service_key, environment_key) = match schema {
            Schema::Flat => ("service", "environment"),
            Schema::Ecs => ("service.name", "service.environment"),
        };
        for (key, value) in [(service_key, service), (environment_key, environment)] {
            service_fields.push_str(",\"");
            service_fields.push_str(key);
            service_fields.push_str("\":");
            string_into(&mut service_fields, value);
        }
        if schema == Schema::Ecs {
            service_fields.push_str(",\"ecs.version\":\"");
            service_fields.push_str(ECS_VERSION);
            service_fields.push('"');
        }
        let mut formatter = Self {
            format,
            schema,
            ansi,
            redaction,
            service_fields,
            request_keys: Default::default(),
            id: NEXT_FORMATTER_ID.fetch_add(1, Ordering::Relaxed),
        };
        formatter.request_keys = REQUEST_LINE_FIELDS.map(|name| {
            let mut key = String::new();
            let writes_value = render_key(&formatter, &mut key, name);
            (key.into_boxed_str(), writes_value)
        });
        formatter
    }

    /// The writer's warning after lines were dropped.
    pub(crate) fn dropped_summary(&self, dropped: u64) -> Vec<u8> {
        let mut fields = String::new();
        if render_key(self, &mut fields, "dropped_lines") {
            integer_into(&mut fields, dropped);
        }
        let message = format!(
            "{dropped} log lines were dropped: the log queue was full (set OBSERVE_LOG_LOSSLESS=true to wait instead)"
        );
        let mut line = String::new();
        self.line(
            &mut line,
            &Line {
                timestamp: SystemTime::now(),
                level: &Level::WARN,
                target: "observe_log",
                message: &message,
                ids: [None; 3],
                plain: Plain::default(),
                span_fields: "",
                fields: &fields,
            },
        );
        line.into_bytes()
    }

    fn line(&self, out: &mut String, line: &Line<'_>) {
        match self.format {
            Format::Json => self.json_line(out, line),
            Format::Pretty => self.pretty_line(out, line),
        }
    }

    fn json_line(&self, out: &mut String, line: &Line<'_>) {
        let ecs = self.schema == Schema::Ecs;
        out.push_str(if ecs {
            "{\"@timestamp\":\""
        } else {
            "{\"timestamp\":\""
        });
        rfc3339_micros_into(out, line.timestamp);
        out.push_str(if ecs {
            "\",\"log.level\":\""
        } else {
            "\",\"level\":\""
        });
        out.push_str(if ecs {
            level_lower(line.level)
        } else {
            line.level.as_str()
        });
        out.push_str(if ecs {
            "\",\"log.logger\":"
        } else {
            "\",\"target\":"
        });
        out.push('"');
        line.plain.target_into(out, line.target);
        out.push_str("\",\"message\":\"");
        out.push_str(line.message);
        out.push('"');
        out.push_str(&self.service_fields);
        let keys = if ecs {
            ["http.request.id", "trace.id", "span.id"]
        } else {
            ["request_id", "trace_id", "span_id"]
        };
        for (index, (key, value)) in keys.into_iter().zip(line.ids).enumerate() {
            if let Some(value) = value {
                out.push_str(",\"");
                out.push_str(key);
                out.push_str("\":\"");
                line.plain.id_into(out, index, value);
                out.push('"');
            }
        }
        out.push_str(line.span_fields);
        out.push_str(line.fields);
        out.push_str("}\n");
    }

    fn pretty_line(&self, out: &mut String, line: &Line<'_>) {
        rfc3339_micros_into(out, line.timestamp);
        let (colour, name) = match *line.level {
            Level::ERROR => ("\x1b[31m", "ERROR"),
            Level::WARN => ("\x1b[33m", " WARN"),
            Level::INFO => ("\x1b[32m", " INFO"),
            Level::DEBUG => ("\x1b[34m", "DEBUG"),
            Level::TRACE => ("\x1b[35m", "TRACE"),
        };
        out.push(' ');
        if self.ansi {
            out.push_str(colour);
            out.push_str(name);
            out.push_str("\x1b[0m \x1b[2m");
            line.plain.target_into(out, line.target);
            out.push_str(":\x1b[0m ");
        } else {
            out.push_str(name);
            out.push(' ');
            line.plain.target_into(out, line.target);
            out.push_str(": ");
        }
        out.push_str(line.message);
        out.push_str(line.span_fields);
        out.push_str(line.fields);
        for (index, (key, value)) in ["request_id", "trace_id", "span_id"]
            .into_iter()
            .zip(line.ids)
            .enumerate()
        {
            if let Some(value) = value {
                out.push(' ');
                out.push_str(key);
                out.push('=');
                line.plain.id_into(out, index, value);
            }
        }
        out.push('\n');
    }
}

/// One line's parts, besides the service fields every line has.
struct Line<'a> {
    /// When it happened.
    timestamp: SystemTime,
    level: &'a Level,
    target: &'a str,
    message: &'a str,
    /// Request id, trace id, span id.
    ids: [Option<&'a str>; 3],
    plain: Plain,
    /// Rendered fields of the event's spans.
    span_fields: &'a str,
    /// Rendered fields of the event.
    fields: &'a str,
}

/// What a line's caller knows needs no escaping: a constant target, ids it
/// made itself as hex. The rest is escaped.
#[derive(Debug, Clone, Copy, Default)]
struct Plain {
    target: bool,
    /// Request id, trace id, span id.
    ids: [bool; 3],
}

impl Plain {
    fn target_into(self, out: &mut String, target: &str) {
        if self.target {
            out.push_str(target);
        } else {
            escape_into(out, target);
        }
    }

    fn id_into(self, out: &mut String, index: usize, id: &str) {
        if self.ids.get(index).copied().unwrap_or(false) {
            out.push_str(id);
        } else {
            escape_into(out, id);
        }
    }
}

fn level_lower(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// The correlation ids of a span and everything under it.
#[derive(Debug, Clone, Default)]
struct Ids {
    request_id: Option<IdText>,
    trace_id: Option<IdText>,
    span_id: Option<IdText>,
}

impl Ids {
    fn iter(&self) -> [Option<&str>; 3] {
        [
            self.request_id.as_ref().map(IdText::as_str),
            self.trace_id.as_ref().map(IdText::as_str),
            self.span_id.as_ref().map(IdText::as_str),
        ]
    }

    fn slot(&mut self, name: &str) -> Option<&mut Option<IdText>> {
        match name {
            "request_id" => Some(&mut self.request_id),
            "trace_id" => Some(&mut self.trace_id),
            "span_id" => Some(&mut self.span_id),
            _ => None,
        }
    }
}

/// Ids up to this long (UUIDs, W3C trace and span ids) are kept inline.
const INLINE_ID: usize = 40;

/// An id's text: inline when short, so a request span's ids cost no
/// allocation; shared when longer.
#[derive(Clone)]
enum IdText {
    Inline(ArrayString<INLINE_ID>),
    Shared(Arc<str>),
}

impl IdText {
    fn new(text: &str) -> Self {
        ArrayString::from(text).map_or_else(|_| Self::Shared(Arc::from(text)), Self::Inline)
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Inline(text) => text,
            Self::Shared(text) => text,
        }
    }
}

impl fmt::Debug for IdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// What a span leaves in its extensions.
#[derive(Debug, Clone)]
struct SpanData {
    ids: Ids,
    /// Rendered fields of this span and its parents.
    fields: Arc<str>,
}

impl Default for SpanData {
    fn default() -> Self {
        // Most spans have no fields of their own to render: one shared
        // empty text rather than an allocation each.
        static NO_FIELDS: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
        Self {
            ids: Ids::default(),
            fields: NO_FIELDS.get_or_init(|| Arc::from("")).clone(),
        }
    }
}

/// The layer that formats events and queues them for the writer. Build it
/// with [`Logging::builder`](crate::Logging::builder).
#[derive(Clone)]
pub struct LogLayer {
    pub(crate) formatter: Arc<Formatter>,
    pub(crate) sink: Sink,
    /// Set in a subscriber that writes request lines itself: no other layer
    /// reads them and its filter is plain.
    pub(crate) request_lines: Option<RequestLineLevels>,
}

/// The levels at which a subscriber lets request lines through, found once
/// from its filter (see [`LogLayer::wants_request_line`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestLineLevels {
    /// By level, `ERROR` first.
    enabled: [bool; 5],
}

impl RequestLineLevels {
    /// The levels `enabled` says yes to, within those compiled in.
    pub(crate) fn new(enabled: impl Fn(&Level) -> bool) -> Self {
        let enabled = [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE,
        ]
        .map(|level| level <= tracing::level_filters::STATIC_MAX_LEVEL && enabled(&level));
        Self { enabled }
    }

    fn enables(&self, level: Level) -> bool {
        let index = match level {
            Level::ERROR => 0,
            Level::WARN => 1,
            Level::INFO => 2,
            Level::DEBUG => 3,
            Level::TRACE => 4,
        };
        self.enabled[index]
    }
}

/// The fields of the request log's line, in its order (the `message`
/// aside): [`RequestLineFields`] holds their values.
const REQUEST_LINE_FIELDS: [&str; 15] = [
    "method",
    "endpoint",
    "path",
    "status_code",
    "duration_ms",
    "request_bytes",
    "response_bytes",
    "user_agent",
    "client_ip",
    "user_id",
    "aborted",
    "error_type",
    "error_message",
    "context",
    "panic",
];

/// One request line's values: the request log's `tracing` event carries
/// them, or [`LogLayer::write_request_line`] writes them straight.
#[derive(Debug)]
pub(crate) struct RequestLineFields<'a> {
    pub(crate) method: &'a str,
    pub(crate) endpoint: &'a str,
    pub(crate) path: &'a str,
    pub(crate) status_code: u16,
    pub(crate) duration_ms: f64,
    pub(crate) request_bytes: Option<u64>,
    pub(crate) response_bytes: Option<u64>,
    pub(crate) user_agent: Option<&'a str>,
    pub(crate) client_ip: Option<&'a str>,
    pub(crate) user_id: Option<&'a str>,
    pub(crate) aborted: Option<bool>,
    pub(crate) error_type: Option<&'a str>,
    pub(crate) error_message: Option<&'a str>,
    pub(crate) context: Option<&'a str>,
    pub(crate) panic: Option<bool>,
    pub(crate) message: &'static str,
    /// When the line's request finished: its start plus its duration, so
    /// that writing the line reads no clock.
    pub(crate) timestamp: SystemTime,
}

impl fmt::Debug for LogLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogLayer")
            .field("format", &self.formatter.format)
            .field("schema", &self.formatter.schema)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Buffers {
    line: String,
    message: String,
    fields: String,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// Lines longer than this give their buffer back after use, so one huge
/// event does not pin memory in every thread.
const KEEP_BUFFER: usize = 16 * 1024;

impl<S> tracing_subscriber::Layer<S> for LogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut data = span
            .parent()
            .and_then(|parent| parent.extensions().get::<SpanData>().cloned())
            .unwrap_or_default();
        if !attrs.fields().is_empty() {
            self.record_span(&mut data, |visitor| attrs.record(visitor));
        }
        span.extensions_mut().insert(data);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(data) = extensions.get_mut::<SpanData>() {
            self.record_span(data, |visitor| values.record(visitor));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let span = ctx.event_span(event);
        // Borrowed for the length of the formatting: a per-span lock, never
        // contended, in place of cloning the ids.
        let extensions = span.as_ref().map(|span| span.extensions());
        let data = extensions
            .as_ref()
            .and_then(|extensions| extensions.get::<SpanData>());
        let formatter = &*self.formatter;
        let format = |buffers: &mut Buffers| {
            let Buffers {
                line,
                message,
                fields,
            } = buffers;
            let mut visitor = FieldVisitor::new(formatter, fields);
            visitor.message = Some(message);
            event.record(&mut visitor);
            let from_event = visitor.ids;
            let from_span = data.map(|data| data.ids.iter()).unwrap_or_default();
            let mut ids = from_span;
            for (slot, value) in ids.iter_mut().zip(from_event.iter()) {
                if slot.is_none() {
                    *slot = value;
                }
            }
            // Outside any request span, the id of the request being polled.
            let scoped = match ids[0] {
                None => observe_request_id::current(),
                Some(_) => None,
            };
            if let Some(scoped) = &scoped {
                ids[0] = Some(scoped.as_str());
            }
            let metadata = event.metadata();
            formatter.line(
                line,
                &Line {
                    timestamp: SystemTime::now(),
                    level: metadata.level(),
                    target: metadata.target(),
                    message,
                    ids,
                    plain: Plain::default(),
                    span_fields: data.map_or("", |data| &data.fields),
                    fields,
                },
            );
            self.sink.send(line.as_bytes());
        };
        with_buffers(format);
    }
}

/// Runs `format` with this thread's line buffers, emptied.
fn with_buffers(format: impl FnOnce(&mut Buffers)) {
    let format = |buffers: &mut Buffers| {
        buffers.line.clear();
        buffers.message.clear();
        buffers.fields.clear();
        format(buffers);
        if buffers.line.capacity() > KEEP_BUFFER {
            *buffers = Buffers::default();
        }
    };
    BUFFERS.with(|buffers| match buffers.try_borrow_mut() {
        Ok(mut buffers) => format(&mut buffers),
        // An event logged while formatting another (from a `Debug` impl).
        Err(_) => format(&mut Buffers::default()),
    });
}

impl LogLayer {
    /// Whether this layer writes a request line at `level` itself: `None`
    /// when its subscriber needs the event (another layer may read request
    /// lines, or its filter is not plain `target=level` directives),
    /// `Some(false)` when the filter turns the line away.
    pub(crate) fn wants_request_line(&self, level: Level) -> Option<bool> {
        self.request_lines.map(|levels| levels.enables(level))
    }

    /// Writes a request line as this layer writes the request log's event,
    /// without the event, once [`wants_request_line`](Self::wants_request_line)
    /// said `Some(true)` for its level.
    ///
    /// `ids` are the request span's, which must have no parent: the event's
    /// line would add a parent's fields.
    pub(crate) fn write_request_line(
        &self,
        level: Level,
        ids: [Option<&str>; 3],
        values: &RequestLineFields<'_>,
    ) {
        let formatter = &*self.formatter;
        with_buffers(|buffers| {
            let Buffers {
                line,
                message,
                fields,
            } = buffers;
            // A constant of this crate's: nothing to escape (a redacted
            // part would be `[REDACTED]`, plain too).
            message.push_str(&formatter.redaction.scrub(values.message));
            let [
                method,
                endpoint,
                path,
                status_code,
                duration_ms,
                request_bytes,
                response_bytes,
                user_agent,
                client_ip,
                user_id,
                aborted,
                error_type,
                error_message,
                context,
                panic,
            ] = &formatter.request_keys;
            let text = |fields: &mut String, (key, writes): &(Box<str>, bool), value: &str| {
                fields.push_str(key);
                if *writes {
                    text_into(fields, &formatter.redaction.scrub(value));
                }
            };
            let number = |fields: &mut String, (key, writes): &(Box<str>, bool), value: u64| {
                fields.push_str(key);
                if *writes {
                    integer_into(fields, value);
                }
            };
            let flag = |fields: &mut String, (key, writes): &(Box<str>, bool), value: bool| {
                fields.push_str(key);
                if *writes {
                    fields.push_str(if value { "true" } else { "false" });
                }
            };
            // An HTTP method is a token: no quote, backslash or control
            // character to escape.
            if values.method.len() <= crate::MAX_FIELD_BYTES && !formatter.redaction.has_values() {
                fields.push_str(&method.0);
                if method.1 {
                    fields.push('"');
                    fields.push_str(values.method);
                    fields.push('"');
                }
            } else {
                text(fields, method, values.method);
            }
            text(fields, endpoint, values.endpoint);
            text(fields, path, values.path);
            number(fields, status_code, u64::from(values.status_code));
            fields.push_str(&duration_ms.0);
            if duration_ms.1 {
                duration_into(formatter, fields, values.duration_ms);
            }
            for (key, value) in [
                (request_bytes, values.request_bytes),
                (response_bytes, values.response_bytes),
            ] {
                if let Some(value) = value {
                    number(fields, key, value);
                }
            }
            for (key, value) in [
                (user_agent, values.user_agent),
                (client_ip, values.client_ip),
                (user_id, values.user_id),
            ] {
                if let Some(value) = value {
                    text(fields, key, value);
                }
            }
            if let Some(value) = values.aborted {
                flag(fields, aborted, value);
            }
            for (key, value) in [
                (error_type, values.error_type),
                (error_message, values.error_message),
            ] {
                if let Some(value) = value {
                    text(fields, key, value);
                }
            }
            if let Some(value) = values.context
                && !context_fields_into(formatter, fields, value)
            {
                text(fields, context, value);
            }
            if let Some(value) = values.panic {
                flag(fields, panic, value);
            }
            let mut ids = ids;
            let scoped = match ids[0] {
                None => observe_request_id::current(),
                Some(_) => None,
            };
            if let Some(scoped) = &scoped {
                ids[0] = Some(scoped.as_str());
            }
            formatter.line(
                line,
                &Line {
                    timestamp: values.timestamp,
                    level: &level,
                    target: observe_core::REQUEST_LINE_TARGET,
                    message,
                    ids,
                    // The target is a constant, trace and span ids are hex; a
                    // request id may come from a client.
                    plain: Plain {
                        target: true,
                        ids: [false, true, true],
                    },
                    span_fields: "",
                    fields,
                },
            );
            self.sink.send(line.as_bytes());
        });
    }
}

impl LogLayer {
    fn record_span(&self, data: &mut SpanData, record: impl FnOnce(&mut FieldVisitor<'_>)) {
        let mut fields = String::from(&*data.fields);
        let before = fields.len();
        let mut visitor = FieldVisitor::new(&self.formatter, &mut fields);
        record(&mut visitor);
        let found = visitor.ids;
        for (slot, value) in [
            (&mut data.ids.request_id, found.request_id),
            (&mut data.ids.trace_id, found.trace_id),
            (&mut data.ids.span_id, found.span_id),
        ] {
            if value.is_some() {
                *slot = value;
            }
        }
        if fields.len() != before {
            data.fields = Arc::from(fields);
        }
    }
}

/// Writes `name`'s key and its separator as `formatter` renders it; `false`
/// when the value is a secret (then `[REDACTED]` is written already).
fn render_key(formatter: &Formatter, out: &mut String, name: &str) -> bool {
    let json = formatter.format == Format::Json;
    let key = match formatter.schema {
        Schema::Ecs => ecs_name(name),
        Schema::Flat => name,
    };
    if json && RESERVED_KEYS.contains(&key) {
        // A field named like a key every line has would make a duplicate key.
        out.push_str(",\"fields.");
        escape_into(out, key);
        out.push_str("\":");
    } else if json {
        out.push_str(",\"");
        escape_into(out, key);
        out.push_str("\":");
    } else {
        out.push(' ');
        escape_into(out, key);
        out.push('=');
    }
    if formatter.redaction.is_secret(name) {
        string_into(out, REDACTED);
        return false;
    }
    true
}

/// The keys of one callsite's fields as [`render_key`] writes them for one
/// formatter, by field index, each with whether its value is written.
type CallsiteKeys = Rc<RefCell<Vec<Option<(Box<str>, bool)>>>>;

/// Every callsite's keys, by formatter and callsite: looked up once per
/// event, then each field's key is an index away. Several formatters (a
/// pretty stdout and a JSON file) share it without evicting each other.
type KeyCache = HashMap<(u64, Identifier), CallsiteKeys, foldhash::fast::FixedState>;

/// Past this many callsites in a thread, the cache starts again: callsites
/// are few, but formatters made again and again (tests) would add theirs
/// forever.
const MAX_CACHED_CALLSITES: usize = 4096;

thread_local! {
    static KEYS: RefCell<KeyCache> = RefCell::new(KeyCache::default());
}

/// Tells formatters apart in [`KeyCache`].
static NEXT_FORMATTER_ID: AtomicU64 = AtomicU64::new(1);

/// The cached keys of `callsite` for `formatter`, made empty the first time;
/// `None` while the cache is borrowed (an event logged from a `Debug` impl
/// while another is formatted) or the thread is going away.
fn callsite_keys(formatter: &Formatter, callsite: Identifier) -> Option<CallsiteKeys> {
    KEYS.try_with(|cache| {
        let mut cache = cache.try_borrow_mut().ok()?;
        if cache.len() >= MAX_CACHED_CALLSITES {
            cache.clear();
        }
        Some(cache.entry((formatter.id, callsite)).or_default().clone())
    })
    .ok()
    .flatten()
}

/// Writes fields as `,"key":value` (JSON) or ` key=value` (pretty).
pub(crate) struct FieldVisitor<'a> {
    formatter: &'a Formatter,
    /// The keys of the callsite whose fields are being written.
    keys: Option<(Identifier, CallsiteKeys)>,
    out: &'a mut String,
    /// Where the `message` field goes; `None` writes it as a field.
    message: Option<&'a mut String>,
    ids: Ids,
}

impl<'a> FieldVisitor<'a> {
    pub(crate) fn new(formatter: &'a Formatter, out: &'a mut String) -> Self {
        Self {
            formatter,
            keys: None,
            out,
            message: None,
            ids: Ids::default(),
        }
    }

    /// Writes the key and its separator; `false` when the value is a secret
    /// (then `[REDACTED]` is written already).
    ///
    /// Each callsite's keys are rendered once per formatter and thread and
    /// copied after that: every request line has the same keys.
    fn key(&mut self, field: &Field) -> bool {
        let callsite = field.callsite();
        if self
            .keys
            .as_ref()
            .is_none_or(|(cached, _)| *cached != callsite)
        {
            self.keys =
                callsite_keys(self.formatter, callsite.clone()).map(|keys| (callsite, keys));
        }
        let cached = self
            .keys
            .as_ref()
            .and_then(|(_, keys)| keys.try_borrow_mut().ok());
        let Some(mut keys) = cached else {
            return render_key(self.formatter, self.out, field.name());
        };
        let index = field.index();
        if keys.len() <= index {
            keys.resize(index + 1, None);
        }
        let (text, writes_value) = keys[index].get_or_insert_with(|| {
            let mut text = String::new();
            let writes_value = render_key(self.formatter, &mut text, field.name());
            (text.into_boxed_str(), writes_value)
        });
        self.out.push_str(text);
        *writes_value
    }

    fn number(&mut self, field: &Field, value: impl itoa::Integer) {
        if self.key(field) {
            integer_into(self.out, value);
        }
    }

    fn text(&mut self, field: &Field, value: &str) {
        if self.key(field) {
            text_into(self.out, value);
        }
    }

    fn display(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.key(field) {
            self.capped(format_args!("{value:?}"));
        }
    }

    fn capped(&mut self, value: fmt::Arguments<'_>) {
        capped_into(self.out, value);
    }

    /// Takes a correlation id given as a field; `true` when `name` is one.
    fn id(&mut self, name: &str, value: &dyn fmt::Debug) -> bool {
        match self.ids.slot(name) {
            Some(slot) => {
                let mut text = String::new();
                let _ = write!(text, "{value:?}");
                *slot = Some(IdText::new(&text));
                true
            }
            None => false,
        }
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let name = field.name();
        if let Some(slot) = self.ids.slot(name) {
            *slot = Some(IdText::new(value));
            return;
        }
        if name == crate::fields::CONTEXT && context_fields_into(self.formatter, self.out, value) {
            return;
        }
        let value = self.formatter.redaction.scrub(value);
        if name == "message"
            && let Some(message) = self.message.as_deref_mut()
        {
            escape_into(message, &value);
            return;
        }
        self.text(field, &value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if self.formatter.redaction.has_values() && name != "message" && self.id(name, value) {
            return;
        }
        if self.formatter.redaction.has_values() {
            // Secret values to find: the text is made first, then scrubbed.
            let text = format!("{value:?}");
            let text = self.formatter.redaction.scrub(&text);
            if name == "message"
                && let Some(message) = self.message.as_deref_mut()
            {
                escape_into(message, &text);
            } else if self.key(field) {
                self.capped(format_args!("{text}"));
            }
            return;
        }
        if name == "message"
            && let Some(message) = self.message.as_deref_mut()
        {
            let _ = write!(Escaper(message), "{value:?}");
            return;
        }
        if self.id(name, value) {
            return;
        }
        self.display(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.number(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.number(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.key(field) {
            self.out.push_str(if value { "true" } else { "false" });
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let name = field.name();
        if self.key(field) {
            if name == "duration_ms" {
                duration_into(self.formatter, self.out, value);
            } else {
                float_into(self.out, value);
            }
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.formatter.redaction.has_values() {
            let mut text = value.to_string();
            let mut source = value.source();
            while let Some(error) = source {
                let _ = write!(text, ": {error}");
                source = error.source();
            }
            let text = self.formatter.redaction.scrub(&text);
            self.text(field, &text);
            return;
        }
        if self.key(field) {
            self.out.push('"');
            let _ = write!(Escaper(self.out), "{value}");
            let mut source = value.source();
            while let Some(error) = source {
                let _ = write!(Escaper(self.out), ": {error}");
                source = error.source();
            }
            self.out.push('"');
        }
    }
}

/// A string field's value: escaped, and cut at
/// [`MAX_FIELD_BYTES`](crate::MAX_FIELD_BYTES).
fn text_into(out: &mut String, value: &str) {
    if value.len() <= crate::MAX_FIELD_BYTES {
        string_into(out, value);
    } else {
        capped_into(out, format_args!("{value}"));
    }
}

/// A string value of at most [`MAX_FIELD_BYTES`](crate::MAX_FIELD_BYTES),
/// marked when cut: a client's 100 KB header does not make a 100 KB line.
fn capped_into(out: &mut String, value: fmt::Arguments<'_>) {
    out.push('"');
    let mut capped = CappedEscaper {
        out,
        left: crate::MAX_FIELD_BYTES,
        cut: false,
    };
    let _ = capped.write_fmt(value);
    if capped.cut {
        out.push_str(crate::TRUNCATED_MARK);
    }
    out.push('"');
}

/// `duration_ms`: milliseconds, or in ECS (`event.duration`) whole
/// nanoseconds.
fn duration_into(formatter: &Formatter, out: &mut String, milliseconds: f64) {
    if formatter.schema == Schema::Ecs {
        integer_into(out, (milliseconds * 1e6).round() as u64);
    } else {
        float_into(out, milliseconds);
    }
}

/// An error report's context (a JSON object, from the request log) written
/// as one field per key, `context.KEY` (ECS: `labels.KEY`), so a shipper
/// indexes each; `false` when `value` is no such object.
fn context_fields_into(formatter: &Formatter, out: &mut String, value: &str) -> bool {
    let Ok(serde_json::Value::Object(entries)) = serde_json::from_str(value) else {
        return false;
    };
    let json = formatter.format == Format::Json;
    let prefix = match formatter.schema {
        Schema::Ecs => crate::fields::ECS_CONTEXT_PREFIX,
        Schema::Flat => crate::fields::CONTEXT_PREFIX,
    };
    for (key, value) in &entries {
        if json {
            out.push_str(",\"");
            escape_into(out, prefix);
            escape_into(out, key);
            out.push_str("\":");
        } else {
            out.push(' ');
            escape_into(out, prefix);
            escape_into(out, key);
            out.push('=');
        }
        if formatter.redaction.is_secret(key) {
            string_into(out, REDACTED);
            continue;
        }
        let text = match value {
            serde_json::Value::String(text) => std::borrow::Cow::Borrowed(text.as_str()),
            other => std::borrow::Cow::Owned(other.to_string()),
        };
        text_into(out, &formatter.redaction.scrub(&text));
    }
    true
}

/// Keys the line itself writes, in either schema.
const RESERVED_KEYS: &[&str] = &[
    "timestamp",
    "level",
    "target",
    "service",
    "environment",
    "@timestamp",
    "log.level",
    "log.logger",
    "service.name",
    "service.environment",
    "ecs.version",
    // Objects of the context's fields: an application's own `context` or
    // `labels` text goes under `fields.`.
    "context",
    "labels",
];

/// The ECS name of a field, where ECS has one.
fn ecs_name(name: &str) -> &str {
    match name {
        "method" => "http.request.method",
        "path" => "url.path",
        "status_code" => "http.response.status_code",
        "duration_ms" => "event.duration",
        "endpoint" => "http.route",
        "user_agent" => "user_agent.original",
        "client_ip" => "client.ip",
        "user_id" => "user.id",
        "request_bytes" => "http.request.body.bytes",
        "response_bytes" => "http.response.body.bytes",
        "error_type" => "error.type",
        "error_message" => "error.message",
        "aborted" => "event.aborted",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::{io, time::Duration};

    #[test]
    fn the_published_field_list_matches_what_is_written() {
        for field in crate::fields::FIELDS {
            if super::RESERVED_KEYS.contains(&field.name) {
                assert!(super::RESERVED_KEYS.contains(&field.ecs), "{field:?}");
            } else if field.family().is_some() {
                // Written key by key, `context_fields`.
            } else if !["message", "request_id", "trace_id", "span_id"].contains(&field.name) {
                assert_eq!(super::ecs_name(field.name), field.ecs, "{field:?}");
            }
        }
    }

    use crate::{Format, Logging, Schema, test_support::Buffer};

    fn logged(format: Format, schema: Schema, ansi: bool, log: impl FnOnce()) -> String {
        logged_with(format, schema, ansi, crate::Redaction::new(), log)
    }

    fn logged_with(
        format: Format,
        schema: Schema,
        ansi: bool,
        redaction: crate::Redaction,
        log: impl FnOnce(),
    ) -> String {
        let buffer = Buffer::default();
        let logging = Logging::builder("svc")
            .format(format)
            .schema(schema)
            .ansi(ansi)
            .redaction(redaction)
            .writer(buffer.clone())
            .build()
            .unwrap_or_else(|error| panic!("{error}"));
        let dispatch = logging
            .dispatch("trace")
            .unwrap_or_else(|error| panic!("{error}"));
        tracing::dispatcher::with_default(&dispatch, log);
        assert_eq!(logging.handle().flush(Duration::from_secs(5)), Ok(()));
        buffer.text()
    }

    #[test]
    fn each_formatter_writes_its_own_keys_from_one_thread() {
        // One callsite, formatted by formatters of both schemas and formats
        // in turn on this thread: keys are rendered once per formatter and
        // callsite, never taken from another formatter's cache.
        fn event() {
            tracing::info!(
                method = "GET",
                status_code = 200_u64,
                token = "s3cret",
                "done"
            );
        }
        for _ in 0..2 {
            let flat = logged(Format::Json, Schema::Flat, false, event);
            assert!(
                flat.contains(r#""method":"GET","status_code":200,"token":"[REDACTED]""#),
                "{flat}"
            );
            let ecs = logged(Format::Json, Schema::Ecs, false, event);
            assert!(
                ecs.contains(
                    r#""http.request.method":"GET","http.response.status_code":200,"token":"[REDACTED]""#
                ),
                "{ecs}"
            );
            let pretty = logged(Format::Pretty, Schema::Flat, false, event);
            assert!(
                pretty.contains(r#"method="GET" status_code=200 token="[REDACTED]""#),
                "{pretty}"
            );
        }
    }

    #[test]
    fn an_error_context_is_a_field_per_key_in_either_schema() {
        let context = r#"{"vk_method":"wall.get","password":"hunter2","quote":"a \"b\""}"#;
        for (schema, prefix) in [(Schema::Flat, "context."), (Schema::Ecs, "labels.")] {
            let output = logged(Format::Json, schema, false, || {
                tracing::error!(context, "request finished");
                // An application's own `context` text stays one field, aside.
                tracing::info!(context = "not an object", "own field");
            });
            let lines: Vec<serde_json::Value> = output
                .lines()
                .map(|line| {
                    serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"))
                })
                .collect();
            assert_eq!(
                lines[0][format!("{prefix}vk_method")],
                "wall.get",
                "{output}"
            );
            assert_eq!(
                lines[0][format!("{prefix}password")],
                "[REDACTED]",
                "{output}"
            );
            assert_eq!(lines[0][format!("{prefix}quote")], "a \"b\"", "{output}");
            assert!(lines[0].get("context").is_none(), "{output}");
            assert_eq!(lines[1]["fields.context"], "not an object", "{output}");
        }
        let pretty = logged(Format::Pretty, Schema::Flat, false, || {
            tracing::error!(context, "request finished");
        });
        assert!(
            pretty.contains(r#"context.vk_method="wall.get""#),
            "{pretty}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// A field named like a secret header or parameter never shows its
        /// value, whichever way it is recorded and in either schema.
        #[test]
        fn secret_fields_never_show_their_values(
            value in "[A-Za-z0-9]{12,40}",
            ecs in proptest::prelude::any::<bool>(),
        ) {
            let schema = if ecs { Schema::Ecs } else { Schema::Flat };
            let output = logged(Format::Json, schema, false, || {
                tracing::info!(
                    authorization = value.as_str(),
                    cookie = %value,
                    x_api_key = ?value,
                    password = value.as_str(),
                    "with secrets"
                );
            });
            let line: serde_json::Value = serde_json::from_str(output.trim()).unwrap();
            for key in ["authorization", "cookie", "x_api_key", "password"] {
                proptest::prop_assert_eq!(&line[key], "[REDACTED]", "{}", output);
            }
            proptest::prop_assert!(!output.contains(&value), "{}", output);
        }

        /// Whatever the values, in either schema, each event is one line of
        /// JSON with the same fields and values (strings up to the cap).
        #[test]
        fn every_line_parses_with_the_fields_it_was_given(
            text in proptest::prelude::any::<String>(),
            user in proptest::prelude::any::<String>(),
            number in proptest::prelude::any::<i64>(),
            ratio in -1e12f64..1e12,
            flag in proptest::prelude::any::<bool>(),
            ecs in proptest::prelude::any::<bool>(),
        ) {
            let schema = if ecs { Schema::Ecs } else { Schema::Flat };
            let output = logged(Format::Json, schema, false, || {
                let span = tracing::info_span!("request", request_id = "r-1");
                let _entered = span.enter();
                tracing::info!(text = text.as_str(), user_id = user.as_str(), number, ratio, flag, "{}", text);
            });
            let lines: Vec<&str> = output.lines().collect();
            proptest::prop_assert_eq!(lines.len(), 1, "{}", output);
            let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
            let user_key = if ecs { "user.id" } else { "user_id" };
            let id_key = if ecs { "http.request.id" } else { "request_id" };
            let capped = |value: &str| -> String {
                if value.len() <= crate::MAX_FIELD_BYTES {
                    value.to_owned()
                } else {
                    let mut end = crate::MAX_FIELD_BYTES;
                    while !value.is_char_boundary(end) {
                        end -= 1;
                    }
                    format!("{}{}", &value[..end], crate::TRUNCATED_MARK)
                }
            };
            let (text_capped, user_capped) = (capped(&text), capped(&user));
            proptest::prop_assert_eq!(line["text"].as_str(), Some(text_capped.as_str()));
            proptest::prop_assert_eq!(line[user_key].as_str(), Some(user_capped.as_str()));
            proptest::prop_assert_eq!(line["number"].as_i64(), Some(number));
            proptest::prop_assert!((line["ratio"].as_f64().unwrap() - ratio).abs() <= ratio.abs() * 1e-12);
            proptest::prop_assert_eq!(line["flag"].as_bool(), Some(flag));
            proptest::prop_assert_eq!(line[id_key].as_str(), Some("r-1"));
            proptest::prop_assert_eq!(line["message"].as_str(), Some(text.as_str()));
        }
    }

    #[test]
    fn configured_secret_values_are_scrubbed_from_every_text() {
        let redaction = crate::Redaction::new().value("tok-12345");
        let text = logged_with(Format::Json, Schema::Flat, false, redaction, || {
            let error = io::Error::other("upstream said: bad access_token=tok-12345");
            tracing::warn!(
                error_message = "VK error 5: invalid token tok-12345",
                url = ?"https://api.vk.com/method/wall.get?access_token=tok-12345",
                error = &error as &(dyn std::error::Error + 'static),
                "calling with tok-12345 failed"
            );
        });
        assert!(!text.contains("tok-12345"), "{text}");
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(
            line["error_message"],
            "VK error 5: invalid token [REDACTED]"
        );
        assert_eq!(line["message"], "calling with [REDACTED] failed");
        assert_eq!(
            line["url"],
            "\"https://api.vk.com/method/wall.get?access_token=[REDACTED]\""
        );
        assert_eq!(line["error"], "upstream said: bad access_token=[REDACTED]");
    }

    #[test]
    fn pretty_lines_are_one_line_each_with_the_ids_last() {
        let text = logged(Format::Pretty, Schema::Flat, false, || {
            let span = tracing::info_span!("request", request_id = "r-1", group = 42);
            span.in_scope(|| {
                tracing::warn!(text = "a\r\nb", count = 3, ok = true, "parsed\nnot");
            });
        });
        let line = text.strip_suffix('\n').unwrap_or_default();
        assert!(!line.contains('\n'), "{text:?}");
        let (timestamp, rest) = line.split_once(' ').unwrap_or_default();
        assert_eq!(timestamp.len(), 27);
        assert_eq!(
            rest,
            " WARN observe_log::format::tests: parsed\\nnot group=42 text=\"a\\r\\nb\" count=3 ok=true request_id=r-1"
        );
    }

    #[test]
    fn pretty_lines_are_coloured_only_when_asked() {
        let coloured = logged(Format::Pretty, Schema::Flat, true, || {
            tracing::error!("boom")
        });
        assert!(
            coloured.contains("\u{1b}[31mERROR\u{1b}[0m"),
            "{coloured:?}"
        );
        let plain = logged(Format::Pretty, Schema::Flat, false, || {
            tracing::error!("boom")
        });
        assert!(!plain.contains('\u{1b}'));
    }

    #[test]
    fn json_fields_of_every_kind() {
        let text = logged(Format::Json, Schema::Flat, false, || {
            let error = io::Error::other("disk full");
            tracing::debug!(
                signed = -5i64,
                big = u128::MAX,
                ratio = 0.25,
                not_a_number = f64::NAN,
                flag = false,
                error = &error as &(dyn std::error::Error + 'static),
                debug = ?Some("x"),
                password = "hunter2",
                service = "other",
                "kinds"
            );
        });
        let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap_or_default();
        assert_eq!(line["level"], "DEBUG");
        assert_eq!(line["message"], "kinds");
        assert_eq!(line["signed"], -5);
        assert!(text.contains(&format!("\"big\":{}", u128::MAX)));
        assert_eq!(line["ratio"], 0.25);
        assert_eq!(line["not_a_number"], "NaN");
        assert_eq!(line["flag"], false);
        assert_eq!(line["error"], "disk full");
        assert_eq!(line["debug"], "Some(\"x\")");
        assert_eq!(line["password"], "[REDACTED]");
        assert_eq!(line["service"], "svc");
        assert_eq!(line["fields.service"], "other");
        assert_eq!(text.matches("\"service\":").count(), 1);
        assert!(line.get("request_id").is_none());
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn span_fields_and_ids_reach_nested_spans_and_later_records() {
        let text = logged(Format::Json, Schema::Flat, false, || {
            let outer =
                tracing::info_span!("outer", request_id = "r-9", user = tracing::field::Empty);
            let _outer = outer.enter();
            outer.record("user", "u-1");
            let inner = tracing::debug_span!("inner", step = "fetch");
            inner.in_scope(|| tracing::info!("nested"));
        });
        let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap_or_default();
        assert_eq!(line["request_id"], "r-9");
        assert_eq!(line["user"], "u-1");
        assert_eq!(line["step"], "fetch");
    }
}
