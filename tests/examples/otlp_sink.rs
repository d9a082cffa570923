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
    let receiver = runtime.block_on(observe_tests::otlp::OtlpReceiver::start());
    receiver.count_only();
    println!("{}", receiver.http_endpoint());
    // The receiver runs on its own thread, the count file is written from
    // this one: with the server under test writing its log, a `rename` can
    // block for 100 ms and more, which would hold every export waiting.
    std::thread::spawn(move || runtime.block_on(std::future::pending::<()>()));
    let partial = format!("{count_file}.partial");
    loop {
        std::fs::write(&partial, receiver.counted().to_string()).unwrap();
        std::fs::rename(&partial, &count_file).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
}
