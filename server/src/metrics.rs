//! Prometheus metrics, rendered as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    /// `none`, `incremental` or `full`.
    pub sync_type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// `ok` or `failed`.
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `applied`, `unchanged`, `older` or `refused`.
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    /// `connections` (over --max-connections),
    /// `connections_per_address`, `ws_sessions`, `ws_sessions_per_address`,
    /// `rate_limit` or `origin`.
    pub reason: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub version: Gauge,
    pub events: Counter,
    pub ws_connections: Gauge,
    pub ws_resyncs: Counter,
    pub ws_dropped: Counter,
    pub ws_coalesced: Counter,
    pub ws_lag_repairs: Counter,
    pub ws_lane_restarts: Counter,
    pub syncs: Family<SyncLabels, Counter>,
    pub probes: Family<ProbeLabels, Counter>,
    pub catalog_reloads: Family<ReloadLabels, Counter>,
    pub connections: Gauge,
    pub refusals: Family<RefusedLabels, Counter>,
    pub precompressions: Family<ReloadLabels, Counter>,
    pub sync_precompressions: Family<ReloadLabels, Counter>,
    pub quick_compressions: Counter,
    pub store_reachable: Gauge,
    pub write_conflicts: Counter,
    pub store_reloads: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("provider_sync");
        let version = Gauge::default();
        let events = Counter::default();
        let ws_connections = Gauge::default();
        let ws_resyncs = Counter::default();
        let ws_dropped = Counter::default();
        let ws_coalesced = Counter::default();
        let ws_lag_repairs = Counter::default();
        let ws_lane_restarts = Counter::default();
        let syncs = Family::<SyncLabels, Counter>::default();
        let probes = Family::<ProbeLabels, Counter>::default();
        let catalog_reloads = Family::<ReloadLabels, Counter>::default();
        let connections = Gauge::default();
        let refusals = Family::<RefusedLabels, Counter>::default();
        let precompressions = Family::<ReloadLabels, Counter>::default();
        let sync_precompressions = Family::<ReloadLabels, Counter>::default();
        let quick_compressions = Counter::default();
        let store_reachable = Gauge::default();
        store_reachable.set(1);
        let write_conflicts = Counter::default();
        let store_reloads = Counter::default();
        registry.register("version", "Current catalog version", version.clone());
        registry.register("events", "Change events committed", events.clone());
        registry.register(
            "ws_connections",
            "Open WebSocket connections",
            ws_connections.clone(),
        );
        registry.register(
            "ws_resyncs",
            "WebSocket clients told to resync after falling behind",
            ws_resyncs.clone(),
        );
        registry.register(
            "ws_dropped",
            "WebSocket connections dropped for a stalled write or silence",
            ws_dropped.clone(),
        );
        registry.register(
            "ws_coalesced_frames",
            "WebSocket frames that left in the same write as an earlier one (a session that fell behind catches up in fewer writes)",
            ws_coalesced.clone(),
        );
        registry.register(
            "ws_lag_repairs",
            "WebSocket clients that fell behind the frame queue and were sent what they missed from the event log (instead of a resync)",
            ws_lag_repairs.clone(),
        );
        registry.register(
            "ws_lane_restarts",
            "Fan-out lanes started again after a failure (a bug; their sessions repaired from the event log)",
            ws_lane_restarts.clone(),
        );
        registry.register(
            "sync_responses",
            "POST /sync answers by type",
            syncs.clone(),
        );
        registry.register("health_probes", "Provider health probes", probes.clone());
        registry.register(
            "catalog_reloads",
            "Catalog file reloads (file watch or SIGHUP) by result",
            catalog_reloads.clone(),
        );
        registry.register(
            "connections",
            "Open TCP connections (WebSocket sessions included)",
            connections.clone(),
        );
        registry.register(
            "refused",
            "Requests and connections refused by a limit, by reason",
            refusals.clone(),
        );
        registry.register(
            "state_precompressions",
            "Versions of GET /state compressed at the best levels, by result (ready, superseded, failed: tried again)",
            precompressions.clone(),
        );
        registry.register(
            "sync_precompressions",
            "Full POST /sync answers (one per version and reason) compressed at the best levels, by result (ready, superseded, failed: tried again)",
            sync_precompressions.clone(),
        );
        registry.register(
            "quick_compressions",
            "Full-state answers (GET /state, full POST /sync) compressed at the on-the-fly levels before their version's best copy was ready: once per version, answer and encoding, shared by the requests meanwhile",
            quick_compressions.clone(),
        );
        registry.register(
            "store_reachable",
            "1 while this instance reads and writes its store, 0 while it cannot (on PostgreSQL it then refuses reads, writes and new WebSocket sessions with 503, and its heartbeats say so; on SQLite, the one process that holds the file, it still serves reads from its copy)",
            store_reachable.clone(),
        );
        registry.register(
            "write_conflicts",
            "Writes built again because another instance committed first (PostgreSQL); the next try takes the cluster's write turn",
            write_conflicts.clone(),
        );
        registry.register(
            "store_reloads",
            "Times this instance read the whole catalog from the store again (its log no longer reached back, or another history): every WebSocket client is told to resync (reason reloaded)",
            store_reloads.clone(),
        );
        Self {
            registry,
            version,
            events,
            ws_connections,
            ws_resyncs,
            ws_dropped,
            ws_coalesced,
            ws_lag_repairs,
            ws_lane_restarts,
            syncs,
            probes,
            catalog_reloads,
            connections,
            refusals,
            precompressions,
            sync_precompressions,
            quick_compressions,
            store_reachable,
            write_conflicts,
            store_reloads,
        }
    }

    /// The counter of precompressed versions with one result.
    pub fn precompressed(&self, result: &'static str) -> Counter {
        self.precompressions
            .get_or_create(&ReloadLabels { result })
            .clone()
    }

    /// The counter of precompressed full `/sync` answers with one result.
    pub fn sync_precompressed(&self, result: &'static str) -> Counter {
        self.sync_precompressions
            .get_or_create(&ReloadLabels { result })
            .clone()
    }

    /// The counter of refusals for one reason.
    pub fn refused(&self, reason: &'static str) -> Counter {
        self.refusals
            .get_or_create(&RefusedLabels { reason })
            .clone()
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
