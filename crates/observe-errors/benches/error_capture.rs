//! The cost of `ErrorCaptureLayer` per request when nothing fails, beside
//! tower-http's `CatchPanic`, and the cost of the panic path.
#![allow(missing_docs, clippy::unwrap_used)]

use std::{convert::Infallible, hint::black_box};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{
    HeaderValue, Request, Response,
    header::{ACCEPT, ACCEPT_ENCODING, HOST, USER_AGENT},
};
use http_body_util::Full;
use observe_errors::ErrorCaptureLayer;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_http::catch_panic::CatchPanicLayer;

type Body = Full<Bytes>;

fn ok_service() -> impl Service<Request<()>, Response = Response<Body>, Error = Infallible> + Clone
{
    service_fn(|request: Request<()>| async move {
        black_box(&request);
        let mut response = Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok::<_, Infallible>(response)
    })
}

fn panicking() -> impl Service<Request<()>, Response = Response<Body>, Error = Infallible> + Clone {
    service_fn(|request: Request<()>| async move {
        if black_box(!request.uri().path().is_empty()) {
            panic!("benchmark panic");
        }
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    })
}

/// A request as a layer inside axum's router sees it: its URI and headers
/// slices of one shared read buffer (as hyper parses them), and an extension
/// already in place.
fn request() -> Request<()> {
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

fn run<S, B>(c: &mut Criterion, name: &str, service: S)
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone,
{
    c.bench_function(name, |b| {
        // Building and dropping the request and response is part of every
        // variant, the bare one too: the differences are the layers' cost.
        b.iter(|| service.clone().oneshot(request()).now_or_never())
    });
}

fn benches(c: &mut Criterion) {
    run(c, "bare/ok", ok_service());
    run(
        c,
        "observe/ok",
        ErrorCaptureLayer::new().layer(ok_service()),
    );
    run(
        c,
        "tower_http/ok",
        CatchPanicLayer::new().layer(ok_service()),
    );

    // The panic path prints through the panic hook; silence it for the loop.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    run(
        c,
        "observe/panic",
        ErrorCaptureLayer::new()
            .log_errors(false)
            .layer(panicking()),
    );
    run(
        c,
        "tower_http/panic",
        CatchPanicLayer::new().layer(panicking()),
    );
    std::panic::set_hook(hook);
}

criterion_group!(error_capture, benches);
criterion_main!(error_capture);
