//! A change of a check's status is logged once and the metrics follow.
//!
//! This test sits alone in its own binary because it captures logs through a
//! thread-scoped subscriber. While that is the only `Dispatch` in the
//! process, `tracing-core` takes the interest of a callsite first hit on
//! another thread from that thread's default, `NoSubscriber`, and caches
//! "never" for good (tokio-rs/tracing#3611): a unit test beside it whose
//! check fails would silence this test's `error!` line.

use std::sync::{
    Arc, Mutex, PoisonError,
    atomic::{AtomicBool, Ordering},
};
use std::time::Duration;

use observe_health::{CheckResult, Health, Status, check_fn};

/// A writer the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_change_of_status_is_logged_once_and_metrics_follow() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let recorder = Arc::new(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder());
    let handle = recorder.handle();

    let failing = Arc::new(AtomicBool::new(false));
    let flag = failing.clone();
    let health = Health::builder()
        .check(
            "db",
            check_fn(move || {
                let failing = flag.load(Ordering::SeqCst);
                async move {
                    if failing {
                        CheckResult::new(Status::Critical)
                            .error("connection refused by db.internal:5432")
                    } else {
                        CheckResult::healthy()
                    }
                }
            }),
        )
        .cache_ttl(Duration::ZERO)
        .metrics_recorder(recorder)
        .build();

    for _ in 0..3 {
        health.check_all().await;
    }
    failing.store(true, Ordering::SeqCst);
    for _ in 0..5 {
        health.check_all().await;
    }
    let rendered = handle.render();
    failing.store(false, Ordering::SeqCst);
    for _ in 0..2 {
        health.check_all().await;
    }

    let text = String::from_utf8(
        captured
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
    )
    .unwrap();
    let changes: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("health check status changed"))
        .collect();
    assert_eq!(changes.len(), 2, "{text}");
    assert!(changes[0].contains("ERROR"), "{}", changes[0]);
    assert!(
        changes[0].contains(r#"change="healthy -> critical""#),
        "{}",
        changes[0]
    );
    assert!(
        changes[0].contains("connection refused by db.internal:5432"),
        "{}",
        changes[0]
    );
    assert!(changes[1].contains("INFO"), "{}", changes[1]);
    assert!(
        changes[1].contains(r#"change="critical -> healthy""#),
        "{}",
        changes[1]
    );

    assert!(
        rendered.contains(r#"health_check_status{check="db"} 3"#),
        "{rendered}"
    );
    assert!(
        rendered.contains(r#"health_check_duration_seconds_count{check="db"} 8"#),
        "{rendered}"
    );
    assert!(
        handle
            .render()
            .contains(r#"health_check_status{check="db"} 0"#)
    );
}
