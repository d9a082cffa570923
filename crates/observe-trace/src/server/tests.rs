use std::{
    convert::Infallible,
    panic::{AssertUnwindSafe, catch_unwind},
};

use http::{HeaderValue, Request, Response};
use tower::{Layer, Service, ServiceExt, service_fn};

use super::*;
use crate::{MAX_SPARE_TEXT_BYTES, Sampler, TRACEPARENT, current};

type Body = String;

/// Answers with the context it saw, in the request and as `current()`.
fn echo()
-> impl Service<Request<()>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone {
    service_fn(|request: Request<()>| async move {
        let context = current();
        let ids = request
            .extensions()
            .get::<observe_core::TraceIds>()
            .copied();
        let body = match (context, ids) {
            (Some(context), Some(ids)) => {
                assert_eq!(ids.trace_id(), context.trace_id().to_string());
                assert_eq!(ids.span_id(), context.span_id().to_string());
                format!(
                    "{} {} {} {}",
                    context.trace_id(),
                    context.span_id(),
                    context
                        .parent_span_id()
                        .map_or_else(|| "root".to_owned(), |id| id.to_string()),
                    context.is_sampled()
                )
            }
            _ => "none".to_owned(),
        };
        Ok::<_, Infallible>(Response::new(body))
    })
}

async fn call_with(layer: TraceLayer, traceparent: Option<&'static str>) -> Vec<String> {
    let mut request = Request::new(());
    if let Some(value) = traceparent {
        request
            .headers_mut()
            .insert(&TRACEPARENT, HeaderValue::from_static(value));
    }
    let response = layer.layer(echo()).oneshot(request).await;
    let body = match response {
        Ok(response) => response.into_body(),
        Err(never) => match never {},
    };
    body.split(' ').map(str::to_owned).collect()
}

#[tokio::test]
async fn a_valid_traceparent_is_continued() {
    let parts = call_with(
        TraceLayer::new(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    )
    .await;
    assert_eq!(parts[0], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(parts[1], "00f067aa0ba902b7");
    assert_eq!(parts[1].len(), 16);
    assert_eq!(parts[2], "00f067aa0ba902b7");
    assert_eq!(parts[3], "true");
    // The caller said "not sampled": the default sampler follows it.
    let parts = call_with(
        TraceLayer::new(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
    )
    .await;
    assert_eq!(parts[3], "false");
    assert_eq!(current(), None, "nothing left behind on this thread");
}

#[tokio::test]
async fn an_invalid_traceparent_starts_a_new_root_trace() {
    for bad in [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "not a traceparent",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    ] {
        let parts = call_with(TraceLayer::new(), Some(bad)).await;
        assert_eq!(parts[0].len(), 32, "{bad}");
        assert_ne!(parts[0], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parts[2], "root");
        assert_eq!(parts[3], "true");
    }
    let parts = call_with(TraceLayer::new().sampler(Sampler::AlwaysOff), None).await;
    assert_eq!(parts[2], "root");
    assert_eq!(parts[3], "false");
}

#[tokio::test]
async fn a_panic_in_call_leaves_no_context_behind() {
    let layer = TraceLayer::new();
    let mut service = layer.layer(service_fn(
        |_: Request<()>| -> std::future::Ready<Result<Response<Body>, Infallible>> {
            assert!(current().is_some());
            panic!("in call")
        },
    ));
    let outcome = catch_unwind(AssertUnwindSafe(|| service.call(Request::new(()))));
    assert!(outcome.is_err());
    assert_eq!(current(), None);
}

#[tokio::test]
async fn a_panic_in_the_future_leaves_no_context_behind() {
    let layer = TraceLayer::new();
    let service = layer.layer(service_fn(|_: Request<()>| async {
        assert!(current().is_some());
        if current().is_some() {
            panic!("in the future");
        }
        Ok::<_, Infallible>(Response::new(Body::new()))
    }));
    let future = service.oneshot(Request::new(()));
    let mut future = Box::pin(future);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let outcome = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
    assert!(outcome.is_err());
    assert_eq!(current(), None);
}

#[tokio::test]
async fn tracestate_and_baggage_are_passed_on_by_the_client_layer() {
    use crate::ClientTraceLayer;
    // The "downstream" echoes the headers the client layer put on.
    let downstream = ClientTraceLayer::new().layer(service_fn(|request: Request<()>| async move {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        Ok::<_, Infallible>(Response::new(format!(
            "{}|{}|{}",
            header("traceparent"),
            header("tracestate"),
            header("baggage")
        )))
    }));
    let service = TraceLayer::new().layer(service_fn(move |_: Request<()>| {
        let downstream = downstream.clone();
        async move { downstream.oneshot(Request::new(())).await }
    }));
    let mut request = Request::new(());
    let headers = request.headers_mut();
    headers.insert(
        &TRACEPARENT,
        HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    headers.insert("tracestate", HeaderValue::from_static("vendor=opaque"));
    headers.insert("baggage", HeaderValue::from_static("tenant=acme"));
    let body = match service.oneshot(request).await {
        Ok(response) => response.into_body(),
        Err(never) => match never {},
    };
    let parts: Vec<&str> = body.split('|').collect();
    assert!(parts[0].starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    assert!(
        !parts[0].contains("00f067aa0ba902b7"),
        "a new span id for the call"
    );
    assert_eq!(parts[1], "vendor=opaque");
    assert_eq!(parts[2], "tenant=acme");
}

#[tokio::test]
async fn in_span_is_a_child_of_the_request_span_and_current_inside() {
    let service = TraceLayer::new().layer(service_fn(|_: Request<()>| async {
        let request = current().map(|context| context.span_id());
        let inner = crate::in_span("work", async {
            current().map(|context| (context.span_id(), context.parent_span_id()))
        })
        .await;
        let Some((inner_id, inner_parent)) = inner else {
            panic!("no context inside in_span");
        };
        assert_eq!(inner_parent, request);
        assert_ne!(Some(inner_id), request);
        // Back to the request's span after it.
        assert_eq!(current().map(|context| context.span_id()), request);
        Ok::<_, Infallible>(Response::new(Body::new()))
    }));
    let response = service.oneshot(Request::new(())).await;
    assert!(response.is_ok());
    // Outside any request it only runs the future.
    assert_eq!(crate::in_span("alone", async { current() }).await, None);
}

#[tokio::test]
async fn a_queued_server_span_holds_nothing_of_the_request_and_records_are_reused() {
    use bytes::Bytes;
    use http::header::{HOST, USER_AGENT};

    use crate::export::{Item, ServerRecord, SpanSink};

    let (sink, queued) = SpanSink::unstarted(8);
    let layer = TraceLayer::exporting(Sampler::AlwaysOn, Some(sink.clone()), false);
    // One buffer for the whole head, as hyper reads it: a caller's
    // `tracestate` too.
    let head = Bytes::copy_from_slice(b"/items/7?q=1example.comcurl/8vendor=abc");
    let shared =
        |range: std::ops::Range<usize>| HeaderValue::from_maybe_shared(head.slice(range)).unwrap();
    let request = |path: Bytes| {
        Request::builder()
            .uri(http::Uri::from_maybe_shared(path).unwrap())
            .header(HOST, shared(12..23))
            .header(USER_AGENT, shared(23..29))
            .header(
                &TRACEPARENT,
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .header("tracestate", shared(29..39))
            .body(())
            .unwrap()
    };
    let take = || match queued.try_recv() {
        Ok(Item::Server(record)) => record,
        _ => panic!("no server span queued"),
    };

    let response = layer.layer(echo()).oneshot(request(head.slice(..12))).await;
    drop(response);
    // Queued for export, and the request's buffer is free for the next head.
    assert!(head.is_unique());
    let record = take();
    assert_eq!(record.texts.path(), "/items/7");
    assert_eq!(record.texts.scheme(), None);
    assert_eq!(record.texts.host(), Some("example.com"));
    assert_eq!(record.texts.user_agent(), Some("curl/8"));
    assert_eq!(record.texts.request_id(), None);
    let passed = record
        .context
        .passed
        .as_ref()
        .and_then(|passed| passed.trace_state.as_ref());
    assert_eq!(passed.map(HeaderValue::as_bytes), Some(&b"vendor=abc"[..]));

    // Once encoded, the record carries the next request's span; kept
    // meanwhile, it holds neither the sink (which holds the spares) nor the
    // caller's state.
    let first: *const ServerRecord = &*record;
    sink.recycle(record);
    let spare = sink.spare_server_record().unwrap();
    assert!(spare.context.sink.is_none() && spare.context.passed.is_none());
    sink.recycle(spare);
    let response = layer
        .layer(echo())
        .oneshot(request(Bytes::from_static(b"http://example.com/second")))
        .await;
    drop(response);
    let record = take();
    assert!(std::ptr::eq(first, &*record));
    assert_eq!(record.texts.path(), "/second");
    assert_eq!(record.texts.scheme(), Some("http"));
    assert_eq!(record.texts.user_agent(), Some("curl/8"));
    assert!(sink.spare_server_record().is_none());

    // Texts longer than a spare may keep are left to the allocator.
    let long = format!("/{}", "x".repeat(MAX_SPARE_TEXT_BYTES));
    let response = layer
        .layer(echo())
        .oneshot(request(Bytes::from(long)))
        .await;
    drop(response);
    sink.recycle(take());
    assert!(sink.spare_server_record().is_none());
}

#[tokio::test]
async fn a_failed_service_s_span_is_a_500_of_type_service_error_and_the_reused_record_forgets_it() {
    use http::StatusCode;

    use crate::export::{Item, SpanSink};

    let (sink, queued) = SpanSink::unstarted(8);
    let layer = TraceLayer::exporting(Sampler::AlwaysOn, Some(sink.clone()), false);
    let take = || match queued.try_recv() {
        Ok(Item::Server(record)) => record,
        _ => panic!("no server span queued"),
    };
    let failing = service_fn(|_: Request<()>| async { Err::<Response<Body>, _>("refused") });
    let outcome = layer.layer(failing).oneshot(Request::new(())).await;
    assert_eq!(outcome.err(), Some("refused"));
    let record = take();
    assert_eq!(record.status, Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(record.texts.error_type(), Some("service_error"));

    sink.recycle(record);
    let response = layer.layer(echo()).oneshot(Request::new(())).await;
    assert!(response.is_ok());
    let record = take();
    assert_eq!(record.status, Some(StatusCode::OK));
    assert_eq!(record.texts.error_type(), None);
}
