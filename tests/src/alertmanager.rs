//! A real Alertmanager (Debian's `prometheus-alertmanager`, installed by
//! `scripts/test.sh` when missing) on a free loopback port, with temporary
//! storage, no clustering, and one webhook receiver.

use std::net::SocketAddr;

use serde_json::Value;

use crate::{prometheus::debian_tool, tool_server::ToolServer};

/// The server; killed and cleaned up when dropped.
pub struct AlertmanagerServer {
    server: ToolServer,
    /// Its address: `http://{addr}` is what services are given.
    pub addr: SocketAddr,
}

impl AlertmanagerServer {
    /// Starts one routing every alert to `webhook` (resolved ones too),
    /// grouped by `alertname` and `service` with one-second waits, and waits
    /// until it is ready.
    pub async fn start(webhook: &str) -> Self {
        let config = format!(
            "route:\n  receiver: test\n  group_by: [alertname, service]\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: test\n    webhook_configs:\n      - url: '{webhook}'\n        \
             send_resolved: true\n"
        );
        Self::start_with_config(&config, &[]).await
    }

    /// Starts one with `config` as its `alertmanager.yml` and `files` (name,
    /// text) in the same temporary folder, whose path replaces `{dir}` in
    /// `config`; waits until it is ready.
    pub async fn start_with_config(config: &str, files: &[(&str, &str)]) -> Self {
        let server = ToolServer::start(
            "alertmanager",
            debian_tool("prometheus-alertmanager", "prometheus-alertmanager"),
            "alertmanager.yml",
            config,
            files,
            |dir, addr| {
                vec![
                    format!("--config.file={}", dir.join("alertmanager.yml").display()),
                    format!("--storage.path={}", dir.join("data").display()),
                    format!("--web.listen-address={addr}"),
                    // One instance: no gossip port.
                    "--cluster.listen-address=".to_owned(),
                ]
            },
        )
        .await;
        let addr = server.addr;
        Self { server, addr }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What it logged.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// `GET /api/v2/alerts`: the alerts it holds.
    pub async fn alerts(&self) -> Vec<Value> {
        let reply = crate::http_get(&format!("{}/api/v2/alerts", self.url()), &[]).await;
        reply
            .json::<Value>()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}
