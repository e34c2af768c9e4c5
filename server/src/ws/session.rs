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
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::serve::Activity;
use crate::service::{CatchUp, Service, Snapshot};
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

fn message(event: &SyncEvent) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(event).expect("event serialises"),
    ))
}

fn control(snapshot: &Snapshot, payload: EventPayload) -> Message {
    message(&snapshot.control_event(payload))
}

fn error_frame(snapshot: &Snapshot, code: &str, message: String) -> Message {
    control(
        snapshot,
        EventPayload::Error(ErrorData {
            code: code.to_owned(),
            message,
            field: None,
        }),
    )
}

/// What a client's text frame says, or the data of the error frame that
/// answers a frame that cannot be read. Kept apart from the session's loop,
/// and pure, so that the fuzz target reads frames exactly as a session does.
pub fn read_client_frame(text: &str) -> Result<ClientMessage, ErrorData> {
    serde_json::from_str(text).map_err(|err| ErrorData {
        code: "invalid_message".to_owned(),
        message: format!("cannot read this message: {err}; send {{\"type\":\"heartbeat\"}}"),
        field: None,
    })
}

/// The socket, written with a deadline. One task owns it whole (no split
/// halves behind a lock): it reads in the `select!` below and writes in its
/// branches.
struct Writer<S> {
    sink: S,
    timeout: Duration,
    /// The connection's byte progress, when known: then the deadline is on
    /// progress (a slow but moving client receiving a large `full_sync`
    /// keeps its session), not on the whole write.
    progress: Option<Arc<Activity>>,
}

impl<S> Writer<S>
where
    S: Sink<Message> + Unpin,
{
    /// Sends one message. The deadline's timer is only set up when the
    /// socket cannot take the message at once: with thousands of clients, a
    /// timer per message per client is measurable, and a stalled socket is
    /// the exception.
    async fn send(&mut self, message: Message) -> Result<(), Ended> {
        let mut sending = std::pin::pin!(self.sink.send(message));
        let first = std::future::poll_fn(|cx| Poll::Ready(sending.as_mut().poll(cx))).await;
        let outcome = match first {
            Poll::Ready(outcome) => outcome,
            // Boxed: the timer lives on the heap only while a write waits,
            // not inline in every idle session's future.
            Poll::Pending => {
                let mut sending = Box::pin(sending);
                let mut wait = self.timeout;
                loop {
                    match tokio::time::timeout(wait, sending.as_mut()).await {
                        Ok(outcome) => break outcome,
                        Err(_) => {
                            // Bytes went out within the deadline: wait for
                            // the rest, a deadline from that progress.
                            let since = self.progress.as_ref().map(|p| p.since_write());
                            match since {
                                Some(since) if since < self.timeout => wait = self.timeout - since,
                                _ => return Err(Ended::WriteStalled),
                            }
                        }
                    }
                }
            }
        };
        outcome.map_err(|_| Ended::ClientClosed)
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = self.send(Message::Close(Some(frame))).await;
    }
}

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
{
    let mut out = Writer {
        sink: socket,
        timeout: timing.write_timeout,
        progress,
    };
    // A client ahead of this instance (it came from another one) is caught
    // up to first, rather than sent an older state.
    if let Some(since) = resume.since {
        service.catch_up_to(resume.epoch.as_deref(), since).await;
    }
    // Subscribe first: every change committed after this point arrives as a
    // frame, and every change before it is in the snapshot.
    let mut frames = service.subscribe();
    let snapshot = service.snapshot();
    let catch_up = snapshot.catch_up(
        resume.since.unwrap_or(0),
        resume.epoch.as_deref(),
        resume.since.is_none(),
    );
    let sync_type = match &catch_up {
        CatchUp::UpToDate => SyncType::None,
        CatchUp::Events(_) => SyncType::Incremental,
        CatchUp::Full(_) => SyncType::Full,
    };
    let hello = control(
        &snapshot,
        EventPayload::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            epoch: snapshot.epoch().to_owned(),
            version: snapshot.version(),
            sync_type,
            heartbeat_interval_ms: timing.heartbeat.as_millis() as u64,
            client_timeout_ms: timing.client_timeout.as_millis() as u64,
        }),
    );
    let caught_up = async {
        out.send(hello).await?;
        match catch_up {
            CatchUp::UpToDate => {}
            CatchUp::Full(_) => {
                out.send(Message::Text(snapshot.full_sync_frame().clone()))
                    .await?
            }
            CatchUp::Events(events) => {
                for logged in events {
                    out.send(Message::Text(logged.json.clone())).await?;
                }
            }
        }
        Ok::<(), Ended>(())
    };
    if let Err(ended) = caught_up.await {
        return ended;
    }
    let mut sent_version = snapshot.version();
    drop(snapshot);
    let mut last_heard = Instant::now();
    // Pinned once: a fresh shutdown future per turn of the loop would join
    // and leave the signal's waiter list (behind its lock) on every frame.
    let shutting_down = shutdown.wait();
    tokio::pin!(shutting_down);

    loop {
        tokio::select! {
            // Frames first: a wake-up for a broadcast then costs no poll of
            // the socket's read side, which is idle nearly always.
            biased;
            frame = frames.recv() => match frame {
                Ok(frame) => {
                    if frame.reset {
                        // The state was reloaded from the store: the client
                        // is told to resync; versions may start over.
                        sent_version = frame.version;
                    } else if frame.change {
                        if frame.version <= sent_version {
                            continue;
                        }
                        sent_version = frame.version;
                    } else if frame.version < sent_version {
                        // A heartbeat older than what this client has.
                        continue;
                    } else if last_heard.elapsed() > timing.client_timeout {
                        out.close(close_code::POLICY, "no heartbeat from the client").await;
                        return Ended::ClientSilent;
                    }
                    if let Err(ended) = out.send(Message::Text(frame.text)).await {
                        return ended;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    service.metrics().ws_resyncs.inc();
                    let snapshot = service.snapshot();
                    let notice = control(&snapshot, EventPayload::ResyncRequired(ResyncRequired {
                        reason: "lagged".into(),
                        missed,
                    }));
                    if let Err(ended) = out.send(notice).await {
                        return ended;
                    }
                }
                Err(RecvError::Closed) => {
                    out.close(close_code::AWAY, "server shutting down").await;
                    return Ended::ServerGone;
                }
            },
            incoming = out.sink.next() => {
                let Some(Ok(received)) = incoming else {
                    return Ended::ClientClosed;
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
                                .then(|| message(&snapshot.heartbeat(service.store_reachable())))
                        }
                        Err(error) => Some(control(&service.snapshot(), EventPayload::Error(error))),
                    },
                    Message::Binary(_) => Some(error_frame(
                        &service.snapshot(),
                        "invalid_message",
                        "binary frames are not part of the protocol; send JSON text".into(),
                    )),
                    Message::Close(_) => return Ended::ClientClosed,
                    // Pings are answered by the socket itself.
                    Message::Ping(_) | Message::Pong(_) => None,
                };
                if let Some(reply) = reply
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
mod tests {
    use futures_channel::mpsc;
    use provider_sync_protocol::SyncEvent;

    use super::*;
    use crate::metrics::Metrics;
    use crate::store::SqliteStore;

    /// A socket made of two channels: what the session writes goes to `out`,
    /// what it reads comes from `incoming`.
    struct Duplex {
        out: mpsc::UnboundedSender<Message>,
        incoming: mpsc::UnboundedReceiver<Result<Message, std::convert::Infallible>>,
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
            std::pin::Pin::new(&mut self.get_mut().out).poll_flush(cx)
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

    /// A session over channels instead of a socket: catch-up, a live event,
    /// and a close frame on shutdown.
    #[tokio::test]
    async fn runs_without_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db").display().to_string())
            .await
            .unwrap();
        let service = Service::open(
            Arc::new(store),
            crate::service::Retention::events(100),
            16,
            Arc::new(Metrics::new()),
        )
        .await
        .unwrap();
        let (out_tx, mut out_rx) = mpsc::unbounded::<Message>();
        let (_in_tx, in_rx) = mpsc::unbounded::<Result<Message, std::convert::Infallible>>();
        let (trigger, shutdown) = crate::shutdown::channel();
        let timing = Timing {
            heartbeat: Duration::from_secs(60),
            client_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(5),
        };
        let session = tokio::spawn(run(
            Duplex {
                out: out_tx,
                incoming: in_rx,
            },
            service.clone(),
            Resume::default(),
            timing,
            None,
            shutdown,
        ));
        assert!(matches!(
            event(out_rx.next().await.unwrap()).payload,
            EventPayload::Hello(_)
        ));
        assert!(matches!(
            event(out_rx.next().await.unwrap()).payload,
            EventPayload::FullSync(_)
        ));

        service
            .write(|draft| {
                crate::commands::create_provider(
                    draft,
                    provider_sync_protocol::NewProvider {
                        id: "p".into(),
                        name: "P".into(),
                        ..Default::default()
                    },
                )
            })
            .await
            .unwrap();
        let live = event(out_rx.next().await.unwrap());
        assert_eq!(live.version, 1);

        trigger.trigger();
        match out_rx.next().await.unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, close_code::AWAY),
            other => panic!("expected a close frame, got {other:?}"),
        }
        assert_eq!(session.await.unwrap(), Ended::Shutdown);
    }
}
