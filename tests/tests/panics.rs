//! A panic in a handler of a process that logs JSON: the request line
//! reports it (message, location, and the backtrace when `RUST_BACKTRACE`
//! asks), and nothing else is written: no raw hook text on stderr, every
//! stdout line JSON.
#![allow(clippy::unwrap_used)]

use std::{
    io::Read,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use observe_tests::{http_get, prometheus::free_port};
use serde_json::Value;

#[tokio::test]
async fn a_panic_is_one_json_line_with_its_backtrace_and_nothing_raw() {
    let binary = env!("CARGO_BIN_EXE_panicking_server");
    let addr = free_port();
    let mut child = Command::new(binary)
        .arg(addr.to_string())
        .env("RUST_BACKTRACE", "1")
        .env("OBSERVE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "the server did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reply = http_get(&format!("http://{addr}/panic"), &[]).await;
    assert_eq!(reply.status, 500);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();

    assert!(
        !stderr.contains("panicked at"),
        "raw panic text on stderr:\n{stderr}"
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let panics: Vec<&Value> = lines
        .iter()
        .filter(|line| line["error_type"] == "panic")
        .collect();
    assert_eq!(panics.len(), 1, "{stdout}");
    let line = panics[0];
    assert_eq!(line["status_code"], 500);
    assert_eq!(line["error_message"], "boom: the handler gave up");
    assert_eq!(line["request_id"], reply.header("x-request-id"));
    assert!(
        line["context.location"]
            .as_str()
            .unwrap()
            .contains("panicking_server.rs"),
        "{line}"
    );
    let backtrace = line["context.backtrace"].as_str().unwrap();
    assert!(backtrace.lines().count() > 3, "{backtrace}");
    // The body stays generic.
    assert!(!String::from_utf8_lossy(&reply.body).contains("boom"));
}
