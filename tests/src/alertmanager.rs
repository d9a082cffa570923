//! A real Alertmanager (Debian's `prometheus-alertmanager`, installed by
//! `scripts/test.sh` when missing) on a free loopback port, with temporary
//! storage, no clustering, and one webhook receiver.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::prometheus::{debian_tool, free_port};

/// The server; killed and cleaned up when dropped.
pub struct AlertmanagerServer {
    child: Child,
    dir: PathBuf,
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
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "observe-alertmanager-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = config.replace("{dir}", &dir.display().to_string());
        std::fs::write(dir.join("alertmanager.yml"), config).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let addr = free_port();
        let log = std::fs::File::create(dir.join("alertmanager.log")).unwrap();
        let child = Command::new(debian_tool(
            "prometheus-alertmanager",
            "prometheus-alertmanager",
        ))
        .arg(format!(
            "--config.file={}",
            dir.join("alertmanager.yml").display()
        ))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address={addr}"))
        // One instance: no gossip port.
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
        let server = Self { child, dir, addr };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://{}/-/ready", self.addr);
        while !crate::try_get(&url)
            .await
            .is_some_and(|status| status.is_success())
        {
            assert!(
                Instant::now() < deadline,
                "alertmanager not ready after 30 s: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("alertmanager.log")).unwrap_or_default()
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

impl Drop for AlertmanagerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
