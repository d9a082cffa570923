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
    let mut builder =
        observe::Observability::builder("vk-parser").service_version(env!("CARGO_PKG_VERSION"));
    if let Some(token) = &config.vk_access_token {
        // VK echoes requests in some error texts: the token never reaches the log.
        builder = builder.log_redact_value(token.clone());
    }
    let obs = builder.init()?;
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
    let (base, token) = match &config.vk_access_token {
        Some(token) => (config.vk_api_base.clone(), token.clone()),
        None => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let standin = format!("http://{}", listener.local_addr()?);
            let router = vk_parser::standin::server::router(config.standin_faults);
            tokio::spawn(async move { axum::serve(listener, router).await });
            tracing::info!(
                vk_api = %standin,
                "VK_ACCESS_TOKEN is not set: serving from the offline VK stand-in (deterministic groups, posts and comments)"
            );
            (standin, "offline".to_owned())
        }
    };
    let mut vk = vk_parser::VkClient::new(
        &base,
        &token,
        config.vk_timeout,
        obs.client_layer(),
        obs.metrics().clone(),
    )?;
    let cache = match &config.redis_url {
        Some(url) => Some(vk_parser::Cache::connect(url, config.cache_ttl).await?),
        None => None,
    };
    if let Some(cache) = &cache {
        vk = vk.with_cache(cache.clone());
        // Redis is in the health report only when the demo uses it.
        let probe = cache.clone();
        obs.health().add_check(
            "redis",
            observe::health::check_fn(move || {
                let probe = probe.clone();
                async move {
                    match probe.ping().await {
                        Ok(()) => observe::health::CheckResult::healthy(),
                        Err(error) => observe::health::CheckResult::unhealthy(error),
                    }
                }
            }),
        );
        obs.metrics()
            .in_scope(|| metrics::gauge!("redis_connections").set(1.0));
    }
    let probe = store.clone();
    obs.health().add_check(
        "database",
        observe::health::check_fn(move || {
            let probe = probe.clone();
            async move {
                // Read before the ping, whose own connection is not load.
                let (in_use, max) = (probe.connections_in_use(), probe.max_connections());
                match probe.ping().await {
                    Ok(()) => {
                        // `db_pool_utilization_ratio{check="database"}`, and
                        // what DatabasePoolSaturated reads.
                        observe::health::CheckResult::healthy()
                            .usage(observe::health::Usage::pool(in_use, max))
                            .detail("system", probe.system())
                            .detail("in_use", in_use)
                            .detail("max", max)
                    }
                    Err(error) => observe::health::CheckResult::unhealthy(error),
                }
            }
        }),
    );
    let mut state = vk_parser::AppState::new(store.clone(), vk, obs.metrics().clone());
    if let Some(cache) = cache {
        state = state.with_cache(cache);
    }
    if config.vk_access_token.is_some() {
        // The token itself is never shown.
        state = state.vk_api_description(format!("VK API at {}", config.vk_api_base));
    }
    if let Some(groups) = &config.labelled_groups {
        state = state.labelled_groups(groups.iter().cloned());
    }
    // `database_connections`: the pool's connections in use, once a second.
    let metrics = obs.metrics().clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            let in_use = f64::from(store.connections_in_use());
            metrics.in_scope(|| metrics::gauge!("database_connections").set(in_use));
        }
    });
    let app = obs.router(vk_parser::app(state));
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|error| format!("cannot listen on VK_PARSER_ADDR={}: {error}", config.addr))?;
    obs.serve(listener, app).await?;
    Ok(())
}
