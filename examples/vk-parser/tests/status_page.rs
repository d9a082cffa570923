//! `GET /status` of the running demo in a real browser: Debian's
//! `chromium`, headless (installed by `scripts/test.sh`), with every host
//! but loopback unresolvable, so the page must work without network access.
//! It must draw its charts, show the same totals as `/metrics`, raise no
//! JavaScript error, and fit 360 px; a screenshot is saved under `target/`.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use common::{start_with, url};
use observe_tests::{
    http_get, post_json,
    prometheus::{samples, sum},
};

/// Runs headless Chromium on `url` at `width`×900 with `args`; its stdout
/// and stderr. The flags are those a closed network needs (no background
/// connections) and those that make a run repeatable.
fn chromium(url: &str, width: u32, args: &[&str]) -> (String, String) {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "chromium is missing: scripts/test.sh installs Debian's chromium"
    );
    let profile =
        std::env::temp_dir().join(format!("observe-chromium-{}-{width}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            // No network: any host but loopback fails to resolve.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--enable-logging=stderr",
            "--v=0",
            // Long enough for the first refresh and the one 5 s later.
            "--virtual-time-budget=8000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={width},900"))
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(output.status.success(), "{output:?}");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The text of the element with `id` in `dom`.
fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let start = start + dom[start..].find('>').unwrap() + 1;
    let end = start + dom[start..].find('<').unwrap();
    &dom[start..end]
}

/// The value of `data-{name}` on `<body>`.
fn body_data<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let body = &dom[dom.find("<body")?..];
    let body = &body[..body.find('>')?];
    let start = body.find(&format!("data-{name}=\""))? + name.len() + 7;
    Some(&body[start..start + body[start..].find('"')?])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_draws_the_demos_figures_in_a_real_browser() {
    let (demo, _) = start_with(&[]).await;
    // Traffic: a parse, two that fail, plain requests.
    let parse = url(&demo, "/api/v1/groups/durov/parse");
    let reply = post_json(&parse, r#"{"posts_limit":1,"comments_per_post":1}"#).await;
    assert_eq!(reply.status, 200);
    for _ in 0..2 {
        let failing = url(&demo, "/api/v1/groups/error_5/parse");
        let reply = post_json(&failing, r#"{"posts_limit":1,"comments_per_post":1}"#).await;
        assert_eq!(reply.status, 502);
    }
    for _ in 0..30 {
        assert_eq!(http_get(&url(&demo, "/"), &[]).await.status, 200);
    }
    // The rolling window ticks once a second.
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    // The page is self-contained: no address elsewhere.
    let page = http_get(&url(&demo, "/status"), &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    let html = String::from_utf8(page.body.to_vec()).unwrap();
    for outside in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(outside), "the page loads {outside}");
    }

    let status = url(&demo, "/status");
    let (dom, log) = tokio::task::spawn_blocking(move || chromium(&status, 1280, &["--dump-dom"]))
        .await
        .unwrap();
    assert_eq!(body_data(&dom, "drawn"), Some("true"), "{dom}");
    assert_eq!(body_data(&dom, "errors"), None, "JavaScript errors");
    assert_eq!(text_of(&dom, "problem"), "");
    for line in log.lines().filter(|line| line.contains("CONSOLE")) {
        assert!(
            !line.contains("Uncaught") && !line.contains("Error"),
            "console: {line}"
        );
    }
    // Charts drawn: a path per series.
    assert_eq!(dom.matches("<path ").count(), 5, "{dom}");
    assert_eq!(text_of(&dom, "service"), "vk-parser");
    assert_eq!(text_of(&dom, "version"), env!("CARGO_PKG_VERSION"));
    // The machine's own memory and disk decide the aggregate; every check
    // is listed with a status.
    let health = text_of(&dom, "health-status");
    assert!(
        ["· healthy", "· warning", "· degraded"].contains(&health),
        "{health}"
    );
    for check in ["database", "disk", "memory"] {
        assert!(
            dom.contains(&format!("<td>{check}</td>")),
            "{check} not listed"
        );
    }

    // The totals are /metrics' (the page's own requests are not counted).
    let metrics = http_get(&url(&demo, "/metrics"), &[]).await;
    let metrics = samples(std::str::from_utf8(&metrics.body).unwrap());
    let requests = sum(&metrics, "http_requests_total", &[]);
    let errors: f64 = metrics
        .iter()
        .filter(|sample| {
            sample.name == "http_requests_total"
                && sample
                    .labels
                    .get("status_code")
                    .is_some_and(|code| code.starts_with('5'))
        })
        .map(|sample| sample.value)
        .sum();
    assert_eq!(requests, 33.0);
    assert_eq!(errors, 2.0);
    assert_eq!(text_of(&dom, "requests-total"), "33");
    assert_eq!(text_of(&dom, "errors-total"), "2");

    // 360 px wide: nothing wider than the screen; and a screenshot.
    let status = url(&demo, "/status");
    let (narrow, _) = tokio::task::spawn_blocking(move || chromium(&status, 360, &["--dump-dom"]))
        .await
        .unwrap();
    assert_eq!(body_data(&narrow, "overflow"), Some("false"));
    assert_eq!(body_data(&narrow, "drawn"), Some("true"));
    let screenshot =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/status-page-360.png");
    let _ = std::fs::remove_file(&screenshot);
    // Missing when the build goes elsewhere (`CARGO_TARGET_DIR`).
    if let Some(directory) = screenshot.parent() {
        std::fs::create_dir_all(directory).unwrap();
    }
    let argument = format!("--screenshot={}", screenshot.display());
    let status = url(&demo, "/status");
    tokio::task::spawn_blocking(move || chromium(&status, 360, &[&argument]))
        .await
        .unwrap();
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}

#[tokio::test]
async fn the_status_page_takes_the_metrics_token_as_a_header_or_in_the_query() {
    let (demo, _) = start_with(&[("OBSERVE_METRICS_TOKEN", "page-token")]).await;
    assert_eq!(http_get(&url(&demo, "/status"), &[]).await.status, 401);
    assert_eq!(http_get(&url(&demo, "/status/red"), &[]).await.status, 401);
    assert_eq!(
        http_get(&url(&demo, "/status?token=wrong"), &[])
            .await
            .status,
        401
    );
    assert_eq!(
        http_get(&url(&demo, "/status?token=page-token"), &[])
            .await
            .status,
        200
    );
    let red = http_get(
        &url(&demo, "/status/red"),
        &[("authorization", "Bearer page-token")],
    )
    .await;
    assert_eq!(red.status, 200);
    let body: serde_json::Value = red.json();
    assert_eq!(body["service"], "vk-parser");
    assert_eq!(body["step_seconds"], 10);
    // /metrics itself still wants the header.
    assert_eq!(
        http_get(&url(&demo, "/metrics?token=page-token"), &[])
            .await
            .status,
        401
    );
}
