//! LiteLLM's catalog as the server's workload: import (read, map, check) time
//! for one release's chat models, the state's bytes raw, gzip and brotli (as
//! served and at the best level), and the reconcile of one release into the
//! next (time and events). Prints markdown rows for `median-rows`.
//!
//! Usage: litellm-catalog OLD.json NEW.json   (run by scripts/bench.sh)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use provider_sync_bench::compressed::{brotli, gzip};
use provider_sync_server::catalog::{LoadOptions, watch};
use provider_sync_server::{Catalog, Config};

#[derive(Debug, Parser)]
struct Args {
    /// The older release's model_prices_and_context_window.json.
    old: PathBuf,
    /// The newer release's.
    new: PathBuf,
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// A copy with a set modification time: a plain LiteLLM file's revision.
fn copy_with_mtime(from: &Path, to: &Path, secs: u64) {
    std::fs::copy(from, to).unwrap();
    let file = std::fs::File::options().write(true).open(to).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let started = Instant::now();
    let catalog = Catalog::load(&args.new)?;
    let import = started.elapsed();
    println!(
        "catalog: {} chat models of {} providers ({} entries read, {} skipped)\n",
        catalog.models.len(),
        catalog.providers.len(),
        catalog.report.entries,
        catalog.report.skipped_count()
    );

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("model_prices_and_context_window.json");
    copy_with_mtime(&args.new, &path, 1_800_000_000);
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".parse()?;
    config.database = dir.path().join("seed.db").display().to_string();
    config.catalog = Some(path.clone());
    config.event_retention = 10_000;
    let started = Instant::now();
    let server = provider_sync_server::start(config).await?;
    let seed = started.elapsed();
    let base = server.base_url();
    let plain = reqwest::Client::builder().no_gzip().no_brotli().build()?;
    let raw = plain
        .get(format!("{base}/state"))
        .send()
        .await?
        .bytes()
        .await?;
    let served = |encoding: &'static str| {
        let request = plain
            .get(format!("{base}/state"))
            .header("accept-encoding", encoding);
        async move { request.send().await.unwrap().bytes().await.unwrap().len() }
    };
    let (served_gzip, served_br) = (served("gzip").await, served("br").await);
    server.stop().await;

    // One release into the next: start on the old file, then reload the new.
    copy_with_mtime(&args.old, &path, 1_700_000_000);
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".parse()?;
    config.database = dir.path().join("reconcile.db").display().to_string();
    config.catalog = Some(path.clone());
    config.event_retention = 10_000;
    let server = provider_sync_server::start(config).await?;
    let before = server.service().snapshot().version();
    copy_with_mtime(&args.new, &path, 1_800_000_000);
    let started = Instant::now();
    watch::reload(server.service(), &path, &LoadOptions::default(), "bench").await;
    let reconcile = started.elapsed();
    let events = server.service().snapshot().version() - before;
    server.stop().await;

    println!("| measure | value |");
    println!("| --- | ---: |");
    println!("| import (read, map, check), ms | {} |", ms(import));
    println!(
        "| seed an empty SQLite store and listen, ms | {} |",
        ms(seed)
    );
    println!("| `/state` raw, bytes | {} |", raw.len());
    println!("| `/state` gzip as served, bytes | {served_gzip} |");
    println!("| `/state` brotli as served, bytes | {served_br} |");
    println!("| `/state` gzip -9, bytes | {} |", gzip(&raw));
    println!("| `/state` brotli 11, bytes | {} |", brotli(&raw));
    println!(
        "| reconcile old release into new (reload), ms | {} |",
        ms(reconcile)
    );
    println!("| reconcile old release into new, events | {events} |");
    Ok(())
}
