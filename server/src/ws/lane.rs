//! Fan-out lanes: the write path of caught-up WebSocket sessions.
//!
//! A change used to wake every session's task, each of which read the ring,
//! framed the message through tungstenite and wrote it: per delivery, a task
//! wake-up, a copy and the sink's bookkeeping on top of the kernel's own
//! work (see BENCHMARKS.md, "Why the CPU per delivery is still short"). A
//! lane is one task that reads the ring for many sessions: it frames each
//! batch of frames once and writes the bytes to every member's socket with
//! one non-blocking write each — the shape of the fan-out floor. A session
//! keeps its task for what is its own: the hello and catch-up, reading the
//! client (heartbeats, closes), flushing what a slow socket did not take at
//! once (under the write deadline), and repairing its stream from the log
//! when it fell behind. Its task sleeps while the lane writes.
//!
//! Order on the wire: every write to a member's socket, the lane's and the
//! session's, goes through the socket's lock and is taken whole (what the
//! socket does not take at once is kept and written first by the next
//! write; see [`Socket`]), so frames never interleave. Versions: the
//! member's position (the last version written, and its epoch) lives under
//! the member's lock, and both the lane and the session decide what to send
//! with the same rule as before ([`decide`]).
//!
//! Joining: a session joins its lane *held* before it takes the snapshot it
//! catches up from; every frame published after that point reaches the
//! lane's list of held frames, and the session, once caught up, writes the
//! held frames it still needs (by version) and goes live under the member's
//! lock. A lane that falls behind its ring, or a socket that lets too many
//! bytes wait, sends the sessions concerned back to the log (each repairs
//! its stream from its position, or tells its client to resync), then they
//! join again.

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, close_code};
use futures_util::StreamExt;
use provider_sync_protocol::{ClientMessage, EventPayload, ResyncRequired};
use tokio::sync::Notify;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::time::Instant;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Data, OpCode};

use super::session::{
    Answers, Decision, Ended, MAX_BATCH, Resume, Timing, Writer, control_text, decide, event_text,
    hello, read_client_frame, refusal, within,
};
use crate::metrics::Metrics;
use crate::serve::{Activity, Socket};
use crate::service::{CatchUp, Frame, Service};
use crate::shutdown::Shutdown;

/// Bytes left waiting on one socket past which its lane stops writing to
/// it: its session flushes them (under the write deadline), then repairs
/// the rest of the stream from the log.
const MAX_WAITING: usize = 1 << 20;

static BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    BASE.elapsed().as_millis() as u64
}

/// Appends `text` as one unmasked WebSocket text frame (a server's frames
/// are the same bytes for every client).
fn frame_header(length: usize, out: &mut Vec<u8>) {
    let header = FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    };
    header
        .format(length as u64, out)
        .expect("writing to a Vec does not fail");
}

/// Why a lane stopped writing to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// Frames are missing from its stream (the lane fell behind the ring,
    /// too many were held, or too many bytes waited): repair from the log.
    Behind,
    /// A heartbeat found the client silent past its timeout.
    Silent,
    /// The ring is closed: the service is gone.
    ServerGone,
    /// The socket failed.
    Broken,
}

#[derive(Debug)]
enum Mode {
    /// Catching up: the lane keeps the frames for the session.
    Held(Vec<Frame>),
    /// The lane writes to it.
    Live,
    Out(Why),
    /// The session ended.
    Gone,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    /// Which joining the lane's entry is for: an entry of an earlier one is
    /// dropped, so a member is never in its lane's list twice.
    generation: u64,
    sent_version: u64,
    epoch: String,
}

/// One session as its lane sees it.
#[derive(Debug)]
pub(super) struct Member {
    /// Weak: the socket closes when its session ends, not when the lane
    /// next looks at its list.
    socket: Weak<Socket>,
    lane: usize,
    state: Mutex<State>,
    notify: Notify,
    last_heard: AtomicU64,
    client_timeout: Duration,
    /// Frames a lane holds for it while it catches up (`--ws-queue`).
    room: usize,
    /// Its lane's count of members, less this one when it goes.
    assigned: Arc<AtomicUsize>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.assigned.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Member {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks the processor for the lines [`Member::deliver`] reads first:
    /// its lock and its socket's address.
    fn prefetch(&self) {
        crate::serve::prefetch(std::ptr::from_ref(&self.state).cast());
        crate::serve::prefetch(std::ptr::from_ref(&self.socket).cast());
    }

    fn silent(&self) -> bool {
        now_ms().saturating_sub(self.last_heard.load(Ordering::Relaxed))
            > self.client_timeout.as_millis() as u64
    }

    fn heard(&self) {
        self.last_heard.store(now_ms(), Ordering::Relaxed);
    }

    /// Writes one text frame whole; returns the bytes left waiting.
    fn send_text(&self, text: &str) -> io::Result<usize> {
        let socket = self.socket.upgrade().ok_or(io::ErrorKind::NotConnected)?;
        let mut header = Vec::with_capacity(10);
        frame_header(text.len(), &mut header);
        socket.send(&[IoSlice::new(&header), IoSlice::new(text.as_bytes())])
    }

    /// [`Member::send_text`] of a text other sessions are sent too (a full
    /// state, the log's events): what the socket does not take at once is
    /// kept by reference, not copied. Clients that do not read a full state
    /// of megabytes held a copy each until dropped.
    fn send_shared(&self, text: &Utf8Bytes) -> io::Result<usize> {
        let socket = self.socket.upgrade().ok_or(io::ErrorKind::NotConnected)?;
        let mut header = Vec::with_capacity(10);
        frame_header(text.len(), &mut header);
        socket.send_shared(&header, &Bytes::from(text.clone()))
    }

    fn stop(&self, state: &mut State, why: Why) {
        state.mode = Mode::Out(why);
        self.notify.notify_one();
    }

    /// The lane's delivery of one batch (`framed` holds the frames framed
    /// back to back, frame `i` ending at `ends[i]`). Whether the lane keeps
    /// the member.
    fn deliver(
        &self,
        generation: u64,
        batch: &[Frame],
        framed: &[u8],
        ends: &[usize],
        coalesced: &mut u64,
    ) -> bool {
        let mut guard = self.state();
        let state = &mut *guard;
        if state.generation != generation {
            return false;
        }
        match &mut state.mode {
            Mode::Gone | Mode::Out(_) => return false,
            Mode::Held(held) => {
                if held.len() + batch.len() > self.room {
                    self.stop(state, Why::Behind);
                    return false;
                }
                held.extend_from_slice(batch);
                return true;
            }
            Mode::Live => {}
        }
        // The frames this client gets, as runs of `framed`: one run, and
        // one write, unless a frame in the middle is skipped.
        let mut run: Option<(usize, usize)> = None;
        let mut runs = Vec::new();
        let mut sent = 0u64;
        for (i, frame) in batch.iter().enumerate() {
            let start = if i == 0 { 0 } else { ends[i - 1] };
            match decide(frame, &mut state.sent_version, &mut state.epoch, || {
                self.silent()
            }) {
                Decision::Send => {
                    sent += 1;
                    run = match run {
                        Some((from, to)) if to == start => Some((from, ends[i])),
                        Some(done) => {
                            runs.push(done);
                            Some((start, ends[i]))
                        }
                        None => Some((start, ends[i])),
                    };
                }
                Decision::Skip => {}
                Decision::Silent => {
                    self.stop(state, Why::Silent);
                    return false;
                }
            }
        }
        let Some(last) = run else {
            return true;
        };
        let Some(socket) = self.socket.upgrade() else {
            return false;
        };
        *coalesced += sent - 1;
        let written = if runs.is_empty() {
            // The usual case, without allocating: one run of bytes.
            socket.send(&[IoSlice::new(&framed[last.0..last.1])])
        } else {
            runs.push(last);
            let slices: Vec<IoSlice<'_>> = runs
                .iter()
                .map(|&(from, to)| IoSlice::new(&framed[from..to]))
                .collect();
            socket.send(&slices)
        };
        match written {
            Ok(0) => true,
            Ok(waiting) if waiting > MAX_WAITING => {
                self.stop(state, Why::Behind);
                false
            }
            Ok(_) => {
                // The session flushes the rest when the socket takes it.
                self.notify.notify_one();
                true
            }
            Err(_) => {
                self.stop(state, Why::Broken);
                false
            }
        }
    }

    /// Writes the frames held while the session caught up (those it still
    /// needs) and lets the lane write from now on; returns the bytes left
    /// waiting, or why the lane stopped.
    fn go_live(&self) -> Result<usize, Why> {
        // The client's messages were not read while it caught up: its
        // silence counts from now.
        self.heard();
        let mut guard = self.state();
        let state = &mut *guard;
        let held = match std::mem::replace(&mut state.mode, Mode::Live) {
            Mode::Held(held) => held,
            Mode::Out(why) => {
                state.mode = Mode::Out(why);
                return Err(why);
            }
            other => {
                state.mode = other;
                return Err(Why::Broken);
            }
        };
        let mut waiting = 0;
        for frame in held {
            match decide(&frame, &mut state.sent_version, &mut state.epoch, || {
                self.silent()
            }) {
                Decision::Send => match self.send_shared(&frame.text) {
                    Ok(left) => waiting = left,
                    Err(_) => {
                        state.mode = Mode::Out(Why::Broken);
                        return Err(Why::Broken);
                    }
                },
                Decision::Skip => {}
                Decision::Silent => {
                    state.mode = Mode::Out(Why::Silent);
                    return Err(Why::Silent);
                }
            }
        }
        Ok(waiting)
    }

    /// Why the lane stopped writing, if it did.
    fn out(&self) -> Option<Why> {
        match self.state().mode {
            Mode::Out(why) => Some(why),
            _ => None,
        }
    }

    fn position(&self) -> (u64, String) {
        let state = self.state();
        (state.sent_version, state.epoch.clone())
    }

    fn set_position(&self, version: u64, epoch: &str) {
        let mut state = self.state();
        state.sent_version = version;
        if state.epoch != epoch {
            state.epoch = epoch.to_owned();
        }
    }

    /// Writes `text` if the client has every change of `version` (a
    /// heartbeat naming a version whose changes are still on their way
    /// would look like a gap); under the member's lock, so no change frame
    /// can pass it.
    fn send_if_at(&self, version: u64, text: impl FnOnce() -> String) -> io::Result<Option<usize>> {
        let state = self.state();
        if state.sent_version != version || !matches!(state.mode, Mode::Live) {
            return Ok(None);
        }
        self.send_text(&text()).map(Some)
    }

    /// An answer to the client (an `error`) at the version and epoch this
    /// member was sent last, under its lock: the instance's current version
    /// ran ahead of changes still on their way, or, with them passing it,
    /// behind the stream.
    fn send_control(&self, payload: EventPayload) -> io::Result<usize> {
        let state = self.state();
        let kind = serde_json::to_value(payload.event_type()).unwrap_or_default();
        let event = provider_sync_protocol::SyncEvent {
            id: format!(
                "{}:{}:{}",
                state.epoch,
                state.sent_version,
                kind.as_str().unwrap_or("control")
            ),
            version: state.sent_version,
            timestamp: crate::clock::now_rfc3339(),
            payload,
        };
        self.send_text(&event_text(&event))
    }

    /// The lane writes no more to it.
    fn leave(&self) {
        self.state().mode = Mode::Gone;
    }
}

/// Leaves the lane however the session ends.
struct Leaving<'a>(&'a Member);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

#[derive(Debug, Default)]
struct Lane {
    joining: Mutex<Vec<(Arc<Member>, u64)>>,
    closed: AtomicBool,
    /// Members given this lane and not yet gone.
    assigned: Arc<AtomicUsize>,
    /// A test's fault: the lane panics on its next batch.
    #[cfg(test)]
    fail: AtomicBool,
}

impl Lane {
    fn joining(&self) -> MutexGuard<'_, Vec<(Arc<Member>, u64)>> {
        self.joining
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The lanes of one server, one per session thread, each a task on the
/// sessions' runtime.
#[derive(Debug)]
pub(super) struct Lanes {
    lanes: Vec<Arc<Lane>>,
    room: usize,
}

/// Sockets per lane before the next lane is used. Each lane reads every
/// change and wakes for it; below this, one lane writing to every socket,
/// as the floor's one thread does, took less CPU per delivery than lanes
/// sharing them (at 1k clients, 7.4 against 8.2 µs: BENCHMARKS.md, "Lanes
/// filled in turn"); above it, the lanes share the sockets evenly.
const PER_LANE: usize = 2_000;

impl Lanes {
    /// `count` lanes reading `service`'s ring, spawned with `spawn`.
    pub(super) fn start(
        count: usize,
        service: &Service,
        room: usize,
        spawn: impl Fn(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>),
    ) -> Self {
        let lanes: Vec<Arc<Lane>> = (0..count.max(1))
            .map(|_| Arc::new(Lane::default()))
            .collect();
        for lane in &lanes {
            spawn(Box::pin(supervise(
                lane.clone(),
                service.subscribe(),
                service.metrics().clone(),
            )));
        }
        Self {
            lanes,
            room: room.max(1),
        }
    }

    /// The lane for a new member: the least filled of as many lanes as the
    /// members need at [`PER_LANE`] each (one lane for the first
    /// `PER_LANE`).
    fn pick(&self) -> usize {
        let count = |lane: &Arc<Lane>| lane.assigned.load(Ordering::Relaxed);
        let total: usize = self.lanes.iter().map(count).sum();
        let used = (total / PER_LANE + 1).min(self.lanes.len());
        (0..used)
            .min_by_key(|&i| count(&self.lanes[i]))
            .unwrap_or(0)
    }

    /// A member for `socket`, in the lane [`pick`](Self::pick) chooses.
    pub(super) fn member(&self, socket: Arc<Socket>, client_timeout: Duration) -> Arc<Member> {
        let lane = self.pick();
        let assigned = self.lanes[lane].assigned.clone();
        assigned.fetch_add(1, Ordering::Relaxed);
        Arc::new(Member {
            assigned,
            socket: Arc::downgrade(&socket),
            lane,
            state: Mutex::new(State {
                mode: Mode::Gone,
                generation: 0,
                sent_version: 0,
                epoch: String::new(),
            }),
            notify: Notify::new(),
            last_heard: AtomicU64::new(now_ms()),
            client_timeout,
            room: self.room,
        })
    }

    /// Joins (again) held: frames published from now on are kept for the
    /// member until it goes live.
    fn join(&self, member: &Arc<Member>) {
        let lane = &self.lanes[member.lane];
        let mut state = member.state();
        state.generation += 1;
        state.mode = Mode::Held(Vec::new());
        let mut joining = lane.joining();
        if lane.closed.load(Ordering::Acquire) {
            member.stop(&mut state, Why::ServerGone);
            return;
        }
        joining.push((member.clone(), state.generation));
    }
}

/// Runs a lane until the server stops. A lane that panics (a bug: it
/// would otherwise leave its members without frames for good) is started
/// again on a new reader of the ring, and every member it had, or that was
/// joining it, is sent back to the log, as when a lane falls behind: the
/// frames of the gap reach no one otherwise.
async fn supervise(lane: Arc<Lane>, frames: broadcast::Receiver<Frame>, metrics: Arc<Metrics>) {
    use futures_util::FutureExt;
    let mut frames = frames;
    loop {
        // Kept to subscribe again once this run has failed (its own reader
        // goes with it); never read, so it only holds what the ring holds.
        let spare = frames.resubscribe();
        let run = std::panic::AssertUnwindSafe(run_lane(lane.clone(), frames, metrics.clone()));
        if run.catch_unwind().await.is_ok() || lane.closed.load(Ordering::Acquire) {
            return;
        }
        tracing::error!("a fan-out lane failed; its sessions repair from the log");
        metrics.ws_lane_restarts.inc();
        // The next run reads from here on; every member that joined before
        // this point is stopped below (those of the failed run were stopped
        // as it unwound), so none misses a frame unknowingly.
        frames = spare.resubscribe();
        drop(spare);
        let joining = std::mem::take(&mut *lane.joining());
        stop_all(joining, Why::Behind);
    }
}

/// Stops each member still in the joining or live state of the generation
/// the entry was made for.
/// A member whose lock a failure left poisoned was being written to: its
/// position may count frames its socket never took whole, so it is not
/// repaired from that position but closed (`Broken`), and its client
/// resumes from what it has.
fn stop_all(members: impl IntoIterator<Item = (Arc<Member>, u64)>, why: Why) {
    for (member, generation) in members {
        let why = if member.state.is_poisoned() {
            Why::Broken
        } else {
            why
        };
        let mut state = member.state();
        if state.generation == generation && matches!(state.mode, Mode::Held(_) | Mode::Live) {
            member.stop(&mut state, why);
        }
    }
}

/// A lane's members; if the lane panics, each is sent back to the log as
/// the list is dropped.
struct Members(Vec<(Arc<Member>, u64)>);

impl Drop for Members {
    fn drop(&mut self) {
        if std::thread::panicking() {
            stop_all(self.0.drain(..), Why::Behind);
        }
    }
}

async fn run_lane(lane: Arc<Lane>, mut frames: broadcast::Receiver<Frame>, metrics: Arc<Metrics>) {
    let mut members = Members(Vec::new());
    let members = &mut members.0;
    let mut batch: Vec<Frame> = Vec::with_capacity(MAX_BATCH);
    let mut framed: Vec<u8> = Vec::new();
    let mut ends: Vec<usize> = Vec::with_capacity(MAX_BATCH);
    loop {
        let mut end = match frames.recv().await {
            Ok(frame) => {
                batch.push(frame);
                None
            }
            Err(RecvError::Lagged(_)) => Some(Why::Behind),
            Err(RecvError::Closed) => Some(Why::ServerGone),
        };
        while end.is_none() && batch.len() < MAX_BATCH {
            match frames.try_recv() {
                Ok(frame) => batch.push(frame),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(_)) => end = Some(Why::Behind),
                Err(TryRecvError::Closed) => end = Some(Why::ServerGone),
            }
        }
        #[cfg(test)]
        if lane.fail.swap(false, Ordering::Relaxed) {
            panic!("a test's fault in a fan-out lane");
        }
        // After the frames were read: a member that joined before one was
        // published is in the list for it.
        members.append(&mut lane.joining());
        // A lane without members (one not needed yet: see `PER_LANE`)
        // frames nothing.
        if !batch.is_empty() && !members.is_empty() {
            framed.clear();
            ends.clear();
            for frame in &batch {
                frame_header(frame.text.len(), &mut framed);
                framed.extend_from_slice(frame.text.as_bytes());
                ends.push(framed.len());
            }
            let mut coalesced = 0;
            // `retain`, with the next members' lines asked for ahead: the
            // lock of the one eight ahead, the socket of the one four ahead
            // (its address is in the member's line asked for before).
            let mut kept = 0;
            for i in 0..members.len() {
                if let Some((ahead, _)) = members.get(i + 8) {
                    ahead.prefetch();
                }
                if let Some((ahead, _)) = members.get(i + 4) {
                    Socket::prefetch(ahead.socket.as_ptr());
                }
                let (member, generation) = &members[i];
                if member.deliver(*generation, &batch, &framed, &ends, &mut coalesced) {
                    // Earlier members keep their order; the ones dropped
                    // move to the end.
                    members.swap(kept, i);
                    kept += 1;
                }
            }
            members.truncate(kept);
            if coalesced > 0 {
                metrics.ws_coalesced.inc_by(coalesced);
            }
        }
        batch.clear();
        if let Some(why) = end {
            // Every member's stream has a hole (or no future): each session
            // repairs it from the log, or closes.
            if why == Why::ServerGone {
                lane.closed.store(true, Ordering::Release);
                members.append(&mut lane.joining());
            }
            stop_all(members.drain(..), why);
            if why == Why::ServerGone {
                return;
            }
        }
    }
}

/// One session whose change frames its lane writes: hello and catch-up,
/// then reading the client and flushing and repairing what the lane left.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    socket: WebSocket,
    member: Arc<Member>,
    lanes: Arc<Lanes>,
    service: Arc<Service>,
    resume: Resume,
    timing: Timing,
    progress: Option<Arc<Activity>>,
    mut shutdown: Shutdown,
) -> Ended {
    if let Some(socket) = member.socket.upgrade() {
        socket.write_whole();
    }
    let _leaving = Leaving(&member);
    let mut out = Writer {
        sink: socket,
        timeout: timing.write_timeout,
        progress: progress.clone(),
    };
    // A client ahead of this instance was caught up to before the upgrade
    // (`ws_handler`), or refused.
    // Held first: every frame published after this point is kept for this
    // session, and every change before it is in the snapshot.
    lanes.join(&member);
    let snapshot = service.snapshot();
    let catch_up = snapshot.catch_up(
        resume.since.unwrap_or(0),
        resume.epoch.as_deref(),
        resume.since.is_none(),
    );
    let caught_up = async {
        let hello = hello(&snapshot, &catch_up, &timing);
        let sent = |text: &str| member.send_text(text).map_err(|_| Ended::ClientClosed);
        let shared = |text: &Utf8Bytes| member.send_shared(text).map_err(|_| Ended::ClientClosed);
        sent(&hello)?;
        match &catch_up {
            CatchUp::UpToDate => {}
            CatchUp::Full(_) => {
                shared(snapshot.full_sync_frame())?;
            }
            CatchUp::Events(events) => {
                for logged in events {
                    // Up to the whole log for a client far behind: not
                    // while the server stops.
                    if shutdown.is_triggered() {
                        return Err(Ended::Shutdown);
                    }
                    if shared(&logged.json)? > MAX_WAITING {
                        flush(&member, timing.write_timeout, progress.as_deref()).await?;
                    }
                }
            }
        }
        flush(&member, timing.write_timeout, progress.as_deref()).await
    };
    match caught_up.await {
        Ok(()) => {}
        Err(Ended::Shutdown) => {
            member.leave();
            out.close(close_code::AWAY, "server shutting down").await;
            return Ended::Shutdown;
        }
        Err(ended) => return ended,
    }
    member.set_position(snapshot.version(), snapshot.epoch());
    drop(snapshot);
    let mut answers = Answers::new();
    // For checks between the frames of a repair from the log.
    let stopping = shutdown.clone();
    let shutting_down = shutdown.wait();
    tokio::pin!(shutting_down);

    loop {
        let live = match member.go_live() {
            Ok(waiting) if waiting > 0 => flush(&member, timing.write_timeout, progress.as_deref())
                .await
                .map_err(Err),
            Ok(_) => Ok(()),
            Err(why) => Err(Ok(why)),
        };
        let why = match live {
            Ok(()) => loop {
                tokio::select! {
                    biased;
                    () = member.notify.notified() => {
                        if let Err(ended) = flush(&member, timing.write_timeout, progress.as_deref()).await {
                            return ended;
                        }
                        if let Some(why) = member.out() {
                            break why;
                        }
                    }
                    incoming = out.sink.next() => {
                        let received = match incoming {
                            Some(Ok(received)) => received,
                            Some(Err(error)) => {
                                if let Some((code, reason)) = refusal(&error) {
                                    member.leave();
                                    out.close(code, reason).await;
                                    let _ = flush(&member, timing.write_timeout, progress.as_deref()).await;
                                }
                                return Ended::ClientClosed;
                            }
                            None => return Ended::ClientClosed,
                        };
                        if let Message::Close(_) = received {
                            // The socket queued its answer, the client's
                            // close frame echoed (RFC 6455 §5.5.1): it
                            // goes out last, once the lane has let go,
                            // after what was waiting. tungstenite does not
                            // flush the stream after a server's last frame,
                            // and this socket takes every write whole,
                            // keeping what the kernel did not take: that
                            // is flushed here, under the write deadline.
                            member.leave();
                            let _ = out.flush().await;
                            let _ = flush(&member, timing.write_timeout, progress.as_deref()).await;
                            return Ended::ClientClosed;
                        }
                        member.heard();
                        if let Err(ended) = answer(&member, &service, received, &mut answers) {
                            return ended;
                        }
                        if let Err(ended) = flush(&member, timing.write_timeout, progress.as_deref()).await {
                            return ended;
                        }
                    }
                    _ = &mut shutting_down => {
                        member.leave();
                        out.close(close_code::AWAY, "server shutting down").await;
                        return Ended::Shutdown;
                    }
                }
            },
            Err(Ok(why)) => why,
            Err(Err(ended)) => return ended,
        };
        match why {
            Why::Behind => {}
            Why::Silent => {
                member.leave();
                out.close(close_code::POLICY, "no heartbeat from the client")
                    .await;
                return Ended::ClientSilent;
            }
            Why::ServerGone => {
                member.leave();
                out.close(close_code::AWAY, "server shutting down").await;
                return Ended::ServerGone;
            }
            Why::Broken => return Ended::ClientClosed,
        }
        // Frames are missing from this client's stream: sent from the log
        // whenever it still has them, each once; otherwise the client is
        // told to resync. Held again first, as at the start.
        lanes.join(&member);
        let snapshot = service.snapshot();
        let (mut sent_version, epoch) = member.position();
        match snapshot.missed_since(sent_version, &epoch) {
            CatchUp::UpToDate => {}
            CatchUp::Events(events) => {
                service.metrics().ws_lag_repairs.inc();
                for logged in events {
                    if logged.event.version <= sent_version {
                        continue;
                    }
                    if stopping.is_triggered() {
                        member.leave();
                        out.close(close_code::AWAY, "server shutting down").await;
                        return Ended::Shutdown;
                    }
                    let waiting = match member.send_shared(&logged.json) {
                        Ok(waiting) => waiting,
                        Err(_) => return Ended::ClientClosed,
                    };
                    sent_version = logged.event.version;
                    member.set_position(sent_version, &epoch);
                    if waiting > MAX_WAITING
                        && let Err(ended) =
                            flush(&member, timing.write_timeout, progress.as_deref()).await
                    {
                        return ended;
                    }
                }
            }
            CatchUp::Full(_) => {
                // The client resyncs to this state (or a later one): follow
                // on from it.
                service.metrics().ws_resyncs.inc();
                let notice = control_text(
                    &snapshot,
                    EventPayload::ResyncRequired(ResyncRequired {
                        reason: "lagged".into(),
                        missed: snapshot.version().saturating_sub(sent_version),
                    }),
                );
                if member.send_text(&notice).is_err() {
                    return Ended::ClientClosed;
                }
                member.set_position(snapshot.version(), snapshot.epoch());
            }
        }
        drop(snapshot);
        if let Err(ended) = flush(&member, timing.write_timeout, progress.as_deref()).await {
            return ended;
        }
    }
}

/// Waits, under the write deadline, until the socket has taken every byte
/// written to it so far (not those the lane writes meanwhile).
async fn flush(
    member: &Member,
    timeout: Duration,
    progress: Option<&Activity>,
) -> Result<(), Ended> {
    let Some(socket) = member.socket.upgrade() else {
        return Err(Ended::ClientClosed);
    };
    let target = socket.flush_target();
    within(
        timeout,
        progress,
        std::future::poll_fn(|cx| socket.poll_flush_to(cx, target)),
    )
    .await
}

/// What the session answers a message from its client with (written under
/// the member's lock, between the lane's writes), within `answers`.
fn answer(
    member: &Member,
    service: &Service,
    received: Message,
    answers: &mut Answers,
) -> Result<(), Ended> {
    let answered = matches!(received, Message::Text(_) | Message::Binary(_));
    if answered && !answers.take() {
        return Ok(());
    }
    let written = match received {
        Message::Text(text) => match read_client_frame(&text) {
            Ok(ClientMessage::Heartbeat { .. }) => {
                let snapshot = service.snapshot();
                member.send_if_at(snapshot.version(), || {
                    event_text(&snapshot.heartbeat(service.vouches()))
                })
            }
            Err(error) => member.send_control(EventPayload::Error(error)).map(Some),
        },
        Message::Binary(_) => member
            .send_control(EventPayload::Error(provider_sync_protocol::ErrorData {
                code: "invalid_message".to_owned(),
                message: "binary frames are not part of the protocol; send JSON text".into(),
                field: None,
            }))
            .map(Some),
        // Answered by `run` before it comes here.
        Message::Close(_) => return Err(Ended::ClientClosed),
        // Pings are answered by the socket itself.
        Message::Ping(_) | Message::Pong(_) => Ok(None),
    };
    written.map(|_| ()).map_err(|_| Ended::ClientClosed)
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use provider_sync_protocol::SyncEvent;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;
    use crate::serve::tests::pair;
    use crate::ws::session::tests::{burst, service_keeping};

    type Client = WebSocketStream<tokio::net::TcpStream>;

    /// One lane takes the first `PER_LANE` sockets; past that as many lanes
    /// as they need share them evenly, up to every lane; a lane that lost
    /// members takes the next ones.
    #[tokio::test]
    async fn lanes_fill_in_turn_then_share_evenly() {
        let lanes = Lanes {
            lanes: (0..3).map(|_| Arc::new(Lane::default())).collect(),
            room: 1,
        };
        let counts = |lanes: &Lanes| -> Vec<usize> {
            lanes
                .lanes
                .iter()
                .map(|lane| lane.assigned.load(Ordering::Relaxed))
                .collect()
        };
        let (socket, _client) = pair().await;
        let mut members = Vec::new();
        let add = |lanes: &Lanes, n: usize, members: &mut Vec<Arc<Member>>| {
            for _ in 0..n {
                members.push(lanes.member(socket.clone(), Duration::from_secs(60)));
            }
        };
        add(&lanes, 1_000, &mut members);
        assert_eq!(counts(&lanes), [1_000, 0, 0]);
        add(&lanes, PER_LANE - 1_000, &mut members);
        assert_eq!(counts(&lanes), [PER_LANE, 0, 0]);
        add(&lanes, PER_LANE, &mut members);
        assert_eq!(counts(&lanes), [PER_LANE, PER_LANE, 0]);
        add(&lanes, PER_LANE, &mut members);
        assert_eq!(counts(&lanes), [PER_LANE, PER_LANE, PER_LANE]);
        add(&lanes, 3, &mut members);
        assert_eq!(counts(&lanes), [PER_LANE + 1; 3]);
        // The members of lane 0 go: it takes the next ones.
        members.retain(|m| m.lane != 0);
        assert_eq!(counts(&lanes), [0, PER_LANE + 1, PER_LANE + 1]);
        add(&lanes, 10, &mut members);
        assert_eq!(counts(&lanes), [10, PER_LANE + 1, PER_LANE + 1]);
    }

    /// A member of a new lane of `service` and the client reading its
    /// socket, joined held.
    async fn joined(
        service: &Service,
        room: usize,
    ) -> (Arc<Lanes>, Arc<Member>, Arc<Socket>, Client) {
        let lanes = Arc::new(Lanes::start(1, service, room, |lane| {
            drop(tokio::spawn(lane))
        }));
        let (socket, client) = pair().await;
        socket.write_whole();
        let member = lanes.member(socket.clone(), Duration::from_secs(60));
        lanes.join(&member);
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        (lanes, member, socket, client)
    }

    /// The versions of the frames the client receives until it has been
    /// quiet for 300 ms.
    async fn received(client: &mut Client) -> Vec<u64> {
        let mut versions = Vec::new();
        while let Ok(Some(Ok(frame))) =
            tokio::time::timeout(Duration::from_millis(300), client.next()).await
        {
            let event: SyncEvent = serde_json::from_str(frame.to_text().unwrap()).unwrap();
            versions.push(event.version);
        }
        versions
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what}: not within 5 s");
    }

    /// `member` joins `lanes` again at `position` (version, epoch), and
    /// the next change reaches its client through the lane, held first.
    async fn joins_again_and_gets_the_next(
        service: &Arc<Service>,
        lanes: &Lanes,
        member: &Arc<Member>,
        (version, epoch): (u64, &str),
        client: &mut Client,
    ) {
        lanes.join(member);
        member.set_position(version, epoch);
        burst(service, "next", 1).await;
        until("the new frame held", || held(member) == 1).await;
        assert_eq!(member.go_live(), Ok(0));
        assert_eq!(received(client).await, [version + 1]);
    }

    fn held(member: &Member) -> usize {
        match &member.state().mode {
            Mode::Held(held) => held.len(),
            _ => 0,
        }
    }

    /// Frames published while a session catches up are held for it; once
    /// live it gets those it still needs, then the lane's, each once and
    /// in order.
    #[tokio::test]
    async fn frames_published_while_a_member_catches_up_are_held_then_sent_once() {
        let (service, _dir) = service_keeping(100).await;
        let (_lanes, member, _socket, mut client) = joined(&service, 16).await;
        // Version 1 is in the snapshot the session caught up from; version
        // 2 came after it. Both were published after it joined.
        burst(&service, "a", 1).await;
        let snapshot = service.snapshot();
        member.set_position(snapshot.version(), snapshot.epoch());
        burst(&service, "b", 1).await;
        until("both frames held", || held(&member) == 2).await;
        assert_eq!(member.go_live(), Ok(0));
        burst(&service, "c", 1).await;
        assert_eq!(received(&mut client).await, [2, 3]);
        assert_eq!(member.position().0, 3);
    }

    /// A lane's list past its look-ahead (its members' lines are asked for
    /// eight ahead): members that leave anywhere in it, the first and the
    /// last among them, get nothing more, and every other one gets every
    /// change, in order, change after change.
    #[tokio::test]
    async fn members_leaving_anywhere_in_a_long_list_leave_the_rest_whole() {
        let (service, _dir) = service_keeping(100).await;
        let lanes = Arc::new(Lanes::start(1, &service, 16, |lane| {
            drop(tokio::spawn(lane))
        }));
        let epoch = service.snapshot().epoch().to_owned();
        let mut joined = Vec::new();
        for _ in 0..20 {
            let (socket, client) = pair().await;
            socket.write_whole();
            let member = lanes.member(socket.clone(), Duration::from_secs(60));
            lanes.join(&member);
            member.set_position(0, &epoch);
            assert_eq!(member.go_live(), Ok(0));
            let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
            joined.push((member, socket, client));
        }
        async fn next(client: &mut Client) -> u64 {
            let frame = tokio::time::timeout(Duration::from_secs(5), client.next())
                .await
                .expect("a frame within 5 s")
                .unwrap()
                .unwrap();
            serde_json::from_str::<SyncEvent>(frame.to_text().unwrap())
                .unwrap()
                .version
        }
        burst(&service, "a", 1).await;
        for (_, _, client) in &mut joined {
            assert_eq!(next(client).await, 1);
        }
        let leaving = [0, 3, 4, 9, 12, 19];
        for &i in &leaving {
            joined[i].0.leave();
        }
        for round in 2..=4 {
            burst(&service, &format!("r{round}"), 1).await;
            for (i, (_, _, client)) in joined.iter_mut().enumerate() {
                if !leaving.contains(&i) {
                    assert_eq!(next(client).await, round, "member {i}");
                }
            }
        }
        for &i in &leaving {
            assert_eq!(
                received(&mut joined[i].2).await,
                Vec::<u64>::new(),
                "member {i}"
            );
        }
    }

    /// More frames than its room while it catches up: the lane lets the
    /// member go, and the session is told to repair from the log.
    #[tokio::test]
    async fn a_member_held_past_its_room_is_sent_to_the_log() {
        let (service, _dir) = service_keeping(100).await;
        let (lanes, member, _socket, mut client) = joined(&service, 2).await;
        for i in 0..3 {
            burst(&service, &format!("p{i}"), 1).await;
        }
        until("the lane let it go", || member.out().is_some()).await;
        assert_eq!(member.out(), Some(Why::Behind));
        assert_eq!(member.go_live(), Err(Why::Behind));
        // Joining again starts a new holding; the old entry is not used.
        let epoch = service.snapshot().epoch().to_owned();
        joins_again_and_gets_the_next(&service, &lanes, &member, (3, &epoch), &mut client).await;
    }

    /// A batch of frames reaches a live member in one write, skipping those
    /// it already has (one run of bytes, or several in one vectored write).
    #[tokio::test]
    async fn a_batch_goes_out_in_one_write_without_what_the_client_has() {
        let (service, _dir) = service_keeping(100).await;
        let (_lanes, member, _socket, mut client) = joined(&service, 16).await;
        let epoch = service.snapshot().epoch().to_owned();
        member.set_position(1, &epoch);
        assert_eq!(member.go_live(), Ok(0));
        let frame = |version: u64, change: bool| {
            Frame {
            version,
            change,
            reset: false,
            epoch: None,
            text: format!(r#"{{"id":"e{version}","version":{version},"timestamp":"2026-01-01T00:00:00Z","type":"heartbeat","data":{{"epoch":"e","version":{version},"checksum":"c","server_time":"2026-01-01T00:00:00Z"}}}}"#).into(),
        }
        };
        // Version 1 it has; the heartbeat of version 0 is older than what
        // it has; 2 and 3 it gets.
        let batch = [
            frame(1, true),
            frame(2, true),
            frame(0, false),
            frame(3, true),
        ];
        let mut framed = Vec::new();
        let mut ends = Vec::new();
        for frame in &batch {
            frame_header(frame.text.len(), &mut framed);
            framed.extend_from_slice(frame.text.as_bytes());
            ends.push(framed.len());
        }
        let generation = member.state().generation;
        let mut coalesced = 0;
        assert!(member.deliver(generation, &batch, &framed, &ends, &mut coalesced));
        assert_eq!(coalesced, 1, "two frames, one write");
        assert_eq!(received(&mut client).await, [2, 3]);
        // An entry of an earlier joining is dropped, and writes nothing.
        assert!(!member.deliver(generation - 1, &batch, &framed, &ends, &mut coalesced));
        assert!(received(&mut client).await.is_empty());
    }

    /// A catch-up longer than the client timeout (a full state to a slow
    /// link) does not make the client look silent: its messages were not
    /// read meanwhile, and the heartbeats held for it go out.
    #[tokio::test]
    async fn a_long_catch_up_is_not_silence() {
        let (service, _dir) = service_keeping(100).await;
        let lanes = Arc::new(Lanes::start(1, &service, 16, |lane| {
            drop(tokio::spawn(lane))
        }));
        let (socket, client) = pair().await;
        socket.write_whole();
        let member = lanes.member(socket.clone(), Duration::from_millis(100));
        lanes.join(&member);
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let snapshot = service.snapshot();
        member.set_position(snapshot.version(), snapshot.epoch());
        tokio::time::sleep(Duration::from_millis(300)).await;
        service.broadcast_heartbeat();
        until("the heartbeat held", || held(&member) == 1).await;
        assert_eq!(member.go_live(), Ok(0));
        assert_eq!(received(&mut client).await, [0]);
        // Silent from here on: the next heartbeat finds it so.
        tokio::time::sleep(Duration::from_millis(300)).await;
        service.broadcast_heartbeat();
        until("the lane let it go", || member.out().is_some()).await;
        assert_eq!(member.out(), Some(Why::Silent));
    }

    /// A lane that panics is started again: its members, live or joining,
    /// are sent back to the log (the frames of the gap reached neither), and
    /// a member that joins afterwards gets the frames published after.
    #[tokio::test]
    async fn a_failed_lane_sends_its_members_to_the_log_and_starts_again() {
        let (service, _dir) = service_keeping(100).await;
        let (lanes, live, _socket, mut client) = joined(&service, 16).await;
        let epoch = service.snapshot().epoch().to_owned();
        live.set_position(0, &epoch);
        assert_eq!(live.go_live(), Ok(0));
        burst(&service, "a", 1).await;
        assert_eq!(received(&mut client).await, [1]);
        let (socket, _other) = pair().await;
        let joining = lanes.member(socket.clone(), Duration::from_secs(60));
        lanes.join(&joining);
        let restarts = service.metrics().ws_lane_restarts.get();

        lanes.lanes[0].fail.store(true, Ordering::Relaxed);
        burst(&service, "b", 1).await;
        until("the live member let go", || live.out().is_some()).await;
        assert_eq!(live.out(), Some(Why::Behind));
        assert_eq!(joining.out(), Some(Why::Behind));
        assert_eq!(service.metrics().ws_lane_restarts.get(), restarts + 1);

        // The lane runs again: a member that joins now gets what follows.
        joins_again_and_gets_the_next(&service, &lanes, &live, (2, &epoch), &mut client).await;
    }

    /// A member whose lock a failure poisoned was being written to: it is
    /// closed, not repaired from a position that may count unsent frames.
    #[tokio::test]
    async fn a_member_a_failure_left_poisoned_is_closed_not_repaired() {
        let (service, _dir) = service_keeping(100).await;
        let (_lanes, member, _socket, _client) = joined(&service, 16).await;
        let generation = member.state().generation;
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _writing = member.state();
            panic!("a test's fault while writing");
        }));
        assert!(failed.is_err());
        stop_all([(member.clone(), generation)], Why::Behind);
        assert_eq!(member.out(), Some(Why::Broken));
    }
}
