//! The built-in rules over real health checks: memory, disk, a database
//! pool and a failing critical check, the gauges the checks publish, and a
//! critical alert inhibiting the warning of its own component.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use observe_alerts::{AlertState, Alerts};
use observe_health::{
    CheckOptions, CheckResult, DiskCheck, DiskReading, Health, MemoryCheck, MemoryReading,
    MemorySource, Usage, check_fn,
};
use observe_metrics::Metrics;

const GIB: u64 = 1 << 30;

fn health(metrics: &Metrics, pool_in_use: u32, database_up: bool) -> Health {
    let health = Health::builder()
        .metrics_recorder(metrics.recorder())
        .cache_ttl(Duration::ZERO)
        .build();
    health.add_check_with(
        "memory",
        MemoryCheck::new().with_reader(|| {
            Ok(MemoryReading {
                used_bytes: 950 << 20,
                limit_bytes: 1000 << 20,
                source: MemorySource::Cgroup,
            })
        }),
        CheckOptions::new().critical(false),
    );
    health.add_check(
        "disk",
        DiskCheck::new("/data").with_reader(|_| {
            Ok(DiskReading {
                available_bytes: 10 * GIB,
                total_bytes: 100 * GIB,
            })
        }),
    );
    health.add_check(
        "database",
        check_fn(move || async move {
            if database_up {
                CheckResult::healthy().usage(Usage::pool(pool_in_use, 10))
            } else {
                CheckResult::unhealthy("connection refused").usage(Usage::pool(pool_in_use, 10))
            }
        }),
    );
    // Failing, but not critical: no HealthCheckFailing.
    health.add_check_with(
        "optional-cache",
        check_fn(|| async { CheckResult::unhealthy("down") }),
        CheckOptions::new().critical(false),
    );
    health
}

fn firing(alerts: &Alerts) -> Vec<(String, String, bool)> {
    alerts
        .active()
        .iter()
        .filter(|alert| alert.state == AlertState::Firing)
        .map(|alert| {
            let detail = alert
                .labels
                .get("path")
                .or_else(|| alert.labels.get("check"))
                .cloned()
                .unwrap_or_default();
            (alert.name().to_owned(), detail, alert.inhibited)
        })
        .collect()
}

#[tokio::test]
async fn usage_rules_read_the_checks_and_the_gauges_say_the_same() {
    let metrics = Metrics::new();
    let alerts = Alerts::builder("svc")
        .metrics(metrics.clone())
        .health(health(&metrics, 9, true))
        .for_duration(Duration::ZERO)
        .build()
        .unwrap();
    let evaluation = alerts.evaluate().await;
    assert_eq!(evaluation.transitions.len(), 3);
    assert_eq!(
        firing(&alerts),
        [
            (
                "DatabasePoolSaturated".to_owned(),
                "database".to_owned(),
                false
            ),
            ("DiskAlmostFull".to_owned(), "/data".to_owned(), false),
            ("HighMemoryUsage".to_owned(), "memory".to_owned(), false),
        ]
    );
    let disk = alerts
        .active()
        .into_iter()
        .find(|alert| alert.name() == "DiskAlmostFull")
        .unwrap();
    assert_eq!(
        disk.annotations["description"],
        "90.00% of /data is used (threshold 85.00%)."
    );
    assert_eq!(disk.labels["component"], "disk");
    assert_eq!(disk.labels["severity"], "warning");

    let text = metrics.render();
    for line in [
        "memory_used_ratio 0.95",
        "disk_used_ratio{path=\"/data\"} 0.9",
        "db_pool_utilization_ratio{check=\"database\"} 0.9",
    ] {
        assert!(
            text.lines().any(|found| found == line),
            "{line} not in {text}"
        );
    }
}

#[tokio::test]
async fn a_failing_critical_check_fires_and_inhibits_its_components_warning() {
    let metrics = Metrics::new();
    let alerts = Alerts::builder("svc")
        .metrics(metrics.clone())
        .health(health(&metrics, 9, false))
        .for_duration(Duration::ZERO)
        .build()
        .unwrap();
    let evaluation = alerts.evaluate().await;
    assert_eq!(
        firing(&alerts),
        [
            (
                "DatabasePoolSaturated".to_owned(),
                "database".to_owned(),
                true
            ),
            ("DiskAlmostFull".to_owned(), "/data".to_owned(), false),
            (
                "HealthCheckFailing".to_owned(),
                "database".to_owned(),
                false
            ),
            ("HighMemoryUsage".to_owned(), "memory".to_owned(), false),
        ]
    );
    let failing = alerts
        .active()
        .into_iter()
        .find(|alert| alert.name() == "HealthCheckFailing")
        .unwrap();
    assert_eq!(
        failing.annotations["description"],
        "The critical health check database is unhealthy."
    );
    // The inhibited warning is not notified.
    let notified: Vec<&str> = evaluation
        .notifications
        .iter()
        .flat_map(|notification| notification.alerts.iter().map(|alert| alert.name()))
        .collect();
    assert!(!notified.contains(&"DatabasePoolSaturated"), "{notified:?}");
    assert_eq!(notified.len(), 3);
}

#[tokio::test]
async fn below_the_thresholds_nothing_fires() {
    let metrics = Metrics::new();
    let alerts = Alerts::builder("svc")
        .metrics(metrics.clone())
        .health(health(&metrics, 8, true))
        .thresholds(observe_alerts::Thresholds {
            memory_percent: 95.0,
            disk_percent: 90.0,
            ..Default::default()
        })
        .for_duration(Duration::ZERO)
        .build()
        .unwrap();
    // 95% memory, 90% disk, 8 of 10 connections: each exactly at its
    // threshold, none above.
    let evaluation = alerts.evaluate().await;
    assert!(
        evaluation.transitions.is_empty(),
        "{:?}",
        evaluation.transitions
    );
}
