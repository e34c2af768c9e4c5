//! WebSocket fan-out: N clients listen, a driver makes `writes` changes
//! `interval_ms` apart, every client records when each change arrives.
//! Prints one markdown row: the delivery latency from write-acknowledged to
//! received (p50, p99, max) and from the write's sending (p50, p99),
//! deliveries per second, the CPU time per delivery of the server and of the
//! load generator itself, and the server's memory per idle connection. The
//! same workload runs against provider-sync (`--target provider-sync`, admin
//! writes), the Node `ws` baseline (`--target ws`, `POST /broadcast` of a
//! frame of the same size) or the floor (`--target floor`, `src/bin/floor.rs`:
//! the same protocol as the baseline, served with plain non-blocking writes). With `LOADGEN_PER_WRITE` set it also prints,
//! on stderr, p50/p99/max per write: how a tail was found to come from one
//! write (the last one, while 10k sockets closed) rather than from all.

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
    Floor,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_enum)]
    target: Target,
    /// provider-sync: the API base (`http://…/api/provider-sync`); ws: `http://host:port`.
    #[arg(long)]
    url: String,
    #[arg(long, default_value = "bench-admin-token-of-32-bytes-or-more")]
    token: String,
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    #[arg(long, default_value_t = 50)]
    writes: u64,
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// The server's process id, for its memory and CPU time (several, summed,
    /// for several instances).
    #[arg(long, required = true, num_args = 1..)]
    server_pid: Vec<u32>,
    /// provider-sync: API bases the clients connect to, round robin (other
    /// instances of a cluster); default `--url`. Writes go to `--url`.
    #[arg(long, num_args = 1..)]
    client_url: Vec<String>,
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
/// their version; the baseline's frames a `version` field too. Both put it
/// before any nested object, so the first `"version":` is the frame's own.
/// A scan rather than a JSON parse: at 10k clients the load generator's own
/// cost per frame is part of every latency it reports, for both servers.
fn version_of(text: &str, target: Target) -> Option<u64> {
    if target == Target::ProviderSync && !text.contains("\"type\":\"model_updated\"") {
        return None;
    }
    const KEY: &str = "\"version\":";
    let start = text.find(KEY)? + KEY.len();
    let digits = text[start..].bytes().take_while(u8::is_ascii_digit).count();
    text[start..start + digits].parse().ok()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let http = reqwest::Client::new();
    let (ws_urls, base_version) = match args.target {
        Target::ProviderSync => {
            let info: Value = http
                .get(format!("{}/version", args.url))
                .send()
                .await?
                .json()
                .await?;
            let version = info["version"].as_u64().unwrap();
            let epoch = info["epoch"].as_str().unwrap().to_owned();
            let bases = if args.client_url.is_empty() {
                vec![args.url.clone()]
            } else {
                args.client_url.clone()
            };
            (
                bases
                    .iter()
                    .map(|base| {
                        format!(
                            "{}/ws?since={version}&epoch={epoch}",
                            base.replacen("http", "ws", 1)
                        )
                    })
                    .collect::<Vec<_>>(),
                version,
            )
        }
        Target::Ws | Target::Floor => (
            vec![format!("{}/ws", args.url.replacen("http", "ws", 1))],
            0,
        ),
    };
    let rss = |pids: &[u32]| pids.iter().map(|p| rss_kib(*p)).sum::<u64>();
    let cpu_of = |pids: &[u32]| pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>();

    let idle_rss = rss(&args.server_pid);
    let connecting = Arc::new(Semaphore::new(256));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(args.clients);
    let mut clients = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let (url, connecting, ready, target, expect) = (
            ws_urls[i % ws_urls.len()].clone(),
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
            // The socket stays open until every client is done: closing
            // 10k connections while the last change is still arriving would
            // put their teardown into its latency.
            (seen, ws)
        }));
    }
    drop(ready_tx);
    for _ in 0..args.clients {
        ready_rx.recv().await.expect("every client connects");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded_rss = rss(&args.server_pid);
    let cpu_before = cpu_of(&args.server_pid);
    let own_cpu_before = cpu_seconds(std::process::id());

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
            Target::Ws | Target::Floor => {
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
    let mut per_write: HashMap<u64, Vec<f64>> = HashMap::new();
    let mut last = started;
    let mut missing = 0;
    let mut finished = Vec::with_capacity(args.clients);
    for client in clients {
        finished.push(client.await?);
    }
    let cpu = cpu_of(&args.server_pid) - cpu_before;
    let own_cpu = cpu_seconds(std::process::id()) - own_cpu_before;
    let mut sockets = Vec::with_capacity(args.clients);
    for (seen, socket) in finished {
        sockets.push(socket);
        missing += args.writes as usize - seen.len().min(args.writes as usize);
        for (version, at) in seen {
            let key = version - base_version;
            if let Some(ack) = acked.get(&key) {
                // An event can arrive before its write's HTTP answer: 0 then.
                latencies.push(at.saturating_duration_since(*ack).as_secs_f64() * 1000.0);
                let whole = at.saturating_duration_since(sent[&key]).as_secs_f64() * 1000.0;
                from_send.push(whole);
                per_write.entry(key).or_default().push(whole);
                last = last.max(at);
            }
        }
    }
    if std::env::var_os("LOADGEN_PER_WRITE").is_some() {
        let mut keys: Vec<_> = per_write.keys().copied().collect();
        keys.sort();
        for key in keys {
            let s = summarize(per_write.remove(&key).unwrap());
            eprintln!(
                "write {key}: p50 {:.1} p99 {:.1} max {:.1}",
                s.p50, s.p99, s.max
            );
        }
    }
    drop(sockets);
    let elapsed = last.duration_since(started).as_secs_f64();
    let summary = summarize(latencies);
    let whole = summarize(from_send);
    let per_delivery_us = |seconds: f64| seconds * 1e6 / summary.count.max(1) as f64;
    // One markdown row; `fanout-summary` takes the median of repeated runs.
    println!(
        "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {} |",
        match (args.target, ws_urls.len()) {
            (Target::ProviderSync, 1) => "provider-sync".to_owned(),
            (Target::ProviderSync, n) => format!("provider-sync, clients over {n} instances"),
            (Target::Ws, _) => "node ws".to_owned(),
            (Target::Floor, _) => "floor".to_owned(),
        },
        args.clients,
        args.interval_ms,
        summary.p50,
        summary.p99,
        summary.max,
        whole.p50,
        whole.p99,
        summary.count as f64 / elapsed,
        per_delivery_us(cpu),
        per_delivery_us(own_cpu),
        (loaded_rss.saturating_sub(idle_rss)) as f64 / args.clients as f64,
        missing,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_sync_protocol::{EventPayload, Heartbeat, ModelSpecification, SyncEvent};

    fn frame(version: u64, payload: EventPayload) -> String {
        serde_json::to_string(&SyncEvent {
            id: "evt".into(),
            version,
            timestamp: "2026-11-25T00:00:00Z".into(),
            payload,
        })
        .unwrap()
    }

    #[test]
    fn reads_the_version_of_a_change_and_skips_control_frames() {
        let model: ModelSpecification = serde_json::from_value(json!({
            "id": "m", "name": "M", "provider_id": "p", "context_window": 1000,
            "max_input_tokens": 900, "max_output_tokens": 100,
            "supports_streaming": true, "supports_vision": false,
            "supports_function_calling": false, "supports_json_mode": false,
            "pricing": null, "deprecation_status": "active", "deprecation_date": null,
            "sunset_date": null, "replacement_model_id": null, "revision": 3,
        }))
        .unwrap();
        let change = frame(42, EventPayload::ModelUpdated(model));
        assert_eq!(version_of(&change, Target::ProviderSync), Some(42));
        let heartbeat = frame(
            41,
            EventPayload::Heartbeat(Heartbeat {
                epoch: "e".into(),
                version: 41,
                checksum: "c".into(),
                server_time: "2026-11-25T00:00:00Z".into(),
                store_reachable: true,
            }),
        );
        assert_eq!(version_of(&heartbeat, Target::ProviderSync), None);
        let baseline = format!("{{\"version\":123,\"pad\":\"{}\"}}", "x".repeat(500));
        assert_eq!(version_of(&baseline, Target::Ws), Some(123));
        assert_eq!(version_of("{\"pad\":1}", Target::Ws), None);
    }
}
