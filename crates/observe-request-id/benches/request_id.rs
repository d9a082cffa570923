//! The cost of `RequestIdLayer` per request over the bare service, beside
//! tower-http's `SetRequestId` + `PropagateRequestId` doing the same job.
#![allow(missing_docs, clippy::unwrap_used)]

use std::{convert::Infallible, hint::black_box};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{
    HeaderValue, Request, Response,
    header::{ACCEPT, ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT},
};
use observe_request_id::RequestIdLayer;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Answers as an axum handler does: a small body with its content type.
fn bare() -> impl Service<Request<()>, Response = Response<()>, Error = Infallible> + Clone {
    service_fn(|request: Request<()>| async move {
        black_box(&request);
        let mut response = Response::new(());
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("27"));
        Ok::<_, Infallible>(response)
    })
}

/// A request as a layer inside axum's router sees it: its URI and headers
/// slices of one shared read buffer (as hyper parses them), a client's usual
/// headers, and an extension already in place (as the router leaves them).
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
    request.headers_mut().insert(
        "x-request-id",
        HeaderValue::from_maybe_shared(Bytes::from_static(b"0190b6c5-7d1e-7c3a-9f0e-5b1a2c3d4e5f"))
            .unwrap(),
    );
    request
}

fn run<S>(c: &mut Criterion, name: &str, service: S, request: fn() -> Request<()>)
where
    S: Service<Request<()>, Response = Response<()>, Error = Infallible> + Clone,
{
    c.bench_function(name, |b| {
        // Building and dropping the request and response is part of every
        // variant, the bare one too: the differences are the layers' cost.
        b.iter(|| service.clone().oneshot(request()).now_or_never())
    });
}

fn benches(c: &mut Criterion) {
    run(c, "bare/no_id", bare(), without_id);
    run(
        c,
        "observe/generate_v7",
        RequestIdLayer::new().layer(bare()),
        without_id,
    );
    run(
        c,
        "observe/keep_incoming",
        RequestIdLayer::new().layer(bare()),
        with_id,
    );
    let tower_http = SetRequestIdLayer::x_request_id(MakeRequestUuid)
        .layer(PropagateRequestIdLayer::x_request_id().layer(bare()));
    run(c, "tower_http/generate_v4", tower_http.clone(), without_id);
    run(c, "tower_http/keep_incoming", tower_http, with_id);
    c.bench_function("parts/new_v7_id", |b| {
        b.iter(observe_request_id::RequestId::new_v7)
    });
}

criterion_group!(request_id, benches);
criterion_main!(request_id);
