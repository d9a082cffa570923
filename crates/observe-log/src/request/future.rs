use std::{
    fmt,
    future::Future,
    net::IpAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use http::{Request, Response, StatusCode, Uri};
use http_body::Body;
use observe_core::{RequestFacts, TraceIds};
use observe_errors::ErrorReport;
use observe_request_id::RequestId;
use pin_project_lite::pin_project;
use tracing::{Level, Span};

use super::{Config, UserId, client_ip::client_ip};
use crate::{LogLayer, Redaction, format::RequestLineFields};

/// The status of a request whose client went away before the response, as
/// nginx logs it.
pub use observe_core::CLIENT_CLOSED_STATUS;

/// One request's line, from [`RequestLogLayer::start`](super::RequestLogLayer::start):
/// the `request` span that carries the request's ids to every event inside
/// it, and what the line needs from the request besides its
/// [`RequestFacts`]. [`finish`](Self::finish) writes the line.
///
/// [`RequestLog`](super::RequestLog) makes one per request; a layer that
/// observes a request once for every signal (observe's) makes it itself.
#[must_use = "the line is written by `finish`, `fail` or `abort`"]
pub struct RequestLine {
    span: Span,
    /// The span's ids, for a line written without the event.
    request_id: Option<RequestId>,
    trace: Option<TraceIds>,
    /// Whether the span is enabled and has no parent, whose fields the
    /// event's line would carry: then the line may be written without the
    /// event.
    standalone: bool,
    client_ip: Option<IpAddr>,
    request_bytes: Option<u64>,
    user_id: Option<UserId>,
    config: Arc<Config>,
}

impl fmt::Debug for RequestLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLine")
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

impl RequestLine {
    /// The line of `request`, or `None` when its path is not logged.
    pub(super) fn start<B: Body>(config: &Arc<Config>, request: &Request<B>) -> Option<Self> {
        let path = request.uri().path();
        if config
            .excluded
            .iter()
            .any(|excluded| excluded.matches(path))
        {
            return None;
        }
        let extensions = request.extensions();
        let request_id = extensions.get::<RequestId>();
        let trace = extensions.get::<TraceIds>();
        let no_parent =
            tracing::dispatcher::get_default(|dispatch| dispatch.current_span().id().is_none());
        let span = tracing::info_span!(
            target: super::SPAN_TARGET,
            "request",
            request_id = request_id.map(RequestId::as_str),
            trace_id = trace.map(TraceIds::trace_id),
            span_id = trace.map(TraceIds::span_id),
        );
        // A span compiled out (`max_level_*` features) carries no ids to the
        // event's line: that line is written from the event too.
        let standalone = no_parent && !span.is_disabled();
        Some(Self {
            span,
            request_id: request_id.cloned(),
            trace: trace.copied(),
            standalone,
            client_ip: client_ip(extensions, request.headers(), &config.trusted_proxies),
            request_bytes: request.body().size_hint().exact(),
            user_id: extensions.get::<UserId>().cloned(),
            config: config.clone(),
        })
    }

    /// The `request` span: enter it while the request's work runs.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Writes the line of a request answered with `response` after
    /// `elapsed`: its status, body size, and the [`ErrorReport`] and
    /// [`UserId`] in its extensions.
    pub fn finish<B: Body>(self, facts: &RequestFacts, response: &Response<B>, elapsed: Duration) {
        let extensions = response.extensions();
        self.write(
            facts,
            response.status().as_u16(),
            response.body().size_hint().exact(),
            Some((extensions.get::<ErrorReport>(), extensions.get::<UserId>())),
            false,
            elapsed,
        );
    }

    /// Writes the line of a request the inner service failed with an error
    /// (the server answers `500`).
    pub fn fail(self, facts: &RequestFacts, elapsed: Duration) {
        self.write(
            facts,
            StatusCode::INTERNAL_SERVER_ERROR.as_u16(),
            None,
            None,
            false,
            elapsed,
        );
    }

    /// Writes the line of a request whose client went away first:
    /// [`CLIENT_CLOSED_STATUS`], `aborted`.
    pub fn abort(self, facts: &RequestFacts, elapsed: Duration) {
        self.write(facts, CLIENT_CLOSED_STATUS, None, None, true, elapsed);
    }
}

pin_project! {
    /// The future of [`RequestLog`](super::RequestLog).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // `None` for excluded paths, and once the line is written.
        logging: Option<(RequestLine, RequestFacts)>,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before the response: the client went away.
            if let Some((line, facts)) = this.project().logging.take() {
                let elapsed = facts.start.elapsed();
                line.abort(&facts, elapsed);
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, logging: Option<(RequestLine, RequestFacts)>) -> Self {
        Self { inner, logging }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("logged", &self.logging.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some((line, _)) = this.logging.as_ref() else {
            return this.inner.poll(cx);
        };
        let entered = line.span.enter();
        let polled = this.inner.poll(cx);
        drop(entered);
        let mut result = ready!(polled);
        if let Some((line, facts)) = this.logging.take() {
            match &mut result {
                Ok(response) => {
                    // Measured once here, the innermost signal, and left in
                    // the response for the histogram and the span outside.
                    let elapsed = observe_core::Elapsed::of(response, &facts.start);
                    line.finish(&facts, response, elapsed);
                }
                Err(_) => line.fail(&facts, facts.start.elapsed()),
            }
        }
        Poll::Ready(result)
    }
}

/// Emits one event at `$level` (a runtime value) with a fixed field list,
/// child of `$parent` (an `Option<Id>`) or, when that is `None`, of the
/// current span.
macro_rules! event_at {
    ($level:expr, $parent:expr, $($rest:tt)*) => {
        match ($level, $parent) {
            (Level::ERROR, Some(parent)) => tracing::event!(target: super::LINE_TARGET, parent: parent, Level::ERROR, $($rest)*),
            (Level::WARN, Some(parent)) => tracing::event!(target: super::LINE_TARGET, parent: parent, Level::WARN, $($rest)*),
            (Level::INFO, Some(parent)) => tracing::event!(target: super::LINE_TARGET, parent: parent, Level::INFO, $($rest)*),
            (Level::DEBUG, Some(parent)) => tracing::event!(target: super::LINE_TARGET, parent: parent, Level::DEBUG, $($rest)*),
            (Level::TRACE, Some(parent)) => tracing::event!(target: super::LINE_TARGET, parent: parent, Level::TRACE, $($rest)*),
            (Level::ERROR, None) => tracing::event!(target: super::LINE_TARGET, Level::ERROR, $($rest)*),
            (Level::WARN, None) => tracing::event!(target: super::LINE_TARGET, Level::WARN, $($rest)*),
            (Level::INFO, None) => tracing::event!(target: super::LINE_TARGET, Level::INFO, $($rest)*),
            (Level::DEBUG, None) => tracing::event!(target: super::LINE_TARGET, Level::DEBUG, $($rest)*),
            (Level::TRACE, None) => tracing::event!(target: super::LINE_TARGET, Level::TRACE, $($rest)*),
        }
    };
}

impl RequestLine {
    fn write(
        &self,
        facts: &RequestFacts,
        status: u16,
        response_bytes: Option<u64>,
        response: Option<(Option<&ErrorReport>, Option<&UserId>)>,
        aborted: bool,
        elapsed: std::time::Duration,
    ) {
        let level = match status {
            500.. => self.config.levels[2],
            400.. => self.config.levels[1],
            _ => self.config.levels[0],
        };
        let outcome = Outcome {
            status,
            response_bytes,
            response: response.unwrap_or((None, None)),
            aborted,
            elapsed,
        };
        let ids = [
            self.request_id.as_ref().map(RequestId::as_str),
            self.trace.as_ref().map(TraceIds::trace_id),
            self.trace.as_ref().map(TraceIds::span_id),
        ];
        // Observe's own subscriber writes the line itself: the same line,
        // without an event's dispatch and field visits; a line its filter
        // turns away is not even prepared.
        if self.standalone
            && tracing::dispatcher::get_default(|dispatch| {
                let Some(layer) = dispatch.downcast_ref::<LogLayer>() else {
                    return false;
                };
                match layer.wants_request_line(level) {
                    None => false,
                    Some(false) => true,
                    Some(true) => {
                        self.with_fields(facts, &outcome, |values| {
                            layer.write_request_line(level, ids, values);
                        });
                        true
                    }
                }
            })
        {
            return;
        }
        self.with_fields(facts, &outcome, |values| {
            // The request span is the line's parent, named rather than
            // entered: no enter and exit per line. A disabled span (another
            // subscriber's filter) leaves the line in the current span.
            event_at!(
                level,
                self.span.id(),
                method = values.method,
                endpoint = values.endpoint,
                path = values.path,
                status_code = values.status_code,
                duration_ms = values.duration_ms,
                request_bytes = values.request_bytes,
                response_bytes = values.response_bytes,
                user_agent = values.user_agent,
                client_ip = values.client_ip,
                user_id = values.user_id,
                aborted = values.aborted,
                error_type = values.error_type,
                error_message = values.error_message,
                context = values.context,
                panic = values.panic,
                message = values.message,
            );
        });
    }

    /// Runs `write` with the line's values.
    fn with_fields(
        &self,
        facts: &RequestFacts,
        outcome: &Outcome<'_>,
        write: impl FnOnce(&RequestLineFields<'_>),
    ) {
        let (report, response_user) = outcome.response;
        // Whole microseconds, so the float carries no false precision.
        let duration_ms = outcome.elapsed.as_micros() as f64 / 1000.0;
        let user_agent = facts.user_agent.as_ref().map(observe_core::header_text);
        let user_id = response_user.or(self.user_id.as_ref()).map(UserId::as_str);
        let client_ip = self.client_ip.map(observe_core::address_text);
        let context = report
            .filter(|report| !report.context().is_empty())
            .map(ErrorReport::context_json);
        PATH.with_borrow_mut(|path| {
            path.clear();
            // Writing into a String cannot fail.
            let _ = redacted_path(path, &self.config.redaction, &facts.uri);
            write(&RequestLineFields {
                method: facts.method.as_str(),
                endpoint: facts.endpoint(),
                path: path.as_str(),
                status_code: outcome.status,
                duration_ms,
                request_bytes: self.request_bytes,
                response_bytes: outcome.response_bytes,
                user_agent: user_agent.as_deref(),
                client_ip: client_ip.as_deref(),
                user_id,
                aborted: outcome.aborted.then_some(true),
                error_type: report.map(ErrorReport::error_type),
                error_message: report.map(ErrorReport::message),
                context: context.as_deref(),
                panic: report.filter(|report| report.is_panic()).map(|_| true),
                // Text, not a format string: nothing to format per line.
                message: if outcome.aborted {
                    "request aborted"
                } else {
                    "request finished"
                },
                timestamp: facts.start.wall() + outcome.elapsed,
            })
        })
    }
}

/// How a request ended, for its line.
struct Outcome<'a> {
    status: u16,
    response_bytes: Option<u64>,
    response: (Option<&'a ErrorReport>, Option<&'a UserId>),
    aborted: bool,
    elapsed: std::time::Duration,
}

thread_local! {
    /// The redacted path of the line being written: one buffer per thread,
    /// so the line's `path` is text already, with nothing to format.
    static PATH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The path and query with secret query values replaced.
fn redacted_path(out: &mut String, redaction: &Redaction, uri: &Uri) -> fmt::Result {
    out.push_str(uri.path());
    if let Some(query) = uri.query() {
        out.push('?');
        redaction.query_into(out, query)?;
    }
    Ok(())
}
