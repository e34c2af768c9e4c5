//! WebSocket fan-out: N clients listen, a driver makes `writes` changes
//! `interval_ms` apart, every client records when each change arrives.
//! Prints the delivery latency from write-acknowledged to received (p50,
//! p99, max), deliveries per second, the server's CPU time and its memory
//! per idle connection. The same workload runs against provider-sync
//! (`--target provider-sync`, admin writes) or the Node `ws` baseline
//! (`--target ws`, `POST /broadcast` of a frame of the same size).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures_util::StreamExt;
use provider_sync_bench::stats::summarize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    ProviderSync,
    Ws,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_enum)]
    target: Target,
    /// provider-sync: the API base (`http://…/api/provider-sync`); ws: `http://host:port`.
    #[arg(long)]
    url: String,
    #[arg(long, default_value = "bench")]
    token: String,
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    #[arg(long, default_value_t = 50)]
    writes: u64,
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// The server's process id, for its memory and CPU time.
    #[arg(long)]
    server_pid: u32,
    /// The model the provider-sync writes change.
    #[arg(long, default_value = "gpt-4o")]
    model: String,
    /// Frame size for the ws baseline (match provider-sync's event).
    #[arg(long, default_value_t = 560)]
    payload_bytes: usize,
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of /proc/PID/stat (utime, stime), counted after the
    // name: indexes 11 and 12. Clock ticks are 100 per second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// The sequence number a frame carries: provider-sync change events carry
/// their version; the baseline's frames a `version` field too.
fn version_of(text: &str, target: Target) -> Option<u64> {
    if target == Target::ProviderSync && !text.contains("\"model_updated\"") {
        return None;
    }
    let value: Value = serde_json::from_str(text).ok()?;
    value["version"].as_u64()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let http = reqwest::Client::new();
    let (ws_url, base_version) = match args.target {
        Target::ProviderSync => {
            let info: Value = http
                .get(format!("{}/version", args.url))
                .send()
                .await?
                .json()
                .await?;
            let version = info["version"].as_u64().unwrap();
            let epoch = info["epoch"].as_str().unwrap().to_owned();
            (
                format!(
                    "{}/ws?since={version}&epoch={epoch}",
                    args.url.replacen("http", "ws", 1)
                ),
                version,
            )
        }
        Target::Ws => (format!("{}/ws", args.url.replacen("http", "ws", 1)), 0),
    };

    let idle_rss = rss_kib(args.server_pid);
    let connecting = Arc::new(Semaphore::new(256));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(args.clients);
    let mut clients = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let (url, connecting, ready, target, expect) = (
            ws_url.clone(),
            connecting.clone(),
            ready_tx.clone(),
            args.target,
            args.writes,
        );
        clients.push(tokio::spawn(async move {
            let permit = connecting.acquire().await.unwrap();
            let (mut ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .expect("connects");
            drop(permit);
            let _ = ready.send(()).await;
            let mut seen: Vec<(u64, Instant)> = Vec::with_capacity(expect as usize);
            let deadline = tokio::time::sleep(Duration::from_secs(120));
            tokio::pin!(deadline);
            while (seen.len() as u64) < expect {
                tokio::select! {
                    message = ws.next() => match message {
                        Some(Ok(Message::Text(text))) => {
                            if let Some(version) = version_of(&text, target) {
                                seen.push((version, Instant::now()));
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    _ = &mut deadline => break,
                }
            }
            seen
        }));
    }
    drop(ready_tx);
    for _ in 0..args.clients {
        ready_rx.recv().await.expect("every client connects");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded_rss = rss_kib(args.server_pid);
    let cpu_before = cpu_seconds(args.server_pid);

    let started = Instant::now();
    let mut acked: HashMap<u64, Instant> = HashMap::new();
    let mut sent: HashMap<u64, Instant> = HashMap::new();
    let pad = "x".repeat(args.payload_bytes.saturating_sub(40));
    for i in 1..=args.writes {
        let tick = started + Duration::from_millis(args.interval_ms * (i - 1));
        tokio::time::sleep_until(tick.into()).await;
        let sent_at = Instant::now();
        match args.target {
            Target::ProviderSync => {
                let response = http
                    .patch(format!("{}/admin/models/{}", args.url, args.model))
                    .bearer_auth(&args.token)
                    .json(&json!({"pricing": {"input_per_million": i as f64, "output_per_million": 1.0}}))
                    .send()
                    .await?;
                let now = Instant::now();
                let version = response.headers()["x-sync-version"]
                    .to_str()?
                    .parse::<u64>()?;
                acked.insert(version - base_version, now);
                sent.insert(version - base_version, sent_at);
            }
            Target::Ws => {
                let body = format!("{{\"version\":{i},\"pad\":\"{pad}\"}}");
                http.post(format!("{}/broadcast", args.url))
                    .body(body)
                    .send()
                    .await?;
                acked.insert(i, Instant::now());
                sent.insert(i, sent_at);
            }
        }
    }
    let mut latencies = Vec::with_capacity(args.clients * args.writes as usize);
    let mut from_send = Vec::with_capacity(args.clients * args.writes as usize);
    let mut last = started;
    let mut missing = 0;
    for client in clients {
        let seen = client.await?;
        missing += args.writes as usize - seen.len().min(args.writes as usize);
        for (version, at) in seen {
            let key = version - base_version;
            if let Some(ack) = acked.get(&key) {
                // An event can arrive before its write's HTTP answer: 0 then.
                latencies.push(at.saturating_duration_since(*ack).as_secs_f64() * 1000.0);
                from_send.push(at.saturating_duration_since(sent[&key]).as_secs_f64() * 1000.0);
                last = last.max(at);
            }
        }
    }
    let cpu = cpu_seconds(args.server_pid) - cpu_before;
    let elapsed = last.duration_since(started).as_secs_f64();
    let summary = summarize(latencies);
    let whole = summarize(from_send);
    println!(
        "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.2} | {:.1} | {} |",
        match args.target {
            Target::ProviderSync => "provider-sync",
            Target::Ws => "node ws",
        },
        args.clients,
        summary.count,
        summary.p50,
        summary.p99,
        summary.max,
        whole.p50,
        whole.p99,
        summary.count as f64 / elapsed,
        cpu,
        (loaded_rss.saturating_sub(idle_rss)) as f64 * 1024.0 / args.clients as f64 / 1024.0,
        missing,
    );
    Ok(())
}
