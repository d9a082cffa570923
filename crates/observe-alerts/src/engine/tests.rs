//! The state machine under a clock of the tests' own.
#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use observe_metrics::RedSnapshot;

use super::*;
use crate::{BuiltinRule, Thresholds, rule::Inputs};

const SECOND: Duration = Duration::from_secs(1);

fn settings() -> Settings {
    Settings {
        service: "svc".to_owned(),
        environment: "test".to_owned(),
        window: Duration::from_secs(60),
        for_duration: Duration::from_secs(60),
        keep_firing_for: Duration::ZERO,
        repeat_interval: Duration::from_secs(4 * 3600),
        group_by: vec!["alertname".to_owned()],
        inhibit_equal: vec!["service".to_owned(), "component".to_owned()],
        runbook_url: "docs/runbooks/{alertname}.md".to_owned(),
        alertmanager_resend: None,
    }
}

/// A user rule whose value the test sets; `NaN` is no data.
fn gauge_rule(name: &str, severity: Severity, threshold: f64) -> (Rule, Arc<AtomicU64>) {
    let value = Arc::new(AtomicU64::new(f64::NAN.to_bits()));
    let read = value.clone();
    let rule = Rule::new(name, severity, threshold, move || {
        let value = f64::from_bits(read.load(Ordering::Relaxed));
        (!value.is_nan()).then_some(value)
    });
    (rule, value)
}

fn set(value: &AtomicU64, to: f64) {
    value.store(to.to_bits(), Ordering::Relaxed);
}

struct Clock(SystemTime);

impl Clock {
    fn new() -> Self {
        Self(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000))
    }

    fn advance(&mut self, by: Duration) -> SystemTime {
        self.0 += by;
        self.0
    }
}

const NO_INPUTS: Inputs<'static> = Inputs {
    red: None,
    health: None,
};

fn states(evaluation: &Evaluation) -> Vec<(&str, AlertState)> {
    evaluation
        .transitions
        .iter()
        .map(|transition| (transition.alertname.as_str(), transition.state))
        .collect()
}

#[test]
fn inactive_pending_firing_resolved() {
    let (rule, value) = gauge_rule("QueueBacklog", Severity::Warning, 100.0);
    let mut engine = Engine::new(
        settings(),
        vec![rule.description("{value} jobs (threshold {threshold})")],
    );
    let mut clock = Clock::new();

    // No data, then below the threshold: nothing.
    assert_eq!(engine.evaluate(clock.0, &NO_INPUTS), Evaluation::default());
    set(&value, 100.0);
    assert_eq!(
        engine.evaluate(clock.advance(15 * SECOND), &NO_INPUTS),
        Evaluation::default()
    );

    // Above: pending, not notified.
    set(&value, 150.0);
    let started = clock.advance(15 * SECOND);
    let evaluation = engine.evaluate(started, &NO_INPUTS);
    assert_eq!(states(&evaluation), [("QueueBacklog", AlertState::Pending)]);
    assert!(evaluation.notifications.is_empty());
    assert_eq!(engine.active()[0].state, AlertState::Pending);
    assert_eq!(engine.active()[0].active_at, started);

    // Still pending before `for` (45 s of 60 s).
    for _ in 0..3 {
        let evaluation = engine.evaluate(clock.advance(15 * SECOND), &NO_INPUTS);
        assert!(evaluation.transitions.is_empty());
        assert!(evaluation.notifications.is_empty());
    }
    // 60 s: firing, one notification with every label and annotation.
    let evaluation = engine.evaluate(clock.advance(15 * SECOND), &NO_INPUTS);
    assert_eq!(states(&evaluation), [("QueueBacklog", AlertState::Firing)]);
    assert_eq!(evaluation.notifications.len(), 1);
    let notification = &evaluation.notifications[0];
    assert_eq!(notification.group_key, r#"{}:{alertname="QueueBacklog"}"#);
    assert_eq!(notification.status, AlertState::Firing);
    let alert = &notification.alerts[0];
    assert_eq!(
        alert.labels,
        Labels::from([
            ("alertname".to_owned(), "QueueBacklog".to_owned()),
            ("environment".to_owned(), "test".to_owned()),
            ("service".to_owned(), "svc".to_owned()),
            ("severity".to_owned(), "warning".to_owned()),
        ])
    );
    assert_eq!(alert.annotations["description"], "150 jobs (threshold 100)");
    assert_eq!(
        alert.annotations["summary"],
        "QueueBacklog is 150 (threshold 100)"
    );
    assert_eq!(
        alert.annotations["runbook_url"],
        "docs/runbooks/QueueBacklog.md"
    );
    assert_eq!(alert.fired_at, Some(clock.0));
    assert_eq!(alert.active_at, started);

    // Back below: resolved, one resolved notification, gone from active.
    set(&value, 20.0);
    let evaluation = engine.evaluate(clock.advance(15 * SECOND), &NO_INPUTS);
    assert_eq!(
        states(&evaluation),
        [("QueueBacklog", AlertState::Resolved)]
    );
    assert_eq!(evaluation.transitions[0].value, 20.0);
    assert_eq!(evaluation.notifications.len(), 1);
    assert_eq!(evaluation.notifications[0].status, AlertState::Resolved);
    assert_eq!(
        evaluation.notifications[0].alerts[0].resolved_at,
        Some(clock.0)
    );
    assert!(engine.active().is_empty());
    assert_eq!(
        engine.evaluate(clock.advance(15 * SECOND), &NO_INPUTS),
        Evaluation::default()
    );
    let history: Vec<AlertState> = engine
        .history()
        .map(|transition| transition.state)
        .collect();
    assert_eq!(
        history,
        [
            AlertState::Pending,
            AlertState::Firing,
            AlertState::Resolved
        ]
    );
}

#[test]
fn for_zero_fires_at_once_and_no_data_resolves() {
    let (rule, value) = gauge_rule("Now", Severity::Critical, 0.0);
    let mut engine = Engine::new(settings(), vec![rule.for_duration(Duration::ZERO)]);
    let mut clock = Clock::new();
    set(&value, 1.0);
    let evaluation = engine.evaluate(clock.0, &NO_INPUTS);
    assert_eq!(states(&evaluation), [("Now", AlertState::Firing)]);
    assert_eq!(evaluation.notifications.len(), 1);
    set(&value, f64::NAN);
    let evaluation = engine.evaluate(clock.advance(SECOND), &NO_INPUTS);
    assert_eq!(states(&evaluation), [("Now", AlertState::Resolved)]);
}

#[test]
fn flapping_before_for_starts_pending_again() {
    let (rule, value) = gauge_rule("Flappy", Severity::Warning, 0.5);
    let mut engine = Engine::new(settings(), vec![rule]);
    let mut clock = Clock::new();
    let mut seen = Vec::new();
    // True for 45 s, false once, true again: `for` counts from the restart.
    for (step, on) in [true, true, true, true, false, true, true, true, true, true]
        .into_iter()
        .enumerate()
    {
        set(&value, if on { 1.0 } else { 0.0 });
        let evaluation = engine.evaluate(clock.advance(15 * SECOND), &NO_INPUTS);
        for (_, state) in states(&evaluation) {
            seen.push((step, state));
        }
    }
    assert_eq!(
        seen,
        [
            (0, AlertState::Pending),
            (4, AlertState::Inactive),
            (5, AlertState::Pending),
            (9, AlertState::Firing),
        ]
    );
}

#[test]
fn keep_firing_for_rides_out_a_short_dip() {
    let (rule, value) = gauge_rule("Sticky", Severity::Warning, 0.5);
    let mut engine = Engine::new(
        settings(),
        vec![
            rule.for_duration(Duration::ZERO)
                .keep_firing_for(30 * SECOND),
        ],
    );
    let mut clock = Clock::new();
    set(&value, 1.0);
    assert_eq!(
        states(&engine.evaluate(clock.0, &NO_INPUTS)),
        [("Sticky", AlertState::Firing)]
    );
    // Below for 15 s and 30 s: still firing, nothing sent.
    set(&value, 0.0);
    for _ in 0..1 {
        let evaluation = engine.evaluate(clock.advance(15 * SECOND), &NO_INPUTS);
        assert!(evaluation.transitions.is_empty() && evaluation.notifications.is_empty());
    }
    // Back above within the 30 s: still the same alert, no notification.
    set(&value, 1.0);
    let evaluation = engine.evaluate(clock.advance(15 * SECOND), &NO_INPUTS);
    assert!(evaluation.transitions.is_empty() && evaluation.notifications.is_empty());
    // Below for 30 s: resolved.
    set(&value, 0.0);
    let evaluation = engine.evaluate(clock.advance(15 * SECOND), &NO_INPUTS);
    assert!(evaluation.transitions.is_empty());
    let evaluation = engine.evaluate(clock.advance(15 * SECOND), &NO_INPUTS);
    assert_eq!(states(&evaluation), [("Sticky", AlertState::Resolved)]);
}

#[test]
fn no_duplicate_while_firing_and_a_repeat_after_the_interval() {
    let (rule, value) = gauge_rule("Loud", Severity::Warning, 0.5);
    let mut settings = settings();
    settings.repeat_interval = Duration::from_secs(3600);
    let mut engine = Engine::new(settings, vec![rule.for_duration(Duration::ZERO)]);
    let mut clock = Clock::new();
    set(&value, 1.0);
    let mut sent = Vec::new();
    // Two hours and a bit at one evaluation every 15 s.
    for step in 0..=(2 * 240) {
        let at = if step == 0 {
            clock.0
        } else {
            clock.advance(15 * SECOND)
        };
        let evaluation = engine.evaluate(at, &NO_INPUTS);
        if !evaluation.notifications.is_empty() {
            sent.push(step);
        }
    }
    // At start, after one hour, after two.
    assert_eq!(sent, [0, 240, 480]);
}

#[test]
fn alerts_group_by_name_or_by_more_labels() {
    let value = Arc::new(AtomicU64::new(0));
    let rule = |disk: &'static str| {
        let value = value.clone();
        Rule::new("DiskLike", Severity::Warning, 0.5, move || {
            Some(f64::from_bits(value.load(Ordering::Relaxed)))
        })
        .label("disk", disk)
        .for_duration(Duration::ZERO)
    };
    // Two rules of the same name are refused by the builder; the engine
    // itself groups whatever it is given.
    let rules = vec![rule("sda"), rule("sdb")];
    set(&value, 1.0);

    let mut engine = Engine::new(settings(), rules.clone());
    let evaluation = engine.evaluate(Clock::new().0, &NO_INPUTS);
    assert_eq!(evaluation.notifications.len(), 1);
    assert_eq!(evaluation.notifications[0].alerts.len(), 2);
    assert_eq!(
        evaluation.notifications[0].group_labels,
        Labels::from([("alertname".to_owned(), "DiskLike".to_owned())])
    );

    let mut by_disk = settings();
    by_disk.group_by = vec!["alertname".to_owned(), "disk".to_owned()];
    let mut engine = Engine::new(by_disk, rules);
    let evaluation = engine.evaluate(Clock::new().0, &NO_INPUTS);
    let keys: Vec<&str> = evaluation
        .notifications
        .iter()
        .map(|notification| notification.group_key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            r#"{}:{alertname="DiskLike",disk="sda"}"#,
            r#"{}:{alertname="DiskLike",disk="sdb"}"#
        ]
    );
}

fn red(requests: u64, errors: u64, mean: Duration, p95: Duration) -> RedSnapshot {
    RedSnapshot {
        window: Duration::from_secs(60),
        requests,
        errors,
        request_rate: requests as f64 / 60.0,
        error_rate: if requests == 0 {
            0.0
        } else {
            errors as f64 / requests as f64
        },
        mean,
        p50: mean,
        p95,
        p99: p95,
    }
}

fn builtin(rules: &[BuiltinRule]) -> Vec<Rule> {
    rules
        .iter()
        .map(|rule| {
            rule.rule(&Thresholds::default())
                .for_duration(Duration::ZERO)
        })
        .collect()
}

#[test]
fn high_error_rate_needs_the_minimum_of_requests() {
    let mut engine = Engine::new(settings(), builtin(&[BuiltinRule::HighErrorRate]));
    let mut clock = Clock::new();
    let fast = Duration::from_millis(5);
    // 9 requests, all failed: below the minimum of 10, no alert.
    let snapshot = red(9, 9, fast, fast);
    let inputs = Inputs {
        red: Some(&snapshot),
        health: None,
    };
    assert!(engine.evaluate(clock.0, &inputs).transitions.is_empty());
    // 100 requests, 5 failed: exactly 5%, not above.
    let snapshot = red(100, 5, fast, fast);
    let inputs = Inputs {
        red: Some(&snapshot),
        health: None,
    };
    assert!(
        engine
            .evaluate(clock.advance(SECOND), &inputs)
            .transitions
            .is_empty()
    );
    // 10 requests, 1 failed: 10%, fires.
    let snapshot = red(10, 1, fast, fast);
    let inputs = Inputs {
        red: Some(&snapshot),
        health: None,
    };
    let evaluation = engine.evaluate(clock.advance(SECOND), &inputs);
    assert_eq!(states(&evaluation), [("HighErrorRate", AlertState::Firing)]);
    let alert = &evaluation.notifications[0].alerts[0];
    assert_eq!(alert.labels["severity"], "critical");
    assert_eq!(alert.labels["component"], "http");
    assert_eq!(
        alert.annotations["description"],
        "10.00% of requests over the last 1m answered 5xx (threshold 5.00%, at least 10 requests)."
    );
    assert_eq!(alert.value_text, "10.00%");
    assert_eq!(alert.metric, "http_5xx_ratio");
}

#[test]
fn a_critical_alert_inhibits_warnings_of_its_component() {
    let mut engine = Engine::new(
        settings(),
        builtin(&[
            BuiltinRule::HighErrorRate,
            BuiltinRule::SlowResponses,
            BuiltinRule::SlowResponsesP95,
        ]),
    );
    let mut clock = Clock::new();
    let slow = Duration::from_secs(3);
    // Slow, few errors: the two warnings are notified.
    let snapshot = red(100, 1, slow, slow);
    let inputs = Inputs {
        red: Some(&snapshot),
        health: None,
    };
    let evaluation = engine.evaluate(clock.0, &inputs);
    let mut notified: Vec<&str> = evaluation
        .notifications
        .iter()
        .map(|notification| notification.alerts[0].name())
        .collect();
    notified.sort_unstable();
    assert_eq!(notified, ["SlowResponses", "SlowResponsesP95"]);

    // Many errors too: the critical alert is notified, the warnings are
    // inhibited (shown, not re-sent, not resolved).
    let snapshot = red(100, 50, slow, slow);
    let inputs = Inputs {
        red: Some(&snapshot),
        health: None,
    };
    let evaluation = engine.evaluate(clock.advance(15 * SECOND), &inputs);
    assert_eq!(evaluation.notifications.len(), 1);
    assert_eq!(
        evaluation.notifications[0].alerts[0].name(),
        "HighErrorRate"
    );
    let inhibited: Vec<(&str, bool)> = engine
        .active()
        .iter()
        .map(|alert| (alert.name(), alert.inhibited))
        .collect();
    assert_eq!(
        inhibited,
        [
            ("HighErrorRate", false),
            ("SlowResponses", true),
            ("SlowResponsesP95", true)
        ]
    );

    // Fresh engine: a warning that starts while the critical alert fires
    // is never notified.
    let mut engine = Engine::new(
        settings(),
        builtin(&[BuiltinRule::HighErrorRate, BuiltinRule::SlowResponses]),
    );
    let fast = Duration::from_millis(5);
    let snapshot = red(100, 50, fast, fast);
    let inputs = Inputs {
        red: Some(&snapshot),
        health: None,
    };
    assert_eq!(
        engine
            .evaluate(clock.advance(SECOND), &inputs)
            .notifications
            .len(),
        1
    );
    let snapshot = red(100, 50, slow, slow);
    let inputs = Inputs {
        red: Some(&snapshot),
        health: None,
    };
    let evaluation = engine.evaluate(clock.advance(SECOND), &inputs);
    assert_eq!(states(&evaluation), [("SlowResponses", AlertState::Firing)]);
    assert!(evaluation.notifications.is_empty());
}

#[test]
fn alertmanager_gets_every_firing_alert_on_change_and_on_resend() {
    let (rule, value) = gauge_rule("ToAm", Severity::Critical, 0.5);
    let mut settings = settings();
    settings.alertmanager_resend = Some(Duration::from_secs(60));
    let mut engine = Engine::new(settings, vec![rule.for_duration(Duration::ZERO)]);
    let mut clock = Clock::new();
    set(&value, 1.0);
    let batches: Vec<Option<usize>> = (0..6)
        .map(|step| {
            if step == 5 {
                set(&value, 0.0);
            }
            let at = clock.advance(15 * SECOND);
            engine
                .evaluate(at, &NO_INPUTS)
                .alertmanager
                .map(|alerts| alerts.len())
        })
        .collect();
    // Fired (0), re-sent after 60 s (4), resolved (5).
    assert_eq!(batches, [Some(1), None, None, None, Some(1), Some(1)]);
}

#[test]
fn history_keeps_the_last_thousand() {
    let (rule, value) = gauge_rule("Blink", Severity::Info, 0.5);
    let mut engine = Engine::new(settings(), vec![rule.for_duration(Duration::ZERO)]);
    let mut clock = Clock::new();
    for step in 0..1_500 {
        set(&value, f64::from(step % 2));
        engine.evaluate(clock.advance(SECOND), &NO_INPUTS);
    }
    assert_eq!(engine.history().len(), HISTORY_LEN);
    let last = engine.history().last().unwrap();
    assert_eq!(last.at, clock.0);
}

#[test]
fn fingerprints_are_stable_across_engines() {
    let make = || {
        let (rule, value) = gauge_rule("Same", Severity::Warning, 0.5);
        set(&value, 1.0);
        let mut engine = Engine::new(settings(), vec![rule.for_duration(Duration::ZERO)]);
        engine.evaluate(Clock::new().0, &NO_INPUTS);
        engine.active()[0].fingerprint
    };
    assert_eq!(make(), make());
}
