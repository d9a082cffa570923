//! `Observability::serve`: graceful shutdown with a bounded drain.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use axum::{Router, routing::get};
use observe::Observability;
use observe_tests::{Reply, TestServer, http_get};
use tokio::task::JoinHandle;

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(400)).await;
    "finished"
}

async fn stuck() -> &'static str {
    tokio::time::sleep(Duration::from_secs(60)).await;
    "never"
}

fn obs(drain: &str) -> Observability {
    Observability::builder("shutdown-test")
        .install_subscriber(false)
        .install_metrics_recorder(false)
        .env_vars([("OBSERVE_SHUTDOWN_TIMEOUT", drain), ("RUST_LOG", "warn")])
        .init()
        .unwrap()
}

/// A server whose one request to `/slow` (400 ms) is in flight when the
/// shutdown signal comes.
async fn shutting_down_with_a_request_in_flight() -> (TestServer, JoinHandle<Reply>) {
    let app = Router::new().route("/slow", get(slow));
    let mut server = TestServer::start(&obs("5s"), app).await;
    let url = server.url("/slow");
    let in_flight = tokio::spawn(async move { http_get(&url, &[]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.signal_shutdown();
    (server, in_flight)
}

#[tokio::test]
async fn open_requests_finish_before_serve_returns() {
    let (server, in_flight) = shutting_down_with_a_request_in_flight().await;
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], b"finished");
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn new_connections_are_refused_once_draining() {
    let (server, in_flight) = shutting_down_with_a_request_in_flight().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = tokio::net::TcpStream::connect(server.addr).await;
    assert!(refused.is_err(), "the listener is closed while draining");
    assert_eq!(in_flight.await.unwrap().status, 200);
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn drain_is_bounded_by_the_shutdown_timeout() {
    let app = Router::new().route("/stuck", get(stuck));
    let mut server = TestServer::start(&obs("300ms"), app).await;
    let url = server.url("/stuck");
    let _in_flight = tokio::spawn(async move { http_get(&url, &[]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    server.signal_shutdown();
    server.stop(Duration::from_secs(10)).await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "returned before the drain bound: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "drain not bounded: {took:?}");
}
