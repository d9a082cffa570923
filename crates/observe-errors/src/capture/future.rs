use std::{
    any::Any,
    borrow::Cow,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{
    Response, StatusCode,
    header::{CONTENT_LENGTH, CONTENT_TYPE},
    response::Parts,
    uri::PathAndQuery,
};
use http_body::Body;
use observe_request_id::RequestId;
use pin_project_lite::pin_project;

use super::{ResponseBody, layer::Config};
use crate::{ErrorReport, MAX_PLAIN_ERROR_BODY, PROBLEM_JSON, Problem};

const PANIC_DETAIL: &str = "The server encountered an unexpected error.";
const SERVER_ERROR_DETAIL: &str = "The server could not complete the request.";

pin_project! {
    /// The response future of [`ErrorCapture`](super::ErrorCapture).
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
        request: RequestFacts,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Polling { #[pin] future: F },
        Panicked {
            panic: Option<(Box<dyn Any + Send>, super::location::PanicSite)>,
        },
        // Boxed: rare, and large enough to slow every other request's moves.
        ReadingPlainBody { reading: Option<Box<PlainBody<B>>> },
    }
}

/// An error response whose plain body is being read.
struct PlainBody<B> {
    parts: Parts,
    body: Pin<Box<B>>,
    text: Vec<u8>,
}

/// What a problem body needs from the request.
struct RequestFacts {
    path: Option<PathAndQuery>,
    config: Config,
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn new(future: F, path: Option<PathAndQuery>, config: Config) -> Self {
        Self {
            state: State::Polling { future },
            request: RequestFacts { path, config },
        }
    }

    /// The inner service panicked in `call`. The response is made when this
    /// future is first polled, where the request id is in scope.
    pub(super) fn panicked(
        panic: Box<dyn Any + Send>,
        location: super::location::PanicSite,
        path: Option<PathAndQuery>,
        config: Config,
    ) -> Self {
        Self {
            state: State::Panicked {
                panic: Some((panic, location)),
            },
            request: RequestFacts { path, config },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let request = &*this.request;
        loop {
            match this.state.as_mut().project() {
                StateProj::Polling { future } => {
                    let quiet = super::location::Quiet::new(!request.config.print_panics);
                    let polled = catch_unwind(AssertUnwindSafe(|| future.poll(cx)));
                    drop(quiet);
                    let response = match polled {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(Err(error))) => return Poll::Ready(Err(error)),
                        Ok(Poll::Ready(Ok(response))) => response,
                        Err(panic) => {
                            let site = super::location::take();
                            return Poll::Ready(Ok(request.panic_response(panic, site)));
                        }
                    };
                    if response.status().as_u16() < 400 {
                        return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                    }
                    match request.error_response(response) {
                        Ok(response) => return Poll::Ready(Ok(response)),
                        Err(plain) => this.state.set(State::ReadingPlainBody {
                            reading: Some(plain),
                        }),
                    }
                }
                StateProj::Panicked { panic } => {
                    let (panic, location) = panic.take().unwrap_or_else(|| {
                        (Box::new("polled after completion"), Default::default())
                    });
                    return Poll::Ready(Ok(request.panic_response(panic, location)));
                }
                StateProj::ReadingPlainBody { reading } => {
                    let Some(plain) = reading.as_mut() else {
                        return Poll::Pending;
                    };
                    let PlainBody { body, text, .. } = &mut **plain;
                    let complete = loop {
                        match ready!(body.as_mut().poll_frame(cx)) {
                            Some(Ok(frame)) => {
                                if let Ok(data) = frame.into_data() {
                                    if text.len() + data.len() > MAX_PLAIN_ERROR_BODY {
                                        break false;
                                    }
                                    text.extend_from_slice(&data);
                                }
                            }
                            Some(Err(_)) => break false,
                            None => break true,
                        }
                    };
                    let Some(plain) = reading.take() else {
                        return Poll::Pending;
                    };
                    let PlainBody { parts, text, .. } = *plain;
                    return Poll::Ready(Ok(request.plain_error_response(parts, &text, complete)));
                }
            }
        }
    }
}

impl RequestFacts {
    /// The answer to an error status: its problem document, or the inner
    /// response as it is, or (`Err`) a plain-text body to read first.
    #[cold]
    #[inline(never)]
    fn error_response<B: Body<Data = Bytes>>(
        &self,
        response: Response<B>,
    ) -> Result<Response<ResponseBody<B>>, Box<PlainBody<B>>> {
        if let Some(problem) = response.extensions().get::<Problem>().cloned() {
            let (parts, _) = response.into_parts();
            return Ok(self.problem_response(parts, &problem));
        }
        if !self.config.convert_plain_errors || !is_plain_error(&response) {
            if let Some(report) = response.extensions().get::<ErrorReport>() {
                self.log(report);
            }
            return Ok(response.map(ResponseBody::inner));
        }
        let (parts, body) = response.into_parts();
        if body.is_end_stream() || body.size_hint().exact() == Some(0) {
            return Ok(self.plain_error_response(parts, b"", false));
        }
        Err(Box::new(PlainBody {
            parts,
            body: Box::pin(body),
            text: Vec::new(),
        }))
    }

    fn render<B>(&self, mut parts: Parts, problem: &Problem) -> Response<ResponseBody<B>> {
        let request_id = observe_request_id::current();
        let body = problem.to_json(
            self.path.as_ref().map(PathAndQuery::path),
            request_id.as_ref().map(RequestId::as_str),
        );
        parts.status = problem.status();
        parts.headers.insert(CONTENT_TYPE, PROBLEM_JSON);
        // The old length describes the old body.
        parts.headers.remove(CONTENT_LENGTH);
        Response::from_parts(parts, ResponseBody::problem(body))
    }

    // Error paths: kept out of line so the success path stays small.
    #[cold]
    #[inline(never)]
    fn problem_response<B>(&self, parts: Parts, problem: &Problem) -> Response<ResponseBody<B>> {
        if let Some(report) = parts.extensions.get::<ErrorReport>() {
            self.log(report);
        }
        self.render(parts, problem)
    }

    #[cold]
    #[inline(never)]
    fn panic_response<B>(
        &self,
        panic: Box<dyn Any + Send>,
        site: super::location::PanicSite,
    ) -> Response<ResponseBody<B>> {
        let context = [("location", site.location), ("backtrace", site.backtrace)]
            .into_iter()
            .filter_map(|(key, value)| Some((Cow::Borrowed(key), value?)))
            .collect();
        let report = ErrorReport::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Cow::Borrowed("panic"),
            observe_core::panic_message(&*panic).to_owned(),
            context,
            true,
        );
        let problem = Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            PANIC_DETAIL,
        );
        let (parts, ()) = Response::new(()).into_parts();
        self.report(parts, report, problem)
    }

    /// `text` is the body read so far; `complete` says whether it is all of it.
    #[cold]
    #[inline(never)]
    fn plain_error_response<B>(
        &self,
        parts: Parts,
        text: &[u8],
        complete: bool,
    ) -> Response<ResponseBody<B>> {
        let status = parts.status;
        let text = std::str::from_utf8(text)
            .ok()
            .map(str::trim)
            .filter(|text| complete && !text.is_empty());
        let error_type = error_type_for(status);
        let (detail, message): (Cow<'static, str>, String) = if status.is_client_error() {
            let detail = text.map_or_else(
                || Cow::Borrowed(client_error_detail(status)),
                |text| Cow::Owned(text.to_owned()),
            );
            let message = detail.to_string();
            (detail, message)
        } else {
            // A server's own text can name hosts, users and queries.
            let message = text.map_or_else(
                || {
                    status
                        .canonical_reason()
                        .unwrap_or("server error")
                        .to_owned()
                },
                str::to_owned,
            );
            (Cow::Borrowed(SERVER_ERROR_DETAIL), message)
        };
        let report = ErrorReport::new(
            status,
            Cow::Borrowed(error_type),
            message,
            Vec::new(),
            false,
        );
        self.report(parts, report, Problem::new(status, error_type, detail))
    }

    /// Logs `report`, leaves it and `problem` for the layers outside, and
    /// answers with `problem`.
    fn report<B>(
        &self,
        mut parts: Parts,
        report: ErrorReport,
        problem: Problem,
    ) -> Response<ResponseBody<B>> {
        self.log(&report);
        parts.extensions.insert(report);
        let mut response = self.render(parts, &problem);
        response.extensions_mut().insert(problem);
        response
    }

    #[cold]
    #[inline(never)]
    fn log(&self, report: &ErrorReport) {
        if !self.config.log_errors {
            return;
        }
        let request_id = observe_request_id::current();
        let request_id = request_id.as_ref().map(RequestId::as_str);
        let context = report.context_json();
        if report.status().is_server_error() {
            tracing::error!(
                request_id,
                status_code = report.status().as_u16(),
                error_type = report.error_type(),
                error_message = report.message(),
                context,
                panic = report.is_panic(),
                "request failed"
            );
        } else {
            tracing::warn!(
                request_id,
                status_code = report.status().as_u16(),
                error_type = report.error_type(),
                error_message = report.message(),
                context,
                "request rejected"
            );
        }
    }
}

fn is_plain_error<B>(response: &Response<B>) -> bool {
    if response.status().as_u16() < 400 {
        return false;
    }
    match response.headers().get(CONTENT_TYPE) {
        None => true,
        Some(content_type) => content_type
            .as_bytes()
            .get(..10)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"text/plain")),
    }
}

/// The error type of a plain error response, from its status.
fn error_type_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        408 => "request_timeout",
        409 => "conflict",
        410 => "gone",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        422 => "unprocessable_entity",
        429 => "too_many_requests",
        501 => "not_implemented",
        502 => "bad_gateway",
        503 => "service_unavailable",
        504 => "gateway_timeout",
        _ if status.is_client_error() => "client_error",
        _ => "internal_error",
    }
}

fn client_error_detail(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "No resource matches this path.",
        405 => "This method is not allowed on this resource.",
        413 => "The request body is too large.",
        415 => "The request body has an unsupported media type.",
        _ => status
            .canonical_reason()
            .unwrap_or("The request could not be processed."),
    }
}
