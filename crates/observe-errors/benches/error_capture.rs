//! The cost of `ErrorCaptureLayer` per request when nothing fails, beside
//! tower-http's `CatchPanic`, and the cost of the panic path.
#![allow(missing_docs, clippy::unwrap_used)]

use std::{convert::Infallible, hint::black_box};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{Request, Response};
use http_body_util::Full;
use observe_errors::ErrorCaptureLayer;
use observe_request_id::RequestId;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_http::catch_panic::CatchPanicLayer;

type Body = Full<Bytes>;

fn ok_service() -> impl Service<Request<()>, Response = Response<Body>, Error = Infallible> + Clone
{
    service_fn(|request: Request<()>| async move {
        black_box(&request);
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    })
}

fn panicking() -> impl Service<Request<()>, Response = Response<Body>, Error = Infallible> + Clone {
    service_fn(|request: Request<()>| async move {
        if black_box(request.uri().path()) == "/" {
            panic!("benchmark panic");
        }
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    })
}

fn request() -> Request<()> {
    // As the request id layer outside leaves it.
    let mut request = Request::new(());
    request.extensions_mut().insert(
        "0190b6c5-7d1e-7c3a-9f0e-5b1a2c3d4e5f"
            .parse::<RequestId>()
            .unwrap(),
    );
    request
}

fn run<S, B>(c: &mut Criterion, name: &str, service: S)
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone,
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
