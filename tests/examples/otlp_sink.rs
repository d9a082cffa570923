//! An OTLP receiver (gRPC and HTTP/protobuf) that counts spans and keeps
//! none, for `./scripts/bench.sh --compare`: prints its base URL, then
//! serves until killed, writing the count of spans received so far into
//! the file named by its argument every 100 ms.
//! `otlp_sink COUNT_FILE`
#![allow(clippy::unwrap_used)]

use std::time::Duration;

fn main() {
    let count_file = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "otlp_sink.count".to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let receiver = observe_tests::otlp::OtlpReceiver::start().await;
        receiver.count_only();
        println!("{}", receiver.http_endpoint());
        loop {
            let partial = format!("{count_file}.partial");
            std::fs::write(&partial, receiver.counted().to_string()).unwrap();
            std::fs::rename(&partial, &count_file).unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}
