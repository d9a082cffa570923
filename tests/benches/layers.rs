//! The cost per request of each layer over the bare service, beside the
//! tower-http layer that does the same job, all in one run.
//!
//! The request is built as a layer inside axum's router sees one, and the
//! response as an axum handler makes one. Building and dropping both is in
//! every figure, the bare one too, so the differences are the layers' cost.
#![allow(missing_docs, clippy::unwrap_used)]

use std::{convert::Infallible, hint::black_box};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{
    HeaderValue, Request, Response,
    header::{ACCEPT, ACCEPT_ENCODING, CONTENT_TYPE, HOST, USER_AGENT},
};
use http_body_util::Full;
use observe::{errors::ErrorCaptureLayer, request_id::RequestIdLayer};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
};

type Body = Full<Bytes>;

/// Answers as an axum JSON handler does.
fn bare() -> impl Service<Request<()>, Response = Response<Body>, Error = Infallible> + Clone {
    service_fn(|request: Request<()>| async move {
        black_box(&request);
        let mut response = Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok::<_, Infallible>(response)
    })
}

fn panicking() -> impl Service<Request<()>, Response = Response<Body>, Error = Infallible> + Clone {
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
fn without_id() -> Request<()> {
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

fn with_id() -> Request<()> {
    let mut request = without_id();
    let id = Bytes::from(b"0190b6c5-7d1e-7c3a-9f0e-5b1a2c3d4e5f".to_vec());
    let _shared = id.clone();
    request
        .headers_mut()
        .insert("x-request-id", HeaderValue::from_maybe_shared(id).unwrap());
    request
}

fn run<S, B>(c: &mut Criterion, name: &str, service: S, request: fn() -> Request<()>)
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone,
{
    c.bench_function(name, |b| {
        b.iter(|| service.clone().oneshot(request()).now_or_never())
    });
}

fn request_id(c: &mut Criterion) {
    run(c, "request_id/bare", bare(), without_id);
    run(c, "request_id/bare_with_id", bare(), with_id);
    let observe = RequestIdLayer::new().layer(bare());
    run(
        c,
        "request_id/observe_generate_v7",
        observe.clone(),
        without_id,
    );
    run(c, "request_id/observe_keep_incoming", observe, with_id);
    let tower_http = SetRequestIdLayer::x_request_id(MakeRequestUuid)
        .layer(PropagateRequestIdLayer::x_request_id().layer(bare()));
    run(
        c,
        "request_id/tower_http_generate_v4",
        tower_http.clone(),
        without_id,
    );
    run(
        c,
        "request_id/tower_http_keep_incoming",
        tower_http,
        with_id,
    );
    c.bench_function("request_id/new_v7_alone", |b| {
        b.iter(observe::RequestId::new_v7)
    });
}

fn error_capture(c: &mut Criterion) {
    run(c, "error_capture/bare", bare(), without_id);
    run(
        c,
        "error_capture/observe_ok",
        ErrorCaptureLayer::new().layer(bare()),
        without_id,
    );
    run(
        c,
        "error_capture/tower_http_ok",
        CatchPanicLayer::new().layer(bare()),
        without_id,
    );

    // The panic path prints through the panic hook; silence it for the loop.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let observe = ErrorCaptureLayer::new()
        .log_errors(false)
        .layer(panicking());
    run(c, "error_capture/observe_panic", observe, without_id);
    let tower_http = CatchPanicLayer::new().layer(panicking());
    run(c, "error_capture/tower_http_panic", tower_http, without_id);
    std::panic::set_hook(hook);
}

criterion_group!(layers, request_id, error_capture);
criterion_main!(layers);
