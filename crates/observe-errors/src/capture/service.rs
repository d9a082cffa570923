use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use tower_service::Service;

use super::{ResponseBody, ResponseFuture, layer::Config};

/// The service of [`ErrorCaptureLayer`](super::ErrorCaptureLayer).
#[derive(Debug, Clone)]
pub struct ErrorCapture<S> {
    pub(super) inner: S,
    pub(super) config: Config,
}

impl<S> ErrorCapture<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Takes the inner service back.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ErrorCapture<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Taken now: the request is gone once the inner service has it. The
        // request id is not: it is read from `observe_request_id::current()`,
        // and only when there is an error to report.
        let path = request.uri().path_and_query().cloned();
        let quiet = super::location::Quiet::new(!self.config.print_panics);
        let called = catch_unwind(AssertUnwindSafe(|| self.inner.call(request)));
        drop(quiet);
        match called {
            Ok(future) => ResponseFuture::new(future, path, self.config),
            Err(panic) => {
                ResponseFuture::panicked(panic, super::location::take(), path, self.config)
            }
        }
    }
}
