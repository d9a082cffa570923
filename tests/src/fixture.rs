//! The request and services the benchmarks and the instruction counts share.

use std::{convert::Infallible, hint::black_box};

use axum::{Router, routing::get};
use bytes::Bytes;
use http::{
    HeaderValue, Request, Response,
    header::{ACCEPT, ACCEPT_ENCODING, CONTENT_TYPE, HOST, USER_AGENT},
};
use http_body_util::Full;
use tower::{Service, service_fn};

/// The response body of the fixture services.
pub type Body = Full<Bytes>;

/// Answers as an axum JSON handler does.
pub fn bare() -> impl Service<Request<()>, Response = Response<Body>, Error = Infallible> + Clone {
    service_fn(|request: Request<()>| async move {
        black_box(&request);
        let mut response = Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok::<_, Infallible>(response)
    })
}

/// Panics in its future, on every request.
pub fn panicking()
-> impl Service<Request<()>, Response = Response<Body>, Error = Infallible> + Clone {
    service_fn(|request: Request<()>| async move {
        if black_box(!request.uri().path().is_empty()) {
            panic!("benchmark panic");
        }
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    })
}

/// A request as a layer inside axum's router sees it: URI and headers are
/// slices of one shared read buffer (as hyper parses them), with a client's
/// usual headers and an extension already in place.
pub fn without_id() -> Request<()> {
    let buffer = Bytes::from(
        b"/api/v1/groups/42/comments?limit=20 api.example.com curl/8.5.0 */* gzip".to_vec(),
    );
    // Shared from the start, as hyper's read buffer is: slices of it are
    // reference counts, never copies.
    let _shared = buffer.clone();
    let mut parts = buffer.split(|byte| *byte == b' ').scan(0, |start, part| {
        let slice = buffer.slice(*start..*start + part.len());
        *start += part.len() + 1;
        Some(slice)
    });
    let mut next = || parts.next().unwrap();
    let mut request = Request::builder()
        .uri(http::Uri::from_maybe_shared(next()).unwrap())
        .body(())
        .unwrap();
    let headers = request.headers_mut();
    for name in [HOST, USER_AGENT, ACCEPT, ACCEPT_ENCODING] {
        headers.insert(name, HeaderValue::from_maybe_shared(next()).unwrap());
    }
    request
        .extensions_mut()
        .insert(std::net::SocketAddr::from(([127, 0, 0, 1], 50000)));
    request
}

/// [`without_id`] with a valid `x-request-id`, shared like the rest.
pub fn with_id() -> Request<()> {
    let mut request = without_id();
    let id = Bytes::from(b"0190b6c5-7d1e-7c3a-9f0e-5b1a2c3d4e5f".to_vec());
    let _shared = id.clone();
    request
        .headers_mut()
        .insert("x-request-id", HeaderValue::from_maybe_shared(id).unwrap());
    request
}

/// [`without_id`] as axum's router takes it.
pub fn routed() -> Request<axum::body::Body> {
    without_id().map(|()| axum::body::Body::empty())
}

/// A router with the route of the fixture request, answering as [`bare`]
/// does, with `layer` applied as users apply theirs (`Router::layer`).
///
/// Its state is given, as `axum::serve` does: until then axum turns each
/// handler into a route, and applies the layers, on every request.
pub fn router(layer: impl FnOnce(Router) -> Router) -> Router {
    let app = Router::new().route(
        "/api/v1/groups/{group_id}/comments",
        get(|| async { ([(CONTENT_TYPE, "application/json")], "{\"ok\":true}") }),
    );
    layer(app).with_state(())
}
