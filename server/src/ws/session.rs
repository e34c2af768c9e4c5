//! One WebSocket session, generic over the socket (a sink and a stream) so it can
//! be tested without a network: hello, catch-up (events or full state), then
//! live frames and heartbeats until either side goes away.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, close_code};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use provider_sync_protocol::{
    ClientMessage, ErrorData, EventPayload, Hello, PROTOCOL_VERSION, ResyncRequired, SyncEvent,
    SyncType,
};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;

use crate::serve::Activity;
use crate::service::{CatchUp, Frame, Service, Snapshot};
use crate::shutdown::Shutdown;

/// Where the client says it stands, from the `/ws` query.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub since: Option<u64>,
    pub epoch: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub heartbeat: Duration,
    /// Silence from the client longer than this closes the session.
    pub client_timeout: Duration,
    /// A write making no progress for this long drops the session.
    pub write_timeout: Duration,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    ClientClosed,
    ClientSilent,
    WriteStalled,
    Shutdown,
    ServerGone,
}

pub(super) fn event_text(event: &SyncEvent) -> String {
    serde_json::to_string(event).expect("event serialises")
}

fn message(event: &SyncEvent) -> Message {
    Message::Text(Utf8Bytes::from(event_text(event)))
}

pub(super) fn control_text(snapshot: &Snapshot, payload: EventPayload) -> String {
    event_text(&snapshot.control_event(payload))
}

fn control(snapshot: &Snapshot, payload: EventPayload) -> Message {
    message(&snapshot.control_event(payload))
}

/// Answers to a client's frames (heartbeats, errors): at most eight in a
/// second. Past that, frames are read and not answered, so a client
/// flooding its socket with heartbeats costs the server little (each
/// answer was made and sent: four flooding clients took over a core). The
/// SDK sends one heartbeat every 25 s and one after `hello`.
#[derive(Debug)]
pub(super) struct Answers {
    since: Instant,
    count: u32,
}

impl Answers {
    const MOST: u32 = 8;

    pub(super) fn new() -> Self {
        Self {
            since: Instant::now(),
            count: 0,
        }
    }

    /// Whether one more frame may be answered now (counted if so).
    pub(super) fn take(&mut self) -> bool {
        if self.since.elapsed() >= Duration::from_secs(1) {
            *self = Self::new();
        }
        self.count += 1;
        self.count <= Self::MOST
    }
}

/// The `hello` a session starts with, saying how it catches its client up.
pub(super) fn hello(snapshot: &Snapshot, catch_up: &CatchUp, timing: &Timing) -> String {
    let sync_type = match catch_up {
        CatchUp::UpToDate => SyncType::None,
        CatchUp::Events(_) => SyncType::Incremental,
        CatchUp::Full(_) => SyncType::Full,
    };
    control_text(
        snapshot,
        EventPayload::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            epoch: snapshot.epoch().to_owned(),
            version: snapshot.version(),
            sync_type,
            heartbeat_interval_ms: timing.heartbeat.as_millis() as u64,
            client_timeout_ms: timing.client_timeout.as_millis() as u64,
        }),
    )
}

/// An answer to the client at `version` of `epoch`, the last it was sent
/// (the instance's may be ahead of the changes still on their way).
fn control_at(snapshot: &Snapshot, epoch: &str, version: u64, payload: EventPayload) -> Message {
    let mut event = snapshot.control_event(payload);
    let kind = event.id.rsplit(':').next().unwrap_or("control").to_owned();
    event.id = format!("{epoch}:{version}:{kind}");
    event.version = version;
    message(&event)
}

fn error_frame(
    snapshot: &Snapshot,
    epoch: &str,
    version: u64,
    code: &str,
    message: String,
) -> Message {
    control_at(
        snapshot,
        epoch,
        version,
        EventPayload::Error(ErrorData {
            code: code.to_owned(),
            message,
            field: None,
        }),
    )
}

/// The close frame that answers a client frame the socket could not read:
/// 1009 for one over `--ws-max-message`, 1007 for text that is not UTF-8,
/// 1002 for one that breaks the protocol (unmasked, a bad opcode); none for
/// a connection that ended or failed (a client gone without its close
/// frame is no protocol error to answer).
pub(super) fn refusal(error: &(dyn std::error::Error + 'static)) -> Option<(u16, &'static str)> {
    use tungstenite::Error as E;
    use tungstenite::error::ProtocolError as P;
    let inner = match error.downcast_ref::<E>() {
        Some(inner) => inner,
        None => error.source()?.downcast_ref::<E>()?,
    };
    match inner {
        E::Capacity(_) => Some((close_code::SIZE, "message too big")),
        E::Utf8(_) => Some((close_code::INVALID, "text that is not UTF-8")),
        E::Protocol(
            P::ResetWithoutClosingHandshake | P::ReceivedAfterClosing | P::SendAfterClosing,
        ) => None,
        E::Protocol(_) => Some((close_code::PROTOCOL, "protocol error")),
        _ => None,
    }
}

/// What a client's text frame says, or the data of the error frame that
/// answers a frame that cannot be read. Kept apart from the session's loop,
/// and pure, so that the fuzz target reads frames exactly as a session does.
pub fn read_client_frame(text: &str) -> Result<ClientMessage, ErrorData> {
    let invalid = |err: serde_json::Error| ErrorData {
        code: "invalid_message".to_owned(),
        message: format!("cannot read this message: {err}; send {{\"type\":\"heartbeat\"}}"),
        field: None,
    };
    // A number without a fractional part is an integer however it is
    // written (`42.0`), as in the HTTP API's bodies.
    let mut value: serde_json::Value = serde_json::from_str(text).map_err(invalid)?;
    crate::error::whole_numbers_as_integers(&mut value);
    serde_json::from_value(value).map_err(invalid)
}

/// The socket, written with a deadline. One task owns it whole (no split
/// halves behind a lock): it reads in the `select!` below and writes in its
/// branches.
pub(super) struct Writer<S> {
    pub(super) sink: S,
    pub(super) timeout: Duration,
    /// The connection's byte progress, when known: then the deadline is on
    /// progress (a slow but moving client receiving a large `full_sync`
    /// keeps its session), not on the whole write.
    pub(super) progress: Option<Arc<Activity>>,
}

/// Most frames written to one socket before a flush: a session far behind
/// still gives the others their turn.
pub(super) const MAX_BATCH: usize = 64;

/// Runs one write on the socket with the deadline. The deadline's timer is
/// only set up when the socket cannot take the write at once: with
/// thousands of clients, a timer per message per client is measurable, and
/// a stalled socket is the exception.
pub(super) async fn within<F, E>(
    timeout: Duration,
    progress: Option<&Activity>,
    write: F,
) -> Result<(), Ended>
where
    F: Future<Output = Result<(), E>>,
{
    let mut write = std::pin::pin!(write);
    let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
    let outcome = match first {
        Poll::Ready(outcome) => outcome,
        // Boxed: the timer lives on the heap only while a write waits, not
        // inline in every idle session's future.
        Poll::Pending => {
            let mut write = Box::pin(write);
            let started = Instant::now();
            // The write is polled four times a deadline: each poll notes
            // what the client took meanwhile (the socket is not woken for
            // each byte it reads), so progress is seen within a quarter of
            // the deadline of when it came. Looked at only as the deadline
            // came, a client that stopped reading just after the write
            // began was credited then, and kept its session for nearly two
            // deadlines.
            let tick = (timeout / 4).max(Duration::from_millis(1));
            loop {
                match tokio::time::timeout(tick, write.as_mut()).await {
                    Ok(outcome) => break outcome,
                    Err(_) => {
                        // No byte taken for the deadline, counted from this
                        // write's start at the earliest.
                        let idle = match progress.map(Activity::since_write) {
                            Some(since) => since.min(started.elapsed()),
                            None => started.elapsed(),
                        };
                        if idle >= timeout {
                            return Err(Ended::WriteStalled);
                        }
                    }
                }
            }
        }
    };
    outcome.map_err(|_| Ended::ClientClosed)
}

impl<S> Writer<S>
where
    S: Sink<Message> + Unpin,
{
    /// Sends one message and flushes it.
    pub(super) async fn send(&mut self, message: Message) -> Result<(), Ended> {
        within(
            self.timeout,
            self.progress.as_deref(),
            self.sink.send(message),
        )
        .await
    }

    /// Queues one message in the socket's write buffer without flushing it
    /// (the buffer still goes out when full): several frames then leave in
    /// one write.
    async fn feed(&mut self, message: Message) -> Result<(), Ended> {
        within(
            self.timeout,
            self.progress.as_deref(),
            self.sink.feed(message),
        )
        .await
    }

    pub(super) async fn flush(&mut self) -> Result<(), Ended> {
        within(self.timeout, self.progress.as_deref(), self.sink.flush()).await
    }

    pub(super) async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = self.send(Message::Close(Some(frame))).await;
    }
}

/// What a session does with one frame from the ring.
enum Step {
    Send(Utf8Bytes),
    /// Already sent (a change this client caught up on), or a heartbeat
    /// older than what it has.
    Skip,
    /// A heartbeat found the client silent past its timeout.
    Silent,
}

/// Whether a frame goes to a client that was sent `sent_version` of
/// `epoch` (both updated); `silent` says whether the client has been quiet
/// past its timeout, asked only at heartbeats. Shared by sessions and the
/// fan-out lanes.
pub(super) fn decide(
    frame: &Frame,
    sent_version: &mut u64,
    epoch: &mut String,
    silent: impl FnOnce() -> bool,
) -> Decision {
    if frame.reset {
        // The state was reloaded from the store: the client is told to
        // resync. In a new epoch versions start over; in the same one, a
        // repair from the log may already have sent past this version.
        let reloaded = frame.epoch.as_deref().unwrap_or(epoch.as_str());
        if reloaded == epoch.as_str() {
            *sent_version = (*sent_version).max(frame.version);
        } else {
            *sent_version = frame.version;
            *epoch = reloaded.to_owned();
        }
    } else if frame.change {
        if frame.version <= *sent_version {
            return Decision::Skip;
        }
        *sent_version = frame.version;
    } else if frame.version < *sent_version {
        return Decision::Skip;
    } else if silent() {
        return Decision::Silent;
    }
    Decision::Send
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    Send,
    Skip,
    Silent,
}

fn step(
    frame: Frame,
    sent_version: &mut u64,
    epoch: &mut String,
    last_heard: Instant,
    timing: &Timing,
) -> Step {
    match decide(&frame, sent_version, epoch, || {
        last_heard.elapsed() > timing.client_timeout
    }) {
        Decision::Send => Step::Send(frame.text),
        Decision::Skip => Step::Skip,
        Decision::Silent => Step::Silent,
    }
}

/// Runs one session on `socket` from `resume`: hello, the catch-up, then
/// live frames and heartbeats. On a store several instances share, the
/// caller catches this instance up to a client ahead of it first
/// ([`Service::caught_up_for`](crate::service::Service::caught_up_for)),
/// or refuses the client: what this instance holds is sent as the current
/// state.
pub async fn run<S, E>(
    socket: S,
    service: Arc<Service>,
    resume: Resume,
    timing: Timing,
    progress: Option<Arc<Activity>>,
    mut shutdown: Shutdown,
) -> Ended
where
    S: Sink<Message> + Stream<Item = Result<Message, E>> + Unpin,
    E: std::error::Error + 'static,
{
    let mut out = Writer {
        sink: socket,
        timeout: timing.write_timeout,
        progress,
    };
    // A client ahead of this instance (it came from another one) was
    // caught up to before the upgrade (`ws_handler`), or refused.
    // Subscribe first: every change committed after this point arrives as a
    // frame, and every change before it is in the snapshot.
    let mut frames = service.subscribe();
    let snapshot = service.snapshot();
    let catch_up = snapshot.catch_up(
        resume.since.unwrap_or(0),
        resume.epoch.as_deref(),
        resume.since.is_none(),
    );
    let hello = Message::Text(Utf8Bytes::from(hello(&snapshot, &catch_up, &timing)));
    let caught_up = async {
        out.send(hello).await?;
        match catch_up {
            CatchUp::UpToDate => {}
            CatchUp::Full(_) => {
                out.send(Message::Text(snapshot.full_sync_frame().clone()))
                    .await?
            }
            CatchUp::Events(events) => {
                // Fed, then flushed once: a client owed many events gets
                // them in as few writes as the socket's buffer allows.
                for logged in events {
                    // Up to the whole log for a client far behind: not
                    // while the server stops (the client resumes from what
                    // it has, elsewhere or later).
                    if shutdown.is_triggered() {
                        out.close(close_code::AWAY, "server shutting down").await;
                        return Err(Ended::Shutdown);
                    }
                    out.feed(Message::Text(logged.json.clone())).await?;
                }
                out.flush().await?;
            }
        }
        Ok::<(), Ended>(())
    };
    if let Err(ended) = caught_up.await {
        return ended;
    }
    let mut sent_version = snapshot.version();
    // The epoch of the client's copy, for catching it up from the log.
    let mut epoch = snapshot.epoch().to_owned();
    drop(snapshot);
    let mut last_heard = Instant::now();
    let mut answers = Answers::new();
    // For checks between the frames of a long catch-up from the log.
    let stopping = shutdown.clone();
    // Pinned once: a fresh shutdown future per turn of the loop would join
    // and leave the signal's waiter list (behind its lock) on every frame.
    let shutting_down = shutdown.wait();
    tokio::pin!(shutting_down);

    loop {
        tokio::select! {
            // Frames first: a wake-up for a broadcast then costs no poll of
            // the socket's read side, which is idle nearly always.
            biased;
            frame = frames.recv() => {
                // Every frame already on the ring goes out with this one, in
                // one flush: under load a session writes once per wake-up,
                // not once per frame, and each frame stays a whole message
                // with its own version.
                let mut next = Some(frame);
                // Frames from the ring fed into this write, and whether a
                // repair from the log fed any.
                let mut fed = 0;
                let mut repaired = false;
                while let Some(frame) = next.take() {
                    let message = match frame {
                        Ok(frame) => match step(frame, &mut sent_version, &mut epoch, last_heard, &timing) {
                            Step::Send(text) => Some(Message::Text(text)),
                            Step::Skip => None,
                            Step::Silent => {
                                out.close(close_code::POLICY, "no heartbeat from the client").await;
                                return Ended::ClientSilent;
                            }
                        },
                        Err(RecvError::Lagged(missed)) => {
                            // Frames were dropped from the ring before this
                            // session read them (a burst larger than the
                            // queue, or a slow socket). The log still has
                            // them, most often: sent from there, each once,
                            // and the frames still on the ring that follow
                            // are sent as usual (those already sent are
                            // skipped by version). Otherwise the client is
                            // told to resync.
                            let snapshot = service.snapshot();
                            match snapshot.missed_since(sent_version, &epoch) {
                                CatchUp::UpToDate => None,
                                CatchUp::Events(events) => {
                                    service.metrics().ws_lag_repairs.inc();
                                    for logged in events {
                                        if logged.event.version <= sent_version {
                                            continue;
                                        }
                                        // Up to the whole log for a slow
                                        // client: not while the server
                                        // stops (the client resumes from
                                        // what it has, elsewhere or later).
                                        if stopping.is_triggered() {
                                            out.close(close_code::AWAY, "server shutting down").await;
                                            return Ended::Shutdown;
                                        }
                                        sent_version = logged.event.version;
                                        if let Err(ended) =
                                            out.feed(Message::Text(logged.json.clone())).await
                                        {
                                            return ended;
                                        }
                                        repaired = true;
                                    }
                                    None
                                }
                                CatchUp::Full(_) => {
                                    // The client resyncs to this state (or
                                    // a later one): follow on from it.
                                    sent_version = snapshot.version();
                                    epoch = snapshot.epoch().to_owned();
                                    service.metrics().ws_resyncs.inc();
                                    Some(control(&snapshot, EventPayload::ResyncRequired(ResyncRequired {
                                        reason: "lagged".into(),
                                        missed,
                                    })))
                                }
                            }
                        }
                        Err(RecvError::Closed) => {
                            out.close(close_code::AWAY, "server shutting down").await;
                            return Ended::ServerGone;
                        }
                    };
                    if let Some(message) = message {
                        if let Err(ended) = out.feed(message).await {
                            return ended;
                        }
                        fed += 1;
                    }
                    if fed < MAX_BATCH {
                        next = match frames.try_recv() {
                            Ok(frame) => Some(Ok(frame)),
                            Err(TryRecvError::Empty) => None,
                            Err(TryRecvError::Lagged(missed)) => Some(Err(RecvError::Lagged(missed))),
                            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                        };
                    }
                }
                if fed > 1 {
                    service.metrics().ws_coalesced.inc_by(fed as u64 - 1);
                }
                if (fed > 0 || repaired)
                    && let Err(ended) = out.flush().await
                {
                    return ended;
                }
            }
            incoming = out.sink.next() => {
                let received = match incoming {
                    Some(Ok(received)) => received,
                    Some(Err(error)) => {
                        if let Some((code, reason)) = refusal(&error) {
                            out.close(code, reason).await;
                        }
                        return Ended::ClientClosed;
                    }
                    None => return Ended::ClientClosed,
                };
                last_heard = Instant::now();
                let reply = match received {
                    Message::Text(text) => match read_client_frame(&text) {
                        // Answer only when this client has every change
                        // the heartbeat would name; otherwise those change
                        // frames are queued and a heartbeat ahead of them
                        // would look like a gap.
                        Ok(ClientMessage::Heartbeat { .. }) => {
                            let snapshot = service.snapshot();
                            (snapshot.version() == sent_version)
                                .then(|| message(&snapshot.heartbeat(service.vouches())))
                        }
                        Err(error) => Some(control_at(
                            &service.snapshot(),
                            &epoch,
                            sent_version,
                            EventPayload::Error(error),
                        )),
                    },
                    Message::Binary(_) => Some(error_frame(
                        &service.snapshot(),
                        &epoch,
                        sent_version,
                        "invalid_message",
                        "binary frames are not part of the protocol; send JSON text".into(),
                    )),
                    Message::Close(_) => {
                        // The socket queued its answer, the client's close
                        // frame echoed (RFC 6455 §5.5.1): sent as it ends.
                        let _ = out.flush().await;
                        return Ended::ClientClosed;
                    }
                    // Pings are answered by the socket itself.
                    Message::Ping(_) | Message::Pong(_) => None,
                };
                if let Some(reply) = reply
                    && answers.take()
                    && let Err(ended) = out.send(reply).await
                {
                    return ended;
                }
            }
            _ = &mut shutting_down => {
                out.close(close_code::AWAY, "server shutting down").await;
                return Ended::Shutdown;
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_channel::mpsc;
    use provider_sync_protocol::SyncEvent;

    use super::*;
    use crate::metrics::Metrics;

    /// A write whose socket notes its progress only when polled (the
    /// kernel does not wake a writer for each byte its client takes) is
    /// polled again at each deadline (by `timeout` itself), and kept while
    /// it moves.
    #[tokio::test]
    async fn a_write_that_moves_between_wake_ups_is_not_stalled() {
        let activity = Activity::new();
        let polls = AtomicUsize::new(0);
        let write = std::future::poll_fn(|_| {
            activity.note_written();
            if polls.fetch_add(1, Ordering::Relaxed) < 3 {
                Poll::Pending
            } else {
                Poll::Ready(Ok::<(), ()>(()))
            }
        });
        let outcome = within(Duration::from_millis(50), Some(&activity), write).await;
        assert!(outcome.is_ok(), "taken for stalled");
        assert_eq!(polls.load(Ordering::Relaxed), 4);
        // One that never moves is still dropped.
        let stuck = std::future::pending::<Result<(), ()>>();
        let stalled = Activity::new();
        assert!(matches!(
            within(Duration::from_millis(50), Some(&stalled), stuck).await,
            Err(Ended::WriteStalled)
        ));
    }
    use crate::store::SqliteStore;

    /// A socket made of two channels: what the session writes goes to `out`,
    /// what it reads comes from `incoming`.
    struct Duplex {
        out: mpsc::Sender<Message>,
        incoming: mpsc::UnboundedReceiver<Result<Message, std::convert::Infallible>>,
        /// Flushes asked of the socket: each is one write to the network.
        flushes: Arc<AtomicUsize>,
    }

    impl Sink<Message> for Duplex {
        type Error = mpsc::SendError;

        fn poll_ready(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            std::pin::Pin::new(&mut self.get_mut().out).poll_ready(cx)
        }

        fn start_send(self: std::pin::Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
            std::pin::Pin::new(&mut self.get_mut().out).start_send(item)
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            let this = self.get_mut();
            this.flushes.fetch_add(1, Ordering::SeqCst);
            std::pin::Pin::new(&mut this.out).poll_flush(cx)
        }

        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            std::pin::Pin::new(&mut self.get_mut().out).poll_close(cx)
        }
    }

    impl Stream for Duplex {
        type Item = Result<Message, std::convert::Infallible>;

        fn poll_next(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> Poll<Option<Self::Item>> {
            std::pin::Pin::new(&mut self.get_mut().incoming).poll_next(cx)
        }
    }

    fn event(message: Message) -> SyncEvent {
        match message {
            Message::Text(text) => serde_json::from_str(&text).unwrap(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    struct Running {
        service: Arc<Service>,
        out: mpsc::Receiver<Message>,
        flushes: Arc<AtomicUsize>,
        trigger: crate::shutdown::ShutdownTrigger,
        session: tokio::task::JoinHandle<Ended>,
        _in: mpsc::UnboundedSender<Result<Message, std::convert::Infallible>>,
        _dir: tempfile::TempDir,
    }

    /// A session over channels instead of a socket, past its `hello` and
    /// `full_sync`.
    async fn session() -> Running {
        session_keeping(100).await
    }

    /// `session`, over a queue of 16 frames and a log of `retention` events.
    async fn session_keeping(retention: u64) -> Running {
        session_with(retention, 1024).await
    }

    /// `session_keeping`, over a socket that takes `room` + 1 messages
    /// before its reader reads them (the session then waits, as on a full
    /// socket).
    async fn session_with(retention: u64, room: usize) -> Running {
        let (service, dir) = service_keeping(retention).await;
        let mut running = start(service, dir, room, Resume::default());
        assert!(matches!(
            event(running.out.next().await.unwrap()).payload,
            EventPayload::Hello(_)
        ));
        assert!(matches!(
            event(running.out.next().await.unwrap()).payload,
            EventPayload::FullSync(_)
        ));
        running
    }

    /// A service on a fresh store, with a queue of 16 frames and a log of
    /// `retention` events.
    pub(in crate::ws) async fn service_keeping(
        retention: u64,
    ) -> (Arc<Service>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db").display().to_string())
            .await
            .unwrap();
        let service = Service::open(
            Arc::new(store),
            crate::service::Retention::events(retention),
            16,
            Arc::new(Metrics::new()),
        )
        .await
        .unwrap();
        (service, dir)
    }

    /// A session of `service` for a client at `resume`, over a socket that
    /// takes `room` + 1 messages before its reader reads them.
    fn start(
        service: Arc<Service>,
        dir: tempfile::TempDir,
        room: usize,
        resume: Resume,
    ) -> Running {
        let (out_tx, out) = mpsc::channel::<Message>(room);
        let (in_tx, in_rx) = mpsc::unbounded::<Result<Message, std::convert::Infallible>>();
        let (trigger, shutdown) = crate::shutdown::channel();
        let timing = Timing {
            heartbeat: Duration::from_secs(60),
            client_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(5),
        };
        let flushes = Arc::new(AtomicUsize::new(0));
        let session = tokio::spawn(run(
            Duplex {
                out: out_tx,
                incoming: in_rx,
                flushes: flushes.clone(),
            },
            service.clone(),
            resume,
            timing,
            None,
            shutdown,
        ));
        Running {
            service,
            out,
            flushes,
            trigger,
            session,
            _in: in_tx,
            _dir: dir,
        }
    }

    fn provider(id: &str) -> provider_sync_protocol::NewProvider {
        provider_sync_protocol::NewProvider {
            id: id.into(),
            name: id.to_uppercase(),
            ..Default::default()
        }
    }

    /// Catch-up, a live event, and a close frame on shutdown.
    #[tokio::test]
    async fn runs_without_a_socket() {
        let mut running = session().await;
        let (service, out) = (&running.service, &mut running.out);
        service
            .write(|draft| crate::commands::create_provider(draft, provider("p")))
            .await
            .unwrap();
        let live = event(out.next().await.unwrap());
        assert_eq!(live.version, 1);

        running.trigger.trigger();
        match running.out.next().await.unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, close_code::AWAY),
            other => panic!("expected a close frame, got {other:?}"),
        }
        assert_eq!(running.session.await.unwrap(), Ended::Shutdown);
    }

    /// Frames that wait on the ring when the session wakes leave in one
    /// write (one flush), each still its own message with its own version.
    #[tokio::test]
    async fn frames_waiting_on_the_ring_leave_in_one_write() {
        let mut running = session().await;
        let (service, out, flushes) = (&running.service, &mut running.out, &running.flushes);
        let before = flushes.load(Ordering::SeqCst);
        // One write of three changes: three frames on the ring before the
        // session (on this one-thread runtime) runs again.
        service
            .write(|draft| {
                for id in ["a", "b", "c"] {
                    crate::commands::create_provider(draft, provider(id))?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let versions: Vec<u64> = [
            out.next().await.unwrap(),
            out.next().await.unwrap(),
            out.next().await.unwrap(),
        ]
        .into_iter()
        .map(|m| event(m).version)
        .collect();
        assert_eq!(versions, [1, 2, 3]);
        assert_eq!(flushes.load(Ordering::SeqCst) - before, 1);
        assert_eq!(service.metrics().ws_coalesced.get(), 2);
    }

    /// Writes `count` providers named `prefix…` in one write: `count` frames
    /// on the ring at once, more than its 16 if `count` is larger.
    pub(in crate::ws) async fn burst(service: &Arc<Service>, prefix: &str, count: usize) {
        service
            .write(|draft| {
                for i in 0..count {
                    crate::commands::create_provider(draft, provider(&format!("{prefix}{i:03}")))?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }

    /// A burst larger than the queue: the session falls behind the ring and
    /// sends what it missed from the log, every event once and in order,
    /// with no resync.
    #[tokio::test]
    async fn a_session_behind_the_queue_is_caught_up_from_the_log() {
        let mut running = session_keeping(100).await;
        burst(&running.service, "p", 40).await;
        let mut versions = vec![];
        while versions.len() < 40 {
            let event = event(running.out.next().await.unwrap());
            assert!(
                !matches!(event.payload, EventPayload::ResyncRequired(_)),
                "{event:?}"
            );
            versions.push(event.version);
        }
        assert_eq!(versions, (1..=40).collect::<Vec<_>>());
        let metrics = running.service.metrics();
        assert_eq!(metrics.ws_lag_repairs.get(), 1);
        assert_eq!(metrics.ws_resyncs.get(), 0);

        // It goes on from the ring afterwards.
        burst(&running.service, "after", 1).await;
        assert_eq!(event(running.out.next().await.unwrap()).version, 41);
    }

    /// A catch-up from the log stops when the server does: a client whose
    /// socket is full gets the close frame next, not the rest of the log.
    #[tokio::test]
    async fn a_catch_up_from_the_log_stops_at_shutdown() {
        let mut running = session_with(100, 2).await;
        burst(&running.service, "p", 40).await;
        // The session is in its catch-up, waiting on the full socket.
        let first = event(running.out.next().await.unwrap());
        assert_eq!(first.version, 1);
        assert_eq!(running.service.metrics().ws_lag_repairs.get(), 1);
        stops_with_what_the_socket_held(running).await;
    }

    /// So does the catch-up of a client resuming from far behind: it gets
    /// the close frame after what its socket already held, and resumes
    /// later (or elsewhere) from what it has.
    #[tokio::test]
    async fn a_resuming_catch_up_stops_at_shutdown() {
        let (service, dir) = service_keeping(100).await;
        // A state larger than the 40 events the client lacks: it is sent
        // the events, not the state.
        burst(&service, "p", 200).await;
        burst(&service, "q", 40).await;
        let resume = Resume {
            since: Some(200),
            epoch: Some(service.snapshot().epoch().to_owned()),
        };
        let mut running = start(service, dir, 2, resume);
        match event(running.out.next().await.unwrap()).payload {
            EventPayload::Hello(hello) => assert_eq!(hello.sync_type, SyncType::Incremental),
            other => panic!("expected hello, got {other:?}"),
        }
        assert_eq!(event(running.out.next().await.unwrap()).version, 201);
        stops_with_what_the_socket_held(running).await;
    }

    /// Shuts the server down under a session in its catch-up over a socket
    /// of room 2: the close frame follows what the socket already held (the
    /// channel's room, its sender's own slot and the one write waiting on
    /// it), not the rest of the log.
    async fn stops_with_what_the_socket_held(mut running: Running) {
        running.trigger.trigger();
        let mut after = 0;
        loop {
            match running.out.next().await.unwrap() {
                Message::Close(Some(frame)) => {
                    assert_eq!(frame.code, close_code::AWAY);
                    break;
                }
                _ => after += 1,
            }
        }
        assert!(after <= 4, "{after} events after the shutdown");
        assert_eq!(running.session.await.unwrap(), Ended::Shutdown);
    }

    /// When the log no longer reaches back to what the session sent, the
    /// client is told to resync.
    #[tokio::test]
    async fn a_session_behind_the_log_is_told_to_resync() {
        let mut running = session_keeping(10).await;
        burst(&running.service, "p", 40).await;
        let told = loop {
            let event = event(running.out.next().await.unwrap());
            if let EventPayload::ResyncRequired(notice) = event.payload {
                break notice;
            }
        };
        assert_eq!(told.reason, "lagged");
        assert!(told.missed > 0);
        assert_eq!(running.service.metrics().ws_resyncs.get(), 1);
        assert_eq!(running.service.metrics().ws_lag_repairs.get(), 0);

        // The client resyncs to the state of the notice: the session follows
        // on from there, and frames still on the ring from before are not
        // sent after the notice.
        burst(&running.service, "after", 1).await;
        assert_eq!(event(running.out.next().await.unwrap()).version, 41);
    }
}
