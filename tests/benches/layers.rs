//! The cost per request of each layer over the bare service, beside the
//! tower-http layer that does the same job, all in one run.
//!
//! The request is built as a layer inside axum's router sees one, and the
//! response as an axum handler makes one. Building and dropping both is in
//! every figure, the bare one too, so the differences are the layers' cost.
#![allow(missing_docs, clippy::unwrap_used)]

use std::convert::Infallible;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{Request, Response};
use observe::{errors::ErrorCaptureLayer, request_id::RequestIdLayer};
use observe_tests::fixture::{bare, panicking, with_id, without_id};
use tower::{Layer, Service, ServiceExt};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
};

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
