//! Provider health probes: a GET to each provider's `health_url` on an
//! interval. A change of status is written as a `provider_status_changed`
//! event; the latest reading of every probe is kept in memory for the
//! availability endpoint, without an event per probe.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use provider_sync_protocol::{ProviderHealth, ProviderStatus};

use crate::clock::now_rfc3339;
use crate::commands::change_status;
use crate::metrics::ProbeLabels;
use crate::service::Service;
use crate::shutdown::Shutdown;
use crate::store::Role;

/// Recent results kept per provider for the error rate.
const WINDOW: usize = 10;

#[derive(Debug, Clone, Copy)]
pub struct ProbeSettings {
    pub interval: Duration,
    pub timeout: Duration,
    /// A success slower than this is `degraded`.
    pub degraded_after: Duration,
    /// This many failures in a row make a provider `unavailable`.
    pub failures: u32,
}

#[derive(Debug, Default)]
struct Track {
    results: VecDeque<bool>,
    consecutive_failures: u32,
    reading: ProviderHealth,
}

/// The latest reading of every probed provider.
#[derive(Debug, Default)]
pub struct HealthBoard {
    tracks: Mutex<HashMap<String, Track>>,
}

impl HealthBoard {
    /// The latest reading, if the provider was probed.
    pub fn reading(&self, provider_id: &str) -> Option<ProviderHealth> {
        let tracks = self.tracks.lock().expect("health board lock");
        tracks.get(provider_id).map(|t| t.reading.clone())
    }

    fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut tracks = self.tracks.lock().expect("health board lock");
        tracks.retain(|id, _| keep(id));
    }

    /// Records one probe result and returns the status and health it implies.
    fn record(
        &self,
        provider_id: &str,
        outcome: Result<Duration, String>,
        settings: &ProbeSettings,
    ) -> (ProviderStatus, ProviderHealth) {
        let mut tracks = self.tracks.lock().expect("health board lock");
        let track = tracks.entry(provider_id.to_owned()).or_default();
        let ok = outcome.is_ok();
        track.results.push_back(ok);
        if track.results.len() > WINDOW {
            track.results.pop_front();
        }
        track.consecutive_failures = if ok {
            0
        } else {
            track.consecutive_failures + 1
        };
        let failed = track.results.iter().filter(|ok| !**ok).count();
        let (status, latency, message) = match outcome {
            Ok(latency) if latency > settings.degraded_after => (
                ProviderStatus::Degraded,
                Some(latency),
                Some(format!("slow: answered in {} ms", latency.as_millis())),
            ),
            Ok(latency) => (ProviderStatus::Available, Some(latency), None),
            Err(message) if track.consecutive_failures >= settings.failures => {
                (ProviderStatus::Unavailable, None, Some(message))
            }
            Err(message) => (ProviderStatus::Degraded, None, Some(message)),
        };
        track.reading = ProviderHealth {
            last_check: Some(now_rfc3339()),
            latency_ms: latency.map(|l| l.as_millis().min(u32::MAX as u128) as u32),
            error_rate: failed as f64 / track.results.len() as f64,
            consecutive_failures: track.consecutive_failures,
            message,
        };
        (status, track.reading.clone())
    }
}

/// Probes one URL: success is a 2xx answer within the timeout.
async fn probe(client: &reqwest::Client, url: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("health check failed: {e}"))?;
    let status = response.status();
    if status.is_success() {
        Ok(started.elapsed())
    } else {
        Err(format!("health check answered HTTP {}", status.as_u16()))
    }
}

/// Probes every monitored provider once; writes the status changes.
pub async fn probe_all(
    service: &Arc<Service>,
    board: &HealthBoard,
    client: &reqwest::Client,
    settings: &ProbeSettings,
) {
    let snapshot = service.snapshot();
    let targets: Vec<(String, String)> = snapshot
        .state
        .providers
        .iter()
        .filter(|p| p.enabled && p.status != ProviderStatus::Maintenance)
        .filter_map(|p| Some((p.id.clone(), p.health_url.clone()?)))
        .collect();
    // Readings of providers no longer probed (deleted, unmonitored, in
    // maintenance) are dropped rather than shown stale.
    board.retain(|id| targets.iter().any(|(target, _)| target == id));
    let results = futures_util::future::join_all(targets.into_iter().map(|(id, url)| async move {
        let outcome = probe(client, &url).await;
        (id, outcome)
    }))
    .await;
    let mut changes = Vec::new();
    for (id, outcome) in results {
        let result = if outcome.is_ok() { "ok" } else { "failed" };
        service
            .metrics()
            .probes
            .get_or_create(&ProbeLabels { result })
            .inc();
        let (status, health) = board.record(&id, outcome, settings);
        if snapshot
            .state
            .provider(&id)
            .is_some_and(|p| p.status != status)
        {
            changes.push((id, status, health));
        }
    }
    // The role may have moved while the probes ran.
    if changes.is_empty() || !service.store().lead(Role::Health).await {
        return;
    }
    let written = service
        .write(|draft| {
            for (id, status, health) in changes.iter().cloned() {
                // Re-read: an operator may have changed it meanwhile.
                let Some(current) = draft.state().provider(&id).cloned() else {
                    continue;
                };
                if current.status != status && current.status != ProviderStatus::Maintenance {
                    tracing::info!(provider = %id, from = ?current.status, to = ?status, "provider status changed");
                    change_status(draft, &current, status, health, true);
                }
            }
            Ok(())
        })
        .await;
    if let Err(err) = written {
        tracing::error!(error = %err, "could not record provider status changes");
    }
}

/// Runs the probes until shutdown.
pub fn spawn(
    service: Arc<Service>,
    board: Arc<HealthBoard>,
    settings: ProbeSettings,
    mut shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("provider-sync/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(client) => client,
            Err(err) => {
                tracing::error!(error = %err, "health probes disabled: no HTTP client");
                return;
            }
        };
        let mut ticks = tokio::time::interval(settings.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    // One instance of a cluster probes at a time; another
                    // takes over when it dies.
                    if service.store().lead(Role::Health).await {
                        probe_all(&service, &board, &client, &settings).await;
                    } else {
                        // Another instance probes: this one's readings would
                        // only grow stale.
                        board.retain(|_| false);
                    }
                }
                _ = shutdown.wait() => return,
            }
        }
    })
}
