//! Reading the Prometheus text format, and the real Prometheus tools:
//! `promtool check metrics` and a `prometheus` server on a loopback port with
//! temporary storage. Both come from Debian's `prometheus` package, which
//! `scripts/test.sh` installs when missing.

use std::{
    collections::BTreeMap,
    io::Write,
    net::SocketAddr,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::tool_server::ToolServer;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name, with any `_bucket`/`_sum`/`_count` suffix.
    pub name: String,
    /// The labels, sorted by name.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// Every sample of a scrape, comments and blank lines left out.
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Sample {
    let (series, value) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("not a sample: {line}"));
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        value => value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}")),
    };
    let (name, labels) = match series.split_once('{') {
        None => (series, BTreeMap::new()),
        Some((name, rest)) => {
            let body = rest
                .strip_suffix('}')
                .unwrap_or_else(|| panic!("unclosed labels: {line}"));
            let labels = split_labels(body)
                .into_iter()
                .map(|pair| {
                    let (key, value) = pair
                        .split_once('=')
                        .unwrap_or_else(|| panic!("bad label: {line}"));
                    let value = value
                        .strip_prefix('"')
                        .and_then(|value| value.strip_suffix('"'))
                        .unwrap_or_else(|| panic!("unquoted label: {line}"));
                    (
                        key.to_owned(),
                        value.replace("\\\"", "\"").replace("\\\\", "\\"),
                    )
                })
                .collect();
            (name, labels)
        }
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

/// Splits `a="x",b="y,z"` at the commas outside quotes.
fn split_labels(body: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (index, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&body[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    if start < body.len() {
        parts.push(&body[start..]);
    }
    parts
}

/// The value of the one sample named `name` whose labels include `labels`;
/// panics when there is none or several.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<_> = matching(samples, name, labels).collect();
    assert_eq!(
        found.len(),
        1,
        "{name}{labels:?}: expected one sample, got {found:?}"
    );
    found[0].value
}

/// The sum of the samples named `name` whose labels include `labels`.
pub fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    matching(samples, name, labels)
        .map(|sample| sample.value)
        .sum()
}

fn matching<'a>(
    samples: &'a [Sample],
    name: &'a str,
    labels: &'a [(&str, &str)],
) -> impl Iterator<Item = &'a Sample> {
    samples.iter().filter(move |sample| {
        sample.name == name
            && labels
                .iter()
                .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(*value))
    })
}

fn tool(name: &str) -> PathBuf {
    debian_tool(name, "prometheus")
}

/// `/usr/bin/{name}`, from Debian's `package`; panics naming the package
/// when it is missing.
pub(crate) fn debian_tool(name: &str, package: &str) -> PathBuf {
    let path = PathBuf::from("/usr/bin").join(name);
    assert!(
        path.exists(),
        "{name} is missing: install Debian's `{package}` package (scripts/test.sh does)"
    );
    path
}

/// Runs `promtool check metrics` on `text`; returns what it printed when it
/// finds problems.
pub fn promtool_check(text: &str) -> Result<(), String> {
    let mut child = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A Prometheus server on a free loopback port with its own temporary
/// storage; killed and cleaned up when dropped.
pub struct PrometheusServer {
    server: ToolServer,
    /// Its HTTP API address.
    pub addr: SocketAddr,
}

impl PrometheusServer {
    /// Starts one that scrapes `target` (`host:port`) at `path` every second,
    /// sending `bearer_token` when given, and waits until it is ready.
    pub async fn start(target: SocketAddr, path: &str, bearer_token: Option<&str>) -> Self {
        let authorization = bearer_token
            .map(|token| format!("    authorization:\n      credentials: {token}\n"))
            .unwrap_or_default();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
             scrape_configs:\n  - job_name: app\n    metrics_path: {path}\n{authorization}    \
             static_configs:\n      - targets: ['{target}']\n"
        );
        Self::start_with_config(&config, &[]).await
    }

    /// Starts one with `config` as its `prometheus.yml` and `files` (name,
    /// text) beside it, as rule files, and waits until it is ready.
    pub async fn start_with_config(config: &str, files: &[(&str, &str)]) -> Self {
        let server = ToolServer::start(
            "prometheus",
            tool("prometheus"),
            "prometheus.yml",
            config,
            files,
            |dir, addr| {
                vec![
                    format!("--config.file={}", dir.join("prometheus.yml").display()),
                    format!("--storage.tsdb.path={}", dir.join("data").display()),
                    format!("--web.listen-address={addr}"),
                ]
            },
        )
        .await;
        let addr = server.addr;
        Self { server, addr }
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// `GET /api/v1/alerts`: the alerts the rules hold now.
    pub async fn alerts(&self) -> Vec<Value> {
        let reply = crate::http_get(&format!("http://{}/api/v1/alerts", self.addr), &[]).await;
        let body: Value = reply.json();
        body["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Runs an instant query; the `data.result` array.
    pub async fn query(&self, query: &str) -> Vec<Value> {
        let url = format!(
            "http://{}/api/v1/query?query={}",
            self.addr,
            percent_encode(query)
        );
        let reply = crate::http_get(&url, &[]).await;
        let body: Value = reply.json();
        assert_eq!(body["status"], "success", "{body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls `query` until it returns a sample or `limit` passes; the first
    /// sample's value.
    pub async fn wait_for_value(&self, query: &str, limit: Duration) -> Option<f64> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(sample) = self.query(query).await.first() {
                return sample["value"][1].as_str().and_then(|v| v.parse().ok());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        None
    }
}

/// A loopback address whose port was free a moment ago.
pub fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_and_values() {
        let text = "# HELP a_total x\n# TYPE a_total counter\n\
                    a_total{method=\"GET\",endpoint=\"/a,b\"} 3\n\nb 1.5\nc_bucket{le=\"+Inf\"} 2\n";
        let parsed = samples(text);
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].name, "a_total");
        assert_eq!(parsed[0].labels["endpoint"], "/a,b");
        assert_eq!(value(&parsed, "a_total", &[("method", "GET")]), 3.0);
        assert_eq!(value(&parsed, "b", &[]), 1.5);
        assert_eq!(sum(&parsed, "c_bucket", &[]), 2.0);
        assert_eq!(
            percent_encode("sum(x{a=\"b\"})"),
            "sum%28x%7Ba%3D%22b%22%7D%29"
        );
    }
}
