//! A real server from Debian's packages (Prometheus, Alertmanager) run by a
//! test: its configuration and files in a temporary folder of its own, a
//! free loopback port, its log kept, killed and cleaned up when dropped.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use crate::prometheus::free_port;

pub(crate) struct ToolServer {
    name: &'static str,
    child: Child,
    dir: PathBuf,
    pub(crate) addr: SocketAddr,
}

impl ToolServer {
    /// Writes `config` as `config_file` (with `{dir}` replaced by the
    /// folder) and `files` beside it, starts `binary` with `args(folder,
    /// address)`, and waits until `/-/ready` answers.
    pub(crate) async fn start(
        name: &'static str,
        binary: PathBuf,
        config_file: &str,
        config: &str,
        files: &[(&str, &str)],
        args: impl FnOnce(&Path, SocketAddr) -> Vec<String>,
    ) -> Self {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "observe-{name}-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = config.replace("{dir}", &dir.display().to_string());
        std::fs::write(dir.join(config_file), config).unwrap();
        for (file, text) in files {
            let path = dir.join(file);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(path, text).unwrap();
        }
        let addr = free_port();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(binary)
            .args(args(&dir, addr))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Self {
            name,
            child,
            dir,
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://{addr}/-/ready");
        while !crate::try_get(&url)
            .await
            .is_some_and(|status| status.is_success())
        {
            assert!(
                Instant::now() < deadline,
                "{name} not ready after 30 s: {}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    /// What the server logged.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.log", self.name))).unwrap_or_default()
    }
}

impl Drop for ToolServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
