//! Provider health probes: a GET to each provider's `health_url` on an
//! interval. A change of status is written as a `provider_status_changed`
//! event; the latest reading of every probe is kept in memory for the
//! availability endpoint, without an event per probe.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use provider_sync_protocol::{ProviderHealth, ProviderStatus, ProviderSyncInfo};

use crate::clock::now_rfc3339;
use crate::commands::change_status;
use crate::metrics::ProbeLabels;
use crate::service::Service;
use crate::shutdown::Shutdown;
use crate::store::{Role, SharedReading};

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
    /// Whether probes may go to loopback, private, link-local and other
    /// non-public addresses (`--health-allow-private`).
    pub allow_private: bool,
}

impl ProbeSettings {
    /// How often the instance that probes asks for its role at the most
    /// (a tick, and its probes' time limit).
    fn lead_every(&self) -> Duration {
        self.interval + self.timeout
    }
}

#[derive(Debug, Default)]
struct Track {
    /// The endpoint the readings are of.
    url: String,
    results: VecDeque<bool>,
    consecutive_failures: u32,
    reading: ProviderHealth,
    /// The status the last reading implied; none before the first.
    status: Option<ProviderStatus>,
}

/// The latest reading of every probed provider.
#[derive(Debug, Default)]
pub struct HealthBoard {
    tracks: Mutex<HashMap<String, Track>>,
}

impl HealthBoard {
    /// The latest reading of the endpoint `url`, if the provider was probed
    /// there (not one of the endpoint it had before).
    pub fn reading(&self, provider_id: &str, url: &str) -> Option<ProviderHealth> {
        let tracks = self.tracks.lock().expect("health board lock");
        tracks
            .get(provider_id)
            .filter(|t| t.url == url)
            .map(|t| t.reading.clone())
    }

    fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut tracks = self.tracks.lock().expect("health board lock");
        tracks.retain(|id, _| keep(id));
    }

    /// Records one probe result and returns the status and health it
    /// implies, and the status the reading before it implied (none for the
    /// first). `stored` is the provider's health as the store has it: a
    /// provider this board has not probed yet (after a restart, or the
    /// probes' move to another instance) goes on from its stored failure
    /// streak, so one that was down is not made usable by its next failure.
    fn record(
        &self,
        provider_id: &str,
        url: &str,
        stored: Option<&ProviderHealth>,
        outcome: Result<Duration, Failure>,
        settings: &ProbeSettings,
    ) -> (ProviderStatus, ProviderHealth, Option<ProviderStatus>) {
        let mut tracks = self.tracks.lock().expect("health board lock");
        let fresh = || {
            let streak = stored.map_or(0, |health| health.consecutive_failures);
            Track {
                url: url.to_owned(),
                results: std::iter::repeat_n(false, (streak as usize).min(WINDOW)).collect(),
                consecutive_failures: streak,
                ..Track::default()
            }
        };
        let track = tracks.entry(provider_id.to_owned()).or_insert_with(fresh);
        if track.url != url {
            // Another endpoint: its readings start again.
            *track = fresh();
        }
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
            Err(failure) if track.consecutive_failures >= settings.failures => {
                (ProviderStatus::Unavailable, None, Some(failure.message()))
            }
            Err(failure) => (ProviderStatus::Degraded, None, Some(failure.message())),
        };
        track.reading = ProviderHealth {
            last_check: Some(now_rfc3339()),
            latency_ms: latency.map(|l| l.as_millis().min(u32::MAX as u128) as u32),
            error_rate: failed as f64 / track.results.len() as f64,
            consecutive_failures: track.consecutive_failures,
            message,
        };
        (status, track.reading.clone(), track.status.clone())
    }

    /// The latest reading of every provider probed, for the other
    /// instances of a cluster.
    fn shared(&self) -> Vec<SharedReading> {
        let tracks = self.tracks.lock().expect("health board lock");
        tracks
            .iter()
            .filter(|(_, track)| track.reading.last_check.is_some())
            .map(|(id, track)| SharedReading {
                provider_id: id.clone(),
                url: track.url.clone(),
                health: track.reading.clone(),
            })
            .collect()
    }

    /// Takes the readings the instance that probes shared as this board's
    /// (an instance that does not probe shows them). Should this instance
    /// take the probes over, each goes on from its reading's failure
    /// streak, as from a stored one, and its next reading counts as a
    /// first (see [`probes_may_set`]).
    fn adopt(&self, readings: Vec<SharedReading>) {
        let tracks = readings
            .into_iter()
            .map(|shared| {
                let streak = shared.health.consecutive_failures;
                let track = Track {
                    url: shared.url,
                    results: std::iter::repeat_n(false, (streak as usize).min(WINDOW)).collect(),
                    consecutive_failures: streak,
                    reading: shared.health,
                    status: None,
                };
                (shared.provider_id, track)
            })
            .collect();
        *self.tracks.lock().expect("health board lock") = tracks;
    }

    /// Remembers the status each provider's latest reading implied, once it
    /// is written (or needed no write): a reading whose write failed is
    /// not taken as seen, so the next tick tries again.
    fn settle(&self, readings: &[(String, ProviderStatus)]) {
        let mut tracks = self.tracks.lock().expect("health board lock");
        for (id, status) in readings {
            if let Some(track) = tracks.get_mut(id) {
                track.status = Some(status.clone());
            }
        }
    }
}

/// Whether a probe may connect to `ip` without `--health-allow-private`:
/// only public unicast addresses. Refused: loopback, private (RFC 1918,
/// unique local), shared (CGNAT, where some clouds keep their metadata
/// service), link-local (with the 169.254.169.254 metadata address),
/// unspecified, broadcast, multicast, documentation, benchmarking and
/// reserved ranges, and IPv6 forms that carry such an IPv4 address
/// (mapped, compatible, NAT64, 6to4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // IPv4 inside IPv6: judged as the IPv4 address it reaches.
    // ::ffff:a.b.c.d and the deprecated ::a.b.c.d (which includes :: and
    // ::1, refused as 0.0.0.0 and 0.0.0.1).
    if let Some(v4) = ip.to_ipv4() {
        return is_public_v4(v4);
    }
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded(segments[6], segments[7])); // NAT64
    }
    if segments[0] == 0x2002 {
        return is_public_v4(embedded(segments[1], segments[2])); // 6to4
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local (fc00::/7)
        || (segments[0] & 0xffc0) == 0xfe80 // link-local (fe80::/10)
        || (segments[0] & 0xffc0) == 0xfec0 // site-local, deprecated (fec0::/10)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x0064 && segments[1] == 0xff9b && segments[2] == 1) // local NAT64
        || segments[0] == 0x0100 && segments[1..4] == [0, 0, 0]) // discard-only
}

/// Resolves probe hosts and keeps only the addresses a probe may reach, so
/// a name cannot lead a probe inside the network (including a name that
/// resolves differently the second time: the connection uses exactly the
/// addresses checked here).
struct GuardedResolver;

/// A probe target with no address a probe may reach.
#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the address is not allowed for health probes")
    }
}

impl std::error::Error for Refused {}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found.filter(|a| is_public(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client of the probes: no redirects, no proxy from the
/// environment (its address would be checked instead of the target's) and,
/// unless private targets are allowed, the guarded resolver.
fn client(settings: &ProbeSettings) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("provider-sync/", env!("CARGO_PKG_VERSION")));
    if settings.allow_private {
        builder.build()
    } else {
        builder.dns_resolver(Arc::new(GuardedResolver)).build()
    }
}

/// Why a probe failed, as published in `provider.health.message`: a short
/// category, never the upstream's error text or the URL (those go to the
/// server's log only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Refused,
    InvalidUrl,
    Timeout,
    Connect,
    Redirect,
    Status(u16),
    Other,
}

impl Failure {
    fn message(self) -> String {
        match self {
            Self::Refused => "address not allowed".into(),
            Self::InvalidUrl => "invalid URL".into(),
            Self::Timeout => "timeout".into(),
            Self::Connect => "connection failed".into(),
            Self::Redirect => "redirect not followed".into(),
            Self::Status(code) => format!("HTTP {code}"),
            Self::Other => "request failed".into(),
        }
    }
}

/// Whether an error comes from the guarded resolver's refusal.
fn refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(err) = source {
        if err.is::<Refused>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Probes one URL: success is a 2xx answer within the timeout.
async fn probe(
    client: &reqwest::Client,
    provider_id: &str,
    url: &str,
    allow_private: bool,
) -> Result<Duration, Failure> {
    let failed = |failure: Failure, detail: &dyn std::fmt::Display| {
        tracing::debug!(provider = %provider_id, url, %detail, "health probe failed");
        failure
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| failed(Failure::InvalidUrl, &e))?;
    // An address in the URL itself is not resolved, so it is checked here.
    let literal = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
        None => return Err(failed(Failure::InvalidUrl, &"no host")),
    };
    if !allow_private && literal.is_some_and(|ip| !is_public(ip)) {
        tracing::warn!(
            provider = %provider_id,
            "health probe refused: the target is not a public address (start with --health-allow-private to probe it)"
        );
        return Err(Failure::Refused);
    }
    let started = Instant::now();
    let response = client.get(parsed).send().await.map_err(|e| {
        let failure = if refused(&e) {
            tracing::warn!(
                provider = %provider_id,
                "health probe refused: the target resolves to no public address (start with --health-allow-private to probe it)"
            );
            Failure::Refused
        } else if e.is_timeout() {
            Failure::Timeout
        } else if e.is_connect() {
            Failure::Connect
        } else {
            Failure::Other
        };
        failed(failure, &e)
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(started.elapsed())
    } else if status.is_redirection() {
        Err(failed(Failure::Redirect, &status))
    } else {
        Err(failed(Failure::Status(status.as_u16()), &status))
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
    // Readings of providers no longer probed (deleted, unmonitored,
    // disabled) are dropped rather than shown stale. One in maintenance
    // keeps its last reading: an operator's status that ends maintenance
    // then holds while the reading stays as it was (without it, the next
    // reading counted as a first, and replaced that status at once).
    let resting: Vec<&str> = snapshot
        .state
        .providers
        .iter()
        .filter(|p| p.status == ProviderStatus::Maintenance && p.enabled && p.health_url.is_some())
        .map(|p| p.id.as_str())
        .collect();
    board.retain(|id| targets.iter().any(|(target, _)| target == id) || resting.contains(&id));
    // Tasks of their own: a probe's latency is timed while the readings in
    // hand are written.
    let mut probes = tokio::task::JoinSet::new();
    for (id, url) in targets {
        let (client, allow_private) = (client.clone(), settings.allow_private);
        probes.spawn(async move {
            let outcome = probe(&client, &id, &url, allow_private).await;
            (id, url, outcome)
        });
    }
    // The readings in hand are written once every probe is in, or when the
    // slowest could still succeed only as `degraded`: an endpoint that
    // hangs until the timeout does not hold back the others' changes. The
    // rest are written once they are all in: two writes a round at most.
    let first_batch = tokio::time::sleep(settings.degraded_after.min(settings.timeout));
    tokio::pin!(first_batch);
    let mut results = Vec::new();
    loop {
        tokio::select! {
            next = probes.join_next() => match next {
                Some(Ok(result)) => results.push(result),
                Some(Err(err)) => tracing::error!(error = %err, "a health probe's task failed"),
                None => break,
            },
            _ = &mut first_batch, if !results.is_empty() => break,
        }
    }
    record_round(service, board, &snapshot, results, settings).await;
    share(service, board, settings).await;
    let mut rest = Vec::new();
    while let Some(next) = probes.join_next().await {
        match next {
            Ok(result) => rest.push(result),
            Err(err) => tracing::error!(error = %err, "a health probe's task failed"),
        }
    }
    if !rest.is_empty() {
        record_round(service, board, &snapshot, rest, settings).await;
        share(service, board, settings).await;
    }
}

/// Gives the other instances of a cluster this board's latest readings
/// (the readings of a round change the state only with a status), unless
/// the role moved while the probes ran.
async fn share(service: &Arc<Service>, board: &HealthBoard, settings: &ProbeSettings) {
    let store = service.store();
    if !store.shared() || !store.lead(Role::Health, settings.lead_every()).await {
        return;
    }
    if let Err(err) = store.share_readings(&board.shared()).await {
        tracing::warn!(error = %err, "could not share the health readings with the other instances");
    }
}

/// How often an instance that does not probe reads the readings the one
/// that does shares: a quarter of the probes' interval, between 250 ms and
/// 5 s.
fn follow_every(settings: &ProbeSettings) -> Duration {
    (settings.interval / 4).clamp(Duration::from_millis(250), Duration::from_secs(5))
}

/// Records a round's probe results (all or some of them) and writes the
/// status changes they imply.
async fn record_round(
    service: &Arc<Service>,
    board: &HealthBoard,
    snapshot: &crate::service::Snapshot,
    results: Vec<(String, String, Result<Duration, Failure>)>,
    settings: &ProbeSettings,
) {
    let mut changes = Vec::new();
    let mut readings = Vec::new();
    for (id, url, outcome) in results {
        let result = if outcome.is_ok() { "ok" } else { "failed" };
        service
            .metrics()
            .probes
            .get_or_create(&ProbeLabels { result })
            .inc();
        let stored = snapshot.state.provider(&id).map(|p| &p.health);
        let (status, health, previous) = board.record(&id, &url, stored, outcome, settings);
        readings.push((id.clone(), status.clone()));
        if snapshot
            .state
            .provider(&id)
            .is_some_and(|p| p.status != status)
        {
            changes.push((id, url, status, health, previous));
        }
    }
    if changes.is_empty() {
        board.settle(&readings);
        return;
    }
    // The role may have moved while the probes ran.
    if !service
        .store()
        .lead(Role::Health, settings.lead_every())
        .await
    {
        return;
    }
    let written = service
        .write(|draft| {
            for (id, url, status, health, previous) in changes.iter().cloned() {
                // Re-read: an operator may have changed it meanwhile. A
                // reading is of the endpoint probed: not for a provider
                // that no longer has it (deleted and created again without
                // it, given another, disabled).
                let Some(current) = draft.state().provider(&id).cloned() else {
                    continue;
                };
                if current.health_url.as_deref() != Some(url.as_str()) || !current.enabled {
                    continue;
                }
                if current.status == status || current.status == ProviderStatus::Maintenance {
                    continue;
                }
                let failed = health.consecutive_failures > 0;
                if !probes_may_set(&current, draft.operator_revisions(), previous.as_ref(), &status, failed) {
                    tracing::debug!(provider = %id, held = ?current.status, reading = ?status, "an operator's status held against an unchanged reading");
                    continue;
                }
                tracing::info!(provider = %id, from = ?current.status, to = ?status, "provider status changed");
                change_status(draft, &current, status, health, true);
            }
            Ok(())
        })
        .await;
    match written {
        Ok(_) => board.settle(&readings),
        Err(err) => tracing::error!(error = %err, "could not record provider status changes"),
    }
}

/// Whether the probes may set `current`'s status to what their reading
/// implies (`status`; `previous`, what the reading before implied, none at
/// their first): when the status is theirs (no operator change since
/// theirs), when their reading changed (their first reading counts: after a
/// restart, a move of the probes to another instance, a provider enabled
/// again), or over `unknown`. So a status an operator set holds while the
/// reading stays as it was: it is not silently put back at the next tick.
///
/// A failed probe never makes an operator's status more available than it
/// is (an operator's `unavailable` is not replaced by the `degraded` of a
/// first failure: it holds until the failures make it `unavailable`, or the
/// endpoint recovers).
fn probes_may_set(
    current: &ProviderSyncInfo,
    operators: &crate::revision::OperatorRevisions,
    previous: Option<&ProviderStatus>,
    status: &ProviderStatus,
    failed: bool,
) -> bool {
    if current.status == ProviderStatus::Unknown {
        return true;
    }
    let theirs = operators.of(current) < current.revision;
    if !theirs && failed && usable_rank(status) > usable_rank(&current.status) {
        return false;
    }
    theirs || previous != Some(status)
}

/// How usable a status says a provider is, for comparing two.
fn usable_rank(status: &ProviderStatus) -> u8 {
    match status {
        ProviderStatus::Available => 3,
        ProviderStatus::Degraded => 2,
        ProviderStatus::Unknown => 1,
        _ => 0,
    }
}

/// Another instance probes: this one shows the readings it shares (its
/// own would only grow stale, and the stored ones are those of the last
/// change of status). None while the store does not answer.
async fn follow(service: &Arc<Service>, board: &HealthBoard) {
    match service.store().readings().await {
        Ok(readings) => board.adopt(readings),
        Err(err) => {
            board.retain(|_| false);
            tracing::debug!(error = %err, "cannot read the health readings another instance shares");
        }
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
        let client = match client(&settings) {
            Ok(client) => client,
            Err(err) => {
                tracing::error!(error = %err, "health probes disabled: no HTTP client");
                return;
            }
        };
        let mut ticks = tokio::time::interval(settings.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut follows = tokio::time::interval(follow_every(&settings));
        follows.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leads = true;
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    // One instance of a cluster probes at a time; another
                    // takes over when it dies.
                    leads = service.store().lead(Role::Health, settings.lead_every()).await;
                    if leads {
                        probe_all(&service, &board, &client, &settings).await;
                    } else {
                        follow(&service, &board).await;
                    }
                }
                _ = follows.tick(), if !leads => follow(&service, &board).await,
                _ = shutdown.wait() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().unwrap())
    }

    #[test]
    fn only_public_unicast_addresses_may_be_probed() {
        // No traffic: the addresses are only classified.
        for refused in [
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254", // cloud metadata
            "169.254.0.1",
            "100.100.100.200", // metadata in shared address space
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "240.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd00:ec2::254", // metadata over IPv6
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.1",
            "::ffff:10.1.2.3",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
            "64:ff9b:1::1",
            "2002:7f00:1::1",   // 6to4 of 127.0.0.1
            "2002:c0a8:101::1", // 6to4 of 192.168.1.1
            "100::1",
        ] {
            assert!(!public(refused), "{refused} must be refused");
        }
        for allowed in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(public(allowed), "{allowed} must be allowed");
        }
    }

    #[test]
    fn failures_are_published_as_categories() {
        assert_eq!(Failure::Status(503).message(), "HTTP 503");
        assert_eq!(Failure::Refused.message(), "address not allowed");
        assert_eq!(Failure::Redirect.message(), "redirect not followed");
        let board = HealthBoard::default();
        let settings = ProbeSettings {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            degraded_after: Duration::from_secs(1),
            failures: 1,
            allow_private: false,
        };
        let (status, health, previous) =
            board.record("p", "http://p", None, Err(Failure::Timeout), &settings);
        assert_eq!(status, ProviderStatus::Unavailable);
        assert_eq!(health.message.as_deref(), Some("timeout"));
        assert_eq!(previous, None, "the first reading");
        // Not written (the store failed): not taken as seen.
        let (_, _, previous) =
            board.record("p", "http://p", None, Err(Failure::Timeout), &settings);
        assert_eq!(previous, None);
        board.settle(&[("p".to_owned(), ProviderStatus::Unavailable)]);
        let (_, _, previous) = board.record("p", "http://p", None, Ok(Duration::ZERO), &settings);
        assert_eq!(previous, Some(ProviderStatus::Unavailable));
        assert!(board.reading("p", "http://p").is_some());
        // Another endpoint: the readings of the one before are not its
        // own, and its first reading is a first.
        assert_eq!(board.reading("p", "http://q"), None);
        let (_, health, previous) =
            board.record("p", "http://q", None, Err(Failure::Timeout), &settings);
        assert_eq!(previous, None);
        assert_eq!(health.consecutive_failures, 1);
        assert_eq!(board.reading("p", "http://p"), None);
        assert_eq!(board.reading("p", "http://q"), Some(health));
    }

    /// The probes set a status that is theirs, or when their reading
    /// changes, or at their first reading over `available`/`unknown`; an
    /// operator's `unavailable` holds against an unchanged reading (it was
    /// put back at the next tick), also after a restart (first reading).
    #[test]
    fn an_operators_status_holds_until_the_reading_changes() {
        use ProviderStatus::*;
        let provider = |status: ProviderStatus| ProviderSyncInfo {
            id: "p".into(),
            name: "P".into(),
            display_name: "P".into(),
            provider_type: "openai".into(),
            base_url: None,
            health_url: None,
            enabled: true,
            priority: 0,
            status,
            health: ProviderHealth::default(),
            fallback_provider_id: None,
            capabilities: vec![],
            model_ids: vec![],
            revision: 7,
        };
        let operator = crate::revision::OperatorRevisions::default();
        let probed = crate::revision::OperatorRevisions::new([("p".to_owned(), 5)].into());
        // The operator's own: held while the reading stays; taken over once
        // the reading changes, or at a first reading (after a restart, a
        // move of the probes, a provider enabled again: where an edit of
        // another field left the probes' own status stuck).
        let set = provider(Unavailable);
        assert!(!probes_may_set(
            &set,
            &operator,
            Some(&Available),
            &Available,
            false
        ));
        // Slow: degraded.
        assert!(probes_may_set(
            &set,
            &operator,
            Some(&Available),
            &Degraded,
            false
        ));
        assert!(probes_may_set(&set, &operator, None, &Available, false));
        // A failure never makes the operator's status more usable: their
        // `unavailable` is not replaced by a first failure's `degraded`
        // (the black-box tester's case: usable for a tick), but is by the
        // failures' own `unavailable`, and an operator's `available` is by
        // a failure's `degraded`.
        assert!(!probes_may_set(
            &set,
            &operator,
            Some(&Available),
            &Degraded,
            true
        ));
        assert!(probes_may_set(
            &set,
            &operator,
            Some(&Degraded),
            &Unavailable,
            true
        ));
        assert!(probes_may_set(
            &provider(Available),
            &operator,
            Some(&Available),
            &Degraded,
            true
        ));
        // The probes' own: theirs to change at any reading.
        assert!(probes_may_set(
            &set,
            &probed,
            Some(&Available),
            &Available,
            false
        ));
        assert!(probes_may_set(
            &set,
            &probed,
            Some(&Unavailable),
            &Degraded,
            true
        ));
        // `unknown` (a provider deleted and made again under its id between
        // two readings) is always theirs to replace.
        assert!(probes_may_set(
            &provider(Unknown),
            &operator,
            Some(&Available),
            &Available,
            false
        ));
    }
}
