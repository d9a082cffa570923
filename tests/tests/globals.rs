//! The process-wide globals `init` installs (the `tracing` subscriber and
//! the `metrics` recorder): installed last, never replaced, and a taken one
//! is an error naming the setting. In a process of its own, as globals are.
#![allow(clippy::unwrap_used)]

use observe::Observability;

#[test]
fn globals_are_installed_last_and_a_taken_one_is_an_error_naming_its_setting() {
    // A configuration that fails late (the sampler is read after the
    // metrics): nothing global may be left behind.
    let failed = Observability::builder("globals")
        .env_vars([("OTEL_TRACES_SAMPLER", "sometimes")])
        .init()
        .unwrap_err();
    assert_eq!(failed.variable(), "OTEL_TRACES_SAMPLER");
    assert!(!global_subscriber());
    let none = tracing::Dispatch::none();
    // A scoped subscriber somewhere (a test harness's, a library's) is not
    // the global one.
    tracing::dispatcher::with_default(&none, || tracing::info!("scoped"));

    // So the next init installs both.
    let first = Observability::builder("globals")
        .env_vars::<&str, &str>([])
        .init()
        .unwrap();
    assert!(global_subscriber());
    metrics::counter!("globals_test_total").increment(3);
    assert!(
        first.metrics().render().contains("globals_test_total 3"),
        "{}",
        first.metrics().render()
    );

    // Both taken now: each is a clear error, and the setting keeps yours.
    let subscriber = Observability::builder("globals")
        .env_vars::<&str, &str>([])
        .init()
        .unwrap_err();
    assert_eq!(subscriber.variable(), "install_subscriber");
    assert!(
        subscriber.to_string().contains("install_subscriber(false)"),
        "{subscriber}"
    );
    let recorder = Observability::builder("globals")
        .install_subscriber(false)
        .env_vars::<&str, &str>([])
        .init()
        .unwrap_err();
    assert_eq!(recorder.variable(), "install_metrics_recorder");
    let local = Observability::builder("globals")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .env_vars::<&str, &str>([])
        .init();
    assert!(local.is_ok());
}

/// Whether a global subscriber is installed, seen from a thread without a
/// scoped one.
fn global_subscriber() -> bool {
    std::thread::spawn(|| {
        tracing::dispatcher::get_default(|dispatch| {
            !dispatch.is::<tracing::subscriber::NoSubscriber>()
        })
    })
    .join()
    .unwrap()
}
