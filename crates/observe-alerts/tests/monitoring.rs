//! The files in `monitoring/` and `docs/runbooks/` against the real tools:
//! the committed rules and `promtool` tests are what the generator writes
//! now; `promtool check config`, `check rules --lint=all --lint-fatal` and
//! `test rules` pass; `amtool check-config` passes and each severity reaches
//! its receivers; every PromQL expression parses; every alert has a runbook;
//! no secret is committed.
#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use observe_alerts::{
    Alerts, BuiltinRule,
    prometheus::{PrometheusRules, RuleKind},
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Runs a Debian tool from the workspace root; its output, or a panic with it.
fn run(tool: &str, args: &[&str]) -> String {
    let path = PathBuf::from("/usr/bin").join(tool);
    assert!(
        path.exists(),
        "{tool} is missing: scripts/test.sh installs Debian's prometheus and prometheus-alertmanager"
    );
    let output = Command::new(path)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

fn generator() -> PrometheusRules {
    PrometheusRules::new("vk-parser")
}

#[test]
fn the_committed_rules_and_tests_are_what_the_generator_writes() {
    let rules = generator();
    assert!(
        read("monitoring/prometheus/rules/observe.rules.yml") == rules.rules_yaml(),
        "monitoring/prometheus/rules/observe.rules.yml is stale: \
         cargo run -p observe-alerts --example prometheus_rules -- write"
    );
    assert!(
        read("monitoring/prometheus/tests/observe.test.yml")
            == rules.promtool_tests_yaml("../rules/observe.rules.yml"),
        "monitoring/prometheus/tests/observe.test.yml is stale: \
         cargo run -p observe-alerts --example prometheus_rules -- write"
    );
}

#[test]
fn promtool_checks_the_config_lints_the_rules_and_passes_their_tests() {
    let config = run(
        "promtool",
        &["check", "config", "monitoring/prometheus/prometheus.yml"],
    );
    assert!(config.contains("SUCCESS: 1 rule files found"), "{config}");
    let rules = generator();
    let count = rules
        .groups()
        .iter()
        .map(|group| group.rules.len())
        .sum::<usize>();
    let lint = run(
        "promtool",
        &[
            "check",
            "rules",
            "--lint=all",
            "--lint-fatal",
            "monitoring/prometheus/rules/observe.rules.yml",
        ],
    );
    assert!(
        lint.contains(&format!("SUCCESS: {count} rules found")),
        "{lint}"
    );
    let tests = run(
        "promtool",
        &[
            "test",
            "rules",
            "monitoring/prometheus/tests/observe.test.yml",
        ],
    );
    assert!(tests.contains("SUCCESS"), "{tests}");
}

#[test]
fn amtool_checks_the_config_and_each_severity_reaches_its_receivers() {
    let check = run(
        "amtool",
        &["check-config", "monitoring/alertmanager/alertmanager.yml"],
    );
    assert!(check.contains("SUCCESS"), "{check}");
    for (severity, receivers) in [
        ("critical", "pager,slack"),
        ("warning", "slack"),
        ("info", "nowhere"),
    ] {
        let routed = run(
            "amtool",
            &[
                "config",
                "routes",
                "test",
                "--config.file=monitoring/alertmanager/alertmanager.yml",
                &format!("severity={severity}"),
                "alertname=HighErrorRate",
                "service=vk-parser",
            ],
        );
        let first = routed.lines().next().unwrap_or_default();
        assert_eq!(first.trim(), receivers, "{severity}: {routed}");
    }
    // Secrets come from files; the deprecated `match` syntax is not used.
    let config = read("monitoring/alertmanager/alertmanager.yml");
    for forbidden in [
        "api_url:",
        "hooks.slack.com",
        "credentials:",
        "\n  match:",
        " match_re:",
        "source_match:",
    ] {
        assert!(
            !config.contains(forbidden),
            "alertmanager.yml has {forbidden:?}"
        );
    }
    assert!(config.contains("api_url_file:") && config.contains("credentials_file:"));
}

#[test]
fn every_expression_parses_as_promql() {
    for group in generator().groups() {
        for rule in group.rules {
            for expr in [&rule.expr, &rule.value_expr] {
                if let Err(error) = promql_parser::parser::parse(expr) {
                    panic!("{} does not parse: {error}\n{expr}", rule.name);
                }
            }
        }
    }
}

#[test]
fn every_alert_has_a_runbook() {
    let base = "https://github.com/observe-rs/observe/blob/main/";
    let mut urls: Vec<String> = generator()
        .groups()
        .into_iter()
        .flat_map(|group| group.rules)
        .filter(|rule| rule.kind == RuleKind::Alert)
        .map(|rule| {
            rule.annotations
                .iter()
                .find(|(key, _)| key == "runbook_url")
                .map(|(_, url)| url.clone())
                .unwrap_or_else(|| panic!("{} has no runbook_url", rule.name))
        })
        .collect();
    // The in-process engine's alerts point at the same pages.
    let alerts = Alerts::builder("svc")
        .for_duration(std::time::Duration::ZERO)
        .rule(observe_alerts::Rule::new(
            "Unused",
            observe_alerts::Severity::Info,
            0.0,
            || None,
        ))
        .build()
        .unwrap();
    assert_eq!(alerts.rule_names().len(), BuiltinRule::ALL.len() + 1);
    urls.extend(
        BuiltinRule::ALL
            .map(|rule| observe_alerts::DEFAULT_RUNBOOK_URL.replace("{alertname}", rule.name())),
    );
    urls.sort();
    urls.dedup();
    assert_eq!(urls.len(), 12, "{urls:#?}");
    for url in urls {
        let path = url
            .strip_prefix(base)
            .unwrap_or_else(|| panic!("{url} is not in this repository"));
        let page = read(path);
        for heading in ["## Meaning", "## Impact", "## Diagnosis", "## Mitigation"] {
            assert!(page.contains(heading), "{path} has no {heading}");
        }
    }
}
