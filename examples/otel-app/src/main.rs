//! An application that already uses OpenTelemetry and adds observe.
//!
//! It depends on `opentelemetry-otlp` with the crate's default features, as
//! a team exporting with OpenTelemetry does, and builds an exporter of its
//! own with them; observe's exporter runs in the same build. observe
//! turns on no HTTP client feature of `opentelemetry-otlp` (it brings its
//! own client), so any feature set the application chooses compiles.

use axum::{Router, routing::get};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The application's own exporter, built the way the crate's defaults
    // allow: OTLP over HTTP with the blocking reqwest client.
    let _own_exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;

    let obs = observe::Observability::builder("otel-app").init()?;
    let app = obs.router(Router::new().route("/", get(|| async { "ok" })));
    let addr = std::env::var("OTEL_APP_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|error| format!("cannot listen on OTEL_APP_ADDR={addr:?}: {error}"))?;
    obs.serve(listener, app).await?;
    Ok(())
}
