use std::{
    borrow::Cow,
    fmt,
    future::Future,
    net::IpAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use axum::extract::MatchedPath;
use http::{HeaderValue, Method, Response, StatusCode, Uri};
use http_body::Body;
use observe_errors::ErrorReport;
use pin_project_lite::pin_project;
use tracing::{Level, Span};

use super::{Config, UserId};
use crate::Redaction;

/// The status of a request whose client went away before the response, as
/// nginx logs it.
pub use observe_core::CLIENT_CLOSED_STATUS;

/// What the line needs from the request, taken before the request moves on.
pub(super) struct RequestFacts {
    pub(super) method: Method,
    pub(super) endpoint: Option<MatchedPath>,
    pub(super) uri: Uri,
    pub(super) user_agent: Option<HeaderValue>,
    pub(super) client_ip: Option<IpAddr>,
    pub(super) request_bytes: Option<u64>,
    pub(super) user_id: Option<UserId>,
}

struct Logging {
    span: Span,
    facts: RequestFacts,
    started: observe_core::RequestStart,
    config: Arc<Config>,
}

pin_project! {
    /// The future of [`RequestLog`](super::RequestLog).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // `None` for excluded paths, and once the line is written.
        logging: Option<Logging>,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before the response: the client went away.
            if let Some(logging) = this.project().logging.take() {
                let _enter = logging.span.enter();
                let elapsed = logging.started.elapsed();
                logging.write(CLIENT_CLOSED_STATUS, None, None, true, elapsed);
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn unlogged(inner: F) -> Self {
        Self {
            inner,
            logging: None,
        }
    }

    pub(super) fn logged(
        inner: F,
        span: Span,
        facts: RequestFacts,
        started: observe_core::RequestStart,
        config: Arc<Config>,
    ) -> Self {
        Self {
            inner,
            logging: Some(Logging {
                span,
                facts,
                started,
                config,
            }),
        }
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
        let Some(logging) = this.logging.as_ref() else {
            return this.inner.poll(cx);
        };
        let entered = logging.span.enter();
        let mut result = ready!(this.inner.poll(cx));
        match &mut result {
            Ok(response) => {
                // Measured once here, the innermost signal, and left in the
                // response for the histogram and the span outside.
                let elapsed = observe_core::Elapsed::of(response, &logging.started);
                let extensions = response.extensions();
                logging.write(
                    response.status().as_u16(),
                    response.body().size_hint().exact(),
                    Some((extensions.get::<ErrorReport>(), extensions.get::<UserId>())),
                    false,
                    elapsed,
                );
            }
            Err(_) => logging.write(
                StatusCode::INTERNAL_SERVER_ERROR.as_u16(),
                None,
                None,
                false,
                logging.started.elapsed(),
            ),
        }
        drop(entered);
        // Written: nothing for `drop` to do.
        *this.logging = None;
        Poll::Ready(result)
    }
}

/// Emits one event at `$level` (a runtime value) with a fixed field list.
macro_rules! event_at {
    ($level:expr, $($rest:tt)*) => {
        match $level {
            Level::ERROR => tracing::event!(target: super::LINE_TARGET, Level::ERROR, $($rest)*),
            Level::WARN => tracing::event!(target: super::LINE_TARGET, Level::WARN, $($rest)*),
            Level::INFO => tracing::event!(target: super::LINE_TARGET, Level::INFO, $($rest)*),
            Level::DEBUG => tracing::event!(target: super::LINE_TARGET, Level::DEBUG, $($rest)*),
            Level::TRACE => tracing::event!(target: super::LINE_TARGET, Level::TRACE, $($rest)*),
        }
    };
}

impl Logging {
    fn write(
        &self,
        status: u16,
        response_bytes: Option<u64>,
        response: Option<(Option<&ErrorReport>, Option<&UserId>)>,
        aborted: bool,
        elapsed: std::time::Duration,
    ) {
        let (report, response_user) = response.unwrap_or((None, None));
        let facts = &self.facts;
        let level = match status {
            500.. => self.config.levels[2],
            400.. => self.config.levels[1],
            _ => self.config.levels[0],
        };
        // Whole microseconds, so the float carries no false precision.
        let duration_ms = elapsed.as_micros() as f64 / 1000.0;
        let user_agent = facts.user_agent.as_ref().map(|value| {
            std::str::from_utf8(value.as_bytes())
                .map_or_else(|_| String::from_utf8_lossy(value.as_bytes()), Cow::Borrowed)
        });
        let user_id = response_user.or(facts.user_id.as_ref()).map(UserId::as_str);
        let context = report
            .filter(|report| !report.context().is_empty())
            .map(ErrorReport::context_json);
        PATH.with_borrow_mut(|path| {
            path.clear();
            // Writing into a String cannot fail.
            let _ = redacted_path(path, &self.config.redaction, &facts.uri);
            let path = path.as_str();
            event_at!(
                level,
                method = facts.method.as_str(),
                endpoint = facts
                    .endpoint
                    .as_ref()
                    .map_or(crate::UNMATCHED_ENDPOINT, MatchedPath::as_str),
                path,
                status_code = status,
                duration_ms,
                request_bytes = facts.request_bytes,
                response_bytes,
                user_agent = user_agent.as_deref(),
                client_ip = facts.client_ip.map(tracing::field::display),
                user_id,
                aborted = aborted.then_some(true),
                error_type = report.map(ErrorReport::error_type),
                error_message = report.map(ErrorReport::message),
                context = context.as_deref(),
                panic = report.filter(|report| report.is_panic()).map(|_| true),
                "{}",
                if aborted {
                    "request aborted"
                } else {
                    "request finished"
                }
            );
        });
    }
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
