//! Bytes on the wire for a large catalog (default 50 providers × 2,000
//! models): the full state raw, gzip and brotli as the server sends them; an
//! incremental sync for one change; that change as a WebSocket event.

use clap::Parser;
use futures_util::StreamExt;
use provider_sync_bench::catalog::catalog_toml;
use provider_sync_bench::compressed::{brotli, gzip};
use provider_sync_server::Config;
use serde_json::{Value, json};

/// The admin token (at least 32 bytes, as the server requires).
const TOKEN: &str = "bench-admin-token-of-32-bytes-or-more";

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    size: provider_sync_bench::catalog::CatalogSize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse().size;
    let dir = tempfile::tempdir()?;
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(&catalog, catalog_toml(args.providers, args.models))?;
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".parse()?;
    config.database = dir.path().join("bench.db").display().to_string();
    config.catalog = Some(catalog);
    config.admin_token = Some(TOKEN.into());
    let server = provider_sync_server::start(config).await?;
    let base = server.base_url();
    let plain = reqwest::Client::builder().no_gzip().no_brotli().build()?;

    let raw = plain
        .get(format!("{base}/state"))
        .send()
        .await?
        .bytes()
        .await?;
    let on_wire = |encoding: &'static str| {
        let request = plain
            .get(format!("{base}/state"))
            .header("accept-encoding", encoding);
        async move { request.send().await.unwrap().bytes().await.unwrap().len() }
    };
    let (served_gzip, served_br) = (on_wire("gzip").await, on_wire("br").await);
    // Once the version has been stable for `--precompress-after-ms`, the
    // server answers with the copy it compressed at the best levels in the
    // background (seconds of CPU for this catalog): wait for it. Its gzip
    // may be the size of the on-the-fly one; the brotli copy never is, and
    // both copies are kept at once.
    let started = std::time::Instant::now();
    let (best_gzip, best_br) = loop {
        let br_now = on_wire("br").await;
        if br_now != served_br {
            break (on_wire("gzip").await, br_now);
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            server.stop().await;
            return Err("no copy at the best levels was served within 120 s".into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    let state: Value = serde_json::from_slice(&raw)?;
    let version = state["metadata"]["version"].as_u64().unwrap();
    let epoch = state["metadata"]["epoch"].as_str().unwrap().to_owned();

    // A client at `version` listens; one model's price changes.
    let ws_url = format!(
        "{}/ws?since={version}&epoch={epoch}",
        base.replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await?;
    ws.next().await; // hello
    let changed = plain
        .patch(format!("{base}/admin/models/model-00042"))
        .bearer_auth(TOKEN)
        .json(&json!({"pricing": {"input_per_million": 9.75, "output_per_million": 19.5}}))
        .send()
        .await?;
    assert!(changed.status().is_success());
    let frame = loop {
        let message = ws.next().await.unwrap()?;
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message
            && text.contains("model_updated")
        {
            break text.len();
        }
    };
    let incremental = plain
        .post(format!("{base}/sync"))
        .json(&json!({"client_version": version, "client_epoch": epoch}))
        .send()
        .await?
        .bytes()
        .await?;
    let body: Value = serde_json::from_slice(&incremental)?;
    assert_eq!(body["sync_type"], "incremental");

    println!(
        "catalog: {} providers × {} models (version {version})\n",
        args.providers, args.models
    );
    println!("| payload | bytes |\n| --- | ---: |");
    println!("| `GET /state` raw JSON | {} |", raw.len());
    println!("| `GET /state` gzip, as served at once (on the fly) | {served_gzip} |");
    println!("| `GET /state` brotli, as served at once (on the fly) | {served_br} |");
    println!("| `GET /state` gzip, as served once the version is stable | {best_gzip} |");
    println!("| `GET /state` brotli, as served once the version is stable | {best_br} |");
    println!("| `GET /state` gzip -9 (best possible) | {} |", gzip(&raw));
    println!(
        "| `GET /state` brotli -q 11 (best possible) | {} |",
        brotli(&raw)
    );
    println!(
        "| `POST /sync` incremental, one model changed, raw | {} |",
        incremental.len()
    );
    println!("| the same, gzip -9 | {} |", gzip(&incremental));
    println!("| WebSocket `model_updated` frame | {frame} |");
    println!(
        "\none change = {:.3}% of the full state (raw), {:.3}% of the brotli state as served once stable",
        incremental.len() as f64 * 100.0 / raw.len() as f64,
        incremental.len() as f64 * 100.0 / best_br as f64,
    );
    server.stop().await;
    Ok(())
}
