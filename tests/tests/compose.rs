//! `monitoring/docker-compose.yml`, the local stack. No Docker engine runs
//! on these machines and images cannot be pulled, so the file is checked:
//! it parses, every file it mounts or builds from exists, and the
//! addresses agree across the files (what the demo listens on is what
//! Prometheus scrapes, where Prometheus sends alerts is where Alertmanager
//! listens, and so on).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../monitoring")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(monitoring().join(path))
        .unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn yaml(path: &str) -> Yaml {
    YamlLoader::load_from_str(&read(path)).unwrap().remove(0)
}

fn compose() -> Yaml {
    yaml("docker-compose.yml")
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let service = &compose["services"][name];
    assert!(!service.is_badvalue(), "no service {name}");
    service
}

fn env<'a>(service: &'a Yaml, name: &str) -> &'a str {
    service["environment"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name}"))
}

/// `--flag=value` of a service's command.
fn flag<'a>(service: &'a Yaml, name: &str) -> &'a str {
    service["command"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .find_map(|arg| arg.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn the_stack_has_every_part_on_the_hosts_network() {
    let compose = compose();
    for name in [
        "vk-parser",
        "prometheus",
        "alertmanager",
        "grafana",
        "jaeger",
        "elasticsearch",
        "kibana",
        "loki",
        "vector",
    ] {
        let service = service(&compose, name);
        assert_eq!(service["network_mode"].as_str(), Some("host"), "{name}");
        if name != "vk-parser" {
            assert!(
                service["image"]
                    .as_str()
                    .is_some_and(|image| image.contains(':')),
                "{name}: a pinned image"
            );
        }
    }
}

#[test]
fn every_mounted_or_built_file_exists() {
    let compose = compose();
    let mut checked = 0;
    for (name, service) in compose["services"].as_hash().unwrap() {
        let name = name.as_str().unwrap();
        if let Some(build) = service["build"].as_hash() {
            let build = Yaml::Hash(build.clone());
            let context = monitoring().join(build["context"].as_str().unwrap());
            let dockerfile = context.join(build["dockerfile"].as_str().unwrap());
            assert!(dockerfile.is_file(), "{name}: {}", dockerfile.display());
            assert!(
                context.join("Cargo.lock").is_file(),
                "{name}: the build context is the workspace"
            );
            checked += 1;
        }
        for volume in service["volumes"].as_vec().into_iter().flatten() {
            let volume = volume.as_str().unwrap();
            let source = volume.split(':').next().unwrap();
            if source.starts_with('.') {
                let path = monitoring().join(source);
                assert!(
                    path.exists(),
                    "{name}: {} is mounted but missing",
                    path.display()
                );
                checked += 1;
            } else {
                assert!(
                    compose["volumes"][source].as_hash().is_some()
                        || compose["volumes"][source].is_null(),
                    "{name}: named volume {source} is not declared"
                );
            }
        }
    }
    assert!(checked >= 8, "{checked}");
}

#[test]
fn addresses_agree_across_the_files() {
    let compose = compose();
    let demo = service(&compose, "vk-parser");
    let demo_addr = env(demo, "VK_PARSER_ADDR");

    // Prometheus scrapes the demo and alerts to Alertmanager, where each listens.
    let prometheus_config = yaml("prometheus/prometheus.yml");
    let scraped = prometheus_config["scrape_configs"][0]["static_configs"][0]["targets"][0]
        .as_str()
        .unwrap();
    assert_eq!(scraped, demo_addr);
    let alerting =
        prometheus_config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
            .as_str()
            .unwrap();
    let alertmanager = service(&compose, "alertmanager");
    assert_eq!(alerting, flag(alertmanager, "--web.listen-address"));
    assert_eq!(
        env(demo, "OBSERVE_ALERTMANAGER_URL"),
        format!("http://{alerting}")
    );
    // Prometheus's rule files are mounted where its config looks.
    let prometheus = service(&compose, "prometheus");
    let rules = prometheus_config["rule_files"][0].as_str().unwrap();
    assert!(rules.starts_with("rules/"));
    let mounts: Vec<&str> = prometheus["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        mounts.contains(&"./prometheus/rules:/etc/prometheus/rules:ro"),
        "{mounts:?}"
    );
    assert!(flag(prometheus, "--config.file").starts_with("/etc/prometheus/"));

    // Grafana reads Prometheus where it listens.
    let datasources = yaml("grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(
        datasources["datasources"][0]["url"].as_str().unwrap(),
        format!("http://{}", flag(prometheus, "--web.listen-address"))
    );

    // Alertmanager reads its secrets from the folder mounted there.
    let alertmanager_config = read("alertmanager/alertmanager.yml");
    for secret in ["pager-token", "slack-webhook-url"] {
        assert!(alertmanager_config.contains(&format!("/etc/alertmanager/secrets/{secret}")));
        assert!(
            monitoring()
                .join("alertmanager/local-secrets")
                .join(secret)
                .is_file()
        );
    }

    // Spans go to Jaeger's OTLP port; logs from the demo's file to
    // Elasticsearch and Loki, by Vector, which mounts the same volume.
    assert_eq!(
        env(demo, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        "http://127.0.0.1:4317"
    );
    let log_file = env(demo, "OBSERVE_LOG_FILE");
    let vector_config = yaml("vector/vector.yaml");
    assert_eq!(
        vector_config["sources"]["observe_app_log"]["include"][0].as_str(),
        Some(log_file)
    );
    let log_dir = Path::new(log_file).parent().unwrap().display().to_string();
    let vector = service(&compose, "vector");
    assert!(
        vector["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .filter_map(Yaml::as_str)
            .any(|volume| volume.contains(&format!(":{log_dir}"))),
        "vector does not mount {log_dir}"
    );
    let elasticsearch = vector_config["sinks"]["elasticsearch"]["endpoints"][0]
        .as_str()
        .unwrap();
    assert_eq!(elasticsearch, "http://127.0.0.1:9200");
    assert_eq!(
        env(service(&compose, "kibana"), "ELASTICSEARCH_HOSTS"),
        elasticsearch
    );
    assert_eq!(
        vector_config["sinks"]["loki"]["endpoint"].as_str(),
        Some("http://127.0.0.1:3100")
    );
    // The other shippers read the same file and write to the same place.
    let fluent_bit = yaml("fluent-bit/fluent-bit.yaml");
    assert_eq!(
        fluent_bit["pipeline"]["inputs"][0]["path"].as_str(),
        Some(log_file)
    );
    assert_eq!(
        fluent_bit["pipeline"]["outputs"][0]["port"].as_i64(),
        Some(9200)
    );
    let fluentd = read("fluentd/fluent.conf");
    assert!(fluentd.contains(&format!("path {log_file}")));
    assert!(fluentd.contains("hosts http://127.0.0.1:9200"));
}
