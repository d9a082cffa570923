//! An OTLP receiver (gRPC and HTTP/protobuf) that counts spans and keeps
//! none, for `./scripts/bench.sh --compare`: prints its base URL, then
//! serves until killed. `otlp_sink`
#![allow(clippy::unwrap_used)]

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let receiver = observe_tests::otlp::OtlpReceiver::start().await;
        receiver.count_only();
        println!("{}", receiver.http_endpoint());
        std::future::pending::<()>().await;
    });
}
