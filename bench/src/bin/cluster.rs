//! Several instances on one PostgreSQL (started by `scripts/bench.sh`):
//!
//! - from an admin write on instance A to the frame at a WebSocket client
//!   of instance B (the write's sending to the frame's arrival), against the
//!   same client on A itself — the cost of crossing instances;
//! - write throughput: `writers` concurrent writers spread over every
//!   instance given, for `seconds`, against the same writers on the first
//!   instance alone.
//!
//! Prints markdown rows for `median-rows`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use provider_sync_bench::stats::summarize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Parser)]
struct Args {
    /// API bases of the instances (`http://…/api/provider-sync`), at least 2.
    #[arg(long, required = true, num_args = 2..)]
    instances: Vec<String>,
    #[arg(long, default_value = "bench-admin-token-of-32-bytes-or-more")]
    token: String,
    /// Writes for the latency figures.
    #[arg(long, default_value_t = 200)]
    writes: usize,
    /// Concurrent writers for the throughput figures.
    #[arg(long, default_value_t = 12)]
    writers: usize,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

/// A client that records when each change version arrives.
async fn listen(
    base: &str,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<std::sync::Mutex<Vec<(u64, Instant)>>>,
) {
    let url = format!("{}/ws", base.replacen("http://", "ws://", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let task = tokio::spawn(async move {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message {
                let event: Value = serde_json::from_str(&text).unwrap_or_default();
                let kind = event["type"].as_str().unwrap_or("");
                if kind.ends_with("_updated") || kind.ends_with("_added") {
                    let version = event["version"].as_u64().unwrap_or(0);
                    record.lock().unwrap().push((version, Instant::now()));
                }
            }
        }
    });
    (task, seen)
}

async fn write(http: &reqwest::Client, base: &str, token: &str, id: &str, n: u64) -> Option<u64> {
    let response = http
        .patch(format!("{base}/admin/providers/{id}"))
        .bearer_auth(token)
        .json(&json!({"priority": n}))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let version: Value = http
        .get(format!("{base}/version"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    version["version"].as_u64()
}

/// Milliseconds from each write's sending (on `writer`) to its frame at a
/// client of `listener`.
async fn latency(args: &Args, http: &reqwest::Client, writer: &str, listener: &str) -> Vec<f64> {
    let (task, seen) = listen(listener).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut sent = Vec::new();
    for n in 0..args.writes {
        let at = Instant::now();
        // One write at a time: its version is the one after the last.
        let before = seen.lock().unwrap().len();
        let _ = write(http, writer, &args.token, "bench", n as u64).await;
        sent.push((before, at));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().len() < args.writes && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    let seen = seen.lock().unwrap();
    sent.iter()
        .enumerate()
        .filter_map(|(i, (_, at))| {
            seen.get(i)
                .map(|(_, arrived)| (*arrived - *at).as_secs_f64() * 1000.0)
        })
        .collect()
}

async fn throughput(args: &Args, http: &reqwest::Client, bases: &[String]) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for w in 0..args.writers {
        let http = http.clone();
        let base = bases[w % bases.len()].clone();
        let token = args.token.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("w{w}");
            let _ = http
                .post(format!("{base}/admin/providers"))
                .bearer_auth(&token)
                .json(&json!({"id": id, "name": id}))
                .send()
                .await;
            let mut n = 0u64;
            while Instant::now() < until {
                n += 1;
                let response = http
                    .patch(format!("{base}/admin/providers/{id}"))
                    .bearer_auth(&token)
                    .json(&json!({"priority": n}))
                    .send()
                    .await;
                if response.is_ok_and(|r| r.status().is_success()) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    done.load(Ordering::Relaxed) as f64 / args.seconds as f64
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let http = reqwest::Client::new();
    let (a, b) = (&args.instances[0], &args.instances[1]);
    let _ = http
        .post(format!("{a}/admin/providers"))
        .bearer_auth(&args.token)
        .json(&json!({"id": "bench", "name": "Bench"}))
        .send()
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Warm up first: the first writes to a new database are several times
    // slower (measured: 14 ms against 3 ms at p50) and would weigh on
    // whichever figure came first.
    let _ = latency(&args, &http, a, b).await;
    let same = summarize(latency(&args, &http, a, a).await);
    let across = summarize(latency(&args, &http, a, b).await);
    println!(
        "| write on A → frame at a client of A (same instance), ms | {:.2} | {:.2} |",
        same.p50, same.p99
    );
    println!(
        "| write on A → frame at a client of B (across instances), ms | {:.2} | {:.2} |",
        across.p50, across.p99
    );
    let one = throughput(&args, &http, &args.instances[..1]).await;
    let all = throughput(&args, &http, &args.instances).await;
    println!(
        "| writes/s, {} writers on 1 instance | {one:.0} | {one:.0} |",
        args.writers
    );
    println!(
        "| writes/s, {} writers over {} instances | {all:.0} | {all:.0} |",
        args.writers,
        args.instances.len()
    );
}
