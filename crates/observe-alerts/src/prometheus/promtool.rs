//! `promtool test rules` files for the generated rules: each alert fires
//! just past its threshold, not at it, not before `for`, and resolves; each
//! burn-rate tier fires alone with synthetic series. The expected
//! annotations are the rules' own templates with the values promtool must
//! compute from the series, so a wrong expression fails the test.

use std::fmt::Write as _;

use super::{PromRule, PrometheusRules, RuleKind, number, quote};

/// One `promtool` test: input series and what must fire when.
struct Case {
    comment: String,
    series: Vec<(String, String)>,
    checks: Vec<Check>,
}

/// At `eval_time`, `alertname` fires for exactly these label sets, with
/// `{{ $value }}` shown as `value`.
struct Check {
    eval_time: &'static str,
    alertname: &'static str,
    firing: Vec<(Vec<(&'static str, String)>, String)>,
}

impl PrometheusRules {
    fn series(&self, name: &str, labels: &[(&str, &str)]) -> String {
        let mut text = format!("{name}{{job=\"{}\",instance=\"app:8080\"", self.job);
        for (key, value) in labels {
            let _ = write!(text, ",{key}=\"{value}\"");
        }
        text.push('}');
        text
    }

    fn requests(&self, status: &str) -> String {
        self.series(
            "http_requests_total",
            &[
                ("method", "GET"),
                ("endpoint", "/"),
                ("status_code", status),
            ],
        )
    }

    fn duration_series(&self, suffix: &str, le: Option<&str>) -> String {
        let mut labels = vec![("method", "GET"), ("endpoint", "/")];
        if let Some(le) = le {
            labels.push(("le", le));
        }
        self.series(&format!("http_request_duration_seconds_{suffix}"), &labels)
    }

    /// The job's labels on an alert from a per-job recording rule.
    fn job_labels(&self) -> Vec<(&'static str, String)> {
        vec![("job", self.job.clone())]
    }

    /// The labels of an alert on an instance's series.
    fn instance_labels(&self, more: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        let mut labels = vec![
            ("job", self.job.clone()),
            ("instance", "app:8080".to_owned()),
        ];
        labels.extend(more.iter().map(|(key, value)| (*key, (*value).to_owned())));
        labels
    }

    fn cases(&self) -> Vec<Case> {
        let none = Vec::new;
        let job = || self.job_labels();
        let mut cases = vec![
            Case {
                comment: "HighErrorRate: 5.1% of 1000 requests a minute fails; fires after `for`".into(),
                series: vec![
                    (self.requests("500"), "0+51x20".into()),
                    (self.requests("200"), "0+949x20".into()),
                ],
                checks: vec![
                    Check { eval_time: "1m", alertname: "HighErrorRate", firing: none() },
                    Check { eval_time: "10m", alertname: "HighErrorRate", firing: vec![(job(), "5.1%".into())] },
                ],
            },
            Case {
                comment: "HighErrorRate: exactly at the threshold, 5%".into(),
                series: vec![
                    (self.requests("500"), "0+5x20".into()),
                    (self.requests("200"), "0+95x20".into()),
                ],
                checks: vec![Check { eval_time: "10m", alertname: "HighErrorRate", firing: none() }],
            },
            Case {
                comment: "HighErrorRate: every request fails, but 5 in 5 minutes is under the minimum of requests".into(),
                series: vec![(self.requests("500"), "0+1x20".into())],
                checks: vec![Check { eval_time: "10m", alertname: "HighErrorRate", firing: none() }],
            },
            Case {
                comment: "HighErrorRate: errors stop at 10m; resolved once the window has passed".into(),
                series: vec![
                    (self.requests("500"), "0+6x10 60+0x20".into()),
                    (self.requests("200"), "0+94x30".into()),
                ],
                checks: vec![
                    Check { eval_time: "8m", alertname: "HighErrorRate", firing: vec![(job(), "6%".into())] },
                    Check { eval_time: "20m", alertname: "HighErrorRate", firing: none() },
                ],
            },
            Case {
                comment: "SlowResponses: a mean of 2.1 s fires after `for`; 0.1 s from 10m resolves".into(),
                series: vec![
                    (self.duration_series("count", None), "0+10x30".into()),
                    (self.duration_series("sum", None), "0+21x10 210+1x20".into()),
                ],
                checks: vec![
                    Check { eval_time: "1m", alertname: "SlowResponses", firing: none() },
                    Check { eval_time: "10m", alertname: "SlowResponses", firing: vec![(job(), "2.1s".into())] },
                    Check { eval_time: "20m", alertname: "SlowResponses", firing: none() },
                ],
            },
            Case {
                comment: "SlowResponses: a mean of exactly 2 s".into(),
                series: vec![
                    (self.duration_series("count", None), "0+10x20".into()),
                    (self.duration_series("sum", None), "0+20x20".into()),
                ],
                checks: vec![Check { eval_time: "10m", alertname: "SlowResponses", firing: none() }],
            },
            Case {
                comment: "SlowResponsesP95: every request between 2.5 and 5 s (p95 4.875 s) fires after `for`; all under 1 s from 11m resolves".into(),
                series: vec![
                    (self.duration_series("bucket", Some("1")), "0x10 0+10x20".into()),
                    (self.duration_series("bucket", Some("2.5")), "0x10 0+10x20".into()),
                    (self.duration_series("bucket", Some("5")), "0+10x30".into()),
                    (self.duration_series("bucket", Some("+Inf")), "0+10x30".into()),
                ],
                checks: vec![
                    Check { eval_time: "1m", alertname: "SlowResponsesP95", firing: none() },
                    Check { eval_time: "10m", alertname: "SlowResponsesP95", firing: vec![(job(), "4.875s".into())] },
                    Check { eval_time: "20m", alertname: "SlowResponsesP95", firing: none() },
                ],
            },
            Case {
                comment: "SlowResponsesP95: every request under 1 s".into(),
                series: vec![
                    (self.duration_series("bucket", Some("1")), "0+10x20".into()),
                    (self.duration_series("bucket", Some("2.5")), "0+10x20".into()),
                    (self.duration_series("bucket", Some("+Inf")), "0+10x20".into()),
                ],
                checks: vec![Check { eval_time: "10m", alertname: "SlowResponsesP95", firing: none() }],
            },
        ];
        let t = &self.thresholds;
        type Labels = &'static [(&'static str, &'static str)];
        let gauges: [(&'static str, &'static str, f64, Labels); 3] = [
            (
                "HighMemoryUsage",
                "memory_used_ratio",
                t.memory_percent,
                &[],
            ),
            (
                "DiskAlmostFull",
                "disk_used_ratio",
                t.disk_percent,
                &[("path", "/data")],
            ),
            (
                "DatabasePoolSaturated",
                "db_pool_utilization_ratio",
                t.db_pool_percent,
                &[("check", "database")],
            ),
        ];
        for (alertname, metric, percent, labels) in gauges {
            let above = (percent + 1.0) / 100.0;
            let series = self.series(metric, labels);
            let value = format!("{}%", number(percent + 1.0));
            cases.push(Case {
                comment: format!(
                    "{alertname}: one point above {}% fires after `for`, then resolves",
                    number(percent)
                ),
                series: vec![(series.clone(), format!("{}x5 0.1x10", number(above)))],
                checks: vec![
                    Check {
                        eval_time: "0m",
                        alertname,
                        firing: none(),
                    },
                    Check {
                        eval_time: "3m",
                        alertname,
                        firing: vec![(self.instance_labels(labels), value)],
                    },
                    Check {
                        eval_time: "10m",
                        alertname,
                        firing: none(),
                    },
                ],
            });
            cases.push(Case {
                comment: format!("{alertname}: exactly {}%", number(percent)),
                series: vec![(series, format!("{}x10", number(percent / 100.0)))],
                checks: vec![Check {
                    eval_time: "5m",
                    alertname,
                    firing: none(),
                }],
            });
        }
        let check = [("check", "database")];
        cases.extend([
            Case {
                comment: "HealthCheckFailing: a critical check unhealthy (4) fires, then recovers".into(),
                series: vec![
                    (self.series("health_check_status", &check), "4x5 0x10".into()),
                    (self.series("health_check_critical", &check), "1x15".into()),
                ],
                checks: vec![
                    Check { eval_time: "0m", alertname: "HealthCheckFailing", firing: none() },
                    Check { eval_time: "3m", alertname: "HealthCheckFailing", firing: vec![(self.instance_labels(&check), "4".into())] },
                    Check { eval_time: "10m", alertname: "HealthCheckFailing", firing: none() },
                ],
            },
            Case {
                comment: "HealthCheckFailing: unhealthy but not critical, or critical but only degraded (2)".into(),
                series: vec![
                    (self.series("health_check_status", &[("check", "cache")]), "4x10".into()),
                    (self.series("health_check_critical", &[("check", "cache")]), "0x10".into()),
                    (self.series("health_check_status", &check), "2x10".into()),
                    (self.series("health_check_critical", &check), "1x10".into()),
                ],
                checks: vec![Check { eval_time: "5m", alertname: "HealthCheckFailing", firing: none() }],
            },
            Case {
                comment: "TargetDown: no scrape for a minute, then back".into(),
                series: vec![(self.series("up", &[]), "0x5 1x10".into())],
                checks: vec![
                    Check { eval_time: "0m", alertname: "TargetDown", firing: none() },
                    Check { eval_time: "3m", alertname: "TargetDown", firing: vec![(self.instance_labels(&[]), "0".into())] },
                    Check { eval_time: "10m", alertname: "TargetDown", firing: none() },
                ],
            },
        ]);
        for (alertname, metric) in [
            ("LogLinesDropped", "log_lines_dropped_total"),
            ("SpansDropped", "otel_spans_dropped_total"),
        ] {
            cases.push(Case {
                comment: format!("{alertname}: one a minute for ten minutes, then none"),
                series: vec![(self.series(metric, &[]), "0+1x10 10+0x20".into())],
                checks: vec![
                    Check {
                        eval_time: "8m",
                        alertname,
                        firing: vec![(self.instance_labels(&[]), "5".into())],
                    },
                    Check {
                        eval_time: "20m",
                        alertname,
                        firing: none(),
                    },
                ],
            });
        }
        cases.extend(self.burn_rate_cases());
        cases
    }

    /// A steady share `ratio` of bad requests: every tier whose burn rate
    /// it passes fires, the others do not.
    fn burn_rate_cases(&self) -> Vec<Case> {
        // Bad requests per 1000 a minute, for an objective of 99.9%: past
        // all four tiers, three, two, one, none.
        let shares: [u32; 5] = [20, 10, 4, 2, 0];
        let mut cases = Vec::new();
        for (alertname, objective) in [
            ("AvailabilityBurnRate", self.availability_objective),
            ("LatencyBurnRate", self.latency_objective),
        ] {
            let budget_per_mille = (1.0 - objective) * 1000.0;
            for bad in shares {
                // Scaled so the share is the same whatever the objective.
                let bad = (f64::from(bad) * budget_per_mille).round() as u32;
                let good = 1000 - bad;
                let series = if alertname == "AvailabilityBurnRate" {
                    vec![
                        (self.requests("500"), format!("0+{bad}x130")),
                        (self.requests("200"), format!("0+{good}x130")),
                    ]
                } else {
                    vec![
                        (
                            self.duration_series("bucket", Some("1")),
                            format!("0+{good}x130"),
                        ),
                        (self.duration_series("count", None), "0+1000x130".to_owned()),
                    ]
                };
                let ratio = f64::from(bad) / 1000.0;
                let shown = percentage(ratio);
                let firing: Vec<_> = super::BURN_RATE_TIERS
                    .iter()
                    .filter(|(_, _, burn, _)| ratio > burn * (1.0 - objective) + 1e-12)
                    .map(|(long, _, _, _)| {
                        let mut labels = self.job_labels();
                        labels.push(("window", super::duration(*long)));
                        (labels, shown.clone())
                    })
                    .collect();
                cases.push(Case {
                    comment: format!(
                        "{alertname}: {} of requests bad, steadily: {} tier(s) fire",
                        shown,
                        firing.len()
                    ),
                    series,
                    checks: vec![Check {
                        eval_time: "2h",
                        alertname,
                        firing,
                    }],
                });
            }
        }
        cases
    }

    /// The `promtool test rules` file for the rule file at `rule_file`
    /// (relative to the test file).
    pub fn promtool_tests_yaml(&self, rule_file: &str) -> String {
        let groups = self.groups();
        let alerts: Vec<&PromRule> = groups
            .iter()
            .flat_map(|group| &group.rules)
            .filter(|rule| rule.kind == RuleKind::Alert)
            .collect();
        let mut out = format!(
            "# Generated by observe-alerts (crates/observe-alerts/src/prometheus/promtool.rs):\n\
             # cargo run -p observe-alerts --example prometheus_rules -- tests\n\
             # Do not edit: a test fails when this file differs from what it writes.\n\
             rule_files:\n  - {}\nevaluation_interval: 1m\ntests:\n",
            quote(rule_file)
        );
        for case in self.cases() {
            let _ = writeln!(out, "  # {}", case.comment);
            out.push_str("  - interval: 1m\n    input_series:\n");
            for (series, values) in &case.series {
                let _ = writeln!(
                    out,
                    "      - series: {}\n        values: {}",
                    quote(series),
                    quote(values)
                );
            }
            out.push_str("    alert_rule_test:\n");
            for check in &case.checks {
                let _ = writeln!(
                    out,
                    "      - eval_time: {}\n        alertname: {}",
                    check.eval_time, check.alertname
                );
                if check.firing.is_empty() {
                    out.push_str("        exp_alerts: []\n");
                    continue;
                }
                out.push_str("        exp_alerts:\n");
                for (labels, value) in &check.firing {
                    // The tier's rule for its window, or the one rule.
                    let window = labels
                        .iter()
                        .find(|(key, _)| *key == "window")
                        .map(|(_, value)| value);
                    let Some(rule) = alerts.iter().find(|rule| {
                        rule.name == check.alertname
                            && window.is_none_or(|window| {
                                rule.labels
                                    .iter()
                                    .any(|(key, value)| key == "window" && value == window)
                            })
                    }) else {
                        continue;
                    };
                    let mut expected: Vec<(String, String)> = labels
                        .iter()
                        .map(|(key, value)| ((*key).to_owned(), value.clone()))
                        .collect();
                    for (key, value) in &rule.labels {
                        if !expected.iter().any(|(existing, _)| existing == key) {
                            expected.push((key.clone(), render(value, labels, "")));
                        }
                    }
                    out.push_str("          - exp_labels:\n");
                    for (key, value) in &expected {
                        let _ = writeln!(out, "              {key}: {}", quote(value));
                    }
                    out.push_str("            exp_annotations:\n");
                    for (key, template) in &rule.annotations {
                        let _ = writeln!(
                            out,
                            "              {key}: {}",
                            quote(&render(template, labels, value))
                        );
                    }
                }
            }
        }
        out
    }
}

/// `ratio` as Prometheus's `humanizePercentage` writes it (Go's `%.4g`),
/// for the round shares these tests use.
fn percentage(ratio: f64) -> String {
    let percent = ratio * 100.0;
    if percent == 0.0 {
        return "0%".to_owned();
    }
    let decimals = (3 - percent.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{percent:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}%")
}

/// `template` with `{{ $labels.x }}` and `{{ $value ... }}` filled in.
fn render(template: &str, labels: &[(&'static str, String)], value: &str) -> String {
    let mut text = template.to_owned();
    for filter in [
        "{{ $value | humanizePercentage }}",
        "{{ $value | humanizeDuration }}",
        "{{ $value | humanize }}",
        "{{ $value }}",
    ] {
        text = text.replace(filter, value);
    }
    for (key, label) in labels {
        text = text.replace(&format!("{{{{ $labels.{key} }}}}"), label);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_as_humanize_percentage_writes_them() {
        assert_eq!(percentage(0.02), "2%");
        assert_eq!(percentage(0.2), "20%");
        assert_eq!(percentage(0.002), "0.2%");
        assert_eq!(percentage(0.051), "5.1%");
        assert_eq!(percentage(0.0), "0%");
    }
}
