//! The request log line, end to end on the request path, beside tower-http's
//! `TraceLayer` with tracing-subscriber's JSON formatter; and the writer's
//! throughput to a file. All in one run.
//!
//! Each stack sits behind observe's `RequestIdLayer` (the log line carries
//! the id); the `paired_*` figures are a stack's cost over that base,
//! measured in alternating chunks so both see the same moment of a noisy
//! machine.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use axum::Router;
use common::{paired, run_router};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use observe::{
    logging::{FileOutput, Logging, RequestLogLayer, Rotation},
    request_id::RequestIdLayer,
};
use observe_tests::fixture::router;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

fn run(c: &mut Criterion, name: &str, app: &Router, dispatch: &tracing::Dispatch) {
    tracing::dispatcher::with_default(dispatch, || run_router(c, name, app.clone()));
}

fn paired_with(
    c: &mut Criterion,
    name: &str,
    base: &Router,
    measured: &Router,
    dispatch: &tracing::Dispatch,
) {
    tracing::dispatcher::with_default(dispatch, || paired(c, name, base, measured));
}

fn request_log(c: &mut Criterion) {
    let base = router(|app| app.layer(RequestIdLayer::new()));

    // observe: the default (drop when full) and lossless, both to a sink
    // through the writer thread.
    let dropping = Logging::builder("bench")
        .writer(std::io::sink())
        .build()
        .unwrap();
    let dropping_dispatch = dropping.dispatch("info").unwrap();
    let lossless = Logging::builder("bench")
        .writer(std::io::sink())
        .lossless(true)
        .build()
        .unwrap();
    let lossless_dispatch = lossless.dispatch("info").unwrap();
    let observe = router(|app| {
        app.layer(RequestLogLayer::new())
            .layer(RequestIdLayer::new())
    });

    // The reference: one INFO span and one INFO line per request, formatted
    // by tracing-subscriber's JSON formatter straight into a sink.
    let reference_dispatch = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::sink)
            .with_env_filter("info")
            .finish(),
    );
    let tower_http = router(|app| {
        app.layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(RequestIdLayer::new())
    });

    run(c, "request_log/base_request_id", &base, &dropping_dispatch);
    run(c, "request_log/observe", &observe, &dropping_dispatch);
    run(
        c,
        "request_log/observe_lossless",
        &observe,
        &lossless_dispatch,
    );
    run(
        c,
        "request_log/tower_http_trace_json",
        &tower_http,
        &reference_dispatch,
    );
    paired_with(
        c,
        "request_log/paired_observe",
        &base,
        &observe,
        &dropping_dispatch,
    );
    paired_with(
        c,
        "request_log/paired_observe_lossless",
        &base,
        &observe,
        &lossless_dispatch,
    );
    paired_with(
        c,
        "request_log/paired_tower_http_trace_json",
        &base,
        &tower_http,
        &reference_dispatch,
    );
    eprintln!(
        "request_log: dropped {} of {} lines in default mode",
        dropping.handle().dropped_lines(),
        dropping.handle().dropped_lines() + dropping.handle().written_lines()
    );
}

/// Lines per second through the queue into a rotating file: the producer
/// formats an event like a request line, the writer thread writes it; the
/// time ends when the last line is flushed.
fn writer(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("observe-log-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let logging = Logging::builder("bench")
        .stdout(false)
        .file(
            FileOutput::new(dir.join("bench.log"))
                .rotation(Rotation::Daily)
                .max_bytes(256 << 20)
                .max_files(2),
        )
        .lossless(true)
        .build()
        .unwrap();
    let dispatch = logging.dispatch("info").unwrap();
    let mut group = c.benchmark_group("log_writer");
    group.throughput(Throughput::Elements(1));
    tracing::dispatcher::with_default(&dispatch, || {
        group.bench_function("file_lines", |b| {
            b.iter_custom(|lines| {
                let started = Instant::now();
                for line in 0..lines {
                    tracing::info!(
                        target: "observe_log::request",
                        method = "GET",
                        endpoint = "/api/v1/groups/{group_id}/comments",
                        path = "/api/v1/groups/42/comments?limit=20",
                        status_code = 200u16,
                        duration_ms = 0.123,
                        line,
                        "request finished"
                    );
                }
                logging.handle().flush(Duration::from_secs(60)).unwrap();
                started.elapsed()
            })
        });
    });
    group.finish();
    assert_eq!(logging.handle().dropped_lines(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(logs, request_log, writer);
criterion_main!(logs);
