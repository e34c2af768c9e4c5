//! The catalog service: the live state in memory, the one write path
//! (build events → commit to the store → publish a new snapshot → broadcast),
//! and catching a client up from any version.
//!
//! Readers take an `Arc<Snapshot>` and never wait on a writer. Writers are
//! serialised by a mutex; a write that fails to commit leaves no trace.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock, RwLock};

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use provider_sync_protocol::{
    Applied, EventPayload, FullSyncReason, Heartbeat, LogWindow, SyncEvent, SyncPlan, SyncState,
    VersionInfo, apply_event, plan_sync, prefer_full,
};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{Mutex, broadcast};

use crate::audit::AuditRecord;
use crate::catalog::Catalog;
use crate::clock::now_rfc3339;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::revision::{self, OperatorRevisions};
use crate::store::{Commit, Loaded, RowChange, Since, Store, StoreError, WriteTurn};

mod event_log;
use event_log::EventLog;

/// A change event kept for incremental sync, with the JSON it was sent as.
#[derive(Debug)]
pub struct LoggedEvent {
    pub event: SyncEvent,
    pub json: Utf8Bytes,
}

/// One message for every WebSocket client, serialised once.
#[derive(Debug, Clone)]
pub struct Frame {
    pub version: u64,
    /// A committed change (as opposed to a heartbeat).
    pub change: bool,
    /// The state was replaced (reloaded from the store): `text` tells the
    /// client to resync, and versions may start over.
    pub reset: bool,
    /// With `reset`: the epoch of the reloaded state.
    pub epoch: Option<Arc<str>>,
    pub text: Utf8Bytes,
}

/// The catalog at one version, immutable once published.
#[derive(Debug)]
pub struct Snapshot {
    pub state: SyncState,
    /// What the admin API's `If-Match` is checked against.
    operator_revisions: OperatorRevisions,
    /// Change events up to `state.metadata.version`, oldest first, contiguous.
    log: EventLog,
    state_json: OnceLock<Bytes>,
    full_sync_frame: OnceLock<Utf8Bytes>,
    /// `state_json` at the best brotli and gzip levels, once the version has
    /// been stable for a moment (`crate::precompress`).
    pub(crate) precompressed: OnceLock<crate::precompress::Compressed>,
    /// Full `POST /sync` answers at the best levels, for the reasons this
    /// version has been given to clients (`crate::precompress`).
    pub(crate) full_syncs: crate::precompress::FullSyncs,
    /// Full-state answers at the on-the-fly levels, made once per answer
    /// and encoding until the best copies are ready (`crate::precompress`).
    pub(crate) quick: crate::precompress::QuickCopies,
    /// When it was made, just before it was published: its version has been
    /// current since (`crate::precompress` counts its settling time from it).
    pub(crate) made: tokio::time::Instant,
}

/// How to bring one client up to date from a snapshot.
#[derive(Debug)]
pub enum CatchUp {
    UpToDate,
    Events(Vec<Arc<LoggedEvent>>),
    Full(FullSyncReason),
}

/// An event whose `data` is JSON that was already serialised.
#[derive(Serialize)]
struct RawEvent<'a> {
    id: String,
    version: u64,
    timestamp: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    data: &'a RawValue,
}

impl Snapshot {
    fn new(state: SyncState, operator_revisions: OperatorRevisions, log: EventLog) -> Self {
        Self {
            state,
            operator_revisions,
            log,
            state_json: OnceLock::new(),
            full_sync_frame: OnceLock::new(),
            precompressed: OnceLock::new(),
            full_syncs: Default::default(),
            quick: Default::default(),
            made: tokio::time::Instant::now(),
        }
    }

    pub fn version(&self) -> u64 {
        self.state.metadata.version
    }

    pub fn epoch(&self) -> &str {
        &self.state.metadata.epoch
    }

    /// The stored JSON of the event that made this version, when the log
    /// holds it: what the store's event of this version is compared with,
    /// to tell a store that went back and was written on again.
    fn tip(&self) -> Option<&str> {
        self.log
            .last()
            .filter(|e| e.event.version == self.version())
            .map(|e| e.json.as_str())
    }

    /// The state as JSON, serialised once per version.
    pub fn state_json(&self) -> &Bytes {
        self.state_json
            .get_or_init(|| Bytes::from(serde_json::to_vec(&self.state).expect("state serialises")))
    }

    /// The state as a raw JSON value, to embed in a larger body.
    pub fn state_raw(&self) -> &RawValue {
        let text = std::str::from_utf8(self.state_json()).expect("serde_json writes UTF-8");
        serde_json::from_str(text).expect("serde_json writes valid JSON")
    }

    /// A `full_sync` event carrying the state, serialised once per version.
    pub fn full_sync_frame(&self) -> &Utf8Bytes {
        self.full_sync_frame.get_or_init(|| {
            let event = RawEvent {
                id: format!("{}:{}:full", self.epoch(), self.version()),
                version: self.version(),
                timestamp: &self.state.metadata.server_time,
                kind: "full_sync",
                data: self.state_raw(),
            };
            Utf8Bytes::from(serde_json::to_string(&event).expect("event serialises"))
        })
    }

    pub fn version_info(&self) -> VersionInfo {
        VersionInfo {
            version: self.version(),
            epoch: self.epoch().to_owned(),
            server_time: now_rfc3339(),
            checksum: self.state.metadata.checksum.clone(),
        }
    }

    /// A control event (heartbeat, hello, error …) at this version.
    pub fn control_event(&self, payload: EventPayload) -> SyncEvent {
        let kind = serde_json::to_value(payload.event_type()).unwrap_or_default();
        SyncEvent {
            id: format!(
                "{}:{}:{}",
                self.epoch(),
                self.version(),
                kind.as_str().unwrap_or("control")
            ),
            version: self.version(),
            timestamp: now_rfc3339(),
            payload,
        }
    }

    /// A heartbeat at this version; `store_reachable: false` says that this
    /// instance has lost its store, so this version may not be current.
    pub fn heartbeat(&self, store_reachable: bool) -> SyncEvent {
        self.control_event(EventPayload::Heartbeat(Heartbeat {
            epoch: self.epoch().to_owned(),
            version: self.version(),
            checksum: self.state.metadata.checksum.clone(),
            server_time: now_rfc3339(),
            store_reachable,
        }))
    }

    fn window(&self) -> LogWindow<'_> {
        LogWindow {
            epoch: self.epoch(),
            version: self.version(),
            oldest_resumable: self
                .log
                .first()
                .map_or(self.version(), |e| e.event.version - 1),
        }
    }

    pub fn catch_up(
        &self,
        client_version: u64,
        client_epoch: Option<&str>,
        force_full: bool,
    ) -> CatchUp {
        self.catch_up_with(client_version, client_epoch, force_full, true)
    }

    /// What a WebSocket session that fell behind its queue sends: the events
    /// it missed whenever the log still has them, even where the full state
    /// would be fewer bytes — the session's client is live and applies
    /// events, while a resync would send every such client to `/sync` at
    /// once.
    pub fn missed_since(&self, client_version: u64, client_epoch: &str) -> CatchUp {
        self.catch_up_with(client_version, Some(client_epoch), false, false)
    }

    fn catch_up_with(
        &self,
        client_version: u64,
        client_epoch: Option<&str>,
        force_full: bool,
        prefer_smaller: bool,
    ) -> CatchUp {
        match plan_sync(client_version, client_epoch, force_full, self.window()) {
            SyncPlan::UpToDate => CatchUp::UpToDate,
            SyncPlan::Full(reason) => CatchUp::Full(reason),
            SyncPlan::Incremental { since } => {
                let events: Vec<Arc<LoggedEvent>> = self.log.after(since).cloned().collect();
                let bytes = events.iter().map(|e| e.json.len()).sum();
                if prefer_smaller && prefer_full(bytes, self.state_json().len()) {
                    CatchUp::Full(FullSyncReason::Smaller)
                } else {
                    CatchUp::Events(events)
                }
            }
        }
    }
}

/// A write in progress: a private copy of the state that events are applied
/// to as they are emitted, so later steps of one write see earlier ones.
#[derive(Debug)]
pub struct Draft {
    /// Changed by [`emit`](Self::emit) only, each change with its event: a
    /// draft without events holds the state it started from, which
    /// [`Service::give_back`] relies on (a spare at the current version is
    /// not checked against the state's content, only its metadata).
    state: SyncState,
    /// Changed by `emit` only, as `state`.
    operator_revisions: OperatorRevisions,
    /// The time this write happens, RFC 3339: every event's timestamp.
    now: String,
    events: Vec<SyncEvent>,
    providers: BTreeSet<String>,
    models: BTreeSet<String>,
    pointers: bool,
    /// The catalog file as last applied, before this write.
    applied: Option<Arc<Catalog>>,
    /// Its stored JSON, which the store checks is still the record when this
    /// write records another.
    applied_json: Option<Arc<str>>,
    /// A catalog file this write applies, to remember as the last applied.
    record: Option<Arc<Catalog>>,
}

impl Draft {
    /// A draft over a copy of `state`, for planning a write that will not be
    /// committed (a dry run).
    pub fn scratch(state: SyncState, applied: Option<Arc<Catalog>>) -> Self {
        Self {
            state,
            operator_revisions: OperatorRevisions::default(),
            now: now_rfc3339(),
            events: Vec::new(),
            providers: BTreeSet::new(),
            models: BTreeSet::new(),
            pointers: false,
            applied,
            applied_json: None,
            record: None,
        }
    }

    /// The events emitted so far.
    pub fn events(&self) -> &[SyncEvent] {
        &self.events
    }

    /// The catalog file as last applied (before this write), if any.
    pub fn applied_catalog(&self) -> Option<&Arc<Catalog>> {
        self.applied.as_ref()
    }

    /// Remembers `catalog` as the last applied catalog when this write
    /// commits (even if it emits no event).
    pub fn record_catalog(&mut self, catalog: Arc<Catalog>) {
        self.record = Some(catalog);
    }

    /// The catalog this write will record as last applied, if any.
    #[cfg(test)]
    pub fn recorded_catalog(&self) -> Option<Arc<Catalog>> {
        self.record.clone()
    }

    pub fn state(&self) -> &SyncState {
        &self.state
    }

    /// What `If-Match` is checked against, as of this draft.
    pub fn operator_revisions(&self) -> &OperatorRevisions {
        &self.operator_revisions
    }

    /// Adds a change event with the next version and applies it; the entity
    /// it carries gets that version as its revision.
    pub fn emit(&mut self, mut payload: EventPayload) {
        debug_assert!(payload.is_change());
        // Models whose remembered cut (`CutLimit`) this event concerns, and
        // whether it leaves their limits as they were.
        let cuts: Vec<(String, bool)> = if self.has_cuts() {
            match &payload {
                EventPayload::ModelUpdated(m) | EventPayload::ModelDeprecated(m) => {
                    let same = self.state.model(&m.id).is_some_and(|before| {
                        before.context_window == m.context_window
                            && before.max_input_tokens == m.max_input_tokens
                            && before.max_output_tokens == m.max_output_tokens
                    });
                    vec![(m.id.clone(), same)]
                }
                EventPayload::ModelAdded(m) => vec![(m.id.clone(), false)],
                EventPayload::ModelRemoved(removed) => vec![(removed.model_id.clone(), false)],
                EventPayload::ProviderRemoved(removed) => removed
                    .model_ids
                    .iter()
                    .map(|id| (id.clone(), false))
                    .collect(),
                _ => Vec::new(),
            }
        } else {
            Vec::new()
        };
        // The revision each of them had, for a cut that still stands.
        let before: Vec<Option<u64>> = cuts
            .iter()
            .map(|(id, _)| self.state.model(id).map(|m| m.revision))
            .collect();
        match &payload {
            EventPayload::ProviderAdded(p) | EventPayload::ProviderUpdated(p) => {
                self.providers.insert(p.id.clone());
            }
            EventPayload::ProviderRemoved(removed) => {
                self.providers.insert(removed.provider_id.clone());
                self.models.extend(removed.model_ids.iter().cloned());
            }
            EventPayload::ProviderStatusChanged(change) => {
                self.providers.insert(change.provider_id.clone());
            }
            EventPayload::ModelAdded(m)
            | EventPayload::ModelUpdated(m)
            | EventPayload::ModelDeprecated(m) => {
                self.models.insert(m.id.clone());
            }
            EventPayload::ModelRemoved(removed) => {
                self.models.insert(removed.model_id.clone());
            }
            EventPayload::ActiveProviderChanged(_) => self.pointers = true,
            _ => {}
        }
        let version = self.state.metadata.version + 1;
        revision::stamp(&mut payload, version);
        self.operator_revisions.note(&self.state, &payload);
        let event = SyncEvent {
            id: format!("{}:{version}", self.state.metadata.epoch),
            version,
            timestamp: self.now.clone(),
            payload,
        };
        let applied = apply_event(&mut self.state, &event);
        debug_assert_eq!(applied, Ok(Applied::Changed));
        self.events.push(event);
        // A cut that stands (the model untouched since it was made) is
        // carried through a write that leaves the limits alone (a rename, a
        // price, a retirement), with the model's new revision; any other
        // write to the model ends it.
        for ((id, same), revision) in cuts.into_iter().zip(before) {
            let stands = self
                .cut_of(&id)
                .is_some_and(|cut| Some(cut.revision) == revision);
            self.change_cut(&id, (same && stands).then_some(version));
        }
    }

    /// Whether the record this write leaves remembers any cut.
    fn has_cuts(&self) -> bool {
        self.record
            .as_ref()
            .or(self.applied.as_ref())
            .is_some_and(|c| !c.cut_limits.is_empty())
    }

    /// The remembered cut of model `id`'s input limit (`CutLimit`) in the
    /// record as this write leaves it.
    pub fn cut_of(&self, id: &str) -> Option<crate::catalog::CutLimit> {
        self.record
            .as_ref()
            .or(self.applied.as_ref())?
            .cut_limits
            .get(id)
            .copied()
    }

    /// Forgets the remembered cut of model `id`'s input limit, if there is
    /// one: an admin's write named the model's limits, and they are theirs
    /// from now on (the record is written again, without it, in this
    /// write's commit).
    pub fn forget_cut(&mut self, id: &str) {
        self.change_cut(id, None);
    }

    /// Gives the remembered cut of model `id` the revision `to`, or forgets
    /// it (`None`), in the record this write commits (the last applied one,
    /// copied, when this write applies none: the store checks that it is
    /// still the record, as for a reconcile).
    fn change_cut(&mut self, id: &str, to: Option<u64>) {
        let Some(cut) = self.cut_of(id) else {
            return;
        };
        if self.record.is_none() {
            self.record = self.applied.clone();
        }
        let Some(record) = self.record.as_mut() else {
            return;
        };
        let record = Arc::make_mut(record);
        match to {
            Some(revision) => {
                record
                    .cut_limits
                    .insert(id.to_owned(), crate::catalog::CutLimit { revision, ..cut });
            }
            None => {
                record.cut_limits.remove(id);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn rows(&self) -> Vec<RowChange<'_>> {
        let mut rows = Vec::new();
        for id in &self.providers {
            rows.push(match self.state.provider(id) {
                Some(p) => RowChange::Provider {
                    provider: p,
                    operator_revision: self.operator_revisions.of(p),
                },
                None => RowChange::ProviderGone(id),
            });
        }
        for id in &self.models {
            rows.push(match self.state.model(id) {
                Some(m) => RowChange::Model(m),
                None => RowChange::ModelGone(id),
            });
        }
        if self.pointers {
            rows.push(RowChange::Pointers {
                active: self.state.active_provider_id.as_deref(),
                default: self.state.default_provider_id.as_deref(),
            });
        }
        rows
    }
}

/// What a write produced.
#[derive(Debug)]
pub struct Written<T> {
    pub value: T,
    /// The catalog version after the write (unchanged if it emitted nothing).
    pub version: u64,
    pub events: usize,
}

/// How much of the event log is kept (in the store and in memory).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub events: u64,
    pub bytes: u64,
}

impl Retention {
    /// `events` events, whatever their size.
    pub fn events(events: u64) -> Self {
        Self {
            events,
            bytes: u64::MAX,
        }
    }
}

/// How many times a write is built again after another instance committed
/// first (with a short, growing, jittered pause between tries).
const ATTEMPTS: usize = 20;
/// Events read from the store per round when catching up.
const FOLLOW_BATCH: usize = 200;
/// How long one read of the log may take before the store counts as
/// unreachable.
const FOLLOW_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long, on a store several instances share, taking the write turn may
/// take: it waits for any other instance's commit. Longer than the 15 s a
/// transaction may sit idle (an instance frozen in the middle of one), and
/// under the default request timeout (30 s), so that a write refused here
/// is answered as such rather than 504 while it might still be made.
const TURN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// How long, on a store several instances share, a commit of `events`
/// events may take once the write turn is held. A connection gone silent (a
/// network that drops its packets, a failover that leaves it open) would
/// otherwise hold the writer lock for as long as TCP takes to give up (many
/// minutes), every write and the instance's following of the log waiting
/// behind it, while its other connections still answered the heartbeats'
/// pings.
fn commit_timeout(events: usize) -> std::time::Duration {
    std::time::Duration::from_secs(10) + std::time::Duration::from_millis(10 * events as u64)
}

/// `work`, given up after `limit` (as `timed_out` says) when the store is
/// shared; a store of one process is waited for.
async fn within<T>(
    shared: bool,
    limit: std::time::Duration,
    timed_out: fn(u64) -> StoreError,
    work: impl std::future::Future<Output = std::result::Result<T, StoreError>>,
) -> std::result::Result<T, StoreError> {
    if !shared {
        return work.await;
    }
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| Err(timed_out(limit.as_millis() as u64)))
}

/// A number below `n` that differs between calls (for jitter).
fn rand_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(n);
    hasher.finish() % n.max(1)
}

/// The pause before another try after a conflict with another instance:
/// jittered, so that instances do not retry in step, and growing with the
/// tries, so that a busy store gets room.
fn conflict_pause(attempt: usize) -> std::time::Duration {
    std::time::Duration::from_millis(1 + rand_below(2 + attempt as u64 * 4))
}

/// The record of the last applied catalog: as stored, and parsed (`None`
/// when it cannot be read: the next reconcile then adopts the file).
#[derive(Debug, Clone)]
struct AppliedRecord {
    catalog: Option<Arc<Catalog>>,
    json: Arc<str>,
}

fn applied_of(json: Option<String>) -> Option<AppliedRecord> {
    let json = json?;
    let catalog = match serde_json::from_str::<Catalog>(&json) {
        Ok(catalog) => Some(Arc::new(catalog)),
        Err(e) => {
            tracing::warn!(error = %e, "the record of the last applied catalog cannot be read; the next reconcile keeps current values");
            None
        }
    };
    Some(AppliedRecord {
        catalog,
        json: Arc::from(json),
    })
}

/// The state a store holds, with its log and applied-catalog record.
pub fn state_of(loaded: Loaded) -> (SyncState, Vec<(SyncEvent, String)>, Option<String>) {
    let mut state = SyncState {
        providers: loaded.providers,
        all_models: loaded.models,
        active_provider_id: loaded.active_provider_id,
        default_provider_id: loaded.default_provider_id,
        ..SyncState::default()
    };
    state.metadata.version = loaded.version;
    state.metadata.epoch = loaded.epoch;
    state.metadata.server_time = made_at(
        loaded
            .log
            .last()
            .map(|(event, _)| event)
            .filter(|event| event.version == loaded.version),
    );
    state.normalize();
    (state, loaded.log, loaded.catalog)
}

/// A version's `server_time`: when the event that made it was made (the
/// same on every instance, whenever each applied it), or now when that is
/// not known (the log no longer holds it).
fn made_at(last: Option<&SyncEvent>) -> String {
    last.map_or_else(now_rfc3339, |event| event.timestamp.clone())
}

/// `state` (with its operator revisions), a state `base` descends from,
/// brought forward to `base` by the events of its log after it, the way
/// the events of a write or of another instance were applied to it; None
/// unless the result is `base`'s state as its metadata (version, epoch,
/// counts and content checksum) and operator revisions say.
fn forward(
    mut state: SyncState,
    mut revisions: OperatorRevisions,
    base: &Snapshot,
) -> Option<(SyncState, OperatorRevisions)> {
    let version = state.metadata.version;
    if state.metadata.epoch != base.epoch() || version > base.version() {
        return None;
    }
    let events: Vec<&Arc<LoggedEvent>> = base.log.after(version).collect();
    if events.first().map_or(version, |e| e.event.version - 1) != version
        || events.len() as u64 != base.version() - version
    {
        return None;
    }
    for logged in events {
        revisions.note(&state, &logged.event.payload);
        if apply_event(&mut state, &logged.event) != Ok(Applied::Changed) {
            return None;
        }
    }
    state
        .metadata
        .server_time
        .clone_from(&base.state.metadata.server_time);
    if state.metadata != base.state.metadata || revisions != base.operator_revisions {
        return None;
    }
    debug_assert!(state == base.state, "a spare brought forward differs");
    Some((state, revisions))
}

#[derive(Debug)]
pub struct Service {
    store: Arc<dyn Store>,
    current: RwLock<Arc<Snapshot>>,
    /// Serialises writes and applying other instances' events.
    writer: Arc<Mutex<()>>,
    /// Held while a new snapshot is published and its frames sent, so that a
    /// heartbeat never goes out ahead of the change frames of its version.
    publishing: std::sync::Mutex<()>,
    frames: broadcast::Sender<Frame>,
    retention: Retention,
    metrics: Arc<Metrics>,
    /// The catalog file as last applied; changed only under the writer lock.
    applied: RwLock<Option<AppliedRecord>>,
    /// Whether the last contact with the store succeeded.
    reachable: std::sync::atomic::AtomicBool,
    /// One catch-up for clients ahead of this instance at a time.
    catching_up: Mutex<()>,
    /// When the latest read of the log this instance then applied in full
    /// began: a client that came after it needs no read of its own.
    followed_from: std::sync::Mutex<Option<std::time::Instant>>,
    /// The epochs this instance left, with the last version it held in
    /// each and that version's event as stored (when it held it): a store
    /// that comes back to one of them at an earlier version (the same backup
    /// restored twice under running instances), or at that version or later
    /// with another event there (written on again by an instance that does
    /// not remember), went back in time in that history as much as in the
    /// current one.
    left_epochs: std::sync::Mutex<HashMap<String, (u64, Option<String>)>>,
    /// The copy of the state the next write's draft starts from (see
    /// [`Spare`]).
    spare: std::sync::Mutex<Spare>,
    /// Told of each published snapshot and of each full `/sync` answer a
    /// client is first given: the precompressing task (`crate::precompress`)
    /// waits on it instead of looking at the version on a timer, so an idle
    /// server has no timer waking it.
    published: tokio::sync::Notify,
}

/// What a write's draft (or the events followed from the store) starts from
/// instead of a clone of the current state. A clone costs an allocation for
/// every string of every model, and dropping the replaced state as many
/// frees: about 1.1 ms of a write's CPU with LiteLLM's 3,345 models. The
/// snapshot a publication replaces is kept instead and, once no reader
/// holds it, brought forward by the events published after it (what the
/// follow path does with another instance's events), then checked against
/// the current state's metadata, its content checksum included. One more
/// copy of the state is held between writes.
#[derive(Debug, Default)]
enum Spare {
    #[default]
    None,
    /// The snapshot the last publication replaced.
    Retired(Arc<Snapshot>),
    /// A state and its operator revisions, owned, at the version it says.
    Ready(SyncState, OperatorRevisions),
}

/// The most epochs [`Service::left_epochs`] remembers (one is left at each
/// reload to another epoch: a restore, a new store).
const LEFT_EPOCHS: usize = 64;

impl Service {
    /// Loads the store into memory.
    pub async fn open(
        store: Arc<dyn Store>,
        retention: Retention,
        ws_queue: usize,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, StoreError> {
        let loaded = store.load().await?;
        let retention = Retention {
            events: retention.events.max(1),
            bytes: retention.bytes.max(1),
        };
        let (snapshot, applied) = Self::snapshot_of(loaded, retention);
        metrics.version.set(snapshot.version() as i64);
        let (frames, _) = broadcast::channel(ws_queue.max(1));
        Ok(Arc::new(Self {
            store,
            current: RwLock::new(Arc::new(snapshot)),
            writer: Arc::new(Mutex::new(())),
            publishing: std::sync::Mutex::new(()),
            frames,
            retention,
            metrics,
            applied: RwLock::new(applied),
            reachable: std::sync::atomic::AtomicBool::new(true),
            catching_up: Mutex::new(()),
            followed_from: std::sync::Mutex::new(None),
            left_epochs: std::sync::Mutex::new(HashMap::new()),
            spare: std::sync::Mutex::new(Spare::None),
            published: tokio::sync::Notify::new(),
        }))
    }

    fn snapshot_of(mut loaded: Loaded, retention: Retention) -> (Snapshot, Option<AppliedRecord>) {
        let operator_revisions = OperatorRevisions::new(std::mem::take(&mut loaded.probed));
        let (state, log, catalog) = state_of(loaded);
        let version = state.metadata.version;
        let log: Vec<Arc<LoggedEvent>> = log
            .into_iter()
            .map(|(event, json)| {
                Arc::new(LoggedEvent {
                    event,
                    json: Utf8Bytes::from(json),
                })
            })
            .collect();
        // The events that follow one another up to the head: a log with a
        // hole (events deleted by hand) still serves the events after it,
        // and a client from before it takes the full state (`too_old`).
        let from = if log.last().is_some_and(|e| e.event.version == version) {
            log.windows(2)
                .rposition(|w| w[1].event.version != w[0].event.version + 1)
                .map_or(0, |at| at + 1)
        } else {
            log.len()
        };
        if from > 0 {
            tracing::warn!(
                dropped = from,
                kept = log.len() - from,
                "the stored event log has a hole; clients from before it will take a full state"
            );
        }
        let log = EventLog::of(&log[from..], retention);
        (
            Snapshot::new(state, operator_revisions, log),
            applied_of(catalog),
        )
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().expect("snapshot lock").clone()
    }

    /// Completes once a snapshot was published, or a full `/sync` answer
    /// first asked for ([`Service::answer_wanted`]), since the last call
    /// completed (or since the service opened); for the precompressing task.
    pub(crate) async fn published(&self) {
        self.published.notified().await;
    }

    /// A client was given a full `/sync` answer no client of this version
    /// had been given before: the precompressing task may have it to do.
    pub(crate) fn answer_wanted(&self) {
        self.published.notify_one();
    }

    /// Live frames. Subscribe before taking the snapshot to catch up from, so
    /// that nothing falls between the two.
    pub fn subscribe(&self) -> broadcast::Receiver<Frame> {
        self.frames.subscribe()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Whether the last contact with the store (a follow round, a write, a
    /// readiness check) found it reachable.
    pub fn store_reachable(&self) -> bool {
        self.reachable.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether this instance can vouch that its copy is current, as its
    /// heartbeats say (`store_reachable`) and reads require: one process on
    /// SQLite holds the only copy there is (a failing disk fails its writes,
    /// not its copy); an instance of several must reach the store.
    pub fn vouches(&self) -> bool {
        !self.store.shared() || self.store_reachable()
    }

    pub fn set_store_reachable(&self, reachable: bool) {
        let was = self
            .reachable
            .swap(reachable, std::sync::atomic::Ordering::Relaxed);
        self.metrics.store_reachable.set(i64::from(reachable));
        if was != reachable {
            if reachable {
                tracing::info!("the store answers again");
            } else {
                tracing::warn!("the store does not answer; heartbeats say so");
            }
        }
    }

    /// Sends a heartbeat to every WebSocket client, after the change frames
    /// of the version it names.
    pub fn broadcast_heartbeat(&self) {
        let _publishing = self.publishing.lock().expect("publish lock");
        let snapshot = self.snapshot();
        let heartbeat = snapshot.heartbeat(self.vouches());
        let json = serde_json::to_string(&heartbeat).expect("event serialises");
        // No receivers is not an error.
        let _ = self.frames.send(Frame {
            version: snapshot.version(),
            change: false,
            reset: false,
            epoch: None,
            text: Utf8Bytes::from(json),
        });
    }

    /// Runs one write: `build` emits events on a draft; if it returns Ok and
    /// emitted anything, the events and rows are committed in one store
    /// transaction, then published and broadcast. On any error nothing
    /// changes and nothing is sent. If another instance committed first,
    /// this instance catches up from the store and builds the write again
    /// (a few times, then it answers 503).
    ///
    /// Commit and publish run to their end once begun: a caller that goes
    /// away (a client disconnecting, a request timeout) hands what is left
    /// of them to a task of its own ([`RunToEnd`]), so it cannot leave the
    /// store ahead of the published state.
    pub async fn write<T>(
        self: &Arc<Self>,
        build: impl FnMut(&mut Draft) -> Result<T>,
    ) -> Result<Written<T>> {
        self.write_with(build, false, None).await
    }

    /// `write`, with the record of the admin request that makes it: kept in
    /// the write's transaction (with the epoch and the versions it
    /// produced), or on its own when the write changes nothing. Either way
    /// an acknowledged write has its record.
    pub async fn write_audited<T>(
        self: &Arc<Self>,
        audit: AuditRecord,
        build: impl FnMut(&mut Draft) -> Result<T>,
    ) -> Result<Written<T>> {
        self.write_with(build, false, Some(audit)).await
    }

    /// Reconciles the store with a catalog file (see `Catalog::reconcile`).
    /// On a shared store the record of the last applied file is read again
    /// under the writer lock before each try, and the commit checks it is
    /// still the record, so two instances never apply a file over each
    /// other's.
    pub async fn reconcile(
        self: &Arc<Self>,
        catalog: &Catalog,
    ) -> Result<Written<crate::catalog::Reconciled>> {
        self.write_with(|draft| Ok(catalog.reconcile(draft)), true, None)
            .await
    }

    async fn write_with<T>(
        self: &Arc<Self>,
        mut build: impl FnMut(&mut Draft) -> Result<T>,
        fresh_record: bool,
        audit: Option<AuditRecord>,
    ) -> Result<Written<T>> {
        let mut guard = self.writer.clone().lock_owned().await;
        // The next try follows a refusal on this instance's copy: it reads
        // the store without the write turn (a refusal needs no turn, and
        // holding it would hold up every instance's writes).
        let mut after_refusal = false;
        // The last try wrote the catalog's record and lost to another
        // instance's: the next one reads the record again (a record this
        // instance holds may trail the store's).
        let mut record_refused = false;
        for attempt in 0..ATTEMPTS {
            // After a refused try, this instance takes the cluster's write
            // turn (other instances' commits wait for it), then reads what
            // they wrote: the next try is built on the store as it is, and
            // nothing can be committed before it. Without the turn a try
            // could lose again to any instance writing steadily, each time,
            // up to the last (answered 503: once in CI with two instances
            // writing 150 times each). The catalog's record is read again
            // where other instances may write it.
            let mut turn = None;
            let fresh = attempt > 0 || (fresh_record && self.store.shared());
            if fresh {
                let refreshed = async {
                    if attempt > 0 && !std::mem::take(&mut after_refusal) {
                        turn = within(
                            self.store.shared(),
                            TURN_TIMEOUT,
                            StoreError::WriteTimedOut,
                            self.store.write_turn(),
                        )
                        .await?;
                    }
                    self.follow_locked(&mut turn).await?;
                    if fresh_record || std::mem::take(&mut record_refused) {
                        let json = within(
                            self.store.shared(),
                            FOLLOW_TIMEOUT,
                            StoreError::TimedOut,
                            self.store.applied_catalog(),
                        )
                        .await?;
                        *self.applied.write().expect("catalog lock") = applied_of(json);
                    }
                    Ok::<(), StoreError>(())
                }
                .await;
                if let Err(err) = refreshed {
                    self.note_store_error(&err);
                    return Err(Error::Store(err));
                }
            }
            let base = self.snapshot();
            let applied = self.applied.read().expect("catalog lock").clone();
            let (state, operator_revisions) = self.working_copy(&base);
            let mut draft = Draft::scratch(state, applied.as_ref().and_then(|r| r.catalog.clone()));
            draft.operator_revisions = operator_revisions;
            draft.applied_json = applied.map(|r| r.json);
            let value = match build(&mut draft) {
                Ok(value) => value,
                // Refused on this instance's copy, which may trail what
                // another instance has acknowledged (a model it just
                // created, the revision it just answered): the next try
                // reads the store and is built again, and its answer
                // stands (a refusal then is one against every write
                // acknowledged before this one came). It was refused at
                // once (404 for a model that exists, 412 for a revision the
                // client was just given).
                Err(_) if !fresh && self.store.shared() => {
                    self.give_back(draft);
                    after_refusal = true;
                    continue;
                }
                Err(err) => {
                    self.give_back(draft);
                    return Err(err);
                }
            };
            if draft.is_empty() && draft.record.is_none() {
                self.give_back(draft);
                // Nothing to change on this instance's copy, which may trail
                // what another instance has acknowledged (the value this
                // write asks for, replaced there; a revision given in
                // `If-Match`, replaced there too): confirmed only once built
                // on the store as it is, as a refusal is.
                if !fresh && self.store.shared() {
                    after_refusal = true;
                    continue;
                }
                if let Some(mut audit) = audit {
                    audit.epoch = Some(base.epoch().to_owned());
                    if let Err(err) = self.store.record_audit(&audit).await {
                        self.note_store_error(&err);
                        return Err(Error::Store(err));
                    }
                }
                return Ok(Written {
                    value,
                    version: base.version(),
                    events: 0,
                });
            }
            let records = draft.record.is_some();
            let service = self.clone();
            let audit = audit.clone();
            let (outcome, held) = RunToEnd::new(async move {
                let published = service
                    .commit_and_publish(&base, draft, audit.as_ref(), turn)
                    .await;
                // The snapshot this write replaced is the next one's draft,
                // made ready now (the events of this write applied to it
                // once more: microseconds before the answer).
                drop(base);
                service.ready_spare();
                if let Err(Error::Store(StoreError::VersionConflict { found, .. })) = &published {
                    tracing::info!(found, "another instance wrote first; catching up");
                    if let Err(err) = service.follow_locked(&mut None).await {
                        tracing::warn!(error = %err, "cannot catch up from the store");
                    }
                }
                // Past its limit the commit may still have been made (its
                // answer lost): read at once, so that the read-back the
                // answer asks for finds it here.
                if let Err(Error::Store(StoreError::WriteTimedOut(_))) = &published
                    && let Err(err) = service.follow_locked(&mut None).await
                {
                    tracing::warn!(error = %err, "cannot read the store after a write past its limit");
                }
                (published, guard)
            })
            .await;
            guard = held;
            match outcome {
                Ok((version, events)) => {
                    self.set_store_reachable(true);
                    return Ok(Written {
                        value,
                        version,
                        events,
                    });
                }
                Err(Error::Store(StoreError::VersionConflict { .. })) => {
                    record_refused = records;
                    self.metrics.write_conflicts.inc();
                    // Let the other instances' writes through before trying
                    // again (the writer lock is held: local writes wait).
                    tokio::time::sleep(conflict_pause(attempt)).await;
                    continue;
                }
                Err(Error::Store(err)) => {
                    self.note_store_error(&err);
                    return Err(Error::Store(err));
                }
                Err(err) => return Err(err),
            }
        }
        drop(guard);
        Err(Error::Unavailable(
            "other instances keep writing first; try again".into(),
        ))
    }

    /// A store error says the store is unreachable for this instance,
    /// unless it was a write past its time limit: that may be a lock held by
    /// another instance's long commit, or one connection gone silent, and
    /// says nothing of the store; the heartbeats' pings and the follower's
    /// reads tell.
    fn note_store_error(&self, err: &StoreError) {
        if err.is_unreachable() && !matches!(err, StoreError::WriteTimedOut(_)) {
            self.set_store_reachable(false);
        }
    }

    /// Applies what other instances committed since this instance's version
    /// (or reloads everything when the log no longer reaches back that far,
    /// or the epoch changed), publishing and broadcasting it. The store is
    /// read without holding the writer lock, so a slow or unreachable store
    /// does not hold up local writes or heartbeats.
    pub async fn follow(&self) -> std::result::Result<(), StoreError> {
        let followed = self.follow_unlocked().await;
        // Whatever kept it from reading the log (the store gone, its tables
        // dropped), this instance cannot vouch for its copy until it can.
        self.set_store_reachable(followed.is_ok());
        followed
    }

    /// A read of the log begun at `started` was applied in full.
    fn followed(&self, started: std::time::Instant) {
        let mut from = self.followed_from.lock().expect("followed lock");
        if from.is_none_or(|from| from < started) {
            *from = Some(started);
        }
    }

    /// Whether this instance has applied a read of the log begun at `at` or
    /// later.
    fn followed_since(&self, at: std::time::Instant) -> bool {
        self.followed_from
            .lock()
            .expect("followed lock")
            .is_some_and(|from| from >= at)
    }

    /// [`read_log_unlocked`](Self::read_log_unlocked), noted as applied in
    /// full when it succeeds.
    async fn follow_unlocked(&self) -> std::result::Result<(), StoreError> {
        let started = std::time::Instant::now();
        let followed = self.read_log_unlocked().await;
        if followed.is_ok() {
            self.followed(started);
        }
        followed
    }

    async fn read_log_unlocked(&self) -> std::result::Result<(), StoreError> {
        loop {
            let base = self.snapshot();
            let read = tokio::time::timeout(
                FOLLOW_TIMEOUT,
                self.store
                    .since(base.epoch(), base.version(), base.tip(), FOLLOW_BATCH),
            )
            .await
            .map_err(|_| StoreError::TimedOut(FOLLOW_TIMEOUT.as_millis() as u64))??;
            if matches!(&read, Since::Events { events, .. } if events.is_empty()) {
                return Ok(());
            }
            let _writing = self.writer.lock().await;
            let now = self.snapshot();
            if now.version() != base.version() || now.epoch() != base.epoch() {
                // A local write (or another round) moved on meanwhile. If it
                // reached where the store stood at this read, this instance
                // is caught up: reading again would find the next local
                // write, and under a stream of them never end.
                if let Since::Events { version, .. } = &read
                    && now.epoch() == base.epoch()
                    && now.version() >= *version
                {
                    return Ok(());
                }
                continue;
            }
            let caught_up = self.apply_read(&base, read, &mut None).await?;
            drop((base, now));
            self.ready_spare();
            if caught_up {
                return Ok(());
            }
        }
    }

    /// `follow` for a caller that holds the writer lock, and maybe the write
    /// turn (let go before a reload: one that starts a new epoch waits for
    /// the turn).
    async fn follow_locked(
        &self,
        turn: &mut Option<Box<dyn WriteTurn>>,
    ) -> std::result::Result<(), StoreError> {
        let started = std::time::Instant::now();
        loop {
            let base = self.snapshot();
            let read = within(
                self.store.shared(),
                FOLLOW_TIMEOUT,
                StoreError::TimedOut,
                self.store
                    .since(base.epoch(), base.version(), base.tip(), FOLLOW_BATCH),
            )
            .await?;
            let caught_up = self.apply_read(&base, read, turn).await?;
            drop(base);
            self.ready_spare();
            if caught_up {
                self.followed(started);
                return Ok(());
            }
        }
    }

    /// Applies one read of the log onto `base` (the writer lock is held);
    /// true when this instance is caught up.
    async fn apply_read(
        &self,
        base: &Snapshot,
        read: Since,
        turn: &mut Option<Box<dyn WriteTurn>>,
    ) -> std::result::Result<bool, StoreError> {
        let applied = match read {
            Since::Events { events, .. } if events.is_empty() => return Ok(true),
            Since::Events { events, .. } => self.publish_followed(base, events),
            Since::Gone => false,
            Since::Diverged => {
                *turn = None;
                self.reload(true).await?;
                return Ok(true);
            }
        };
        if !applied {
            // Events that do not apply, or a log that no longer reaches back.
            *turn = None;
            self.reload(false).await?;
        }
        Ok(!applied)
    }

    /// A client says it has `version` of `epoch`, ahead of this instance or
    /// of another epoch (it came from another instance of the cluster): catch
    /// up from the store first, so that it is not sent an older state. One
    /// catch-up at a time, bounded in time; a failure leaves the reachability
    /// flag to the follower.
    ///
    /// False when it had to and could not (the store did not answer in
    /// time): what this instance holds may then be older than what the
    /// client holds, and must not be sent as the current state.
    pub async fn catch_up_to(&self, epoch: Option<&str>, version: u64) -> bool {
        let Some(epoch) = epoch else { return true };
        let arrived = std::time::Instant::now();
        let behind =
            |snapshot: &Snapshot| version > snapshot.version() || epoch != snapshot.epoch();
        if !self.store.shared() || !behind(&self.snapshot()) {
            return true;
        }
        let Ok(_one) = tokio::time::timeout(FOLLOW_TIMEOUT, self.catching_up.lock()).await else {
            return false;
        };
        // Another catch-up, or the follower, may have done it meanwhile: a
        // read of the log begun since this client came holds all it can
        // ask for (many clients of an epoch this instance left reconnect
        // at once, and each would read the store again, one at a time).
        if !behind(&self.snapshot()) || self.followed_since(arrived) {
            return true;
        }
        match tokio::time::timeout(FOLLOW_TIMEOUT, self.follow_unlocked()).await {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot catch up for a client that is ahead");
                self.note_store_error(&err);
                false
            }
            Err(_) => {
                tracing::warn!("catching up for a client that is ahead took too long");
                self.set_store_reachable(false);
                false
            }
        }
    }

    /// [`catch_up_to`](Self::catch_up_to) for a client's request: `Err`
    /// (the store unreachable: 503 with `Retry-After`, which the SDK and a
    /// load balancer take as "ask again, maybe elsewhere") when the client
    /// holds a version or an epoch this instance could not catch up to, so
    /// that neither a `POST /sync` nor a WebSocket's `hello` and full state
    /// roll the client back to this instance's older copy.
    pub async fn caught_up_for(&self, epoch: Option<&str>, version: u64) -> Result<()> {
        if self.catch_up_to(epoch, version).await {
            Ok(())
        } else {
            Err(Error::Store(StoreError::Unreachable))
        }
    }

    /// Applies events read from the store; false if they do not apply (the
    /// state must be reloaded).
    fn publish_followed(&self, base: &Snapshot, events: Vec<(SyncEvent, String)>) -> bool {
        let (mut state, mut operator_revisions) = self.working_copy(base);
        let mut new_events = Vec::with_capacity(events.len());
        for (event, json) in events {
            if event.version != state.metadata.version + 1 {
                tracing::warn!(
                    version = event.version,
                    "an event from the store does not follow; reloading"
                );
                return false;
            }
            operator_revisions.note(&state, &event.payload);
            if apply_event(&mut state, &event) != Ok(Applied::Changed) {
                tracing::warn!(
                    version = event.version,
                    "an event from the store does not apply; reloading"
                );
                return false;
            }
            new_events.push(Arc::new(LoggedEvent {
                event,
                json: Utf8Bytes::from(json),
            }));
        }
        state.metadata.server_time = made_at(new_events.last().map(|e| &e.event));
        self.publish(base, state, operator_revisions, new_events);
        true
    }

    /// Replaces the state with the store's (another epoch, a trimmed log):
    /// every WebSocket client is told to resync. `diverged`: the store's
    /// history is not this instance's from some version on (it went back in
    /// time and was written on again).
    async fn reload(&self, diverged: bool) -> std::result::Result<(), StoreError> {
        let load = || async {
            tokio::time::timeout(FOLLOW_TIMEOUT * 6, self.store.load())
                .await
                .map_err(|_| StoreError::TimedOut(FOLLOW_TIMEOUT.as_millis() as u64 * 6))?
        };
        let mut loaded = load().await?;
        let held = self.snapshot();
        // The last version this instance held in the store's epoch: now, or
        // when it left that epoch.
        let held_there = if loaded.epoch == held.epoch() {
            Some((held.version(), None))
        } else {
            let left = self.left_epochs.lock().expect("epochs lock");
            left.get(&loaded.epoch).cloned()
        };
        let mut went_back = held_there.as_ref().is_some_and(|(there, _)| {
            loaded.version < *there || (diverged && loaded.epoch == held.epoch())
        });
        if let Some((there, tip)) = held_there.as_ref().filter(|_| loaded.epoch != held.epoch())
            && !went_back
        {
            // Back in an epoch it left, as far as it got there or further:
            // the same history only if the store's event at that version is
            // the one it held (another instance, which never held this
            // history, may have written on it from an earlier version); when
            // that cannot be told (not held, trimmed), not taken as the same.
            went_back = match tip {
                Some(tip) => !matches!(
                    self.store
                        .since(&loaded.epoch, *there, Some(tip), 1)
                        .await?,
                    Since::Events { .. }
                ),
                None => true,
            };
        }
        let held_there = held_there.map(|(there, _)| there);
        if went_back {
            // The store went back in time under this instance (a restore
            // from a backup, a failover to a replica that lagged, the same
            // backup restored again after a first restore's new epoch), and
            // was perhaps written on again since: the versions after where
            // it went back are given to other changes, and a client holding
            // one of the lost history would take them as its own. A new
            // epoch sends every client a full state.
            tracing::warn!(
                store_version = loaded.version,
                held_version = held_there,
                diverged,
                "the store went back in time under this instance (restored, or failed over); starting a new epoch"
            );
            // Only from where it was found: another instance that found
            // the same may have rotated it already. One that wrote meanwhile
            // moved it on, still in the history to leave.
            let gone = loaded.epoch.clone();
            let mut tries = 0;
            while loaded.epoch == gone {
                self.store
                    .rotate_epoch_from(&loaded.epoch, loaded.version)
                    .await?;
                loaded = load().await?;
                tries += 1;
                if loaded.epoch == gone {
                    if tries == 10 {
                        // Not served as current: the follower tries again,
                        // and a write waiting on this is told to retry.
                        return Err(StoreError::Unreachable);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 * tries)).await;
                }
            }
        }
        if loaded.epoch != held.epoch() {
            let mut left = self.left_epochs.lock().expect("epochs lock");
            if left.len() >= LEFT_EPOCHS && !left.contains_key(held.epoch()) {
                // The lowest version's: the oldest, most likely.
                if let Some(oldest) = left
                    .iter()
                    .min_by_key(|(_, (v, _))| *v)
                    .map(|(e, _)| e.clone())
                {
                    left.remove(&oldest);
                }
            }
            let tip = held.tip().map(str::to_owned);
            let last = left.entry(held.epoch().to_owned()).or_insert((0, None));
            if held.version() > last.0 || (held.version() == last.0 && last.1.is_none()) {
                *last = (held.version(), tip);
            }
        }
        let (mut snapshot, applied) = Self::snapshot_of(loaded, self.retention);
        if snapshot.epoch() == held.epoch() {
            // Nothing told that the store's events after this instance's
            // version follow from its copy (the log no longer reached it):
            // a client at a version it held is sent a full state, not
            // events that may belong to another history.
            let held_version = held.version();
            snapshot.log.retain(|e| e.event.version > held_version + 1);
        }
        tracing::warn!(
            epoch = %snapshot.epoch(),
            version = snapshot.version(),
            "reloaded the catalog from the store"
        );
        self.metrics.store_reloads.inc();
        let notice = snapshot.control_event(EventPayload::ResyncRequired(
            provider_sync_protocol::ResyncRequired {
                reason: "reloaded".into(),
                missed: 0,
            },
        ));
        let version = snapshot.version();
        let epoch: Arc<str> = Arc::from(snapshot.epoch());
        let _publishing = self.publishing.lock().expect("publish lock");
        *self.current.write().expect("snapshot lock") = Arc::new(snapshot);
        self.published.notify_one();
        // Not an ancestor of the new state (dropped once the lock is let go).
        let spare = std::mem::take(&mut *self.spare_slot());
        *self.applied.write().expect("catalog lock") = applied;
        self.metrics.version.set(version as i64);
        let _ = self.frames.send(Frame {
            version,
            change: false,
            reset: true,
            epoch: Some(epoch),
            text: Utf8Bytes::from(serde_json::to_string(&notice).expect("event serialises")),
        });
        drop(_publishing);
        drop(spare);
        Ok(())
    }

    /// An owned copy of `base`'s state and operator revisions to change:
    /// the spare brought forward to it when it can be, a clone otherwise.
    fn working_copy(&self, base: &Snapshot) -> (SyncState, OperatorRevisions) {
        let owned = Self::owned_spare(&mut self.spare_slot());
        owned
            .and_then(|(state, revisions)| forward(state, revisions, base))
            .unwrap_or_else(|| (base.state.clone(), base.operator_revisions.clone()))
    }

    /// Leaves the copy of the state a write's draft changed nothing in (no
    /// event: a refusal, or a write asking for what is there) to the next
    /// write, which would otherwise clone the state again; a draft with
    /// events is dropped (its copy is ahead of the state, or was refused
    /// half-way). Only `Draft::emit` changes a draft's state and revisions,
    /// and each time with an event: a draft without one holds its base's
    /// state. ([`forward`] compares a spare's metadata and revisions with
    /// the current state's, but at the same version that metadata is the
    /// draft's own: it would not see a change made without an event.)
    fn give_back(&self, draft: Draft) {
        if !draft.is_empty() {
            return;
        }
        let Draft {
            state,
            operator_revisions,
            ..
        } = draft;
        // A retired snapshot a reader still holds, if that is what the slot
        // has, is let go of outside the lock.
        let _replaced = std::mem::replace(
            &mut *self.spare_slot(),
            Spare::Ready(state, operator_revisions),
        );
    }

    /// Brings the snapshot the last publication retired forward to the
    /// current one, if no reader holds it any more (else it stays retired,
    /// for the next write to try again). Called with the writer lock held,
    /// after a write's or a follow's publication, once its caller has let
    /// go of the snapshot it replaced.
    fn ready_spare(&self) {
        let owned = {
            let mut slot = self.spare_slot();
            if !matches!(*slot, Spare::Retired(_)) {
                return;
            }
            Self::owned_spare(&mut slot)
        };
        // Outside the lock: what the snapshot held besides its state is
        // freed here.
        let Some((state, revisions)) = owned else {
            return;
        };
        let current = self.snapshot();
        if let Some((state, revisions)) = forward(state, revisions, &current) {
            let mut slot = self.spare_slot();
            // Unless a publication came in between (none can: both run
            // under the writer lock).
            if matches!(*slot, Spare::None) {
                *slot = Spare::Ready(state, revisions);
            }
        }
    }

    /// The spare's slot; a panic elsewhere while it was held leaves nothing
    /// half-made in it (each change is one assignment).
    fn spare_slot(&self) -> std::sync::MutexGuard<'_, Spare> {
        self.spare
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The spare's state, owned, taken out of `slot`; a retired snapshot a
    /// reader still holds is left where it is.
    fn owned_spare(slot: &mut Spare) -> Option<(SyncState, OperatorRevisions)> {
        match std::mem::take(slot) {
            Spare::None => None,
            Spare::Ready(state, revisions) => Some((state, revisions)),
            Spare::Retired(snapshot) => match Arc::try_unwrap(snapshot) {
                Ok(snapshot) => Some((snapshot.state, snapshot.operator_revisions)),
                Err(held) => {
                    *slot = Spare::Retired(held);
                    None
                }
            },
        }
    }

    /// Publishes a new snapshot (the state after `new_events`) and broadcasts
    /// the events.
    fn publish(
        &self,
        base: &Snapshot,
        state: SyncState,
        operator_revisions: OperatorRevisions,
        new_events: Vec<Arc<LoggedEvent>>,
    ) {
        let log = base.log.appended(&new_events, self.retention);
        let version = state.metadata.version;
        let _publishing = self.publishing.lock().expect("publish lock");
        let retired = std::mem::replace(
            &mut *self.current.write().expect("snapshot lock"),
            Arc::new(Snapshot::new(state, operator_revisions, log)),
        );
        self.published.notify_one();
        self.metrics.version.set(version as i64);
        self.metrics.events.inc_by(new_events.len() as u64);
        for logged in &new_events {
            let _ = self.frames.send(Frame {
                version: logged.event.version,
                change: true,
                reset: false,
                epoch: None,
                text: logged.json.clone(),
            });
        }
        drop(_publishing);
        // The spare it replaces (not brought forward: a reader held it) is
        // dropped outside the locks.
        let _previous = std::mem::replace(&mut *self.spare_slot(), Spare::Retired(retired));
    }

    async fn commit_and_publish(
        &self,
        base: &Snapshot,
        draft: Draft,
        audit: Option<&AuditRecord>,
        turn: Option<Box<dyn WriteTurn>>,
    ) -> Result<(u64, usize)> {
        let audit = audit.map(|audit| AuditRecord {
            epoch: Some(base.epoch().to_owned()),
            versions: draft
                .events
                .first()
                .zip(draft.events.last())
                .map(|(first, last)| (first.version, last.version)),
            ..audit.clone()
        });
        let jsons: Vec<String> = draft
            .events
            .iter()
            .map(|e| serde_json::to_string(e).expect("event serialises"))
            .collect();
        let record = draft
            .record
            .as_ref()
            .map(|c| serde_json::to_string(&**c).expect("catalog serialises"));
        let commit = Commit {
            base_epoch: base.epoch(),
            base_version: base.version(),
            base_tip: base.tip(),
            events: draft
                .events
                .iter()
                .zip(&jsons)
                .map(|(e, j)| (e.version, j.as_str()))
                .collect(),
            rows: draft.rows(),
            retain: self.retention.events,
            retain_bytes: self.retention.bytes,
            catalog: record.as_deref(),
            catalog_base: draft.applied_json.as_deref(),
            audit: audit.as_ref(),
        };
        let shared = self.store.shared();
        let limit = commit_timeout(commit.events.len());
        let committed = async {
            // On a shared store the turn is taken first, under its own
            // limit: waiting for another instance's commit is not this
            // commit's time.
            let turn = match turn {
                Some(turn) => Some(turn),
                None if shared => {
                    let take = self.store.write_turn();
                    within(true, TURN_TIMEOUT, StoreError::WriteTimedOut, take).await?
                }
                None => None,
            };
            match turn {
                Some(turn) => {
                    let commit = turn.commit(&commit);
                    within(shared, limit, StoreError::WriteTimedOut, commit).await
                }
                None => {
                    let commit = self.store.commit(&commit);
                    within(shared, limit, StoreError::WriteTimedOut, commit).await
                }
            }
        };
        committed.await.map_err(Error::Store)?;
        drop(commit);

        let Draft {
            mut state,
            operator_revisions,
            events,
            record: recorded,
            ..
        } = draft;
        if let (Some(catalog), Some(json)) = (recorded, record) {
            *self.applied.write().expect("catalog lock") = Some(AppliedRecord {
                catalog: Some(catalog),
                json: Arc::from(json),
            });
        }
        let new_events: Vec<Arc<LoggedEvent>> = events
            .into_iter()
            .zip(jsons)
            .map(|(event, json)| {
                Arc::new(LoggedEvent {
                    event,
                    json: Utf8Bytes::from(json),
                })
            })
            .collect();
        state.metadata.server_time = made_at(new_events.last().map(|e| &e.event));
        let version = state.metadata.version;
        let count = new_events.len();
        self.publish(base, state, operator_revisions, new_events);
        Ok((version, count))
    }

    /// Lets go of the store (its lock file, cluster roles, connections).
    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// A store for tests of the service and of what serves it.
#[cfg(test)]
pub(crate) mod testing {
    use std::time::Duration;

    use super::*;
    use crate::store::{Loaded, SqliteStore};

    /// A SQLite store that can acknowledge its commits late (to cancel a
    /// write between the commit and its publication), pass for one that
    /// several instances share, and counts its reads of the log.
    #[derive(Debug)]
    pub(crate) struct Wrapped {
        store: SqliteStore,
        ack_delay: Duration,
        shared: bool,
        pub(crate) reads: std::sync::atomic::AtomicUsize,
        /// Reads of the log fail (a store that refuses them) while set.
        pub(crate) fail_reads: std::sync::atomic::AtomicBool,
        /// Writes this service makes, one at the start of each read of the
        /// log while any are left: local writes landing while it follows.
        pub(crate) writes_on_read: std::sync::atomic::AtomicUsize,
        pub(crate) service: std::sync::OnceLock<std::sync::Weak<Service>>,
    }

    impl Wrapped {
        pub(crate) async fn open(
            dir: &tempfile::TempDir,
            ack_delay: Duration,
            shared: bool,
        ) -> Self {
            let path = dir.path().join("w.db").display().to_string();
            Self {
                store: SqliteStore::open(&path).await.unwrap(),
                ack_delay,
                shared,
                reads: Default::default(),
                fail_reads: Default::default(),
                writes_on_read: Default::default(),
                service: Default::default(),
            }
        }
    }

    #[async_trait::async_trait]
    impl Store for Wrapped {
        fn shared(&self) -> bool {
            self.shared
        }
        async fn load(&self) -> Result<Loaded, StoreError> {
            self.store.load().await
        }
        async fn commit(&self, commit: &Commit<'_>) -> Result<(), StoreError> {
            self.store.commit(commit).await?;
            tokio::time::sleep(self.ack_delay).await;
            Ok(())
        }
        async fn rotate_epoch(&self) -> Result<String, StoreError> {
            self.store.rotate_epoch().await
        }
        async fn since(
            &self,
            epoch: &str,
            after: u64,
            tip: Option<&str>,
            limit: usize,
        ) -> Result<crate::store::Since, StoreError> {
            use std::sync::atomic::Ordering::SeqCst;
            self.reads.fetch_add(1, SeqCst);
            if self.fail_reads.load(SeqCst) {
                return Err(StoreError::Database(sqlx::Error::Protocol(
                    "reads refused by the test".into(),
                )));
            }
            let service = self.service.get().and_then(std::sync::Weak::upgrade);
            if let Some(service) = service
                && self
                    .writes_on_read
                    .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                let id = format!("local{}", self.reads.load(SeqCst));
                // Only for reads without the writer lock (a `follow`):
                // under it (a reconcile on a shared store, a conflict) this
                // write would wait for ever.
                let new = provider_sync_protocol::NewProvider {
                    id: id.clone(),
                    name: id,
                    ..Default::default()
                };
                let write = service.write(|d| crate::commands::create_provider(d, new.clone()));
                tokio::time::timeout(Duration::from_secs(10), write)
                    .await
                    .expect("a read without the writer lock")
                    .unwrap();
            }
            self.store.since(epoch, after, tip, limit).await
        }
        async fn applied_catalog(&self) -> Result<Option<String>, StoreError> {
            self.store.applied_catalog().await
        }
        async fn ping(&self) -> Result<(), StoreError> {
            self.store.ping().await
        }
        async fn record_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
            self.store.record_audit(record).await
        }
        async fn audit(
            &self,
            before: Option<u64>,
            limit: u32,
        ) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
            self.store.audit(before, limit).await
        }
        async fn trim_audit(&self, older_than_ms: i64) -> Result<u64, StoreError> {
            self.store.trim_audit(older_than_ms).await
        }
    }
}

/// Runs a future to its end even if whoever waits for it stops waiting: it
/// is polled in place while its caller waits (no task of its own: no
/// wake-up of a worker to run it, nor of the caller when it ends); if the
/// caller is dropped first (the request went away), what is left of it is
/// spawned and runs on. A commit, once begun, is carried through to its
/// publication, its answer read, this way.
struct RunToEnd<T: Send + 'static> {
    future: Option<std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>>,
    /// The runtime it began on, which finishes it if its caller is dropped
    /// first (wherever that drop happens, as `tokio::spawn` would have).
    runtime: tokio::runtime::Handle,
}

impl<T: Send + 'static> RunToEnd<T> {
    /// Panics outside a tokio runtime, as `tokio::spawn` does.
    fn new(future: impl std::future::Future<Output = T> + Send + 'static) -> Self {
        Self {
            future: Some(Box::pin(future)),
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

impl<T: Send + 'static> std::future::Future for RunToEnd<T> {
    type Output = T;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        let future = self.future.as_mut().expect("RunToEnd polled after its end");
        // A future that panicked is not handed on by `drop` (its next poll
        // would only panic again, far from the cause): taken out, then the
        // panic goes on.
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.as_mut().poll(cx)));
        match polled {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(output)) => {
                self.future = None;
                std::task::Poll::Ready(output)
            }
            Err(panic) => {
                self.future = None;
                std::panic::resume_unwind(panic)
            }
        }
    }
}

impl<T: Send + 'static> Drop for RunToEnd<T> {
    fn drop(&mut self) {
        if let Some(rest) = self.future.take() {
            // Its output (the answer, the writer's turn) is dropped when it
            // ends. A runtime shutting down drops the task at once, as it
            // did a spawned commit's.
            self.runtime.spawn(async move {
                rest.await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::testing::Wrapped;
    use super::*;
    use crate::store::SqliteStore;

    /// A service on `store` with a log of `retention` events and a queue of
    /// 16 frames.
    async fn service_on(store: Arc<dyn Store>, retention: u64) -> Arc<Service> {
        Service::open(
            store,
            Retention::events(retention),
            16,
            Arc::new(Metrics::new()),
        )
        .await
        .unwrap()
    }

    /// A SQLite store in `dir`, in a file of that name.
    async fn sqlite_store(dir: &tempfile::TempDir, name: &str) -> Arc<dyn Store> {
        let path = dir.path().join(name).display().to_string();
        Arc::new(SqliteStore::open(&path).await.unwrap())
    }

    /// Two services on one SQLite store in `dir`, the first to write and
    /// the second to follow.
    async fn leader_and_follower(dir: &tempfile::TempDir) -> (Arc<Service>, Arc<Service>) {
        let store = sqlite_store(dir, "f.db").await;
        (
            service_on(store.clone(), 1000).await,
            service_on(store, 1000).await,
        )
    }

    fn provider(id: &str) -> provider_sync_protocol::NewProvider {
        provider_sync_protocol::NewProvider {
            id: id.into(),
            name: id.into(),
            ..Default::default()
        }
    }

    /// Logged events of versions `from..to`, each `len` bytes of JSON.
    pub(super) fn logged(versions: std::ops::Range<u64>, len: usize) -> Vec<Arc<LoggedEvent>> {
        versions
            .map(|version| {
                Arc::new(LoggedEvent {
                    event: SyncEvent {
                        id: format!("e:{version}"),
                        version,
                        timestamp: String::new(),
                        payload: EventPayload::ActiveProviderChanged(
                            provider_sync_protocol::ActiveProviderChanged {
                                active_provider_id: None,
                                default_provider_id: None,
                            },
                        ),
                    },
                    json: Utf8Bytes::from("x".repeat(len)),
                })
            })
            .collect()
    }

    /// A store's contents at version 5 with `log` as its event log.
    fn loaded_with(log: &[u64]) -> Loaded {
        Loaded {
            epoch: "e".into(),
            version: 5,
            providers: Vec::new(),
            models: Vec::new(),
            active_provider_id: None,
            default_provider_id: None,
            log: log
                .iter()
                .flat_map(|&v| logged(v..v + 1, 10))
                .map(|e| (e.event.clone(), e.json.to_string()))
                .collect(),
            catalog: None,
            probed: std::collections::BTreeMap::new(),
        }
    }

    #[test]
    fn a_stored_log_with_a_hole_or_behind_the_state_is_not_served_across_it() {
        let retention = Retention::events(100);
        let whole = Service::snapshot_of(loaded_with(&[2, 3, 4, 5]), retention).0;
        assert!(matches!(whole.missed_since(1, "e"), CatchUp::Events(events) if events.len() == 4));
        // A hole (4 missing) ending at the state's version: resuming from 1
        // across it would skip an event, so a client from before it takes
        // the full state; one from after it still resumes (a black-box
        // check, 2026-12-04: the whole log was dropped, every client took
        // the full state until the hole was trimmed out).
        let holed = Service::snapshot_of(loaded_with(&[2, 3, 5]), retention).0;
        assert!(matches!(holed.missed_since(1, "e"), CatchUp::Full(_)));
        assert!(matches!(holed.missed_since(3, "e"), CatchUp::Full(_)));
        assert!(matches!(holed.missed_since(4, "e"), CatchUp::Events(events) if events.len() == 1));
        let holes = Service::snapshot_of(loaded_with(&[1, 3, 4, 5]), retention).0;
        assert!(matches!(holes.missed_since(2, "e"), CatchUp::Events(events) if events.len() == 3));
        assert!(matches!(holes.missed_since(1, "e"), CatchUp::Full(_)));
        // Contiguous but ending before the state's version.
        let behind = Service::snapshot_of(loaded_with(&[2, 3, 4]), retention).0;
        assert!(matches!(behind.missed_since(1, "e"), CatchUp::Full(_)));
    }

    /// The pause after a conflict: from 1 to 2 ms at the first, up to 4 ms
    /// more at each further try, and spread over its whole range.
    #[test]
    fn the_pause_after_a_conflict_is_jittered_and_grows() {
        for attempt in [0, 1, 4] {
            let most = 2 + attempt as u64 * 4;
            let seen: std::collections::BTreeSet<u64> = (0..2000)
                .map(|_| conflict_pause(attempt).as_millis() as u64)
                .collect();
            // Every value from 1 to `most` (2,000 draws of at most 18
            // values leave one out with a chance below 10^-45).
            assert_eq!(seen, (1..=most).collect(), "attempt {attempt}");
        }
    }

    /// A commit that panicked is not handed to a task of its own when its
    /// caller then drops it: its next poll would only panic again, far from
    /// the cause. One cut short by its caller is (the normal hand-off:
    /// `a_cancelled_write_still_publishes_what_it_committed`).
    #[tokio::test]
    async fn a_panicked_commit_is_not_run_again() {
        let mut run = RunToEnd::new(async move {
            panic!("a commit that panics");
        });
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = std::pin::Pin::new(&mut run).poll(&mut cx);
        }));
        assert!(polled.is_err(), "the panic went on");
        // Nothing left for `drop` to hand on (a future that panicked would
        // panic again at its next poll: "resumed after panicking").
        assert!(run.future.is_none(), "the panicked future kept");
    }

    /// A follower several batches of the log behind catches up in one
    /// `follow`, not one batch per call.
    #[tokio::test]
    async fn a_follower_several_batches_behind_catches_up_in_one_follow() {
        let dir = tempfile::tempdir().unwrap();
        let (leader, follower) = leader_and_follower(&dir).await;
        let count = FOLLOW_BATCH * 2 + 50;
        leader
            .write(|d| {
                for i in 0..count {
                    crate::commands::create_provider(d, provider(&format!("p{i:03}")))?;
                }
                Ok(())
            })
            .await
            .unwrap();
        follower.follow().await.unwrap();
        let (ahead, behind) = (leader.snapshot(), follower.snapshot());
        assert_eq!(behind.version(), count as u64);
        assert_eq!(behind.epoch(), ahead.epoch());
        assert_eq!(behind.state.providers, ahead.state.providers);
        // From the log, event by event (a reload would publish none).
        assert_eq!(follower.metrics().events.get(), count as u64);
    }

    /// A client that comes to this instance of a cluster already at its
    /// version costs no read of the store (thousands reconnect at once
    /// after a restart); one ahead of it, or of another epoch, is caught
    /// up to first.
    #[tokio::test]
    async fn only_a_client_ahead_of_the_instance_makes_it_read_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Wrapped::open(&dir, Duration::ZERO, true).await);
        let service = service_on(store.clone(), 100).await;
        service
            .write(|d| crate::commands::create_provider(d, provider("a")))
            .await
            .unwrap();
        let reads = || store.reads.load(std::sync::atomic::Ordering::SeqCst);
        let epoch = service.snapshot().epoch().to_owned();
        let before = reads();
        service.catch_up_to(Some(&epoch), 1).await;
        service.catch_up_to(Some(&epoch), 0).await;
        service.catch_up_to(None, 5).await;
        assert_eq!(reads(), before, "a client at or behind this instance");
        service.catch_up_to(Some(&epoch), 2).await;
        assert!(reads() > before, "a client ahead of it");
        let before = reads();
        service.catch_up_to(Some("another epoch"), 1).await;
        assert!(reads() > before, "a client of another epoch");
    }

    /// Clients waiting for a catch-up (many of an epoch this instance
    /// left, reconnecting at once) make no read of their own once a read of
    /// the log begun after they came has been applied.
    #[tokio::test]
    async fn waiting_clients_take_a_read_begun_after_they_came() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Wrapped::open(&dir, Duration::ZERO, true).await);
        let service = service_on(store.clone(), 100).await;
        let reads = || store.reads.load(std::sync::atomic::Ordering::SeqCst);
        let held = service.catching_up.lock().await;
        let waiting: Vec<_> = (0..20)
            .map(|_| {
                let service = service.clone();
                tokio::spawn(async move { service.catch_up_to(Some("a left epoch"), 1).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        service.follow().await.unwrap();
        let before = reads();
        drop(held);
        for one in waiting {
            assert!(one.await.unwrap());
        }
        assert_eq!(reads(), before, "no read of their own");
        // A client that comes later reads.
        assert!(service.catch_up_to(Some("a left epoch"), 1).await);
        assert!(reads() > before);
    }

    /// A follow ends once this instance has what the store held when it
    /// read, even while local writes keep landing between its read and its
    /// turn at the writer lock (each would otherwise make it read again).
    #[tokio::test]
    async fn a_follow_ends_while_local_writes_keep_coming() {
        use std::sync::atomic::Ordering::SeqCst;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Wrapped::open(&dir, Duration::ZERO, true).await);
        let service = service_on(store.clone(), 100).await;
        store.service.set(Arc::downgrade(&service)).unwrap();
        store.writes_on_read.store(10, SeqCst);
        service.follow().await.unwrap();
        assert_eq!(store.reads.load(SeqCst), 1);
        assert_eq!(
            store.writes_on_read.load(SeqCst),
            9,
            "the other writes waited for nothing"
        );
        assert_eq!(service.snapshot().version(), 1);
        store.writes_on_read.store(0, SeqCst);
    }

    /// A write that changes nothing on this instance's copy is checked
    /// against the store before it is confirmed: another instance may have
    /// acknowledged a change the copy does not have yet (the earlier write
    /// stood, and a stale `If-Match` passed).
    #[tokio::test]
    async fn a_write_that_changes_nothing_here_is_checked_against_the_store() {
        use provider_sync_protocol::ProviderPatch;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Wrapped::open(&dir, Duration::ZERO, true).await);
        let here = service_on(store.clone(), 100).await;
        here.write(|d| crate::commands::create_provider(d, provider("a")))
            .await
            .unwrap();
        // Another instance on the same store, which this one has not
        // followed (no wake-up: the store sends none).
        let there = service_on(store.clone(), 100).await;
        let renamed = |name: &str| ProviderPatch {
            name: Some(name.into()),
            ..Default::default()
        };
        let other = there
            .write(|d| crate::commands::update_provider(d, "a", None, renamed("N")))
            .await
            .unwrap();
        assert_eq!(other.version, 2);
        assert_eq!(here.snapshot().version(), 1, "not followed yet");
        let stale = here
            .write(|d| crate::commands::update_provider(d, "a", Some(1), renamed("a")))
            .await;
        assert!(
            matches!(stale, Err(Error::PreconditionFailed { .. })),
            "a revision the other instance replaced: {stale:?}"
        );
        let back = here
            .write(|d| crate::commands::update_provider(d, "a", None, renamed("a")))
            .await
            .unwrap();
        assert_eq!(back.version, 3, "a change, after the other instance's");
        assert_eq!(back.value.name, "a");
        there.follow().await.unwrap();
        assert_eq!(there.snapshot().state.provider("a").unwrap().name, "a");
    }

    /// Writes a provider of that id.
    async fn add_provider(service: &Arc<Service>, id: &str) {
        service
            .write(|d| crate::commands::create_provider(d, provider(id)))
            .await
            .unwrap();
    }

    /// Where the ready spare's first provider keeps its id: a heap address,
    /// the same in the state the next write publishes if that write took
    /// the spare rather than a clone.
    fn spare_address(service: &Service) -> Option<usize> {
        match &*service.spare.lock().unwrap() {
            Spare::Ready(state, _) => state.providers.first().map(|p| p.id.as_ptr() as usize),
            _ => None,
        }
    }

    fn published_address(service: &Service) -> usize {
        service.snapshot().state.providers[0].id.as_ptr() as usize
    }

    /// The version and content of the spare, if it is ready.
    fn spare_ready(service: &Service) -> Option<(u64, SyncState)> {
        match &*service.spare.lock().unwrap() {
            Spare::Ready(state, _) => Some((state.metadata.version, state.clone())),
            _ => None,
        }
    }

    /// A write starts from the snapshot the last one replaced, brought
    /// forward (no clone of the whole state); while a reader holds that
    /// snapshot it waits, and the write clones. Either way the published
    /// state is what the writes made.
    #[tokio::test]
    async fn a_write_starts_from_the_snapshot_the_last_one_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir, "s.db").await;
        let service = service_on(store.clone(), 100).await;
        assert!(spare_ready(&service).is_none(), "none before a write");
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            add_provider(&service, id).await;
            let (version, state) = spare_ready(&service).expect("ready after the write");
            assert_eq!(version, i as u64 + 1);
            assert_eq!(state, service.snapshot().state, "the spare is the state");
        }
        // The next write takes it.
        let held = service.snapshot();
        add_provider(&service, "d").await;
        assert!(
            matches!(*service.spare.lock().unwrap(), Spare::Retired(_)),
            "a reader holds the replaced snapshot"
        );
        // So the next write clones; the snapshot it replaces (nobody else
        // holds it) is its successor's spare.
        add_provider(&service, "e").await;
        assert_eq!(spare_ready(&service).map(|(v, _)| v), Some(5));
        drop(held);
        add_provider(&service, "f").await;
        let (version, state) = spare_ready(&service).expect("ready");
        assert_eq!(version, 6);
        let ids: Vec<&str> = state.providers.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "d", "e", "f"]);
        // What another instance reading the store sees.
        let reader = service_on(store, 100).await;
        assert_eq!(reader.snapshot().state.providers, state.providers);
        assert_eq!(
            reader.snapshot().state.metadata.checksum,
            state.metadata.checksum
        );
        // The next write publishes the spare itself, not a clone of it.
        let spare = spare_address(&service).expect("ready");
        assert_ne!(spare, published_address(&service));
        add_provider(&service, "g").await;
        assert_eq!(published_address(&service), spare, "the spare was taken");
    }

    /// A write whose draft changed nothing (refused, or asking for what is
    /// there) leaves its copy to the next write instead of dropping it, so
    /// that one does not clone the state; a draft refused after an event is
    /// not taken.
    #[tokio::test]
    async fn a_write_that_changes_nothing_leaves_its_copy_to_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let service = service_on(sqlite_store(&dir, "s.db").await, 100).await;
        add_provider(&service, "a").await;
        add_provider(&service, "b").await;
        assert_eq!(spare_ready(&service).map(|(v, _)| v), Some(2));
        // Refused before any event: the id is taken.
        let refused = service
            .write(|d| crate::commands::create_provider(d, provider("a")))
            .await;
        assert!(refused.is_err(), "the id is taken");
        let (version, state) = spare_ready(&service).expect("left by the refused write");
        assert_eq!(version, 2);
        assert_eq!(state, service.snapshot().state);
        // Nothing asked for.
        let written = service.write(|_| Ok(())).await.unwrap();
        assert_eq!((written.version, written.events), (2, 0));
        let (version, state) = spare_ready(&service).expect("left by the empty write");
        assert_eq!(version, 2);
        assert_eq!(state, service.snapshot().state);
        // The next write publishes that copy itself.
        let left = spare_address(&service).expect("ready");
        add_provider(&service, "c").await;
        assert_eq!(published_address(&service), left, "the copy was taken");
        assert_eq!(spare_ready(&service).map(|(v, _)| v), Some(3));
        // Refused after an event: its copy has the refused provider.
        let refused = service
            .write(|d| {
                crate::commands::create_provider(d, provider("x"))?;
                crate::commands::create_provider(d, provider("a"))
            })
            .await;
        assert!(refused.is_err(), "the second id is taken");
        assert!(spare_ready(&service).is_none(), "a changed copy is dropped");
        add_provider(&service, "d").await;
        let (version, state) = spare_ready(&service).expect("ready after the write");
        assert_eq!(version, 4);
        let ids: Vec<&str> = state.providers.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "d"]);
        assert_eq!(state, service.snapshot().state);
    }

    /// An instance following another's writes brings its spare forward over
    /// each batch it reads; a reload (the store's history, not this
    /// instance's) leaves none, and the write after it clones.
    #[tokio::test]
    async fn a_follower_brings_its_spare_forward_and_a_reload_drops_it() {
        let dir = tempfile::tempdir().unwrap();
        let (leader, follower) = leader_and_follower(&dir).await;
        for batch in [["a", "b", "c"], ["d", "e", "f"]] {
            leader
                .write(|d| {
                    for id in batch {
                        crate::commands::create_provider(d, provider(id))?;
                    }
                    Ok(())
                })
                .await
                .unwrap();
            follower.follow().await.unwrap();
            let (version, state) = spare_ready(&follower).expect("ready after a follow");
            assert_eq!(version, follower.snapshot().version());
            assert_eq!(state, leader.snapshot().state);
        }
        follower.reload(false).await.unwrap();
        assert!(matches!(*follower.spare.lock().unwrap(), Spare::None));
        add_provider(&follower, "g").await;
        let (version, state) = spare_ready(&follower).expect("ready after the write");
        assert_eq!(version, 7);
        assert_eq!(state, follower.snapshot().state);
    }

    /// A spare is taken only when it becomes exactly the current state: not
    /// one of another history (the same epoch and version, other content),
    /// nor one the log cannot bring forward, nor one ahead.
    #[tokio::test]
    async fn a_spare_of_another_history_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let service = service_on(sqlite_store(&dir, "a.db").await, 2).await;
        let start = service.snapshot();
        for id in ["a", "b", "c"] {
            add_provider(&service, id).await;
        }
        let now = service.snapshot();
        let revisions = OperatorRevisions::default();
        // From the start the log (two events kept) cannot reach.
        assert!(forward(start.state.clone(), revisions.clone(), &now).is_none());
        // One version back, within the log: brought forward.
        let mut one_back = now.state.clone();
        one_back.providers.pop();
        one_back.metadata.version -= 1;
        one_back.metadata.provider_count -= 1;
        one_back.metadata.checksum = provider_sync_protocol::state_checksum(&one_back).to_hex();
        let (state, _) = forward(one_back.clone(), revisions.clone(), &now).expect("forward");
        assert_eq!(state, now.state);
        // The same version with other content (another history).
        let mut other = one_back;
        other.providers[0].name = "another".into();
        other.metadata.checksum = provider_sync_protocol::state_checksum(&other).to_hex();
        assert!(forward(other, revisions.clone(), &now).is_none());
        // The same state with other operator revisions.
        let probed = OperatorRevisions::new([("a".to_owned(), 1)].into());
        assert!(forward(now.state.clone(), probed, &now).is_none());
        // Ahead of the state, and of another epoch.
        let mut ahead = now.state.clone();
        ahead.metadata.version += 1;
        assert!(forward(ahead, revisions.clone(), &now).is_none());
        let mut elsewhere = now.state.clone();
        elsewhere.metadata.epoch = "another epoch".into();
        assert!(forward(elsewhere, revisions, &now).is_none());
    }

    /// The precompressing task holds no snapshot while it waits, for a
    /// version to settle or for the next one: it would otherwise hold the
    /// snapshot a write replaces, which the next write's draft is made from.
    #[tokio::test]
    async fn the_precompressing_watcher_holds_no_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir, "w.db").await;
        let service = service_on(store, 100).await;
        let (trigger, shutdown) = crate::shutdown::channel();
        // Waiting for the version to settle.
        let watcher = crate::precompress::spawn(service.clone(), Duration::from_secs(60), shutdown);
        tokio::time::sleep(Duration::from_millis(100)).await;
        add_provider(&service, "a").await;
        assert_eq!(spare_ready(&service).map(|(v, _)| v), Some(1));
        trigger.trigger();
        watcher.await.unwrap();
        // Waiting for the next version, once this one is compressed.
        let (trigger, shutdown) = crate::shutdown::channel();
        let watcher =
            crate::precompress::spawn(service.clone(), Duration::from_millis(10), shutdown);
        let ready = "provider_sync_state_precompressions_total{result=\"ready\"} 1";
        for _ in 0..2400 {
            if service.metrics().render().contains(ready) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            service.metrics().render().contains(ready),
            "never compressed"
        );
        // Counted before the compressing thread (at nice 19) lets go of the
        // version's snapshot: wait until only `current` and this look hold
        // it (a task that held it while waiting would keep a third).
        for _ in 0..2400 {
            if Arc::strong_count(&service.snapshot()) == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        add_provider(&service, "b").await;
        assert_eq!(spare_ready(&service).map(|(v, _)| v), Some(2));
        trigger.trigger();
        watcher.await.unwrap();
    }

    /// A compression that could not be done (no thread could be started for
    /// it, twice in a row) is tried again after a while, with no new version
    /// to wake the task: counted `failed` twice, then `ready` for the same
    /// version.
    #[tokio::test]
    async fn a_precompression_that_could_not_start_is_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir, "r.db").await;
        let service = service_on(store, 100).await;
        add_provider(&service, "a").await;
        let version = service.snapshot().version();
        // The publication's wake-up taken here: only the retry's timer can
        // wake the task once its first try failed.
        tokio::time::timeout(Duration::from_secs(5), service.published())
            .await
            .expect("the publication noted");
        crate::precompress::refuse_next_thread(&service);
        crate::precompress::refuse_next_thread(&service);
        let (trigger, shutdown) = crate::shutdown::channel();
        let watcher =
            crate::precompress::spawn(service.clone(), Duration::from_millis(10), shutdown);
        let failed = "provider_sync_state_precompressions_total{result=\"failed\"} 2\n";
        let ready = "provider_sync_state_precompressions_total{result=\"ready\"} 1\n";
        for _ in 0..2400 {
            if service.metrics().render().contains(ready) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let rendered = service.metrics().render();
        assert!(
            rendered.contains(failed),
            "the refusals counted: {rendered}"
        );
        assert!(rendered.contains(ready), "never tried again: {rendered}");
        assert_eq!(service.snapshot().version(), version, "no new version");
        assert!(service.snapshot().precompressed.get().is_some());
        trigger.trigger();
        watcher.await.unwrap();
    }

    #[tokio::test]
    async fn a_cancelled_write_still_publishes_what_it_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Wrapped::open(&dir, Duration::from_millis(200), false).await;
        let service = service_on(Arc::new(store), 100).await;
        let cancelled = tokio::time::timeout(
            Duration::from_millis(20),
            service.write(|d| crate::commands::create_provider(d, provider("a"))),
        )
        .await;
        assert!(cancelled.is_err(), "the caller gave up");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(service.snapshot().version(), 1);
        assert!(service.snapshot().state.provider("a").is_some());
        let next = service
            .write(|d| crate::commands::create_provider(d, provider("b")))
            .await
            .expect("the store and the snapshot agree");
        assert_eq!(next.version, 2);
    }
}
