//! The log-shipping files in `monitoring/` against the fields observe
//! writes (`observe::logging::fields`) and against real lines.
//!
//! fluentd, Vector, Fluent Bit and Elasticsearch cannot be installed on
//! these machines, so their files are checked structurally: each parses,
//! uses only plugins and components of those tools' current documentation,
//! names only fields observe writes (with the right type), and every field
//! observe writes is mapped by the index templates; the time formats are
//! matched against a real line's timestamp.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use axum::{Router, body::Body, routing::get};
use observe::{
    AppError, Observability,
    logging::fields::{FIELDS, FieldType, find},
};
use observe_tests::logs::{LogBuffer, runtime_with};
use serde_json::Value;
use tower::ServiceExt;
use yaml_rust2::{Yaml, YamlLoader};

/// Fields a shipper adds itself.
const ADDED_BY_SHIPPERS: &[&str] = &["service_name"];

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn yaml(path: &str) -> Yaml {
    let mut documents =
        YamlLoader::load_from_str(&read(path)).unwrap_or_else(|error| panic!("{path}: {error}"));
    assert_eq!(documents.len(), 1, "{path}");
    documents.remove(0)
}

/// Every leaf of an index template's mappings, by dotted path, with its type.
fn mapped(template: &Value) -> BTreeMap<String, String> {
    fn walk(prefix: &str, properties: &Value, out: &mut BTreeMap<String, String>) {
        for (name, mapping) in properties.as_object().unwrap() {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match mapping.get("properties") {
                Some(nested) => walk(&path, nested, out),
                None => {
                    out.insert(path, mapping["type"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(
        "",
        &template["template"]["mappings"]["properties"],
        &mut out,
    );
    out
}

/// Real lines: a request that fails with context, as the flat and the ECS
/// schema write them.
fn real_lines(schema: &str) -> Vec<Value> {
    let buffer = LogBuffer::default();
    let obs = Observability::builder("shipping-test")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .log_writer(buffer.clone())
        .env_vars([("OBSERVE_LOG_SCHEMA", schema)])
        .init()
        .unwrap();
    let app = obs.router(Router::new().route(
        "/fail/{id}",
        get(|| async {
            Err::<(), _>(
                AppError::internal(std::io::Error::other("disk on fire"))
                    .with_context("disk", "sda"),
            )
        }),
    ));
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let request = http::Request::get("/fail/7?token=s3cret")
            .header("user-agent", "shipping-test/1")
            .header("x-user-id", "u-1")
            .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [10, 1, 2, 3],
                4000,
            ))))
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 500);
        tracing::info!(dropped_lines = 3_u64, "a line like the writer's summary");
    });
    obs.flush_logs(std::time::Duration::from_secs(5)).unwrap();
    buffer.lines()
}

/// Flattens a line's keys (the ECS schema writes dotted keys flat).
fn keys(line: &Value) -> Vec<String> {
    line.as_object().unwrap().keys().cloned().collect()
}

fn json_type_fits(value: &Value, mapping: &str) -> bool {
    match mapping {
        "long" => value.is_u64() || value.is_i64(),
        "double" => value.is_number(),
        "boolean" => value.is_boolean(),
        "keyword" | "text" | "date" | "ip" => value.is_string(),
        _ => false,
    }
}

#[test]
fn the_index_templates_map_every_field_observe_writes_with_its_type() {
    let flat: Value =
        serde_json::from_str(&read("monitoring/elasticsearch/index-template.json")).unwrap();
    let ecs: Value =
        serde_json::from_str(&read("monitoring/elasticsearch/index-template-ecs.json")).unwrap();
    let (flat_mapped, ecs_mapped) = (mapped(&flat), mapped(&ecs));
    for field in FIELDS {
        if let Some((flat_prefix, ecs_prefix)) = field.family() {
            // A field per key: an object whose keys a dynamic template maps.
            for (template, mapped, prefix, kind) in [
                (&flat, &flat_mapped, flat_prefix, field.kind),
                (&ecs, &ecs_mapped, ecs_prefix, field.ecs_kind),
            ] {
                let object = prefix.trim_end_matches('.');
                assert_eq!(
                    mapped.get(object).map(String::as_str),
                    Some("object"),
                    "{object}"
                );
                let first = &template["template"]["mappings"]["dynamic_templates"][0];
                let (_, rule) = first.as_object().unwrap().iter().next().unwrap();
                assert_eq!(rule["path_match"], format!("{prefix}*"), "{rule}");
                assert_eq!(rule["mapping"]["type"], kind.elasticsearch(), "{rule}");
            }
            continue;
        }
        assert_eq!(
            flat_mapped.get(field.name).map(String::as_str),
            Some(field.kind.elasticsearch()),
            "flat {}",
            field.name
        );
        assert_eq!(
            ecs_mapped.get(field.ecs).map(String::as_str),
            Some(field.ecs_kind.elasticsearch()),
            "ecs {}",
            field.ecs
        );
    }
    // Nothing mapped that observe does not write.
    for name in flat_mapped.keys() {
        assert!(
            FIELDS.iter().any(|field| field.name == name)
                || find(&format!("{name}.key")).is_some()
                || ADDED_BY_SHIPPERS.contains(&name.as_str()),
            "flat template maps {name}, which observe does not write"
        );
    }
    for name in ecs_mapped.keys() {
        assert!(
            FIELDS.iter().any(|field| field.ecs == name)
                || find(&format!("{name}.key")).is_some()
                || name == "ecs.version",
            "ECS template maps {name}, which observe does not write"
        );
    }
    // ECS durations are nanoseconds: a long.
    assert_eq!(ecs_mapped["event.duration"], "long");
    // Both keep to the ILM policy; the ECS one wins where both patterns match.
    for template in [&flat, &ecs] {
        assert_eq!(
            template["template"]["settings"]["index.lifecycle.name"],
            "observe-logs"
        );
    }
    assert_eq!(flat["index_patterns"][0], "observe-*");
    assert_eq!(ecs["index_patterns"][0], "observe-ecs-*");
    assert!(ecs["priority"].as_u64() > flat["priority"].as_u64());

    // Real lines: every key is mapped, with a JSON type that fits.
    for (schema, mapped) in [("flat", &flat_mapped), ("ecs", &ecs_mapped)] {
        let lines = real_lines(schema);
        let request = lines
            .iter()
            .find(|line| line.get("error_type").or(line.get("error.type")).is_some())
            .unwrap_or_else(|| panic!("no error line in {lines:?}"));
        assert!(keys(request).len() >= 18, "{request}");
        // The error's context, a field per key.
        let context = request.get("context.disk").or(request.get("labels.disk"));
        assert_eq!(context.and_then(Value::as_str), Some("sda"), "{request}");
        for line in &lines {
            for key in keys(line) {
                let family = find(&key)
                    .filter(|field| field.family().is_some())
                    .map(|field| field.kind.elasticsearch().to_owned());
                let Some(mapping) = family.as_ref().or(mapped.get(&key)) else {
                    panic!("{schema}: {key} is written but not mapped: {line}");
                };
                assert!(
                    json_type_fits(&line[&key], mapping),
                    "{schema}: {key} is {} in {line}",
                    line[&key]
                );
            }
        }
    }
}

#[test]
fn the_ilm_policy_keeps_seven_days_hot_and_deletes_at_thirty() {
    let policy: Value =
        serde_json::from_str(&read("monitoring/elasticsearch/ilm-policy.json")).unwrap();
    let phases = &policy["policy"]["phases"];
    assert_eq!(phases["hot"]["min_age"], "0ms");
    assert_eq!(phases["warm"]["min_age"], "7d");
    assert_eq!(phases["delete"]["min_age"], "30d");
    assert!(phases["delete"]["actions"]["delete"].is_object());
}

/// Whether `timestamp` has the shape of `format` (strftime, with fluentd's
/// `%N` and Fluent Bit's `%L` for the fraction of a second).
fn matches_strftime(format: &str, timestamp: &str) -> bool {
    let mut pattern = String::from("^");
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            pattern.push_str(match chars.next() {
                Some('Y') => r"\d{4}",
                Some('m' | 'd' | 'H' | 'M' | 'S') => r"\d{2}",
                Some('N' | 'L') => r"\d+",
                Some('z') => r"(Z|[+-]\d{2}:?\d{2})",
                other => panic!("unexpected %{other:?} in {format}"),
            });
        } else {
            pattern.push_str(&regex_escape(c));
        }
    }
    pattern.push('$');
    regex::Regex::new(&pattern).unwrap().is_match(timestamp)
}

fn regex_escape(c: char) -> String {
    regex::escape(&c.to_string())
}

fn a_real_timestamp() -> String {
    let lines = real_lines("flat");
    lines[0]["timestamp"].as_str().unwrap().to_owned()
}

#[test]
fn fluent_bit_tails_parses_our_time_and_writes_without_a_type() {
    let config = yaml("monitoring/fluent-bit/fluent-bit.yaml");
    let parser = &config["parsers"][0];
    assert_eq!(parser["format"].as_str(), Some("json"));
    let time_key = parser["time_key"].as_str().unwrap();
    assert_eq!(
        observe::logging::fields::find(time_key).map(|field| field.kind),
        Some(FieldType::Date)
    );
    let timestamp = a_real_timestamp();
    let format = parser["time_format"].as_str().unwrap();
    assert!(
        matches_strftime(format, &timestamp),
        "{format} vs {timestamp}"
    );
    assert!(!matches_strftime(format, "2026-11-25 21:49:36"));

    let pipeline = &config["pipeline"];
    let input = &pipeline["inputs"][0];
    assert_eq!(input["name"].as_str(), Some("tail"));
    assert!(
        input["db"].as_str().is_some(),
        "offsets must survive restarts"
    );
    assert_eq!(input["parser"].as_str(), parser["name"].as_str());
    let filter = &pipeline["filters"][0];
    assert_eq!(filter["name"].as_str(), Some("modify"));
    assert_eq!(
        filter["condition"].as_str(),
        Some("Key_does_not_exist service_name")
    );
    let copy: Vec<&str> = filter["copy"].as_str().unwrap().split(' ').collect();
    assert!(
        observe::logging::fields::find(copy[0]).is_some() && ADDED_BY_SHIPPERS.contains(&copy[1])
    );
    let output = &pipeline["outputs"][0];
    assert_eq!(output["name"].as_str(), Some("es"));
    assert_eq!(yaml_bool(&output["suppress_type_name"]), Some(true));
    assert!(
        output["type"].is_badvalue(),
        "no mapping type in Elasticsearch 8"
    );
    // Plugins of Fluent Bit's documentation (docs.fluentbit.io: inputs/tail,
    // filters/modify, outputs/elasticsearch).
    for (section, known) in [
        ("inputs", &["tail"][..]),
        ("filters", &["modify"]),
        ("outputs", &["es"]),
    ] {
        for plugin in pipeline[section].as_vec().unwrap() {
            let name = plugin["name"].as_str().unwrap();
            assert!(known.contains(&name), "{section}: {name}");
        }
    }
}

fn yaml_bool(value: &Yaml) -> Option<bool> {
    match value {
        Yaml::Boolean(value) => Some(*value),
        Yaml::String(text) => match text.as_str() {
            "on" | "true" => Some(true),
            "off" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn vector_parses_our_json_and_sends_to_elasticsearch_8_and_loki_with_few_labels() {
    let config = yaml("monitoring/vector/vector.yaml");
    let source = &config["sources"]["observe_app_log"];
    assert_eq!(source["type"].as_str(), Some("file"));
    assert_eq!(
        source["fingerprint"]["strategy"].as_str(),
        Some("device_and_inode")
    );
    let transform = &config["transforms"]["observe_parsed"];
    assert_eq!(transform["type"].as_str(), Some("remap"));
    let vrl = transform["source"].as_str().unwrap();
    assert!(vrl.contains("parse_json!"));
    // Every `.field` the program reads is one observe writes (or it adds).
    for path in vrl
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter_map(|word| word.strip_prefix('.'))
        .filter(|word| !word.is_empty())
    {
        assert!(
            path == "message"
                || observe::logging::fields::find(path).is_some()
                || ADDED_BY_SHIPPERS.contains(&path),
            "vector reads .{path}"
        );
    }
    let elasticsearch = &config["sinks"]["elasticsearch"];
    assert_eq!(elasticsearch["api_version"].as_str(), Some("v8"));
    assert_eq!(elasticsearch["mode"].as_str(), Some("bulk"));
    let loki = &config["sinks"]["loki"];
    let labels = loki["labels"].as_hash().unwrap();
    let mut templated = vec![elasticsearch["bulk"]["index"].as_str().unwrap().to_owned()];
    templated.extend(
        labels
            .values()
            .map(|value| value.as_str().unwrap().to_owned()),
    );
    for text in templated {
        for field in text
            .split("{{")
            .skip(1)
            .map(|part| part.split("}}").next().unwrap().trim())
        {
            let written = observe::logging::fields::find(field)
                .unwrap_or_else(|| panic!("{{{{ {field} }}}}"));
            assert_eq!(
                written.kind,
                FieldType::Keyword,
                "{field} as a label or index name"
            );
        }
    }
    assert_eq!(labels.len(), 2, "Loki labels stay few: service and level");
    // Components of Vector's documentation (vector.dev/docs/reference/configuration).
    for (section, known) in [
        ("sources", &["file"][..]),
        ("transforms", &["remap"]),
        ("sinks", &["elasticsearch", "loki"]),
    ] {
        for (_, component) in config[section].as_hash().unwrap() {
            let kind = component["type"].as_str().unwrap();
            assert!(known.contains(&kind), "{section}: {kind}");
        }
    }
}

/// A fluentd configuration as nested directives: `(name, argument,
/// parameters, children)`.
#[derive(Debug)]
struct Directive {
    name: String,
    argument: String,
    params: BTreeMap<String, String>,
    children: Vec<Directive>,
}

fn parse_fluentd(text: &str) -> Directive {
    let mut stack = vec![Directive {
        name: "root".into(),
        argument: String::new(),
        params: BTreeMap::new(),
        children: Vec::new(),
    }];
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix("</") {
            let name = name
                .strip_suffix('>')
                .unwrap_or_else(|| panic!("line {number}: {line}"));
            let done = stack.pop().unwrap();
            assert_eq!(
                done.name,
                name,
                "line {}: closes <{}>",
                number + 1,
                done.name
            );
            stack.last_mut().unwrap().children.push(done);
        } else if let Some(open) = line.strip_prefix('<') {
            let open = open
                .strip_suffix('>')
                .unwrap_or_else(|| panic!("line {number}: {line}"));
            let (name, argument) = open.split_once(' ').unwrap_or((open, ""));
            stack.push(Directive {
                name: name.into(),
                argument: argument.trim().into(),
                params: BTreeMap::new(),
                children: Vec::new(),
            });
        } else {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            let previous = stack
                .last_mut()
                .unwrap()
                .params
                .insert(key.into(), value.trim().into());
            assert!(previous.is_none(), "line {}: {key} twice", number + 1);
        }
    }
    assert_eq!(stack.len(), 1, "unclosed <{}>", stack.last().unwrap().name);
    stack.pop().unwrap()
}

#[test]
fn fluentd_tails_with_a_pos_file_parses_our_time_and_buffers_to_disk() {
    let config = parse_fluentd(&read("monitoring/fluentd/fluent.conf"));
    let source = config.children.iter().find(|d| d.name == "source").unwrap();
    assert_eq!(source.params["@type"], "tail");
    assert!(source.params.contains_key("pos_file"));
    let parse = source.children.iter().find(|d| d.name == "parse").unwrap();
    assert_eq!(parse.params["@type"], "json");
    assert_eq!(
        observe::logging::fields::find(&parse.params["time_key"]).map(|field| field.kind),
        Some(FieldType::Date)
    );
    let timestamp = a_real_timestamp();
    assert!(matches_strftime(&parse.params["time_format"], &timestamp));

    let filter = config.children.iter().find(|d| d.name == "filter").unwrap();
    assert_eq!(filter.params["@type"], "record_transformer");
    let record = filter.children.iter().find(|d| d.name == "record").unwrap();
    for (key, expression) in &record.params {
        // Only where missing: each keeps the record's own value first.
        assert!(
            expression.starts_with(&format!("${{record[\"{key}\"] ||")),
            "{key}: {expression}"
        );
        for read in expression
            .split("record[\"")
            .skip(1)
            .map(|part| part.split('"').next().unwrap())
        {
            assert!(
                observe::logging::fields::find(read).is_some() || ADDED_BY_SHIPPERS.contains(&read),
                "fluentd reads {read}"
            );
        }
    }

    let output = config.children.iter().find(|d| d.name == "match").unwrap();
    // The match catches what the source tags.
    let tag_prefix = output.argument.trim_end_matches("**");
    assert!(
        source.params["tag"].starts_with(tag_prefix),
        "{}",
        output.argument
    );
    assert_eq!(output.params["@type"], "elasticsearch");
    assert_eq!(output.params["suppress_type_name"], "true");
    assert!(
        !output.params.contains_key("type_name"),
        "Elasticsearch 8 rejects type_name"
    );
    assert_eq!(output.params["logstash_format"], "true");
    let buffer = output.children.iter().find(|d| d.name == "buffer").unwrap();
    assert_eq!(buffer.params["@type"], "file");
    assert_eq!(buffer.params["retry_type"], "exponential_backoff");
    // Plugins of fluentd's documentation (docs.fluentd.org: input/tail,
    // parser/json, filter/record_transformer, buffer/file) and
    // fluent-plugin-elasticsearch.
    let types: Vec<&str> = [source, parse, filter, output, buffer]
        .iter()
        .map(|directive| directive.params["@type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "tail",
            "json",
            "record_transformer",
            "elasticsearch",
            "file"
        ]
    );
}

#[test]
fn the_strftime_matcher_tells_formats_apart() {
    assert!(matches_strftime(
        "%Y-%m-%dT%H:%M:%S.%NZ",
        "2026-11-25T21:49:36.123456Z"
    ));
    assert!(matches_strftime(
        "%Y-%m-%dT%H:%M:%S.%LZ",
        "2026-11-25T21:49:36.123456Z"
    ));
    assert!(!matches_strftime(
        "%Y-%m-%dT%H:%M:%S.%NZ",
        "2026-11-25T21:49:36Z"
    ));
    assert!(!matches_strftime(
        "%Y-%m-%d %H:%M:%S",
        "2026-11-25T21:49:36.1Z"
    ));
}
