//! `panicking_server ADDR`: a server whose `GET /panic` panics, run by
//! `obs.serve` with the process's logging, for the test that every line such
//! a process writes is JSON (`tests/tests/panics.rs`). A test binary, not part of the library.

use axum::{Router, routing::get};

async fn panicking() -> &'static str {
    panic!("boom: the handler gave up")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .ok_or("usage: panicking_server ADDR")?;
    let obs = observe::Observability::builder("panicking-server").init()?;
    let app = obs.router(Router::new().route("/panic", get(panicking)));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    obs.serve(listener, app).await?;
    Ok(())
}
