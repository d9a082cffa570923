//! The cost of `RequestIdLayer` per request over the bare service, beside
//! tower-http's `SetRequestId` + `PropagateRequestId` doing the same job.
#![allow(missing_docs, clippy::unwrap_used)]

use std::{convert::Infallible, hint::black_box};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{HeaderValue, Request, Response};
use observe_request_id::RequestIdLayer;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

fn bare() -> impl Service<Request<()>, Response = Response<()>, Error = Infallible> + Clone {
    service_fn(|request: Request<()>| async move {
        black_box(&request);
        Ok::<_, Infallible>(Response::new(()))
    })
}

fn without_id() -> Request<()> {
    Request::new(())
}

fn with_id() -> Request<()> {
    let mut request = Request::new(());
    request.headers_mut().insert(
        "x-request-id",
        HeaderValue::from_static("0190b6c5-7d1e-7c3a-9f0e-5b1a2c3d4e5f"),
    );
    request
}

fn run<S>(c: &mut Criterion, name: &str, service: S, request: fn() -> Request<()>)
where
    S: Service<Request<()>, Response = Response<()>, Error = Infallible> + Clone,
{
    c.bench_function(name, |b| {
        b.iter_batched(
            request,
            |request| service.clone().oneshot(request).now_or_never(),
            BatchSize::SmallInput,
        )
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
}

criterion_group!(request_id, benches);
criterion_main!(request_id);
