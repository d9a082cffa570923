use std::sync::Arc;

use tower_layer::Layer;
use tracing::Level;

use super::{RequestLine, RequestLog, TrustedProxy};
use crate::{DEFAULT_EXCLUDED_PATHS, Redaction};

/// Logs one line per finished request; see the [module docs](super).
#[derive(Debug, Clone)]
pub struct RequestLogLayer {
    pub(super) config: Arc<Config>,
}

#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) redaction: Redaction,
    pub(super) excluded: Vec<ExcludedPath>,
    /// Levels for 1xx-3xx, 4xx and 5xx.
    pub(super) levels: [Level; 3],
    pub(super) trusted_proxies: Vec<TrustedProxy>,
}

/// `/metrics` matches itself; `/health*` matches every path that starts with `/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ExcludedPath {
    Exact(Box<str>),
    Prefix(Box<str>),
}

impl ExcludedPath {
    fn new(pattern: &str) -> Self {
        match pattern.strip_suffix('*') {
            Some(prefix) => Self::Prefix(prefix.into()),
            None => Self::Exact(pattern.into()),
        }
    }

    pub(super) fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(exact) => **exact == *path,
            Self::Prefix(prefix) => path.starts_with(&**prefix),
        }
    }
}

impl Default for RequestLogLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestLogLayer {
    /// Default redaction, `/health*` and `/metrics` excluded, 4xx at `WARN`
    /// and 5xx at `ERROR`, no trusted proxies.
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                redaction: Redaction::new(),
                excluded: DEFAULT_EXCLUDED_PATHS
                    .iter()
                    .map(|pattern| ExcludedPath::new(pattern))
                    .collect(),
                levels: [Level::INFO, Level::WARN, Level::ERROR],
                trusted_proxies: Vec::new(),
            }),
        }
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Which query parameters lose their values in `path`.
    pub fn redaction(mut self, redaction: Redaction) -> Self {
        self.config().redaction = redaction;
        self
    }

    /// Paths that get no line, in place of the defaults: exact, or a prefix
    /// ending in `*`.
    pub fn exclude_paths<I, P>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<str>,
    {
        self.config().excluded = patterns
            .into_iter()
            .map(|pattern| ExcludedPath::new(pattern.as_ref()))
            .collect();
        self
    }

    /// The level of lines for successes and redirects, client errors and
    /// server errors.
    pub fn levels(mut self, success: Level, client_error: Level, server_error: Level) -> Self {
        self.config().levels = [success, client_error, server_error];
        self
    }

    /// Peers whose `X-Forwarded-For` names the client. Without any, the
    /// header is ignored and `client_ip` is the peer address.
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = TrustedProxy>) -> Self {
        self.config().trusted_proxies = proxies.into_iter().collect();
        self
    }
}

impl RequestLogLayer {
    /// The line of `request`, with its `request` span open, or `None` when
    /// its path is [not logged](Self::exclude_paths). [`RequestLog`] calls
    /// it for every request; a layer that observes a request once for every
    /// signal (observe's) calls it itself, then [`RequestLine::finish`].
    pub fn start<B: http_body::Body>(&self, request: &http::Request<B>) -> Option<RequestLine> {
        RequestLine::start(&self.config, request)
    }
}

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLog {
            inner,
            config: self.config.clone(),
        }
    }
}
