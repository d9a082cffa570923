//! What both benchmark files share: timing a router, alone and paired.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use axum::Router;
use criterion::Criterion;
use futures_util::FutureExt;
use observe_tests::fixture::routed;
use tower::ServiceExt;

/// The time of one request through `app`, built and dropped.
pub(crate) fn run_router(c: &mut Criterion, name: &str, app: Router) {
    c.bench_function(name, |b| {
        b.iter(|| app.clone().oneshot(routed()).now_or_never())
    });
}

/// The cost of `measured` over `base`, measured in alternating chunks so both
/// see the same moment of a noisy machine: criterion times the difference.
/// A chunk where noise makes the difference negative counts as a nanosecond
/// (criterion refuses a zero), so the figure errs high.
pub(crate) fn paired(c: &mut Criterion, name: &str, base: &Router, measured: &Router) {
    const CHUNK: u64 = 32;
    let time = |app: &Router, count: u64| {
        let started = Instant::now();
        for _ in 0..count {
            black_box(app.clone().oneshot(routed()).now_or_never());
        }
        started.elapsed()
    };
    c.bench_function(name, |b| {
        b.iter_custom(|iterations| {
            let (mut base_time, mut measured_time) = (Duration::ZERO, Duration::ZERO);
            let mut done = 0;
            while done < iterations {
                let count = CHUNK.min(iterations - done);
                base_time += time(base, count);
                measured_time += time(measured, count);
                done += count;
            }
            measured_time
                .saturating_sub(base_time)
                .max(Duration::from_nanos(1))
        })
    });
}
