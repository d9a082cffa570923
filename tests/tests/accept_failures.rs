//! `Observability::serve` when the process is out of file descriptors: the
//! failed accept is counted (`http_connection_errors_total{reason="accept_failed"}`)
//! and logged, the loop waits and tries again, and the client that was
//! waiting is served once a descriptor is free. Alone in its binary: it
//! lowers the process's file limit and uses up what is left of it.
#![allow(clippy::unwrap_used)]

use std::{
    fs::File,
    time::{Duration, Instant},
};

use axum::{Router, routing::get};
use observe::Observability;
use observe_tests::{
    TestServer,
    logs::{LogBuffer, runtime_with},
    prometheus::{samples, sum, value},
    raw_exchange,
};
use socket2::{Domain, Socket, Type};

/// Low enough that using it all up is quick.
const FILE_LIMIT: u64 = 512;

#[test]
fn a_failed_accept_is_counted_logged_and_its_client_served_once_descriptors_free_up() {
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    rlimit::Resource::NOFILE
        .set(FILE_LIMIT.min(hard), hard)
        .unwrap();
    let buffer = LogBuffer::default();
    let obs = Observability::builder("out-of-files")
        .environment("test")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .log_writer(buffer.clone())
        .init()
        .unwrap();
    let failed_accepts = || {
        value(
            &samples(&obs.metrics().render()),
            "http_connection_errors_total",
            &[("reason", "accept_failed")],
        )
    };
    let runtime = runtime_with(obs.dispatch());
    runtime.block_on(async {
        let app = Router::new().route("/", get(|| async { "ok" }));
        let server = TestServer::start(&obs, app).await;
        // The client's socket is made while descriptors are left; connecting
        // it takes none, and the kernel completes the handshake for the
        // listener's backlog.
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let mut held = Vec::new();
        while let Ok(file) = File::open("/dev/null") {
            held.push(file);
        }
        assert!(!held.is_empty());
        socket.connect(&server.addr.into()).unwrap();

        let started = Instant::now();
        while failed_accepts() < 1.0 && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let first = failed_accepts();
        assert!(first >= 1.0, "no failed accept counted");
        // Tried again every 100 ms, not in a busy loop.
        let waited = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let retries = failed_accepts() - first;
        let at_most = (waited.elapsed().as_millis() / 100 + 1) as f64;
        assert!(
            (1.0..=at_most).contains(&retries),
            "{retries} more failed accepts in {:?}",
            waited.elapsed()
        );

        drop(held);
        socket.set_nonblocking(true).unwrap();
        let mut client = tokio::net::TcpStream::from_std(socket.into()).unwrap();
        let (head, body) = raw_exchange(
            &mut client,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, "ok");
        server.stop(Duration::from_secs(5)).await.unwrap();
    });
    let samples = samples(&obs.metrics().render());
    assert_eq!(
        sum(
            &samples,
            "http_requests_total",
            &[("endpoint", "/"), ("status_code", "200")]
        ),
        1.0
    );
    // One line for the run of failures (one a second at most), no peer: an
    // accept that failed has none.
    let lines: Vec<_> = buffer
        .lines()
        .into_iter()
        .filter(|line| line["reason"] == "accept_failed")
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["level"], "WARN");
    assert!(lines[0].get("peer").is_none());
}
