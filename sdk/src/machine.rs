//! The sync state machine, free of I/O: inputs (responses, socket events,
//! timers, page visibility) go in, commands (fetch, open a socket, set a
//! timer, save the cache, notify listeners) come out. The browser layer
//! carries the commands out; tests drive it with scripted inputs.

use provider_sync_protocol::{
    Applied, EventPayload, FullSyncReason, PROTOCOL_VERSION, SyncEvent, SyncResponse, SyncState,
    SyncType, VersionInfo, apply_event,
};
use serde::{Deserialize, Serialize};
use tsify::Tsify;

use crate::config::Settings;
use crate::error::{SdkError, decimal};

/// Where the client's copy stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Tsify, provider_sync_wire::Write,
)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    /// Up to date with the server.
    Synced,
    /// Fetching the first state (also before the cache has loaded).
    Syncing,
    /// Showing data not confirmed current: a cached copy, or the copy held
    /// while the server cannot be reached (`lastError` says why).
    Stale,
    /// Nothing to show: the first sync failed and no copy is held.
    Error,
    /// No live link to the server.
    Disconnected,
}

/// Where a follower's status comes from: the leading tab's, as it tells
/// (the fields of its `getState()` of the same names).
#[derive(Debug, Clone, PartialEq)]
pub struct Mirror {
    pub status: SyncStatus,
    pub transport: Transport,
    pub connected: bool,
    pub last_error: Option<String>,
    pub last_sync_time: Option<f64>,
    pub from_cache: bool,
}

/// How changes reach the client.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Tsify, provider_sync_wire::Write,
)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Websocket,
    Polling,
    Offline,
}

/// What `onEvent` listeners get besides the applied `SyncEvent`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Tsify)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConnectionEvent {
    Connected {
        transport: Transport,
    },
    Disconnected {
        reason: String,
    },
    /// The WebSocket failed `attempts` times; polling until it comes back.
    FallbackToPolling {
        attempts: u32,
    },
    /// The copy was replaced or repaired: `epoch_changed`, `gap`,
    /// `checksum_mismatch`, `server_request`, `too_old`, ….
    Resynced {
        reason: String,
    },
    SyncError {
        message: String,
    },
    CacheError {
        message: String,
    },
}

/// As serde writes it (`{"type": "connected", "transport": "websocket"}`):
/// the tests hold the two to the same text.
impl provider_sync_wire::Write for ConnectionEvent {
    fn write(&self, out: &mut provider_sync_wire::Writer) {
        let (kind, field, value): (&str, &str, &dyn provider_sync_wire::Write) = match self {
            Self::Connected { transport } => ("connected", "transport", transport),
            Self::Disconnected { reason } => ("disconnected", "reason", reason),
            Self::FallbackToPolling { attempts } => ("fallback_to_polling", "attempts", attempts),
            Self::Resynced { reason } => ("resynced", "reason", reason),
            Self::SyncError { message } => ("sync_error", "message", message),
            Self::CacheError { message } => ("cache_error", "message", message),
        };
        out.raw("{\"type\":");
        out.string(kind);
        out.raw(",");
        out.string(field);
        out.raw(":");
        value.write(out);
        out.raw("}");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    Reconnect,
    /// The WebSocket took too long to open.
    Connect,
    Poll,
    Retry,
    HeartbeatSend,
    HeartbeatCheck,
    /// Changes are saved to the cache once per burst, when this fires.
    Save,
}

pub const ALL_TIMERS: [Timer; 7] = [
    Timer::Reconnect,
    Timer::Connect,
    Timer::Poll,
    Timer::Retry,
    Timer::HeartbeatSend,
    Timer::HeartbeatCheck,
    Timer::Save,
];

/// How long a burst of changes may run before the cache is written: one
/// write per burst, not one per event.
pub const SAVE_DELAY_MS: f64 = 200.0;

/// How soon after a change that came while a heartbeat answer was awaited
/// the heartbeat is sent again (the rest of a burst usually follows within
/// it; the server answers only once it has sent everything).
pub const VOUCH_AGAIN_MS: f64 = 250.0;

/// The least time a server that answers heartbeats is given to answer one
/// (its answers are limited to eight a second per socket).
pub const MIN_ANSWER_MS: f64 = 2_000.0;

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `fresh`: past the browser's HTTP cache, which would give again (as
    /// the answer to a conditional request, a `304`) the body of the last
    /// one, refused (a damaged state the server has since answered right).
    State {
        fresh: bool,
    },
    Sync {
        version: u64,
        epoch: String,
        force_full: bool,
    },
    Version,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A change event was applied.
    Event(Box<SyncEvent>),
    Connection(ConnectionEvent),
    /// Something `getState()` shows changed.
    StateChanged,
    /// Data is available for the first time (`initialize()` resolves).
    Ready,
    /// The first attempt failed with no data to show (`initialize()` rejects).
    Failed(String),
    /// The sync a `forceSync()` asked for finished.
    SyncSettled(Result<(), String>),
    /// This tab let go of the connection with a `forceSync()` unfinished:
    /// its own page's is refused with this message; a follower's that it
    /// was doing is asked of the next leader.
    ForceAbandoned(String),
    /// The copy was replaced by a whole state: entities may have changed
    /// without a new revision, so no object made for the old copy may be
    /// reused.
    Replaced,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Fetch(Request),
    OpenSocket {
        since: u64,
        epoch: String,
    },
    CloseSocket,
    SendHeartbeat {
        version: u64,
    },
    /// Ask the leading tab (as a follower): `true` for its whole state (a
    /// gap, or just joined), `false` for a sync (`forceSync()`).
    AskLeader {
        state: bool,
    },
    SetTimer {
        timer: Timer,
        after_ms: f64,
    },
    ClearTimer(Timer),
    /// Write the copy to the cache.
    SaveCache,
    /// The copy was confirmed current without changing: record when (so a
    /// cached copy's age is counted from its last confirmation).
    Confirmed,
    Notify(Notice),
}

#[derive(Debug, Clone)]
pub enum Input {
    /// `initialize()`, with what the cache held (already checked for age).
    Start {
        cached: Option<SyncState>,
    },
    /// `initialize()` with only a cached copy older than `cacheTtl`: not
    /// shown unless the server cannot be reached.
    StartExpired(SyncState),
    StateLoaded(SyncState),
    Synced(SyncResponse),
    /// A `/sync` answer whose events include a type this release does not
    /// know (`kind`): the events before it are applied, then a full state
    /// is fetched.
    SyncedUnknown {
        response: SyncResponse,
        kind: String,
    },
    VersionSeen(VersionInfo),
    RequestFailed {
        request: RequestKind,
        error: SdkError,
    },
    SocketOpened,
    SocketEvent(SyncEvent),
    /// A frame of a type this release does not know, at `version`.
    SocketUnknown {
        kind: String,
        version: u64,
    },
    /// A frame this release cannot read (not JSON, binary, a known type
    /// with data of another shape): whatever it said is asked of the
    /// server.
    SocketUnreadable,
    SocketClosed {
        reason: String,
    },
    TimerFired(Timer),
    Visibility {
        visible: bool,
    },
    Online,
    /// The browser says it went offline (a hint: a server on this machine
    /// still answers).
    Offline,
    ForceSync,
    Destroy,
    /// Another tab holds the connection (or the page went away, pagehide):
    /// show what it tells (after the cache, if one is given and nothing is
    /// shown yet). Stops this one's own network work, if any.
    Follow {
        cached: Option<SyncState>,
        /// A cached copy older than `cacheTtl`: shown only if this tab
        /// comes to lead and cannot reach the server.
        expired: Option<SyncState>,
    },
    /// This tab now holds the connection: catch up from the copy's version
    /// and connect.
    Lead,
    /// From the leading tab, as a follower.
    LeaderState(SyncState),
    LeaderEvent(SyncEvent),
    LeaderMirror(Mirror),
    LeaderSettled(Result<(), String>),
    /// The leader let go of the connection with a `forceSync()` unfinished
    /// (it went away): one this tab asked for is asked of the next leader.
    LeaderGone,
    /// The leader told its listeners of a resync (handed on to this tab's
    /// as it was): the leader's state that follows is not announced again.
    LeaderResynced,
    /// The leader told its listeners `connected` (`true`) or
    /// `disconnected` (handed on to this tab's as it was).
    LeaderLink(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    State,
    Sync,
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Socket {
    Closed,
    Connecting,
    Open,
}

/// Whether a full state's content is what its checksum says (the checksum
/// is the server's word for it; a bootstrap and a cached copy are checked
/// the same way).
fn vouched(state: &SyncState) -> bool {
    provider_sync_protocol::state_checksum(state).to_hex() == state.metadata.checksum
}

/// Whether the next change `event` (at the copy's version + 1) names an
/// entity the copy does not have, lacks one it adds, or changes one without
/// raising its revision: the server never sends such a change to a copy
/// that is whole, so the copy has drifted (it was applied, a no-op or an
/// orphan, and shown as synced until the next heartbeat's checksum; an
/// entity changed under the same revision kept its old object on the page).
fn drifted(state: &SyncState, event: &SyncEvent) -> bool {
    use EventPayload as P;
    if event.version != state.metadata.version + 1 {
        return false;
    }
    let no_provider = |id: &str| state.provider(id).is_none();
    let no_model = |id: &str| state.model(id).is_none();
    let provider_not_after =
        |id: &str, revision: u64| state.provider(id).is_none_or(|p| revision <= p.revision);
    match &event.payload {
        P::ProviderAdded(p) => !no_provider(&p.id),
        P::ProviderUpdated(p) => provider_not_after(&p.id, p.revision),
        P::ProviderRemoved(r) => no_provider(&r.provider_id),
        P::ProviderStatusChanged(c) => provider_not_after(&c.provider_id, c.revision),
        P::ModelAdded(m) => !no_model(&m.id) || no_provider(&m.provider_id),
        P::ModelUpdated(m) | P::ModelDeprecated(m) => {
            state
                .model(&m.id)
                .is_none_or(|old| m.revision <= old.revision)
                || no_provider(&m.provider_id)
        }
        P::ModelRemoved(r) => no_model(&r.model_id),
        _ => false,
    }
}

/// A full state from the server that [`vouched`] refuses, as a failure of
/// the request that brought it.
fn unvouched(what: &'static str) -> SdkError {
    SdkError::Decode {
        what,
        message: "a full state whose checksum does not match its content".into(),
    }
}

/// Who asked for a sync, which decides whether it may skip a pending
/// backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// The machine itself (a gap, a heartbeat ahead, a resync notice): waits
    /// out a pending retry delay (`Retry-After` included).
    Machine,
    /// The page (visible again, back online): skips a backoff delay, but not
    /// a server's `Retry-After`.
    Page,
    /// A person (`forceSync()`): now.
    Now,
}

/// Unreadable frames ask the server at most this often, in ms.
pub const UNREADABLE_ASK_MS: f64 = 5_000.0;

/// The longest a server's `Retry-After` is waited for, in ms.
pub const MAX_HOLD_MS: f64 = 300_000.0;

/// The state machine. `now` is milliseconds on any monotonic clock; `unit`
/// is a uniform draw in [0, 1) for backoff jitter.
#[derive(Debug)]
pub struct Core {
    settings: Settings,
    state: Option<SyncState>,
    status: SyncStatus,
    socket: Socket,
    /// The open socket has shown it works (a heartbeat came through); until
    /// then a close counts as a failed attempt.
    socket_proven: bool,
    /// The page was told the open socket is the transport (`connected`):
    /// once the server spoke through it (beside working polling, once a
    /// heartbeat did). A socket that is accepted and dropped, or stays
    /// mute, never was.
    live: bool,
    polling: bool,
    poll_ok: bool,
    from_cache: bool,
    last_sync_time: Option<f64>,
    /// See [`set_cached_known_at`](Core::set_cached_known_at).
    cached_known_at: Option<f64>,
    error: Option<String>,
    /// Consecutive WebSocket attempts that failed.
    attempts: u32,
    retry_attempt: u32,
    /// A retry delay is running: machine-made syncs wait for it.
    retry_pending: bool,
    in_flight: bool,
    /// The sync in flight asks for the full state.
    in_flight_full: bool,
    /// A sync asked for while one was in flight: `Some(force_full)`.
    queued: Option<bool>,
    /// Why the sync in flight was started, to announce when it lands.
    resync_reason: Option<String>,
    /// A `forceSync()` waits for a sync started after it.
    force_waiting: bool,
    /// The sync in flight is the one a `forceSync()` waits for.
    in_flight_forced: bool,
    hidden: bool,
    last_heard: f64,
    /// An unreadable frame last asked the server then: one ask per
    /// [`UNREADABLE_ASK_MS`]; the gap check and the heartbeat catch what
    /// falls between.
    unreadable_asked: Option<f64>,
    /// A cached copy older than `cacheTtl`, shown only if the server cannot
    /// be reached.
    held: Option<SyncState>,
    /// A `Retry-After` runs until then: only `forceSync()` asks earlier.
    hold_until: f64,
    /// The reconnect and poll timers wait for the hold's end (longer than
    /// they would without it): a request that gets through ends them.
    reconnect_held: bool,
    poll_held: bool,
    /// A cache write is scheduled (`Timer::Save`).
    save_pending: bool,
    /// The socket's `hello` said the server is at this version: the copy is
    /// `synced` once it gets there.
    catch_up: Option<u64>,
    /// The socket's `hello` found nothing to send and named no checksum:
    /// the copy is shown as synced only once a heartbeat answer vouches for
    /// it (a change the socket brings meanwhile does not), and `.1` says a
    /// heartbeat was asked for again soon after such a change.
    awaiting_vouch: (bool, bool),
    /// From `hello`: how often the server sends heartbeats, and how long it
    /// waits for ours.
    server_heartbeat_ms: Option<f64>,
    client_timeout_ms: Option<f64>,
    /// This socket's server said `hello`, so it answers every heartbeat
    /// (with a heartbeat, or the changes it has yet to send).
    answers_heartbeats: bool,
    /// The server's `hello` announced a full state, and it has not come
    /// yet: one frame, heard only once all of it has come (seconds on a
    /// slow link), and the server reads nothing of ours until it has sent
    /// it.
    full_owed: bool,
    /// When the first heartbeat sent since the server last spoke went out:
    /// the server has [`answer_window_ms`](Core::answer_window_ms) to say
    /// something, or the link is taken for dead.
    unanswered_since: Option<f64>,
    /// When a heartbeat went to test the link because the browser said it
    /// went offline: the server has [`MIN_ANSWER_MS`] to speak.
    probe_sent: Option<f64>,
    /// The last full state `GET /state` brought was refused for its body:
    /// the next is asked for past the HTTP cache ([`Request::State`]).
    state_refused: bool,
    /// A `disconnected` event was sent since the link last worked.
    down_announced: bool,
    /// A `connected` event with transport `polling` was sent since polling
    /// last began or failed.
    poll_announced: bool,
    /// This follower's `forceSync()` waited on a leader that went: asked of
    /// the next one when it first speaks.
    reask_force: bool,
    /// Another tab holds the connection; this one shows what it tells.
    following: bool,
    /// The leading tab's transport and link, as it told.
    mirrored: Option<(Transport, bool)>,
    /// An older state from the leader was refused (once).
    refused: bool,
    /// The leader's resync was handed on: its next state is not announced.
    resync_told: bool,
    /// This follower's listeners were told the link is up (a `connected`
    /// handed on, or said on joining a leader that is connected).
    link_told: bool,
    /// This tab came to lead from a leader whose socket was up, and no
    /// outage was announced since: its own socket's `connected` is not
    /// said again.
    inherited_up: bool,
    started: bool,
    ready: bool,
    destroyed: bool,
}

impl Core {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            state: None,
            // Not `disconnected`: nothing has failed, the first data (cache
            // or network) is on its way.
            status: SyncStatus::Syncing,
            socket: Socket::Closed,
            socket_proven: false,
            live: false,
            polling: false,
            poll_ok: false,
            from_cache: false,
            last_sync_time: None,
            cached_known_at: None,
            error: None,
            attempts: 0,
            retry_attempt: 0,
            retry_pending: false,
            in_flight: false,
            in_flight_full: false,
            queued: None,
            resync_reason: None,
            force_waiting: false,
            in_flight_forced: false,
            hidden: false,
            last_heard: 0.0,
            unreadable_asked: None,
            held: None,
            hold_until: 0.0,
            reconnect_held: false,
            poll_held: false,
            save_pending: false,
            catch_up: None,
            awaiting_vouch: (false, false),
            server_heartbeat_ms: None,
            client_timeout_ms: None,
            answers_heartbeats: false,
            full_owed: false,
            unanswered_since: None,
            probe_sent: None,
            state_refused: false,
            down_announced: false,
            poll_announced: false,
            reask_force: false,
            following: false,
            mirrored: None,
            refused: false,
            resync_told: false,
            link_told: false,
            inherited_up: false,
            started: false,
            ready: false,
            destroyed: false,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn state(&self) -> Option<&SyncState> {
        self.state.as_ref()
    }

    pub fn status(&self) -> SyncStatus {
        self.status
    }

    pub fn transport(&self) -> Transport {
        if let Some((transport, _)) = self.mirrored {
            return transport;
        }
        // Polling stays the transport while a socket opened beside it is on
        // trial.
        match (self.socket, self.polling) {
            (_, true) => Transport::Polling,
            (Socket::Open, false) if self.live => Transport::Websocket,
            _ => Transport::Offline,
        }
    }

    pub fn is_connected(&self) -> bool {
        if let Some((_, connected)) = self.mirrored {
            return connected;
        }
        if self.polling {
            self.poll_ok
        } else {
            self.socket == Socket::Open && self.live
        }
    }

    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    pub fn last_sync_time(&self) -> Option<f64> {
        self.last_sync_time
    }

    /// When the cached copy given at start was last known current (saved,
    /// or confirmed since): its `lastSyncTime` while it is shown before the
    /// server confirms it (a copy from the cache, the server out of reach,
    /// said "last synced" then, not "never").
    pub fn set_cached_known_at(&mut self, at: f64) {
        self.cached_known_at = Some(at);
    }

    /// A copy from the cache is shown: its last sync is when it was known
    /// current (never later than now: a copy dated in the future).
    fn shown_from_cache(&mut self, state: SyncState, now: f64) {
        self.state = Some(state);
        self.from_cache = true;
        if self.last_sync_time.is_none() {
            self.last_sync_time = self.cached_known_at.map(|at| at.min(now));
        }
    }

    /// Why there is nothing to show (status `error`).
    pub fn error(&self) -> Option<&str> {
        if self.status == SyncStatus::Error {
            self.error.as_deref()
        } else {
            None
        }
    }

    /// Why the last attempt to reach the server failed, until one succeeds;
    /// set also while a copy is shown (status `stale`).
    pub fn last_error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    pub fn is_destroyed(&self) -> bool {
        self.destroyed
    }

    pub fn is_following(&self) -> bool {
        self.following
    }

    pub fn handle(&mut self, input: Input, now: f64, unit: f64) -> Vec<Command> {
        let mut out = Vec::new();
        if self.destroyed {
            if let Input::ForceSync = input {
                Self::notify(
                    &mut out,
                    Notice::SyncSettled(Err("the service was destroyed".into())),
                );
            }
            return out;
        }
        let input = if self.following {
            match self.follow(input, unit, &mut out) {
                Some(input) => input,
                None => return out,
            }
        } else {
            input
        };
        match input {
            Input::Follow { cached, expired } => self.step_down(cached, expired, now, &mut out),
            // Only a follower takes these.
            Input::Lead
            | Input::LeaderState(_)
            | Input::LeaderEvent(_)
            | Input::LeaderMirror(_)
            | Input::LeaderSettled(_)
            | Input::LeaderGone
            | Input::LeaderResynced
            | Input::LeaderLink(_) => {}
            Input::Start { cached } => self.start(cached, None, now, &mut out),
            Input::StartExpired(held) => self.start(None, Some(held), now, &mut out),
            Input::StateLoaded(state) if !vouched(&state) => self.failed(
                RequestKind::State,
                unvouched("GET /state"),
                now,
                unit,
                &mut out,
            ),
            Input::Synced(response) if response.state.as_ref().is_some_and(|s| !vouched(s)) => self
                .failed(
                    RequestKind::Sync,
                    unvouched("POST /sync"),
                    now,
                    unit,
                    &mut out,
                ),
            Input::StateLoaded(state) => {
                self.state_refused = false;
                self.in_flight = false;
                self.held = None;
                if !self.is_behind(&state) {
                    self.replace(state, None, &mut out);
                }
                self.landed(None, true, now, &mut out);
            }
            Input::Synced(response) => self.synced(response, None, now, &mut out),
            Input::SyncedUnknown { response, kind } => {
                self.synced(response, Some(kind), now, &mut out)
            }
            Input::VersionSeen(info) => self.version_seen(info, now, &mut out),
            Input::RequestFailed { request, error } => {
                self.failed(request, error, now, unit, &mut out)
            }
            Input::SocketOpened => self.socket_opened(now, &mut out),
            Input::SocketEvent(event) => self.socket_event(event, now, unit, &mut out),
            Input::SocketUnknown { kind, version } => {
                // A newer server's frame: it spoke.
                self.spoke(now, None, &mut out);
                // A change this release cannot apply (its version is past the
                // copy's) leaves a hole only a full state fills; a control
                // frame of a newer server (at or before the copy's version)
                // is ignored.
                let ours = self.state.as_ref().map(|s| s.metadata.version);
                if ours.is_none_or(|v| version > v) {
                    self.resync_because(
                        &crate::json::concat(&["unknown_event:", &kind]),
                        true,
                        &mut out,
                    );
                }
            }
            Input::SocketUnreadable => {
                // Not counted as heard: a socket that brings nothing
                // readable is closed as silent, not kept open for good.
                // The frame may have been a change: the server is asked
                // what came since the copy's version (it sends the whole
                // state if that is what it takes). A server or proxy that
                // keeps sending such frames gets one ask per interval.
                if self
                    .unreadable_asked
                    .is_none_or(|at| !(0.0..UNREADABLE_ASK_MS).contains(&(now - at)))
                {
                    self.unreadable_asked = Some(now);
                    self.request_sync(false, Ask::Machine, now, &mut out);
                }
            }
            Input::SocketClosed { reason } => self.socket_closed(reason, now, unit, &mut out),
            Input::TimerFired(timer) => self.timer(timer, now, unit, &mut out),
            Input::Visibility { visible } => {
                self.hidden = !visible;
                if visible {
                    self.hurry(now, &mut out);
                } else if self.polling {
                    out.push(Command::ClearTimer(Timer::Poll));
                }
            }
            Input::Online => self.hurry(now, &mut out),
            Input::Offline => {
                self.probe_link(now, &mut out);
                self.poll_now(now, &mut out);
            }
            Input::ForceSync => {
                if self.started {
                    self.force_waiting = true;
                    self.request_sync(false, Ask::Now, now, &mut out);
                } else {
                    Self::notify(
                        &mut out,
                        Notice::SyncSettled(Err("call initialize() first".into())),
                    );
                }
            }
            Input::Destroy => {
                self.destroyed = true;
                self.status = SyncStatus::Disconnected;
                // Nothing is connected any more, a leading tab's state no
                // longer mirrored.
                self.socket = Socket::Closed;
                self.polling = false;
                self.mirrored = None;
                Self::notify(&mut out, Notice::StateChanged);
                out.push(Command::CloseSocket);
                out.extend(ALL_TIMERS.iter().copied().map(Command::ClearTimer));
                if self.force_waiting {
                    // This page's forceSync() fails; a follower's that a
                    // leading tab was doing is asked of the next leader.
                    Self::notify(
                        &mut out,
                        Notice::ForceAbandoned("the service was destroyed".into()),
                    );
                }
            }
        }
        out
    }

    /// Stops every piece of network work (socket, polling, retries, pending
    /// requests), keeping the copy.
    fn quiesce(&mut self, out: &mut Vec<Command>) {
        if self.save_pending {
            // What changed is written now: another tab goes on from it.
            self.save_pending = false;
            out.push(Command::SaveCache);
        }
        out.push(Command::CloseSocket);
        out.extend(ALL_TIMERS.iter().copied().map(Command::ClearTimer));
        self.socket = Socket::Closed;
        self.socket_proven = false;
        self.live = false;
        self.polling = false;
        self.poll_ok = false;
        self.attempts = 0;
        self.retry_attempt = 0;
        self.retry_pending = false;
        self.in_flight = false;
        self.in_flight_forced = false;
        self.queued = None;
        self.catch_up = None;
        self.awaiting_vouch = (false, false);
        self.resync_reason = None;
        self.down_announced = false;
        self.poll_announced = false;
        self.inherited_up = false;
    }

    /// A follower's `forceSync()` left unfinished by a leader that went,
    /// asked of the one that now speaks.
    fn reask_of_new_leader(&mut self, out: &mut Vec<Command>) {
        if std::mem::take(&mut self.reask_force) && self.force_waiting {
            self.in_flight_forced = true;
            out.push(Command::AskLeader { state: false });
        }
    }

    /// Becomes a follower: another tab holds the connection.
    fn step_down(
        &mut self,
        cached: Option<SyncState>,
        expired: Option<SyncState>,
        now: f64,
        out: &mut Vec<Command>,
    ) {
        self.quiesce(out);
        self.following = true;
        if self.force_waiting {
            // A forceSync() in progress is not carried over (the lock is
            // let go on pagehide): this page's fails, and says why; a
            // follower's is asked of the next leader.
            self.force_waiting = false;
            Self::notify(
                out,
                Notice::ForceAbandoned("the page gave up the connection".into()),
            );
        }
        if !self.started {
            self.started = true;
            self.held = expired.filter(|_| self.state.is_none());
            if let Some(state) = cached.filter(|_| self.state.is_none()) {
                self.shown_from_cache(state, now);
                self.status = SyncStatus::Stale;
            }
            if self.state.is_some() && !self.ready {
                self.ready = true;
                Self::notify(out, Notice::Ready);
            }
            Self::notify(out, Notice::StateChanged);
        }
        out.push(Command::AskLeader { state: true });
    }

    /// A follower comes to lead: it goes on from where the last leader's
    /// link stood, as it told (its pages heard that leader's events). An
    /// outage it announced is not announced again; a connection that had
    /// fallen back to polling goes on polling, its socket retried in the
    /// background, rather than through the reconnect attempts again (each
    /// tab heard `connected` and `disconnected` again, then a second
    /// `fallback_to_polling`).
    fn take_over(&mut self, unit: f64, out: &mut Vec<Command>) {
        match self.mirrored.take() {
            Some((Transport::Polling, connected)) => {
                self.polling = true;
                self.poll_ok = connected;
                self.poll_announced = connected;
                self.down_announced = !connected;
                // Its answer sets the poll timer.
                out.push(Command::Fetch(Request::Version));
                if self.settings.enable_websocket {
                    self.attempts = self.settings.max_reconnect_attempts.max(1);
                    out.push(Command::SetTimer {
                        timer: Timer::Reconnect,
                        after_ms: self.settings.backoff.delay(self.attempts - 1, unit),
                    });
                }
            }
            Some((_, false)) => self.down_announced = true,
            Some((Transport::Websocket, true)) => self.inherited_up = true,
            _ => {}
        }
    }

    /// A follower's inputs; gives back those handled as for any tab. Network
    /// answers and timers left over from leading are dropped.
    fn follow(&mut self, input: Input, unit: f64, out: &mut Vec<Command>) -> Option<Input> {
        // The leader's resync it handed on covers the state it sends right
        // after (a full replace); anything else first (events, its status:
        // a resync repaired by events) ends it.
        if !matches!(input, Input::LeaderState(_) | Input::LeaderResynced) {
            self.resync_told = false;
        }
        match input {
            Input::Lead => {
                // A forceSync() this tab waits for is its own sync's now.
                self.reask_force = false;
                self.following = false;
                // Other tabs may be in view: the one holding the connection
                // keeps it while hidden (the page layer stops telling it).
                self.hidden = false;
                // Catch up from the copy (no full state when it has one),
                // then connect; and write it, so that the cache is this
                // copy's (the last leader's write may have been lost).
                self.request_sync(false, Ask::Now, 0.0, out);
                self.save_soon(out);
                self.take_over(unit, out);
            }
            Input::Follow { .. } => {
                // Back from the back/forward cache (or going into it): what
                // the leader last told may be long past.
                self.mirrored = None;
                self.link_told = false;
                out.push(Command::AskLeader { state: true });
            }
            // An older copy of the same history (a leader that has not
            // caught up yet) is not taken at first: the leader is asked to
            // sync. What it sends after that is the server's word (a server
            // restored from a backup is behind its clients).
            Input::LeaderState(state) if self.is_behind(&state) && !self.refused => {
                self.refused = true;
                out.push(Command::AskLeader { state: false });
            }
            Input::LeaderState(state) => {
                self.reask_of_new_leader(out);
                self.refused = false;
                let told = std::mem::take(&mut self.resync_told);
                if self.state.as_ref().map(|s| &s.metadata) != Some(&state.metadata) {
                    // Listeners missed what happened between the two copies
                    // (a page back from the back/forward cache, a hole): say
                    // so, as for any resync, unless the leader's own
                    // announcement of it was handed on already.
                    let mut replaced = Vec::new();
                    self.replace(state, Some("leader_state"), &mut replaced);
                    out.extend(replaced.into_iter().filter(|c| {
                        !told
                            || !matches!(
                                c,
                                Command::Notify(Notice::Connection(
                                    ConnectionEvent::Resynced { .. }
                                ))
                            )
                    }));
                    Self::notify(out, Notice::StateChanged);
                }
                if !self.ready {
                    self.ready = true;
                    Self::notify(out, Notice::Ready);
                }
            }
            Input::LeaderEvent(event) => match self.state.as_mut() {
                None => out.push(Command::AskLeader { state: true }),
                Some(state) => match apply_event(state, &event) {
                    Ok(Applied::Changed) => {
                        Self::notify(out, Notice::Event(Box::new(event)));
                        Self::notify(out, Notice::StateChanged);
                    }
                    Ok(_) => {}
                    Err(_) => out.push(Command::AskLeader { state: true }),
                },
            },
            Input::LeaderMirror(mirror) => {
                self.reask_of_new_leader(out);
                // A leader with nothing to show says `error`; a follower with
                // a copy shows it, `stale`.
                self.status = match mirror.status {
                    SyncStatus::Error if self.state.is_some() => SyncStatus::Stale,
                    status => status,
                };
                self.error = mirror.last_error;
                self.last_sync_time = mirror.last_sync_time;
                self.from_cache = mirror.from_cache;
                // A tab that joins a connected leader hears `connected`, as
                // the leader's own page did (it heard none: the leader's
                // came before it joined, unless it was just handed on).
                // Later changes of the link are the leader's own events.
                if self.mirrored.is_none() && mirror.connected && !self.link_told {
                    self.link_told = true;
                    Self::notify(
                        out,
                        Notice::Connection(ConnectionEvent::Connected {
                            transport: mirror.transport,
                        }),
                    );
                }
                self.mirrored = Some((mirror.transport, mirror.connected));
                if !self.ready && self.state.is_none() && self.status == SyncStatus::Error {
                    let message = self.error.clone().unwrap_or_default();
                    Self::notify(out, Notice::Failed(message));
                }
                Self::notify(out, Notice::StateChanged);
            }
            Input::LeaderSettled(result) => {
                self.reask_force = false;
                self.settle_force(result, out);
            }
            Input::LeaderGone => self.reask_force = self.force_waiting,
            Input::LeaderResynced => self.resync_told = true,
            Input::LeaderLink(up) => self.link_told = up,
            Input::ForceSync => {
                self.force_waiting = true;
                self.in_flight_forced = true;
                out.push(Command::AskLeader { state: false });
            }
            Input::Visibility { visible } => self.hidden = !visible,
            Input::Destroy => return Some(input),
            _ => {}
        }
        None
    }

    /// Starts from a state the page already has (server rendering): shown
    /// at once, `stale` until the server confirms it; `Start` then catches up
    /// from its version.
    pub fn bootstrap(&mut self, state: SyncState) {
        if self.started || self.destroyed {
            return;
        }
        self.state = Some(state);
        self.status = SyncStatus::Stale;
        self.ready = true;
    }

    fn notify(out: &mut Vec<Command>, notice: Notice) {
        out.push(Command::Notify(notice));
    }

    fn start(
        &mut self,
        cached: Option<SyncState>,
        held: Option<SyncState>,
        now: f64,
        out: &mut Vec<Command>,
    ) {
        if self.started {
            return;
        }
        self.started = true;
        if self.state.is_some() {
            // Bootstrapped: shown already; catch up from its version.
            self.request_sync(false, Ask::Now, now, out);
            return;
        }
        match cached {
            Some(state) => {
                self.shown_from_cache(state, now);
                self.status = SyncStatus::Stale;
                self.ready = true;
                Self::notify(out, Notice::StateChanged);
                Self::notify(out, Notice::Ready);
            }
            None => {
                self.held = held;
                self.status = SyncStatus::Syncing;
                Self::notify(out, Notice::StateChanged);
            }
        }
        self.request_sync(false, Ask::Now, now, out);
    }

    /// Asks the server for what the copy lacks; one request at a time.
    /// Machine-made asks wait out a running retry delay, the page's wait out
    /// a `Retry-After`, a person's (`forceSync()`) do not wait.
    fn request_sync(&mut self, force_full: bool, ask: Ask, now: f64, out: &mut Vec<Command>) {
        let held_back = self.retry_pending
            && match ask {
                Ask::Machine => true,
                Ask::Page => self.hold_left(now) > 0.0,
                Ask::Now => false,
            };
        if self.in_flight || held_back {
            // A full state on its way already brings what another would
            // (a heartbeat's mismatch heard while the repair runs).
            if !(self.in_flight && self.in_flight_full && force_full) {
                self.queued = Some(self.queued.unwrap_or(false) || force_full);
            }
            return;
        }
        self.in_flight = true;
        self.in_flight_full = force_full || self.state.is_none();
        self.in_flight_forced = self.force_waiting;
        if self.retry_pending {
            self.retry_pending = false;
            out.push(Command::ClearTimer(Timer::Retry));
        }
        out.push(Command::Fetch(match &self.state {
            None => Request::State {
                fresh: self.state_refused,
            },
            Some(state) => Request::Sync {
                version: state.metadata.version,
                epoch: state.metadata.epoch.clone(),
                force_full,
            },
        }));
    }

    fn resync_because(&mut self, reason: &str, force_full: bool, out: &mut Vec<Command>) {
        self.resync_reason.get_or_insert_with(|| reason.to_owned());
        // A machine-made ask never skips a running delay, so `now` is moot.
        self.request_sync(force_full, Ask::Machine, 0.0, out);
    }

    /// Replaces the copy with a full state, announcing why if there was one,
    /// and naming the entities whose content may differ from the old copy's
    /// under the same revision.
    /// Gives whether the content changed.
    fn replace(&mut self, state: SyncState, reason: Option<&str>, out: &mut Vec<Command>) -> bool {
        let previous = self.state.replace(state);
        let Some(previous) = previous else {
            return true;
        };
        let (old, next) = (
            &previous.metadata,
            &self.state.as_ref().expect("just set").metadata,
        );
        if old.checksum != next.checksum {
            Self::notify(out, Notice::Replaced);
        }
        let changed =
            old.checksum != next.checksum || old.version != next.version || old.epoch != next.epoch;
        // What asked for this state is answered by it, whatever the reason
        // given (a new epoch's was announced again at the next full state).
        let asked = self.resync_reason.take();
        let reason = if old.epoch != next.epoch {
            Some("epoch_changed".to_owned())
        } else {
            asked.or(reason.map(str::to_owned))
        };
        if let Some(reason) = reason {
            Self::notify(
                out,
                Notice::Connection(ConnectionEvent::Resynced { reason }),
            );
        }
        changed
    }

    /// Whether a full state is older than the copy (same history, lower
    /// version): an answer overtaken by live events, to be dropped.
    fn is_behind(&self, incoming: &SyncState) -> bool {
        self.state.as_ref().is_some_and(|ours| {
            ours.metadata.epoch == incoming.metadata.epoch
                && ours.metadata.version > incoming.metadata.version
        })
    }

    /// `clearCache()`: a write the burst scheduled would put the copy back;
    /// it is dropped (the next change schedules one again). Whether one was.
    pub fn drop_pending_save(&mut self) -> bool {
        std::mem::take(&mut self.save_pending)
    }

    /// The copy changed: write it to the cache at the end of the burst.
    fn save_soon(&mut self, out: &mut Vec<Command>) {
        if !self.save_pending {
            self.save_pending = true;
            out.push(Command::SetTimer {
                timer: Timer::Save,
                after_ms: SAVE_DELAY_MS,
            });
        }
    }

    /// The link works again: a later failure is announced anew.
    fn link_up(&mut self) {
        self.down_announced = false;
    }

    /// Polling works (the server answered while it is the transport): said
    /// once for each stretch of it, as the socket's opening is, so that a
    /// page that heard `disconnected` hears that the link is back.
    fn polling_up(&mut self, out: &mut Vec<Command>) {
        if self.polling && self.poll_ok && !self.poll_announced {
            self.poll_announced = true;
            self.link_up();
            Self::notify(
                out,
                Notice::Connection(ConnectionEvent::Connected {
                    transport: Transport::Polling,
                }),
            );
        }
    }

    /// The server answered: its `Retry-After` no longer holds, and the
    /// timers that waited for it go now (they would have kept the copy
    /// without live events until the hold's end): the socket's reconnect
    /// (not one that waits out the backoff anyway), the next poll (at the
    /// polling interval) and a machine-made sync's retry.
    fn release_hold(&mut self, now: f64, out: &mut Vec<Command>) {
        let held = self.hold_left(now) > 0.0;
        self.hold_until = 0.0;
        if !held {
            return;
        }
        if std::mem::take(&mut self.reconnect_held)
            && self.socket == Socket::Closed
            && !self.hidden
            && self.settings.enable_websocket
        {
            out.push(Command::ClearTimer(Timer::Reconnect));
            self.open_socket(out);
        }
        if std::mem::take(&mut self.poll_held) && self.polling && !self.hidden {
            out.push(Command::SetTimer {
                timer: Timer::Poll,
                after_ms: self.settings.polling_interval,
            });
        }
        if self.retry_pending {
            out.push(Command::SetTimer {
                timer: Timer::Retry,
                after_ms: 0.0,
            });
        }
    }

    /// Sets a reconnect or poll timer for `after_ms`, or for the hold's end
    /// if that is later (marking it held).
    fn set_held_timer(&mut self, timer: Timer, after_ms: f64, now: f64, out: &mut Vec<Command>) {
        let left = self.hold_left(now);
        let held = left > after_ms;
        match timer {
            Timer::Reconnect => self.reconnect_held = held,
            _ => self.poll_held = held,
        }
        out.push(Command::SetTimer {
            timer,
            after_ms: if held { left } else { after_ms },
        });
    }

    /// What is left of a server's `Retry-After`, in ms. The clock is the
    /// page's (`Date.now()`): one stepped back leaves a hold further off
    /// than any server may set ([`MAX_HOLD_MS`]), which is taken as over.
    fn hold_left(&self, now: f64) -> f64 {
        let left = self.hold_until - now;
        if left > 0.0 && left <= MAX_HOLD_MS {
            left
        } else {
            0.0
        }
    }

    /// Whether the copy has reached what the socket's `hello` announced.
    fn caught_up(&self) -> bool {
        match (self.catch_up, &self.state) {
            (None, _) => true,
            (Some(target), Some(state)) => state.metadata.version >= target,
            (Some(_), None) => false,
        }
    }

    /// A sync landed: bookkeeping shared by every successful sync.
    /// `expected_checksum` is the server's at the copy's version, if known;
    /// `changed` says whether the copy changed.
    fn landed(
        &mut self,
        expected_checksum: Option<&str>,
        changed: bool,
        now: f64,
        out: &mut Vec<Command>,
    ) {
        self.retry_attempt = 0;
        self.release_hold(now, out);
        self.error = None;
        self.link_up();
        // The server answered: polling works (said below with `connected`,
        // not left `isConnected: false` beside a synced copy until the next
        // poll).
        if self.polling {
            self.poll_ok = true;
        }
        let ours = self.state.as_ref().map(|s| s.metadata.checksum.as_str());
        if let (Some(expected), Some(ours)) = (expected_checksum, ours)
            && expected != ours
        {
            // The server answered, and says the copy is not its own at this
            // version (a store copied back from a backup without a new
            // epoch): neither confirmed nor shown as synced, but repaired
            // by a full state first. What was applied is shown.
            // What was applied, or `lastError` cleared.
            Self::notify(out, Notice::StateChanged);
            self.start_transport(out);
            // The forced sync, if any, is now this repair.
            self.resync_because("checksum_mismatch", true, out);
            return;
        }
        self.from_cache = false;
        self.last_sync_time = Some(now);
        if self.caught_up() {
            self.catch_up = None;
        }
        self.awaiting_vouch = (false, false);
        self.status = SyncStatus::Synced;
        if changed {
            self.save_soon(out);
        } else {
            out.push(Command::Confirmed);
        }
        // The link's `connected` before the state that shows it: other tabs
        // hear them in this order (a tab that joins meanwhile then does not
        // say it a second time).
        self.start_transport(out);
        self.polling_up(out);
        Self::notify(out, Notice::StateChanged);
        if !self.ready {
            self.ready = true;
            Self::notify(out, Notice::Ready);
        }
        if let Some(reason) = self.resync_reason.take() {
            Self::notify(
                out,
                Notice::Connection(ConnectionEvent::Resynced { reason }),
            );
        }
        self.settle_force(Ok(()), out);
        if let Some(force_full) = self.queued.take() {
            self.request_sync(force_full, Ask::Machine, now, out);
        }
    }

    /// Settles a `forceSync()` whose sync just finished.
    fn settle_force(&mut self, result: Result<(), String>, out: &mut Vec<Command>) {
        if self.in_flight_forced {
            self.in_flight_forced = false;
            self.force_waiting = false;
            Self::notify(out, Notice::SyncSettled(result));
        }
    }

    fn start_transport(&mut self, out: &mut Vec<Command>) {
        if self.settings.enable_websocket {
            if self.socket == Socket::Closed && self.attempts == 0 && !self.hidden {
                self.open_socket(out);
            }
        } else if !self.polling {
            self.polling = true;
            self.poll_ok = true;
            out.push(Command::SetTimer {
                timer: Timer::Poll,
                after_ms: self.settings.polling_interval,
            });
        }
    }

    fn open_socket(&mut self, out: &mut Vec<Command>) {
        let (since, epoch) = match &self.state {
            Some(s) => (s.metadata.version, s.metadata.epoch.clone()),
            None => (0, String::new()),
        };
        self.socket = Socket::Connecting;
        self.reconnect_held = false;
        out.push(Command::OpenSocket { since, epoch });
        out.push(Command::SetTimer {
            timer: Timer::Connect,
            after_ms: self.settings.sync_timeout,
        });
    }

    fn synced(
        &mut self,
        response: SyncResponse,
        unknown: Option<String>,
        now: f64,
        out: &mut Vec<Command>,
    ) {
        self.in_flight = false;
        let mut changed = false;
        match response.sync_type {
            SyncType::None => {}
            SyncType::Incremental => {
                let Some(state) = self.state.as_mut() else {
                    self.resync_because("incremental_without_state", true, out);
                    return;
                };
                // Listeners hear of every event applied, whichever way it came;
                // events the socket already brought are skipped.
                for event in response.events {
                    if drifted(state, &event) {
                        self.resync_because("drift", true, out);
                        return;
                    }
                    match apply_event(state, &event) {
                        Ok(Applied::Changed) => {
                            changed = true;
                            Self::notify(out, Notice::Event(Box::new(event)));
                        }
                        Ok(_) => {}
                        Err(_) => {
                            self.resync_because("gap", true, out);
                            return;
                        }
                    }
                }
                if let Some(kind) = unknown {
                    // What was applied stays (and is shown); the rest only a
                    // full state can bring.
                    if changed {
                        self.save_soon(out);
                        Self::notify(out, Notice::StateChanged);
                    }
                    self.resync_because(
                        &crate::json::concat(&["unknown_event:", &kind]),
                        true,
                        out,
                    );
                    return;
                }
            }
            SyncType::Full => match response.state {
                // A full state is the server's word, but an answer overtaken
                // by live events is older than the copy: dropped. A server
                // restored from a backup is behind every client, and says
                // so (`future_version`): taken.
                Some(state)
                    if self.is_behind(&state)
                        && response.reason != Some(FullSyncReason::FutureVersion) => {}
                Some(state) => {
                    self.held = None;
                    changed = self.replace(state, response.reason.map(|r| r.as_str()), out);
                }
                None => {
                    self.resync_because("empty_full_sync", true, out);
                    return;
                }
            },
        }
        // The checksum speaks for the answer's version; compare only when the
        // copy is at that version (live events may have moved it on).
        let at_version = self
            .state
            .as_ref()
            .is_some_and(|s| s.metadata.version == response.version);
        let expected = at_version.then_some(response.checksum.as_str());
        self.landed(expected, changed, now, out);
    }

    fn version_seen(&mut self, info: VersionInfo, now: f64, out: &mut Vec<Command>) {
        if !self.polling {
            // An answer to a poll made before the socket came back.
            return;
        }
        let was_ok = self.poll_ok;
        self.poll_ok = true;
        self.release_hold(now, out);
        // Not the link back yet (`polling_up`, or the sync's landing): with
        // `/sync` failing, each failure after a poll's answer was another
        // `disconnected` in one outage.
        if let Some(state) = &self.state {
            if state.metadata.epoch != info.epoch || state.metadata.version != info.version {
                self.request_sync(false, Ask::Machine, now, out);
            } else if !info.checksum.is_empty() && state.metadata.checksum != info.checksum {
                self.resync_because("checksum_mismatch", true, out);
            } else {
                out.push(Command::Confirmed);
                // Back once the copy is current again (a sync it needs
                // says so when it lands): not at every poll answered
                // while `/sync` still fails. Said before the state that
                // shows it (see `landed`).
                self.polling_up(out);
                if self.status != SyncStatus::Synced && !self.in_flight {
                    self.status = SyncStatus::Synced;
                    self.error = None;
                    self.from_cache = false;
                    self.last_sync_time = Some(now);
                    Self::notify(out, Notice::StateChanged);
                }
            }
        }
        if !was_ok {
            Self::notify(out, Notice::StateChanged);
        }
        if !self.hidden {
            self.poll_held = false;
            out.push(Command::SetTimer {
                timer: Timer::Poll,
                after_ms: self.settings.polling_interval,
            });
        }
    }

    fn failed(
        &mut self,
        request: RequestKind,
        error: SdkError,
        now: f64,
        unit: f64,
        out: &mut Vec<Command>,
    ) {
        if request == RequestKind::Version && !self.polling {
            return;
        }
        if request == RequestKind::State && matches!(error, SdkError::Decode { .. }) {
            self.state_refused = true;
        }
        let message = error.message();
        // A `Retry-After` past five minutes (a proxy's day, say) is taken
        // as five minutes: longer would keep a page without live events.
        let retry_after = match &error {
            SdkError::Http { retry_after_ms, .. } => retry_after_ms.map(|ms| ms.min(MAX_HOLD_MS)),
            _ => None,
        };
        if let Some(ms) = retry_after {
            self.hold_until = (now + self.hold_left(now)).max(now + ms);
        }
        self.error = Some(message.clone());
        Self::notify(
            out,
            Notice::Connection(ConnectionEvent::SyncError {
                message: message.clone(),
            }),
        );
        let live_socket = self.socket == Socket::Open && self.live;
        if !self.down_announced && !live_socket {
            self.down_announced = true;
            self.inherited_up = false;
            self.poll_announced = false;
            Self::notify(
                out,
                Notice::Connection(ConnectionEvent::Disconnected {
                    reason: message.clone(),
                }),
            );
        }
        match request {
            RequestKind::Version => {
                self.poll_ok = false;
                self.status = SyncStatus::Disconnected;
                if !self.hidden {
                    // Not before a server's `Retry-After` ends.
                    self.set_held_timer(Timer::Poll, self.settings.polling_interval, now, out);
                }
            }
            RequestKind::State | RequestKind::Sync => {
                self.in_flight = false;
                // An answer that could not be read may hold what this release
                // cannot read: ask for the whole state instead.
                let unreadable = matches!(error, SdkError::Decode { .. });
                let force_full = self.queued.take().unwrap_or(false) || unreadable;
                self.queued = Some(force_full);
                if self.state.is_none()
                    && let Some(held) = self.held.take()
                {
                    // The server cannot be reached: an old copy beats nothing.
                    self.shown_from_cache(held, now);
                }
                // A copy held stays shown, `stale` (not confirmed); `error` is
                // for having nothing to show. `lastError` says why either way.
                // A live link that dropped stays `disconnected` whichever
                // request fails until it is back (a poll or a
                // `forceSync()`): one outage, one status. Once it is back,
                // a failure leaves the copy `stale`.
                self.status = match self.status {
                    _ if self.state.is_none() => SyncStatus::Error,
                    SyncStatus::Disconnected if !self.is_connected() => SyncStatus::Disconnected,
                    _ => SyncStatus::Stale,
                };
                if !self.ready {
                    if self.state.is_some() {
                        self.ready = true;
                        Self::notify(out, Notice::Ready);
                    } else {
                        Self::notify(out, Notice::Failed(message.clone()));
                    }
                }
                self.settle_force(Err(message), out);
                let wait = self.settings.backoff.delay(self.retry_attempt, unit);
                self.retry_attempt += 1;
                self.retry_pending = true;
                out.push(Command::SetTimer {
                    timer: Timer::Retry,
                    after_ms: retry_after.unwrap_or(0.0).max(wait),
                });
            }
        }
        Self::notify(out, Notice::StateChanged);
    }

    fn socket_opened(&mut self, now: f64, out: &mut Vec<Command>) {
        self.socket = Socket::Open;
        self.socket_proven = false;
        self.live = false;
        self.last_heard = now;
        self.answers_heartbeats = false;
        self.full_owed = false;
        self.unanswered_since = None;
        self.probe_sent = None;
        out.push(Command::ClearTimer(Timer::Connect));
        // Not the transport yet: it is once the server speaks through it
        // (`live`). So a socket that is accepted and dropped at each retry
        // (a proxy that does not carry WebSockets), or that stays mute,
        // tells the page nothing and does not flip the transport.
        out.push(Command::SetTimer {
            timer: Timer::HeartbeatSend,
            after_ms: self.heartbeat_send_ms(),
        });
        out.push(Command::SetTimer {
            timer: Timer::HeartbeatCheck,
            after_ms: self.silence_limit_ms(),
        });
    }

    /// The open socket becomes the transport: polling stops, and the page
    /// hears it. `synced` waits for the catch-up the server's `hello`
    /// announces, or a heartbeat that confirms the copy.
    fn go_live(&mut self, out: &mut Vec<Command>) {
        self.live = true;
        self.link_up();
        self.poll_announced = false;
        if self.polling {
            self.polling = false;
            out.push(Command::ClearTimer(Timer::Poll));
        }
        // A new leading tab's socket, where the last leader's was up: its
        // pages heard `connected` already, and nothing since said otherwise.
        if !std::mem::take(&mut self.inherited_up) {
            Self::notify(
                out,
                Notice::Connection(ConnectionEvent::Connected {
                    transport: Transport::Websocket,
                }),
            );
        }
        Self::notify(out, Notice::StateChanged);
    }

    /// How often to send heartbeats: the configured period, but often enough
    /// for the server's `client_timeout_ms` (from `hello`).
    fn heartbeat_send_ms(&self) -> f64 {
        let own = self.settings.heartbeat_interval;
        match self.client_timeout_ms {
            Some(timeout) if timeout > 0.0 => own.min(timeout / 2.0),
            _ => own,
        }
    }

    /// How long the server may stay silent before the link is taken for
    /// dead: two of its heartbeat periods (from `hello`), never less than two
    /// of ours. A heartbeat of ours the server leaves unanswered ends it
    /// sooner ([`dead_at`](Core::dead_at)).
    fn silence_limit_ms(&self) -> f64 {
        let own = self.settings.heartbeat_interval;
        self.server_heartbeat_ms.unwrap_or(own).max(own) * 2.0
    }

    /// How long a server that answers heartbeats has to answer one: one of
    /// our periods, but never less than [`MIN_ANSWER_MS`] (the server
    /// answers a few a second at most, and a slow link takes its time).
    fn answer_window_ms(&self) -> f64 {
        self.settings.heartbeat_interval.max(MIN_ANSWER_MS)
    }

    /// When the open socket is taken for dead if nothing is heard before:
    /// the server's silence past [`silence_limit_ms`](Core::silence_limit_ms),
    /// or a heartbeat of ours it left unanswered for the answer window. So
    /// a dead link is noticed within two of our periods (the next heartbeat
    /// goes within one, its answer is awaited for one), however seldom the
    /// server sends its own; and a page whose timers the browser throttles
    /// (a hidden tab) does not drop a link the server's heartbeats keep
    /// showing alive, since the window runs from our own sending. Not while
    /// the full state `hello` announced is on its way (`full_owed`).
    fn dead_at(&self) -> f64 {
        let silent = self.last_heard + self.silence_limit_ms();
        if !self.answers_heartbeats || self.full_owed {
            return silent;
        }
        let unanswered = self
            .unanswered_since
            .map_or(f64::INFINITY, |sent| sent + self.answer_window_ms());
        silent.min(unanswered).min(self.probe_deadline())
    }

    /// When the test of the link the browser's `offline` started ends.
    fn probe_deadline(&self) -> f64 {
        self.probe_sent
            .map_or(f64::INFINITY, |sent| sent + MIN_ANSWER_MS)
    }

    /// The browser says it went offline. Its word is a hint (a server on
    /// this machine, or reached through another interface, still answers),
    /// so the open link is put to the test: a heartbeat now, which a
    /// server that answers heartbeats must answer (or speak otherwise)
    /// within [`MIN_ANSWER_MS`], else the link is taken for dead
    /// (`disconnected`, then the reconnects), rather than shown as synced
    /// for the two heartbeat periods a silent link is otherwise given.
    fn probe_link(&mut self, now: f64, out: &mut Vec<Command>) {
        if self.socket != Socket::Open || !self.answers_heartbeats || self.probe_sent.is_some() {
            return;
        }
        self.probe_sent = Some(now);
        let version = self.state.as_ref().map_or(0, |s| s.metadata.version);
        out.push(Command::SendHeartbeat { version });
        out.push(Command::SetTimer {
            timer: Timer::HeartbeatCheck,
            after_ms: (self.dead_at() - now).max(0.0),
        });
    }

    /// A heartbeat to the server, naming the copy's version. The first one
    /// since the server last spoke starts the answer window.
    fn send_heartbeat(&mut self, now: f64, out: &mut Vec<Command>) {
        let version = self.state.as_ref().map_or(0, |s| s.metadata.version);
        out.push(Command::SendHeartbeat { version });
        if self.unanswered_since.is_none() && self.answers_heartbeats {
            self.unanswered_since = Some(now);
            out.push(Command::SetTimer {
                timer: Timer::HeartbeatCheck,
                after_ms: (self.dead_at() - now).max(0.0),
            });
        }
    }

    /// The copy was confirmed current by the socket.
    fn confirmed_by_socket(&mut self, now: f64, out: &mut Vec<Command>) {
        out.push(Command::Confirmed);
        self.awaiting_vouch = (false, false);
        if self.status != SyncStatus::Synced && !self.in_flight && self.caught_up() {
            self.catch_up = None;
            self.status = SyncStatus::Synced;
            self.error = None;
            self.from_cache = false;
            self.last_sync_time = Some(now);
            Self::notify(out, Notice::StateChanged);
        }
    }

    /// The server spoke through the socket; `beat` says whether it was a
    /// heartbeat, and whether that heartbeat vouches for its version. The
    /// socket becomes the transport; beside polling that works it is on
    /// trial until a heartbeat that vouches proves the link. A heartbeat
    /// that cannot vouch (its instance lost the store) makes nothing live.
    fn spoke(&mut self, now: f64, beat: Option<bool>, out: &mut Vec<Command>) {
        self.last_heard = now;
        self.unanswered_since = None;
        self.probe_sent = None;
        // The frame after `hello` is the full state it announced.
        self.full_owed = false;
        if !self.live
            && self.socket == Socket::Open
            && beat != Some(false)
            && (beat == Some(true) || !(self.polling && self.poll_ok))
        {
            self.go_live(out);
        }
    }

    fn socket_event(&mut self, event: SyncEvent, now: f64, unit: f64, out: &mut Vec<Command>) {
        let beat = match &event.payload {
            EventPayload::Heartbeat(beat) => Some(beat.store_reachable),
            _ => None,
        };
        self.spoke(now, beat, out);
        match &event.payload {
            EventPayload::Hello(hello) => {
                if hello.protocol_version != PROTOCOL_VERSION {
                    Self::notify(
                        out,
                        Notice::Connection(ConnectionEvent::SyncError {
                            message: crate::json::concat(&[
                                "the server speaks protocol version ",
                                &decimal(hello.protocol_version.into()),
                                ", this client ",
                                &decimal(PROTOCOL_VERSION.into()),
                                ": update the client",
                            ]),
                        }),
                    );
                }
                self.server_heartbeat_ms = Some(hello.heartbeat_interval_ms as f64);
                self.client_timeout_ms = Some(hello.client_timeout_ms as f64);
                self.answers_heartbeats = true;
                self.full_owed = hello.sync_type == SyncType::Full;
                out.push(Command::SetTimer {
                    timer: Timer::HeartbeatSend,
                    after_ms: self.heartbeat_send_ms(),
                });
                let same_history = self
                    .state
                    .as_ref()
                    .is_some_and(|s| s.metadata.epoch == hello.epoch);
                match hello.sync_type {
                    SyncType::None if same_history => {
                        // The hello names no checksum: a heartbeat at once,
                        // and the server's answer vouches for the copy's
                        // content (then it is shown as synced), so a copy
                        // that differs at the same version (a store copied
                        // back from a backup without a new epoch) is
                        // repaired now, not shown as synced until the next
                        // heartbeat.
                        self.send_heartbeat(now, out);
                        self.awaiting_vouch = (true, false);
                    }
                    // A full state follows (or a sync is needed): synced once
                    // the copy reaches the server's version.
                    _ => {
                        self.catch_up = Some(if same_history {
                            hello.version
                        } else {
                            u64::MAX
                        });
                        if self.caught_up() {
                            // A sync already brought the copy there.
                            self.catch_up = None;
                        } else if self.status == SyncStatus::Synced {
                            self.status = SyncStatus::Stale;
                            Self::notify(out, Notice::StateChanged);
                        }
                    }
                }
            }
            EventPayload::Error(error) => Self::notify(
                out,
                // An `error` frame from the server: its code leads the text.
                Notice::Connection(ConnectionEvent::SyncError {
                    message: crate::json::concat(&[
                        "the server says ",
                        &error.code,
                        ": ",
                        &error.message,
                    ]),
                }),
            ),
            // A full state whose content is not what its checksum says is
            // not the server's word: asked for again (over HTTP, checked
            // as well) rather than shown and cached as synced.
            EventPayload::FullSync(state) if !vouched(state) => {
                self.resync_because("checksum_mismatch", true, out);
            }
            EventPayload::FullSync(state) => {
                // The socket's full state is the server's word as of its place
                // in the stream: always taken (a server restored from a backup
                // is behind its clients).
                self.held = None;
                self.catch_up = Some(state.metadata.version);
                let changed = self.replace(state.clone(), Some("full_sync"), out);
                // What the socket sends does not settle a forceSync().
                let forced = std::mem::take(&mut self.in_flight_forced);
                self.landed(None, changed, now, out);
                self.in_flight_forced = forced;
            }
            EventPayload::Heartbeat(beat) => {
                // A heartbeat through the socket proves the link works (one
                // that cannot vouch for its version does not: the link goes).
                if !self.socket_proven && beat.store_reachable {
                    self.socket_proven = true;
                    self.attempts = 0;
                }
                let Some(state) = &self.state else { return };
                if beat.epoch != state.metadata.epoch || beat.version > state.metadata.version {
                    self.resync_because("heartbeat_ahead", false, out);
                } else if beat.version < state.metadata.version {
                    // Sent after every change up to its version: a server
                    // behind the copy in the same history (a store restored
                    // from a backup without a new epoch) is asked, and its
                    // answer (`future_version`: its state) taken. The copy
                    // was kept as synced.
                    // No reason of its own: a full state that comes back
                    // is announced with the server's (`future_version`),
                    // and an answer of "nothing new" (the copy got ahead
                    // of the socket over HTTP) announces nothing.
                    if !self.in_flight {
                        self.request_sync(false, Ask::Machine, now, out);
                    }
                } else if beat.version == state.metadata.version {
                    if beat.checksum != state.metadata.checksum {
                        self.resync_because("checksum_mismatch", true, out);
                    } else if !beat.store_reachable {
                        // An instance cut off from its store cannot vouch
                        // for its version (others may have moved on): the
                        // copy is not current, and the link goes, to come
                        // back (through a load balancer) to an instance that
                        // can; this one refuses new sessions meanwhile.
                        out.push(Command::CloseSocket);
                        self.socket_closed("the server lost its database".into(), now, unit, out);
                    } else {
                        self.confirmed_by_socket(now, out);
                    }
                }
            }
            EventPayload::ResyncRequired(_) => self.resync_because("server_request", false, out),
            _ => {
                let Some(state) = self.state.as_mut() else {
                    self.request_sync(false, Ask::Machine, now, out);
                    return;
                };
                if drifted(state, &event) {
                    self.resync_because("drift", true, out);
                    return;
                }
                match apply_event(state, &event) {
                    Ok(Applied::Changed) => {
                        self.last_sync_time = Some(now);
                        if self.awaiting_vouch == (true, false) {
                            // The server did not answer the heartbeat while
                            // this change was on its way to the client: it
                            // is asked again once the change is in.
                            self.awaiting_vouch.1 = true;
                            out.push(Command::SetTimer {
                                timer: Timer::HeartbeatSend,
                                after_ms: VOUCH_AGAIN_MS,
                            });
                        }
                        if !self.in_flight && self.caught_up() && !self.awaiting_vouch.0 {
                            self.catch_up = None;
                            self.status = SyncStatus::Synced;
                            self.from_cache = false;
                            self.error = None;
                        }
                        self.save_soon(out);
                        Self::notify(out, Notice::Event(Box::new(event)));
                        Self::notify(out, Notice::StateChanged);
                    }
                    Ok(_) => {}
                    Err(_) => self.resync_because("gap", false, out),
                }
            }
        }
    }

    fn socket_closed(&mut self, reason: String, now: f64, unit: f64, out: &mut Vec<Command>) {
        let was_open = self.socket == Socket::Open;
        if self.socket == Socket::Closed {
            return;
        }
        self.socket = Socket::Closed;
        // A catch-up the socket announced (its `hello` said the server is
        // ahead) and did not bring.
        let owed = !self.caught_up();
        self.catch_up = None;
        self.awaiting_vouch = (false, false);
        self.full_owed = false;
        out.push(Command::ClearTimer(Timer::Connect));
        out.push(Command::ClearTimer(Timer::HeartbeatSend));
        out.push(Command::ClearTimer(Timer::HeartbeatCheck));
        // A link that never proved itself counts as a failed attempt, so a
        // server that accepts and then drops connections is backed off from.
        self.attempts = if was_open && self.socket_proven {
            1
        } else {
            self.attempts + 1
        };
        self.socket_proven = false;
        self.live = false;
        // Down: no socket, and no polling that works. A socket that never
        // opened counts too (it left the status `disconnected` without the
        // event); one failing behind working polling does not.
        let down = !self.polling || !self.poll_ok;
        if down && !self.down_announced {
            self.down_announced = true;
            self.inherited_up = false;
            self.poll_announced = false;
            Self::notify(
                out,
                Notice::Connection(ConnectionEvent::Disconnected {
                    reason: reason.clone(),
                }),
            );
        }
        if self.attempts >= self.settings.max_reconnect_attempts.max(1) && !self.polling {
            self.polling = true;
            self.poll_ok = false;
            Self::notify(
                out,
                Notice::Connection(ConnectionEvent::FallbackToPolling {
                    attempts: self.attempts,
                }),
            );
            if !self.hidden {
                out.push(Command::Fetch(Request::Version));
            }
        }
        if !self.polling || !self.poll_ok {
            self.status = SyncStatus::Disconnected;
            // Why, until an attempt gets through (a WebSocket's close code
            // says little, but it is all the browser tells).
            self.error = Some(reason);
        } else if owed && !self.hidden {
            // Polling works (the socket was on trial beside it): what the
            // socket owed is asked for over HTTP now, not at the next poll.
            self.request_sync(false, Ask::Machine, now, out);
        }
        if !self.hidden {
            // Not before a server's `Retry-After` ends.
            let delay = self.settings.backoff.delay(self.attempts - 1, unit);
            self.set_held_timer(Timer::Reconnect, delay, now, out);
        }
        Self::notify(out, Notice::StateChanged);
    }

    fn timer(&mut self, timer: Timer, now: f64, unit: f64, out: &mut Vec<Command>) {
        match timer {
            Timer::Reconnect => {
                self.reconnect_held = false;
                if self.socket == Socket::Closed && !self.hidden && self.settings.enable_websocket {
                    if self.hold_left(now) > 0.0 {
                        // Set before a `Retry-After` came: its end instead.
                        self.set_held_timer(Timer::Reconnect, 0.0, now, out);
                    } else {
                        self.open_socket(out);
                    }
                }
            }
            Timer::Connect => {
                if self.socket == Socket::Connecting {
                    out.push(Command::CloseSocket);
                    self.socket_closed("the WebSocket did not open in time".into(), now, unit, out);
                }
            }
            Timer::Poll => {
                self.poll_held = false;
                if self.polling && !self.hidden {
                    if self.hold_left(now) > 0.0 {
                        self.set_held_timer(Timer::Poll, 0.0, now, out);
                    } else {
                        out.push(Command::Fetch(Request::Version));
                    }
                }
            }
            Timer::Retry => {
                self.retry_pending = false;
                let force_full = self.queued.take().unwrap_or(false);
                self.request_sync(force_full, Ask::Machine, now, out);
            }
            Timer::HeartbeatSend => {
                if self.socket == Socket::Open {
                    self.send_heartbeat(now, out);
                    out.push(Command::SetTimer {
                        timer: Timer::HeartbeatSend,
                        after_ms: self.heartbeat_send_ms(),
                    });
                }
            }
            Timer::HeartbeatCheck => {
                if self.socket != Socket::Open {
                    return;
                }
                let deadline = self.dead_at();
                if now >= deadline {
                    // Told as offline only when the test's deadline was
                    // the first to end.
                    let why = if deadline == self.probe_deadline() {
                        "offline: the server did not answer"
                    } else {
                        "no heartbeat from the server"
                    };
                    out.push(Command::CloseSocket);
                    self.socket_closed(why.into(), now, unit, out);
                } else {
                    out.push(Command::SetTimer {
                        timer: Timer::HeartbeatCheck,
                        after_ms: deadline - now,
                    });
                }
            }
            Timer::Save => {
                self.save_pending = false;
                out.push(Command::SaveCache);
            }
        }
    }

    /// The browser says it went offline while the copy is kept by
    /// polling: the next poll goes now, not at its time (up to
    /// `pollingInterval` away, the copy shown as synced meanwhile). Its
    /// failure shows the outage; its answer (a server on this machine)
    /// keeps the copy as it was.
    fn poll_now(&mut self, now: f64, out: &mut Vec<Command>) {
        if self.started && self.polling && !self.hidden && self.hold_left(now) <= 0.0 {
            out.push(Command::ClearTimer(Timer::Poll));
            out.push(Command::Fetch(Request::Version));
        }
    }

    /// The page is back (visible, online): catch up now instead of waiting
    /// out a backoff; a server's `Retry-After` still holds.
    fn hurry(&mut self, now: f64, out: &mut Vec<Command>) {
        if !self.started {
            return;
        }
        // Within a server's Retry-After: at its end rather than now (a
        // timer, since nothing else may come to open the socket or poll).
        let held = self.hold_left(now) > 0.0;
        if self.settings.enable_websocket && self.socket == Socket::Closed {
            out.push(Command::ClearTimer(Timer::Reconnect));
            if held {
                self.set_held_timer(Timer::Reconnect, 0.0, now, out);
            } else {
                self.open_socket(out);
            }
        }
        if self.polling {
            out.push(Command::ClearTimer(Timer::Poll));
            if held {
                self.set_held_timer(Timer::Poll, 0.0, now, out);
            } else {
                out.push(Command::Fetch(Request::Version));
            }
        }
        if self.state.is_none() || matches!(self.status, SyncStatus::Error | SyncStatus::Stale) {
            self.request_sync(false, Ask::Page, now, out);
        }
    }
}
