//! One accepted connection: HTTP/1 or HTTP/2 by hyper, with the deadlines
//! hyper does not keep (a silent or slow request head, an idle keep-alive),
//! the request bodies watched, and what hyper refuses counted and logged.

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::{Router, body::Body as AxumBody, extract::ConnectInfo};
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use observe_metrics::{ConnectionError, ConnectionErrors};
use pin_project_lite::pin_project;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::watch,
    time::Instant,
};
use tower_service::Service;

use super::{
    ConnectionSlot, ServerLimits,
    body::{BodyOutcome, WatchedBody},
    refusals::Refusals,
};

/// What every connection of one server shares.
pub(super) struct Server {
    pub(super) app: Router,
    pub(super) limits: ServerLimits,
    pub(super) errors: ConnectionErrors,
    pub(super) refusals: Refusals,
    pub(super) builder: auto::Builder<TokioExecutor>,
}

impl Server {
    pub(super) fn new(app: Router, limits: ServerLimits, errors: ConnectionErrors) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // The head deadline is kept here, with the idle one: hyper's own
        // runs from the end of the previous response, so it would cut idle
        // keep-alives at the head timeout.
        builder.http1().header_read_timeout(None);
        Self {
            app,
            limits,
            errors,
            refusals: Refusals::default(),
            builder,
        }
    }

    pub(super) fn count(&self, reason: ConnectionError, peer: Option<SocketAddr>) {
        self.errors.increment(reason);
        self.refusals.log(reason, peer);
    }
}

/// Serves one connection until it ends, its deadline passes, or `shutdown`
/// turns true: then a connection without a request in progress closes at
/// once, and one with a request finishes it and closes.
pub(super) async fn serve(
    server: Arc<Server>,
    stream: TcpStream,
    slot: ConnectionSlot,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let state = Arc::new(ConnectionState::new(server.clone(), peer));
    let io = TokioIo::new(WatchedIo {
        io: stream,
        state: state.clone(),
        _slot: slot,
    });
    let service = ConnectionService {
        state: state.clone(),
    };
    let connection = server.builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let mut draining = *shutdown.borrow();
    if draining {
        return;
    }
    // One timer per connection, re-armed only when it fires: a request that
    // starts or ends touches no timer. While a request is in progress the
    // timer only looks again later.
    let recheck = server
        .limits
        .header_read_timeout
        .min(server.limits.idle_timeout);
    let timer = tokio::time::sleep(server.limits.header_read_timeout);
    tokio::pin!(timer);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    classify(&server, error.as_ref(), peer);
                }
                return;
            }
            () = timer.as_mut() => {
                let now = Instant::now();
                match state.deadline(&server.limits) {
                    Some(deadline) if deadline <= now => {
                        if state.reading_head() {
                            server.count(ConnectionError::HeaderTimeout, Some(peer));
                        }
                        // Nothing in progress: closing loses nothing.
                        return;
                    }
                    Some(deadline) => timer.as_mut().reset(deadline),
                    None => timer.as_mut().reset(now + recheck),
                }
            }
            changed = shutdown.changed(), if !draining => {
                draining = true;
                if changed.is_err() || state.open_requests() == 0 {
                    return;
                }
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Maps what hyper (or the socket) ended a connection with to a reason. A
/// client closing its side at a request boundary is no error.
fn classify(
    server: &Server,
    error: &(dyn std::error::Error + Send + Sync + 'static),
    peer: SocketAddr,
) {
    let reason = reason_of(error);
    if let Some(reason) = reason {
        server.count(reason, Some(peer));
    }
}

fn reason_of(error: &(dyn std::error::Error + 'static)) -> Option<ConnectionError> {
    let mut source = Some(error);
    while let Some(error) = source {
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            if hyper.is_parse_too_large() {
                // The two share one predicate; hyper answered 414 or 431.
                return Some(if hyper.to_string().starts_with("URI too long") {
                    ConnectionError::UriTooLong
                } else {
                    ConnectionError::HeadersTooLarge
                });
            }
            if hyper.is_parse() {
                return Some(ConnectionError::MalformedRequest);
            }
            if hyper.is_timeout() {
                return Some(ConnectionError::HeaderTimeout);
            }
            if hyper.is_incomplete_message() || hyper.is_canceled() || hyper.is_closed() {
                // The client left mid-request; the request's own signals
                // count it (499) when a service was called.
                return None;
            }
        }
        if let Some(io) = error.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => None,
                _ => Some(ConnectionError::ConnectionFailed),
            };
        }
        source = error.source();
    }
    Some(ConnectionError::ConnectionFailed)
}

/// One connection: its server and peer, made once per connection, and times
/// in milliseconds from its start, atomics, so the socket, the requests and
/// the watchdog share them without a lock.
struct ConnectionState {
    server: Arc<Server>,
    peer: SocketAddr,
    started: Instant,
    open_requests: AtomicU32,
    /// When the head being read began (its first byte, or the accept for the
    /// first request); [`NOT_READING`] between requests.
    head_started_ms: AtomicU64,
    /// When the last request ended.
    idle_since_ms: AtomicU64,
}

const NOT_READING: u64 = u64::MAX;

impl ConnectionState {
    fn new(server: Arc<Server>, peer: SocketAddr) -> Self {
        Self {
            server,
            peer,
            started: Instant::now(),
            open_requests: AtomicU32::new(0),
            // The first head is due from the accept.
            head_started_ms: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn at(&self, ms: u64, after: Duration) -> Instant {
        self.started + Duration::from_millis(ms) + after
    }

    fn open_requests(&self) -> u32 {
        self.open_requests.load(Ordering::Acquire)
    }

    fn reading_head(&self) -> bool {
        self.head_started_ms.load(Ordering::Acquire) != NOT_READING
    }

    /// When the connection closes if nothing changes; none while a request
    /// is in progress.
    fn deadline(&self, limits: &ServerLimits) -> Option<Instant> {
        if self.open_requests() > 0 {
            return None;
        }
        match self.head_started_ms.load(Ordering::Acquire) {
            NOT_READING => Some(self.at(
                self.idle_since_ms.load(Ordering::Acquire),
                limits.idle_timeout,
            )),
            started => Some(self.at(started, limits.header_read_timeout)),
        }
    }

    fn bytes_read(&self) {
        // Only the first byte of a head between requests needs the clock.
        if self.open_requests() == 0 && !self.reading_head() {
            let now = self.now_ms();
            let _ = self.head_started_ms.compare_exchange(
                NOT_READING,
                now,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    fn request_started(&self) {
        self.open_requests.fetch_add(1, Ordering::AcqRel);
        self.head_started_ms.store(NOT_READING, Ordering::Release);
    }

    fn request_ended(&self) {
        if self.open_requests.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle_since_ms.store(self.now_ms(), Ordering::Release);
        }
    }
}

/// The socket, noting when a request head starts to arrive.
struct WatchedIo {
    io: TcpStream,
    state: Arc<ConnectionState>,
    _slot: ConnectionSlot,
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.state.bytes_read();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The application as hyper calls it for each request of the connection.
#[derive(Clone)]
struct ConnectionService {
    state: Arc<ConnectionState>,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<InProgressBody>;
    type Error = Infallible;
    type Future = ConnectionFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let state = &self.state;
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(state.peer));
        // A request without a body (most GETs) has none to watch.
        let (body, outcome) = if body.is_end_stream() {
            (AxumBody::new(body), None)
        } else {
            let outcome = BodyOutcome::default();
            parts.extensions.insert(outcome.clone());
            let timeout = state.server.limits.body_read_timeout;
            let body = WatchedBody::new(body, timeout, outcome.clone());
            (AxumBody::new(body), Some(outcome))
        };
        // A Router is always ready.
        let future = state
            .server
            .app
            .clone()
            .call(Request::from_parts(parts, body));
        ConnectionFuture {
            inner: future,
            in_progress: Some(InProgress::new(state.clone())),
            outcome,
        }
    }
}

/// A request in progress on its connection, until its response body is
/// written or dropped.
struct InProgress(Arc<ConnectionState>);

impl InProgress {
    fn new(state: Arc<ConnectionState>) -> Self {
        state.request_started();
        Self(state)
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

pin_project! {
    struct ConnectionFuture {
        #[pin]
        inner: axum::routing::future::RouteFuture<Infallible>,
        in_progress: Option<InProgress>,
        outcome: Option<BodyOutcome>,
    }
}

impl Future for ConnectionFuture {
    type Output = Result<Response<InProgressBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let in_progress = this.in_progress.take();
        if this.outcome.as_ref().and_then(BodyOutcome::status)
            == Some(http::StatusCode::REQUEST_TIMEOUT)
            && let Some(InProgress(state)) = &in_progress
        {
            state
                .server
                .count(ConnectionError::BodyTimeout, Some(state.peer));
        }
        Poll::Ready(Ok(response.map(|body| InProgressBody {
            inner: body,
            _in_progress: in_progress,
        })))
    }
}

pin_project! {
    /// A response body that keeps its request in progress until it is
    /// written or dropped.
    struct InProgressBody {
        #[pin]
        inner: AxumBody,
        _in_progress: Option<InProgress>,
    }
}

impl Body for InProgressBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
