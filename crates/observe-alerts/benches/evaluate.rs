//! One evaluation of the built-in rules (budget: 50 µs), quiet (nothing
//! above a threshold) and busy (every rule firing, notifications grouped and
//! deduplicated), with the RED window and a health report of four checks.
#![allow(missing_docs, clippy::unwrap_used)]

use std::{
    hint::black_box,
    time::{Duration, SystemTime},
};

use criterion::{Criterion, criterion_group, criterion_main};
use observe_alerts::{Alerts, Inputs};
use observe_health::{
    CheckOptions, CheckResult, DiskCheck, DiskReading, Health, HealthReport, MemoryCheck,
    MemoryReading, MemorySource, Usage, check_fn,
};
use observe_metrics::RedSnapshot;

fn report(used_percent: u64) -> HealthReport {
    let health = Health::new();
    health.add_check_with(
        "memory",
        MemoryCheck::new().with_reader(move || {
            Ok(MemoryReading {
                used_bytes: used_percent,
                limit_bytes: 100,
                source: MemorySource::Host,
            })
        }),
        CheckOptions::new().critical(false),
    );
    health.add_check(
        "disk",
        DiskCheck::new("/").with_reader(move |_| {
            Ok(DiskReading {
                available_bytes: 100 - used_percent,
                total_bytes: 100,
            })
        }),
    );
    let busy = used_percent > 90;
    health.add_check(
        "database",
        check_fn(move || async move {
            let result = CheckResult::healthy().usage(Usage::pool(if busy { 10 } else { 2 }, 10));
            if busy {
                result.with_status(observe_health::Status::Unhealthy)
            } else {
                result
            }
        }),
    );
    health.add_check("redis", check_fn(|| async { CheckResult::healthy() }));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(health.check_all())
}

fn red(errors: u64, latency: Duration) -> RedSnapshot {
    RedSnapshot {
        window: Duration::from_secs(300),
        requests: 10_000,
        errors,
        request_rate: 33.3,
        error_rate: errors as f64 / 10_000.0,
        mean: latency,
        p50: latency,
        p95: latency,
        p99: latency,
    }
}

fn evaluate(c: &mut Criterion) {
    let mut group = c.benchmark_group("alerts");
    for (name, errors, latency, used) in [
        ("evaluate_builtin_quiet", 10, Duration::from_millis(20), 50),
        (
            "evaluate_builtin_all_firing",
            5_000,
            Duration::from_secs(3),
            99,
        ),
    ] {
        let alerts = Alerts::builder("bench")
            .for_duration(Duration::ZERO)
            .build()
            .unwrap();
        let snapshot = red(errors, latency);
        let health = report(used);
        let inputs = Inputs {
            red: Some(&snapshot),
            health: Some(&health),
        };
        let mut now = SystemTime::now();
        group.bench_function(name, |b| {
            b.iter(|| {
                now += Duration::from_secs(15);
                black_box(alerts.evaluate_at(now, black_box(&inputs)))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
