//! The Grafana dashboards and provisioning files in `monitoring/grafana/`
//! under the rules of Grafana's dashboard linter (grafana/dashboard-linter),
//! written as a test: the `datasource`, `job` and `instance` variables,
//! every panel on the `datasource` variable, units, titles, descriptions,
//! `$__rate_interval` in every `rate` and `increase`, `job` and `instance`
//! in every selector; plus the current model (schema 39+, no removed panel
//! types), and every expression parses as PromQL. That each returns data
//! from the demo's metrics is tested with a real Prometheus in
//! `examples/vk-parser/tests/monitoring.rs`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use serde_json::Value;
use yaml_rust2::YamlLoader;

const DASHBOARDS: [&str; 2] = ["observe-http", "vk-parser"];
const PANEL_TYPES: [&str; 5] = ["timeseries", "stat", "heatmap", "bargauge", "table"];
const DATASOURCE: &str = "${datasource}";

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn dashboard(name: &str) -> Value {
    serde_json::from_str(&read(&format!("monitoring/grafana/dashboards/{name}.json"))).unwrap()
}

/// Every `[range]` in `expr`.
fn ranges(expr: &str) -> Vec<&str> {
    expr.match_indices('[')
        .map(|(start, _)| {
            let end = expr[start..].find(']').unwrap() + start;
            &expr[start..=end]
        })
        .collect()
}

/// Every `{...}` selector in `expr`, with the metric name before it.
fn selectors(expr: &str) -> Vec<(&str, &str)> {
    expr.match_indices('{')
        .map(|(start, _)| {
            let end = expr[start..].find('}').unwrap() + start;
            let name_start = expr[..start]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(0, |index| index + 1);
            (&expr[name_start..start], &expr[start..=end])
        })
        .collect()
}

/// `expr` as Grafana sends it, for the PromQL parser.
fn substituted(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$job", "vk-parser")
        .replace("$instance", ".*")
}

#[test]
fn the_variables_are_datasource_job_and_instance() {
    for name in DASHBOARDS {
        let dashboard = dashboard(name);
        assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 39, "{name}");
        assert_eq!(dashboard["uid"], name);
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        let names: Vec<&str> = variables
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["datasource", "job", "instance"], "{name}");
        assert_eq!(variables[0]["type"], "datasource");
        assert_eq!(variables[0]["query"], "prometheus");
        for variable in &variables[1..] {
            assert_eq!(variable["type"], "query");
            assert_eq!(variable["datasource"]["uid"], DATASOURCE, "{name}");
            assert_eq!(variable["datasource"]["type"], "prometheus");
        }
        assert_eq!(variables[1]["query"]["query"], "label_values(up, job)");
        assert_eq!(
            variables[2]["query"]["query"],
            "label_values(up{job=\"$job\"}, instance)"
        );
        assert_eq!(variables[2]["includeAll"], true);
        assert_eq!(variables[2]["allValue"], ".*");
    }
}

#[test]
fn every_panel_has_a_current_type_the_datasource_variable_a_unit_a_title_and_a_description() {
    for name in DASHBOARDS {
        let dashboard = dashboard(name);
        let panels = dashboard["panels"].as_array().unwrap();
        assert!(!panels.is_empty());
        let mut ids = BTreeSet::new();
        let mut cells = BTreeSet::new();
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or("");
            assert!(!title.is_empty(), "{name}: a panel without a title");
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{name}: id of {title} repeated"
            );
            let kind = panel["type"].as_str().unwrap();
            assert!(PANEL_TYPES.contains(&kind), "{name}/{title}: {kind}");
            assert!(
                panel["description"]
                    .as_str()
                    .is_some_and(|text| text.len() > 10),
                "{name}/{title}: no description"
            );
            assert_eq!(panel["datasource"]["uid"], DATASOURCE, "{name}/{title}");
            assert_eq!(panel["datasource"]["type"], "prometheus", "{name}/{title}");
            let unit = panel["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or("");
            assert!(!unit.is_empty(), "{name}/{title}: no unit");
            // Laid out on the 24-column grid without overlaps.
            let grid = &panel["gridPos"];
            let (x, y, w, h) = (
                grid["x"].as_u64().unwrap(),
                grid["y"].as_u64().unwrap(),
                grid["w"].as_u64().unwrap(),
                grid["h"].as_u64().unwrap(),
            );
            assert!(x + w <= 24 && w > 0 && h > 0, "{name}/{title}: {grid}");
            for column in x..x + w {
                for row in y..y + h {
                    assert!(
                        cells.insert((column, row)),
                        "{name}/{title} overlaps another panel"
                    );
                }
            }
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}/{title}: no query");
            for target in targets {
                assert_eq!(target["datasource"]["uid"], DATASOURCE, "{name}/{title}");
                assert!(target["refId"].as_str().is_some());
            }
        }
    }
}

#[test]
fn every_query_uses_rate_interval_job_and_instance_and_parses() {
    let mut count = 0;
    for name in DASHBOARDS {
        let dashboard = dashboard(name);
        for panel in dashboard["panels"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap();
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                count += 1;
                for range in ranges(expr) {
                    assert_eq!(range, "[$__rate_interval]", "{name}/{title}: {expr}");
                }
                if expr.contains("rate(") || expr.contains("increase(") {
                    assert!(
                        expr.contains("[$__rate_interval]"),
                        "{name}/{title}: {expr}"
                    );
                }
                let selectors = selectors(expr);
                assert!(!selectors.is_empty(), "{name}/{title}: {expr}");
                for (metric, selector) in selectors {
                    assert!(selector.contains("job=\"$job\""), "{name}/{title}: {expr}");
                    // Recording rules keep only `job`.
                    if !metric.contains(':') {
                        assert!(
                            selector.contains("instance=~\"$instance\""),
                            "{name}/{title}: {expr}"
                        );
                    }
                }
                if let Err(error) = promql_parser::parser::parse(&substituted(expr)) {
                    panic!("{name}/{title}: {error}: {expr}");
                }
            }
        }
    }
    assert!(count >= 25, "{count} queries");
}

#[test]
fn provisioning_points_grafana_at_prometheus_and_the_dashboards() {
    let datasources = YamlLoader::load_from_str(&read(
        "monitoring/grafana/provisioning/datasources/prometheus.yml",
    ))
    .unwrap();
    let source = &datasources[0]["datasources"][0];
    assert_eq!(source["type"].as_str(), Some("prometheus"));
    assert_eq!(source["url"].as_str(), Some("http://127.0.0.1:9090"));
    let providers = YamlLoader::load_from_str(&read(
        "monitoring/grafana/provisioning/dashboards/observe.yml",
    ))
    .unwrap();
    let provider = &providers[0]["providers"][0];
    assert_eq!(provider["type"].as_str(), Some("file"));
    assert_eq!(
        provider["options"]["path"].as_str(),
        Some("/var/lib/grafana/dashboards")
    );
}
