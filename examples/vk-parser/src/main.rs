//! `vk-parser`: the observe demo service. See the crate docs of `vk_parser`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vk-parser: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = vk_parser::Config::from_env()?;
    let obs = observe::Observability::builder("vk-parser").init()?;
    obs.health()
        .add_check("disk", observe::health::DiskCheck::new("."));
    obs.health().add_check_with(
        "memory",
        observe::health::MemoryCheck::new(),
        observe::health::CheckOptions::new().critical(false),
    );
    let store = vk_parser::Store::connect(&config.database_url)
        .await
        .map_err(|error| format!("{error} (DATABASE_URL)"))?;
    tracing::info!(database = store.system(), "database ready");
    let app = obs.router(vk_parser::app(vk_parser::AppState::new(store)));
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|error| format!("cannot listen on VK_PARSER_ADDR={}: {error}", config.addr))?;
    tracing::info!(
        "VK_ACCESS_TOKEN is not set: serving from the offline VK stand-in (deterministic groups, posts and comments)"
    );
    obs.serve(listener, app).await?;
    Ok(())
}
