//! Structured logs for tower and axum services: one JSON object per line,
//! written off the request path, with the request's ids on every line.
//!
//! - [`Logging`] builds the pieces: a [`LogLayer`] for `tracing-subscriber`
//!   that formats events (flat keys or [ECS](Schema::Ecs), JSON or
//!   [pretty](Format::Pretty)), and a writer thread behind a bounded queue
//!   that writes to stdout, a [rotating file](FileOutput) or any
//!   `std::io::Write`. [`LogHandle`] counts dropped lines and
//!   flushes at shutdown.
//! - [`RequestLogLayer`] writes one line per finished request; the
//!   [`request`] module documents the line.
//! - [`Redaction`] keeps secrets (`authorization`, `cookie`, `token`, ...) out
//!   of every line.
//!
//! [`observe`](https://docs.rs/observe) sets all of this up from the
//! environment; use this crate directly to compose a subscriber yourself.
//!
//! # Example
//!
//! ```
//! use observe_log::{Logging, Schema};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let logging = Logging::builder("vk-parser")
//!     .environment("production")
//!     .schema(Schema::Flat)
//!     .writer(std::io::sink())
//!     .build()?;
//! let dispatch = logging.dispatch("info,sqlx=warn")?;
//! tracing::dispatcher::with_default(&dispatch, || {
//!     tracing::info!(group_id = 42, "parsing");
//! });
//! logging.handle().flush(std::time::Duration::from_secs(1))?;
//! # Ok(())
//! # }
//! ```
//!
//! A line, flat schema:
//!
//! ```text
//! {"timestamp":"2026-11-25T21:49:36.123456Z","level":"INFO","target":"vk_parser","message":"parsing","service":"vk-parser","environment":"production","request_id":"0193...","group_id":42}
//! ```

pub mod fields;
mod format;
mod json;
mod redact;
pub mod request;
#[cfg(test)]
mod test_support;
mod time;
mod writer;

use std::{
    fmt,
    io::{self, IsTerminal, Write},
    str::FromStr,
    sync::Arc,
};

use tracing_subscriber::{
    EnvFilter,
    filter::{LevelFilter, Targets},
    layer::SubscriberExt,
};

pub use format::{Format, LogLayer, Schema};
pub use redact::{DEFAULT_REDACTED_HEADERS, DEFAULT_REDACTED_QUERY_PARAMS, REDACTED, Redaction};
pub use request::{
    CLIENT_CLOSED_STATUS, InvalidProxy, LINE_TARGET, RequestLine, RequestLog, RequestLogLayer,
    ResponseFuture, SPAN_TARGET, TrustedProxy, UserId,
};
pub use writer::{
    FileOutput, FlushTimeout, LogHandle, MAX_SPARE_LINE_BYTES, Rotation, SPARE_LINE_BUFFERS,
    WRITER_POLL_INTERVAL,
};

use format::Formatter;
use writer::Destination;

/// Lines the queue holds before new ones are dropped (or, lossless, wait).
pub const DEFAULT_QUEUE_CAPACITY: usize = 16 * 1024;

/// Rotated files kept by default.
pub const DEFAULT_MAX_FILES: usize = 7;

/// Paths the request log skips by default: probes and scrapes.
pub const DEFAULT_EXCLUDED_PATHS: &[&str] = &["/health*", "/metrics"];

pub use observe_core::UNMATCHED_ENDPOINT;

/// The longest string value a field keeps in a line, in bytes; longer ones
/// are cut at a character boundary and end with [`TRUNCATED_MARK`].
pub const MAX_FIELD_BYTES: usize = 4096;

/// What ends a value cut at [`MAX_FIELD_BYTES`].
pub const TRUNCATED_MARK: &str = "…[truncated]";

/// The name of the counter of dropped lines.
pub const DROPPED_LINES_METRIC: &str = "log_lines_dropped_total";

/// The logging of one service: a subscriber layer and its writer.
#[derive(Debug, Clone)]
pub struct Logging {
    layer: LogLayer,
    handle: LogHandle,
}

/// Configures [`Logging`]; from [`Logging::builder`].
#[must_use = "call build() to start the writer"]
pub struct LoggingBuilder {
    service: String,
    environment: String,
    format: Option<Format>,
    schema: Schema,
    ansi: Option<bool>,
    redaction: Redaction,
    stdout: bool,
    file: Option<FileOutput>,
    writer: Option<Box<dyn Write + Send>>,
    queue_capacity: usize,
    lossless: bool,
    dropped_counter: Option<metrics::Counter>,
}

impl fmt::Debug for LoggingBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggingBuilder")
            .field("service", &self.service)
            .field("environment", &self.environment)
            .field("format", &self.format)
            .field("schema", &self.schema)
            .field("stdout", &self.stdout)
            .field("file", &self.file)
            .field("writer", &self.writer.is_some())
            .field("queue_capacity", &self.queue_capacity)
            .field("lossless", &self.lossless)
            .finish_non_exhaustive()
    }
}

impl Logging {
    /// Starts configuring the logs of `service`: JSON (pretty at a terminal),
    /// flat schema, stdout, the default queue, dropping when full.
    pub fn builder(service: impl Into<String>) -> LoggingBuilder {
        LoggingBuilder {
            service: service.into(),
            environment: "development".to_owned(),
            format: None,
            schema: Schema::Flat,
            ansi: None,
            redaction: Redaction::new(),
            stdout: true,
            file: None,
            writer: None,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            lossless: false,
            dropped_counter: None,
        }
    }

    /// The subscriber layer.
    pub fn layer(&self) -> LogLayer {
        self.layer.clone()
    }

    /// The writer's handle.
    pub fn handle(&self) -> &LogHandle {
        &self.handle
    }

    /// A whole subscriber: a registry, `filter` (`RUST_LOG` syntax) and this
    /// layer. Request spans stay enabled whatever the filter, so their ids
    /// reach every line that is logged.
    pub fn dispatch(&self, filter: &str) -> Result<tracing::Dispatch, FilterError> {
        self.subscriber(filter, None, false)
    }

    /// [`dispatch`](Self::dispatch) with one more layer, such as
    /// observe-trace's bridge that turns `tracing` spans into exported spans.
    /// It sees what `filter` lets through, request lines included.
    pub fn dispatch_with(
        &self,
        filter: &str,
        extra: Option<
            Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>,
        >,
    ) -> Result<tracing::Dispatch, FilterError> {
        self.subscriber(filter, extra, true)
    }

    /// [`dispatch_with`](Self::dispatch_with) for a layer that has no use
    /// for request lines, such as observe-trace's span bridge (which
    /// filters them out), and does not get them.
    ///
    /// In this subscriber, and in [`dispatch`](Self::dispatch)'s, request
    /// lines are written straight to the writer rather than sent through a
    /// `tracing` event, when `filter` is plain `target=level` directives and
    /// the request span has no parent span: the same lines, at a fraction of
    /// the cost. `bridge` does not see them.
    pub fn dispatch_with_bridge(
        &self,
        filter: &str,
        bridge: Option<
            Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>,
        >,
    ) -> Result<tracing::Dispatch, FilterError> {
        self.subscriber(filter, bridge, false)
    }

    fn subscriber(
        &self,
        filter: &str,
        extra: Option<
            Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>,
        >,
        extra_reads_request_lines: bool,
    ) -> Result<tracing::Dispatch, FilterError> {
        let filter = LogFilter::from_str(filter)?;
        let mut layer = self.layer.clone();
        if !(extra_reads_request_lines && extra.is_some())
            && let Some(targets) = &filter.targets
        {
            layer.request_lines = Some(format::RequestLineLevels::new(|level| {
                targets.would_enable(observe_core::REQUEST_LINE_TARGET, level)
            }));
        }
        // One layer for the filter, whichever kind: every level of layering
        // costs each span's enter, exit and close a little.
        let filter: Box<dyn tracing_subscriber::Layer<_> + Send + Sync> =
            match (filter.targets, filter.env) {
                (Some(targets), _) => Box::new(targets),
                (None, Some(env)) => Box::new(env),
                (None, None) => Box::new(tracing_subscriber::layer::Identity::new()),
            };
        let subscriber = tracing_subscriber::registry()
            .with(extra)
            .with(filter)
            .with(layer);
        Ok(tracing::Dispatch::new(subscriber))
    }
}

impl LoggingBuilder {
    /// The `environment` field.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = environment.into();
        self
    }

    /// JSON or pretty. Default: pretty when stdout is a terminal and the
    /// only output, JSON otherwise.
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// Flat keys or ECS names.
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = schema;
        self
    }

    /// Colours in the pretty format. Default: when stdout is a terminal.
    pub fn ansi(mut self, ansi: bool) -> Self {
        self.ansi = Some(ansi);
        self
    }

    /// Which field names and query parameters are secrets.
    pub fn redaction(mut self, redaction: Redaction) -> Self {
        self.redaction = redaction;
        self
    }

    /// Whether lines go to stdout (default `true`).
    pub fn stdout(mut self, stdout: bool) -> Self {
        self.stdout = stdout;
        self
    }

    /// Also (or, with `stdout(false)`, only) writes to a file.
    pub fn file(mut self, file: FileOutput) -> Self {
        self.file = Some(file);
        self
    }

    /// Writes to `writer` in place of stdout: a pipe, a socket, a test buffer.
    pub fn writer(mut self, writer: impl Write + Send + 'static) -> Self {
        self.writer = Some(Box::new(writer));
        self.stdout = false;
        self
    }

    /// How many lines may wait for the writer.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// `true`: a full queue makes the logging thread wait; no line is lost,
    /// but a stalled disk stalls requests. Default `false`: drop and count.
    pub fn lossless(mut self, lossless: bool) -> Self {
        self.lossless = lossless;
        self
    }

    /// A counter to add dropped lines to, such as `log_lines_dropped_total`
    /// in a Prometheus registry.
    pub fn dropped_counter(mut self, counter: metrics::Counter) -> Self {
        self.dropped_counter = Some(counter);
        self
    }

    /// Opens the outputs and starts the writer thread. Fails when the log
    /// file cannot be opened or the thread cannot start.
    pub fn build(self) -> io::Result<Logging> {
        let stdout_is_terminal = io::stdout().is_terminal();
        let mut destinations = Vec::new();
        if let Some(writer) = self.writer {
            destinations.push(Destination::Writer(writer));
        }
        if self.stdout {
            destinations.push(Destination::Stdout(io::BufWriter::with_capacity(
                64 * 1024,
                io::stdout(),
            )));
        }
        let has_file = self.file.is_some();
        if let Some(file) = self.file {
            let path = file.path.clone();
            destinations.push(Destination::File(file.open().map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cannot open the log file {}: {error}", path.display()),
                )
            })?));
        }
        let at_terminal = self.stdout && !has_file && stdout_is_terminal;
        let format = self.format.unwrap_or(if at_terminal {
            Format::Pretty
        } else {
            Format::Json
        });
        let formatter = Arc::new(Formatter::new(
            format,
            self.schema,
            self.ansi.unwrap_or(at_terminal),
            self.redaction,
            &self.service,
            &self.environment,
        ));
        let summary = {
            let formatter = formatter.clone();
            Box::new(move |dropped| formatter.dropped_summary(dropped))
        };
        let handle = writer::start(
            destinations,
            self.queue_capacity,
            self.lossless,
            self.dropped_counter,
            summary,
        )?;
        Ok(Logging {
            layer: LogLayer {
                formatter,
                sink: handle.sink(),
                request_lines: None,
            },
            handle,
        })
    }
}

/// A `RUST_LOG` filter: `tracing-subscriber`'s lock-free [`Targets`] when
/// the directives are plain `target=level` ones, its [`EnvFilter`] when they
/// filter on spans or fields. Both keep [`SPAN_TARGET`] enabled.
struct LogFilter {
    targets: Option<Targets>,
    env: Option<EnvFilter>,
}

/// A log filter that does not parse.
#[derive(Debug, Clone)]
pub struct FilterError(String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FilterError {}

impl FromStr for LogFilter {
    type Err = FilterError;

    fn from_str(directives: &str) -> Result<Self, Self::Err> {
        let always = format!("{SPAN_TARGET}=trace");
        if !directives.contains(['[', '{']) {
            let trimmed = directives.trim();
            let parsed = if trimmed.is_empty() {
                Ok(Targets::new().with_default(LevelFilter::ERROR))
            } else {
                Targets::from_str(trimmed)
            };
            if let Ok(targets) = parsed {
                return Ok(Self {
                    targets: Some(targets.with_target(SPAN_TARGET, LevelFilter::TRACE)),
                    env: None,
                });
            }
        }
        let env = EnvFilter::builder()
            .parse(directives)
            .map_err(|error| FilterError(error.to_string()))?;
        let always = always
            .parse()
            .map_err(|error: tracing_subscriber::filter::ParseError| {
                FilterError(error.to_string())
            })?;
        Ok(Self {
            targets: None,
            env: Some(env.add_directive(always)),
        })
    }
}

/// Checks `RUST_LOG`-style directives without building anything.
pub fn parse_filter(directives: &str) -> Result<(), FilterError> {
    LogFilter::from_str(directives).map(|_| ())
}
