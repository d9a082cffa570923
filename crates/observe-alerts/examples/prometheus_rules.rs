//! Writes the Prometheus rule file and its `promtool` tests from the alert
//! engine's definitions:
//!
//! ```sh
//! cargo run -p observe-alerts --example prometheus_rules -- write   # both files under monitoring/prometheus/
//! cargo run -p observe-alerts --example prometheus_rules -- rules   # the rule file to stdout
//! cargo run -p observe-alerts --example prometheus_rules -- tests   # the promtool tests to stdout
//! ```
//!
//! Objectives and thresholds are the builder's: change them here (or in
//! your own copy of this program) and run it again.

use std::{path::Path, process::ExitCode};

use observe_alerts::prometheus::PrometheusRules;

/// The scrape job of the demo in `monitoring/prometheus/prometheus.yml`.
const JOB: &str = "vk-parser";
/// Where the files go, from the workspace root.
const RULES: &str = "monitoring/prometheus/rules/observe.rules.yml";
const TESTS: &str = "monitoring/prometheus/tests/observe.test.yml";
/// The rule file as the test file names it.
const RULES_FROM_TESTS: &str = "../rules/observe.rules.yml";

fn main() -> ExitCode {
    let rules = PrometheusRules::new(JOB);
    match std::env::args().nth(1).as_deref() {
        Some("rules") => print!("{}", rules.rules_yaml()),
        Some("tests") => print!("{}", rules.promtool_tests_yaml(RULES_FROM_TESTS)),
        Some("write") => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            for (path, text) in [
                (RULES, rules.rules_yaml()),
                (TESTS, rules.promtool_tests_yaml(RULES_FROM_TESTS)),
            ] {
                if let Err(error) = std::fs::write(root.join(path), text) {
                    eprintln!("cannot write {path}: {error}");
                    return ExitCode::FAILURE;
                }
                println!("wrote {path}");
            }
        }
        _ => {
            eprintln!("usage: prometheus_rules rules|tests|write");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
