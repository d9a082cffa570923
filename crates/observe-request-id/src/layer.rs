use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::SystemTime,
};

use http::{HeaderMap, HeaderName, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::{DEFAULT_HEADER_NAME, MakeRequestId, MakeUuidV7, RequestId, Scoped, scope};

/// Gives every request a [`RequestId`] and sets it on every response.
///
/// See the [crate docs](crate) for what is kept and what is replaced.
#[derive(Debug, Clone)]
pub struct RequestIdLayer<M = MakeUuidV7> {
    header_name: HeaderName,
    trust_incoming: bool,
    set_request_header: bool,
    make_request_id: M,
}

impl RequestIdLayer {
    /// The defaults: header [`DEFAULT_HEADER_NAME`], valid incoming ids kept,
    /// fresh ids from [`MakeUuidV7`], no header added to requests that came
    /// without one.
    pub fn new() -> Self {
        Self {
            header_name: DEFAULT_HEADER_NAME,
            trust_incoming: true,
            set_request_header: false,
            make_request_id: MakeUuidV7,
        }
    }
}

impl Default for RequestIdLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> RequestIdLayer<M> {
    /// Reads and writes the id under `header_name`.
    pub fn header_name(mut self, header_name: HeaderName) -> Self {
        self.header_name = header_name;
        self
    }

    /// With `true`, every request gets a fresh id whatever it brings: for a
    /// public edge that must not let clients choose ids.
    pub fn always_generate(mut self, always_generate: bool) -> Self {
        self.trust_incoming = !always_generate;
        self
    }

    /// With `true`, a fresh id is also set as a header on the request, for
    /// inner code that reads headers rather than the [`RequestId`] extension.
    ///
    /// Whatever this says, an incoming header that was not kept (invalid,
    /// repeated, or untrusted under [`always_generate`](Self::always_generate))
    /// is replaced by the fresh id, so the inner service never sees an id that
    /// differs from the one in the extensions and on the response.
    pub fn set_request_header(mut self, set_request_header: bool) -> Self {
        self.set_request_header = set_request_header;
        self
    }

    /// Makes fresh ids with `make_request_id` instead of UUID v7.
    pub fn make_request_id<M2>(self, make_request_id: M2) -> RequestIdLayer<M2> {
        RequestIdLayer {
            header_name: self.header_name,
            trust_incoming: self.trust_incoming,
            set_request_header: self.set_request_header,
            make_request_id,
        }
    }
}

impl<M: MakeRequestId> RequestIdLayer<M> {
    /// Gives `request` its id: the valid one it brought when incoming ids
    /// are trusted, a fresh one otherwise, in its extensions (and its
    /// header, as [`set_request_header`](Self::set_request_header) says).
    /// [`RequestIdService`] calls it for every request; a layer that
    /// observes a request once for every signal (observe's) calls it
    /// itself, then [`ResponseHeader::set`] and [`scope`](crate::scope).
    pub fn assign<B>(&mut self, request: &mut Request<B>) -> RequestId {
        self.assign_with(request, |make, request| make.make_request_id(request))
    }

    /// [`assign`](Self::assign) for a request that arrived at `arrived`, a
    /// clock reading the caller has: a fresh id is made with
    /// [`MakeRequestId::make_request_id_at`], so the default UUID v7 reads
    /// no clock of its own.
    pub fn assign_at<B>(&mut self, request: &mut Request<B>, arrived: SystemTime) -> RequestId {
        self.assign_with(request, |make, request| {
            make.make_request_id_at(request, arrived)
        })
    }

    fn assign_with<B>(
        &mut self,
        request: &mut Request<B>,
        make: impl FnOnce(&mut M, &Request<B>) -> RequestId,
    ) -> RequestId {
        let (found, set_header) = match incoming(request.headers(), &self.header_name) {
            Incoming::Valid(request_id) if self.trust_incoming => (Some(request_id), false),
            Incoming::Absent => (None, self.set_request_header),
            // Never leave an id on the request that differs from ours.
            Incoming::Valid(_) | Incoming::Invalid => (None, true),
        };
        let request_id = match found {
            Some(request_id) => request_id,
            None => {
                let fresh = make(&mut self.make_request_id, request);
                if set_header {
                    request
                        .headers_mut()
                        .insert(self.header_name.clone(), fresh.to_header_value());
                }
                fresh
            }
        };
        request.extensions_mut().insert(request_id.clone());
        request_id
    }
}

impl<M> RequestIdLayer<M> {
    /// The header responses get the id in.
    pub fn response_header(&self) -> ResponseHeader {
        ResponseHeader::new(&self.header_name)
    }
}

impl<S, M: Clone> Layer<S> for RequestIdLayer<M> {
    type Service = RequestIdService<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService {
            inner,
            response_header: self.response_header(),
            layer: self.clone(),
        }
    }
}

/// The service of [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct RequestIdService<S, M = MakeUuidV7> {
    inner: S,
    response_header: ResponseHeader,
    layer: RequestIdLayer<M>,
}

impl<S, M> RequestIdService<S, M> {
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

/// The header a response gets its request id in, from
/// [`RequestIdLayer::response_header`], as a response future keeps it:
/// nothing for the default name, a shared pointer otherwise, so the future
/// stays small.
#[derive(Debug, Clone)]
pub struct ResponseHeader(Option<Arc<HeaderName>>);

impl ResponseHeader {
    fn new(name: &HeaderName) -> Self {
        Self((*name != DEFAULT_HEADER_NAME).then(|| Arc::new(name.clone())))
    }

    fn name(&self) -> HeaderName {
        match &self.0 {
            None => DEFAULT_HEADER_NAME,
            Some(name) => HeaderName::clone(name),
        }
    }

    /// Sets `request_id` on `response`, in place of any id it had.
    pub fn set<B>(&self, response: &mut Response<B>, request_id: RequestId) {
        response
            .headers_mut()
            .insert(self.name(), request_id.into_header_value());
    }
}

/// What a request brought under the id header.
enum Incoming {
    Absent,
    /// Exactly one valid value.
    Valid(RequestId),
    /// Empty, too long, not visible ASCII, or repeated.
    Invalid,
}

fn incoming(headers: &HeaderMap, name: &HeaderName) -> Incoming {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Incoming::Absent;
    };
    if values.next().is_some() {
        return Incoming::Invalid;
    }
    RequestId::from_header_value(first).map_or(Incoming::Invalid, Incoming::Valid)
}

impl<S, M, ReqBody, ResBody> Service<Request<ReqBody>> for RequestIdService<S, M>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    M: MakeRequestId,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let request_id = self.layer.assign(&mut request);
        ResponseFuture {
            inner: scope(request_id, self.inner.call(request)),
            header_name: self.response_header.clone(),
        }
    }
}

pin_project! {
    /// The response future of [`RequestIdService`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Scoped<F>,
        header_name: ResponseHeader,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut response = ready!(this.inner.as_mut().poll(cx))?;
        if let Some(request_id) = this.inner.take_id() {
            this.header_name.set(&mut response, request_id);
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::{Router, body::Body, routing::get};
    use http::{HeaderValue, StatusCode};
    use http_body_util::BodyExt;
    use tower::{ServiceExt, service_fn};
    use uuid::Uuid;

    use super::*;

    async fn echo_extension(request: Request<Body>) -> Result<Response<Body>, Infallible> {
        let id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let header = request
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(Response::new(Body::from(format!("{id}|{header}"))))
    }

    async fn send(
        layer: RequestIdLayer<impl MakeRequestId>,
        headers: &[(&str, &[u8])],
    ) -> (Response<Body>, String) {
        let mut request = Request::builder().uri("/");
        for (name, value) in headers {
            request = request.header(*name, HeaderValue::from_bytes(value).unwrap());
        }
        let service = layer.layer(service_fn(echo_extension));
        let response = service
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            Response::from_parts(parts, Body::empty()),
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    fn header(response: &Response<Body>) -> &str {
        let mut values = response.headers().get_all("x-request-id").iter();
        let value = values.next().expect("x-request-id on the response");
        assert!(values.next().is_none(), "exactly one x-request-id");
        value.to_str().unwrap()
    }

    fn assert_fresh_v7(id: &str) {
        let uuid = Uuid::parse_str(id).unwrap_or_else(|_| panic!("{id:?} is not a UUID"));
        assert_eq!(uuid.get_version_num(), 7, "{id} is not v7");
    }

    #[tokio::test]
    async fn valid_incoming_id_is_kept_everywhere() {
        let (response, seen) =
            send(RequestIdLayer::new(), &[("x-request-id", b"abc-123_XYZ")]).await;
        assert_eq!(header(&response), "abc-123_XYZ");
        assert_eq!(seen, "abc-123_XYZ|abc-123_XYZ");
    }

    #[tokio::test]
    async fn missing_id_gets_a_v7_uuid_in_extensions_and_response() {
        let (response, seen) = send(RequestIdLayer::new(), &[]).await;
        let id = header(&response).to_owned();
        assert_fresh_v7(&id);
        assert_eq!(seen, format!("{id}|"));
    }

    #[tokio::test]
    async fn set_request_header_puts_a_fresh_id_on_the_request() {
        let (response, seen) = send(RequestIdLayer::new().set_request_header(true), &[]).await;
        let id = header(&response).to_owned();
        assert_fresh_v7(&id);
        assert_eq!(seen, format!("{id}|{id}"));
    }

    #[tokio::test]
    async fn every_kind_of_bad_id_is_replaced_and_never_echoed() {
        let too_long = "a".repeat(129);
        let cases: [(&str, &[u8]); 7] = [
            ("empty", b""),
            ("too long", too_long.as_bytes()),
            ("space", b"abc def"),
            ("tab", b"abc\tdef"),
            ("non-ascii", "id-\u{e9}".as_bytes()),
            ("obs-text", b"id\xff"),
            ("leading space", b" abc"),
        ];
        for (what, bad) in cases {
            let (response, seen) = send(RequestIdLayer::new(), &[("x-request-id", bad)]).await;
            let id = header(&response).to_owned();
            assert_fresh_v7(&id);
            assert_eq!(seen, format!("{id}|{id}"), "{what}");
        }
    }

    #[tokio::test]
    async fn several_headers_are_replaced_by_one_fresh_id() {
        let (response, seen) = send(
            RequestIdLayer::new(),
            &[("x-request-id", b"first"), ("x-request-id", b"second")],
        )
        .await;
        let id = header(&response).to_owned();
        assert_fresh_v7(&id);
        assert_eq!(seen, format!("{id}|{id}"));
    }

    #[tokio::test]
    async fn longest_valid_id_is_kept() {
        let longest = "z".repeat(128);
        let (response, _) = send(
            RequestIdLayer::new(),
            &[("x-request-id", longest.as_bytes())],
        )
        .await;
        assert_eq!(header(&response), longest);
    }

    #[tokio::test]
    async fn always_generate_ignores_a_valid_incoming_id() {
        let layer = RequestIdLayer::new().always_generate(true);
        let (response, seen) = send(layer, &[("x-request-id", b"client-chosen")]).await;
        let id = header(&response).to_owned();
        assert_fresh_v7(&id);
        assert_eq!(seen, format!("{id}|{id}"));
    }

    #[tokio::test]
    async fn custom_header_name() {
        let layer = RequestIdLayer::new().header_name(HeaderName::from_static("x-correlation-id"));
        let request = Request::builder()
            .header("x-correlation-id", "corr-1")
            .body(Body::empty())
            .unwrap();
        let response = layer
            .layer(service_fn(echo_extension))
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.headers()["x-correlation-id"], "corr-1");
        assert!(response.headers().get("x-request-id").is_none());
    }

    #[derive(Clone)]
    struct Fixed;

    impl MakeRequestId for Fixed {
        fn make_request_id<B>(&mut self, _request: &Request<B>) -> RequestId {
            "fixed-id".parse().unwrap()
        }
    }

    #[tokio::test]
    async fn generator_is_pluggable() {
        let (response, seen) = send(RequestIdLayer::new().make_request_id(Fixed), &[]).await;
        assert_eq!(header(&response), "fixed-id");
        assert_eq!(seen, "fixed-id|");
    }

    #[test]
    fn an_id_assigned_at_a_time_carries_it_and_a_custom_maker_still_decides() {
        // Ahead of any id this thread made, which a v7 id would stay after.
        let arrived = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        let mut request = Request::new(());
        let id = RequestIdLayer::new().assign_at(&mut request, arrived);
        let uuid = Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(crate::v7::millis_of(&uuid), crate::v7::unix_millis(arrived));
        assert_eq!(request.extensions().get::<RequestId>(), Some(&id));

        let mut request = Request::new(());
        let id = RequestIdLayer::new()
            .make_request_id(Fixed)
            .assign_at(&mut request, arrived);
        assert_eq!(id.as_str(), "fixed-id");
    }

    #[tokio::test]
    async fn handler_response_header_is_overwritten_with_the_request_id() {
        let service = RequestIdLayer::new().layer(service_fn(|_request: Request<Body>| async {
            let mut response = Response::new(Body::empty());
            response
                .headers_mut()
                .insert("x-request-id", HeaderValue::from_static("forged"));
            Ok::<_, Infallible>(response)
        }));
        let request = Request::builder()
            .header("x-request-id", "real")
            .body(Body::empty())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(header(&response), "real");
    }

    async fn from_handler(id: RequestId) -> String {
        let current = crate::current()
            .map(|id| id.to_string())
            .unwrap_or_default();
        format!("{id}|{current}")
    }

    #[tokio::test]
    async fn extractor_and_current_agree_with_the_header() {
        let app = Router::new()
            .route("/", get(from_handler))
            .layer(RequestIdLayer::new());
        let request = Request::builder()
            .header("x-request-id", "from-client")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"from-client|from-client");
    }

    #[tokio::test]
    async fn extractor_without_the_layer_makes_one_id_per_request() {
        async fn twice(first: RequestId, second: RequestId) -> String {
            assert_eq!(first, second);
            first.to_string()
        }
        let app = Router::new().route("/", get(twice));
        let response = app
            .oneshot(Request::builder().body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_fresh_v7(std::str::from_utf8(&body).unwrap());
    }

    #[tokio::test]
    async fn header_is_set_on_unmatched_routes() {
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(RequestIdLayer::new());
        let request = Request::builder()
            .uri("/nowhere")
            .header("x-request-id", "lost")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(header(&response), "lost");
    }
}
