//! The WebSocket endpoint with a real client: catch-up, live events,
//! heartbeats, bad input, slow consumers and shutdown.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use provider_sync_protocol::{EventPayload, SyncType};
use reqwest::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

async fn start(
    tune: impl FnOnce(&mut provider_sync_server::Config),
) -> (tempfile::TempDir, TestServer) {
    let (dir, db) = temp_db();
    let mut config = config(&db);
    tune(&mut config);
    (dir, TestServer::start(config).await)
}

fn hello_sync_type(event: &provider_sync_protocol::SyncEvent) -> SyncType {
    match &event.payload {
        EventPayload::Hello(hello) => {
            assert_eq!(
                hello.protocol_version,
                provider_sync_protocol::PROTOCOL_VERSION
            );
            hello.sync_type
        }
        other => panic!("expected hello, got {other:?}"),
    }
}

/// The code of the close frame the server sends next (frames before it
/// skipped), within 5 s; anything else (the stream ending without one, an
/// error, a close without a code) fails the test.
async fn close_code(ws: &mut Ws) -> CloseCode {
    let frame = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame within 5 s");
    frame.expect("a close frame with a code").code
}

#[tokio::test]
async fn a_new_client_gets_hello_then_the_full_state_then_live_events() {
    let (_dir, server) = start(|_| {}).await;
    server.add_provider("p").await;
    let mut ws = server.connect("").await;
    assert_eq!(hello_sync_type(&next_event(&mut ws).await), SyncType::Full);
    let full = next_event(&mut ws).await;
    let EventPayload::FullSync(state) = full.payload else {
        panic!("expected full_sync")
    };
    assert_eq!(state, server.state().await);

    server.add_model("m", "p").await;
    let live = next_non_heartbeat(&mut ws).await;
    assert_eq!(live.version, 2);
    let EventPayload::ModelAdded(model) = live.payload else {
        panic!("expected model_added")
    };
    assert_eq!(model.id, "m");
    server.stop().await;
}

#[tokio::test]
async fn resume_replays_exactly_the_missed_events_in_order() {
    let (_dir, server) = start(|_| {}).await;
    server.add_ballast().await;
    for i in 0..6 {
        server.add_provider(&format!("p{i}")).await;
    }
    let epoch = server.state().await.metadata.epoch;
    let mut ws = server.connect(&format!("?since=3&epoch={epoch}")).await;
    assert_eq!(
        hello_sync_type(&next_event(&mut ws).await),
        SyncType::Incremental
    );
    let mut replayed = vec![];
    for _ in 0..4 {
        let event = next_event(&mut ws).await;
        let EventPayload::ProviderAdded(p) = &event.payload else {
            panic!("expected provider_added, got {event:?}")
        };
        replayed.push((event.version, p.id.clone()));
    }
    assert_eq!(
        replayed,
        [
            (4, "p2".into()),
            (5, "p3".into()),
            (6, "p4".into()),
            (7, "p5".into())
        ]
    );
    server.add_provider("later").await;
    let live = next_non_heartbeat(&mut ws).await;
    assert_eq!(live.version, 8);

    // Up to date: hello says so and only live events follow.
    let mut current = server.connect(&format!("?since=8&epoch={epoch}")).await;
    assert_eq!(
        hello_sync_type(&next_event(&mut current).await),
        SyncType::None
    );
    server.add_provider("last").await;
    assert_eq!(next_non_heartbeat(&mut current).await.version, 9);

    // Another epoch: a full state.
    let mut stranger = server.connect("?since=8&epoch=someone-else").await;
    assert_eq!(
        hello_sync_type(&next_event(&mut stranger).await),
        SyncType::Full
    );
    assert!(matches!(
        next_event(&mut stranger).await.payload,
        EventPayload::FullSync(_)
    ));
    server.stop().await;
}

#[tokio::test]
async fn heartbeats_carry_the_current_version_both_ways() {
    let (_dir, server) = start(|c| c.heartbeat_ms = 100).await;
    server.add_provider("p").await;
    let state = server.state().await;
    let mut ws = server.connect("?since=1&epoch=x").await;
    next_event(&mut ws).await; // hello
    next_event(&mut ws).await; // full state (other epoch)
    let beat = next_event(&mut ws).await;
    let EventPayload::Heartbeat(heartbeat) = beat.payload else {
        panic!("expected a heartbeat, got {beat:?}")
    };
    assert_eq!(heartbeat.version, 1);
    assert_eq!(heartbeat.checksum, state.metadata.checksum);
    assert_eq!(heartbeat.epoch, state.metadata.epoch);

    // A client heartbeat is answered at once with the server's position.
    let (_dir2, slow_beats) = start(|c| c.heartbeat_ms = 60_000).await;
    let mut ws = slow_beats.connect("").await;
    next_event(&mut ws).await;
    next_event(&mut ws).await;
    // Its version written as a float without a fractional part is an
    // integer, as in the HTTP bodies (it was refused).
    for frame in [
        r#"{"type":"heartbeat","version":0}"#,
        r#"{"type":"heartbeat","version":0.0}"#,
        r#"{"type":"heartbeat","version":0e3}"#,
    ] {
        send_text(&mut ws, frame).await;
        let reply = next_event(&mut ws).await;
        assert!(
            matches!(reply.payload, EventPayload::Heartbeat(ref h) if h.version == 0),
            "{frame}: {reply:?}"
        );
    }
    // A flood of heartbeats is answered eight times a second at most (each
    // answer was made and sent: four flooding clients took over a core);
    // the socket stays open and answers again a second later. (A second
    // past the three answers above first.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..50 {
        send_text(&mut ws, r#"{"type":"heartbeat"}"#).await;
    }
    let mut answered = 0;
    while let Ok(Some(Ok(Message::Text(_)))) =
        tokio::time::timeout(Duration::from_millis(300), ws.next()).await
    {
        answered += 1;
    }
    // Eight in one second, or in two if the flood spans their edge.
    assert!((8..=16).contains(&answered), "{answered} answers");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send_text(&mut ws, r#"{"type":"heartbeat"}"#).await;
    assert!(matches!(
        next_event(&mut ws).await.payload,
        EventPayload::Heartbeat(_)
    ));
    slow_beats.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn garbage_frames_get_an_error_event_and_hurt_nothing() {
    let (_dir, server) = start(|c| c.ws_max_message = 1024).await;
    let mut ws = server.connect("").await;
    next_event(&mut ws).await;
    next_event(&mut ws).await;
    for garbage in ["not json", r#"{"type":"launch_missiles"}"#, "{\"type\":"] {
        send_text(&mut ws, garbage).await;
        let reply = next_event(&mut ws).await;
        let EventPayload::Error(error) = reply.payload else {
            panic!("expected an error event for {garbage:?}")
        };
        assert_eq!(error.code, "invalid_message");
    }
    ws.send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut ws).await.payload,
        EventPayload::Error(_)
    ));
    // The session still works.
    server.add_provider("after-garbage").await;
    assert_eq!(next_non_heartbeat(&mut ws).await.version, 1);

    // A frame over the limit closes that connection only.
    let mut bystander = server.connect("").await;
    next_event(&mut bystander).await;
    next_event(&mut bystander).await;
    ws.send(Message::text("x".repeat(10_000))).await.unwrap();
    // Closed by the server with 1009 (RFC 6455 §7.4.1: too big to
    // process), not a frame that keeps coming.
    assert_eq!(close_code(&mut ws).await, CloseCode::Size);
    // Nothing more comes on it.
    assert!(matches!(
        tokio::time::timeout(Duration::from_millis(200), ws.next()).await,
        Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_))))
    ));
    server.add_provider("still-alive").await;
    assert_eq!(next_non_heartbeat(&mut bystander).await.version, 2);
    assert_eq!(server.version().await, 2);
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_is_closed() {
    let (_dir, server) = start(|c| {
        c.heartbeat_ms = 50;
        c.client_timeout_ms = 300;
    })
    .await;
    // Before connecting: the server counts the silence from its side of
    // the handshake, which a loaded machine may finish well before
    // `connect` returns here.
    let started = std::time::Instant::now();
    let mut ws = server.connect("").await;
    assert_eq!(close_code(&mut ws).await, CloseCode::Policy);
    assert!(started.elapsed() >= Duration::from_millis(300));
    server.stop().await;

    // A client that sends heartbeats stays open well past the timeout: a
    // timeout of 1 s here, so that a stall of the loaded machine's
    // scheduling (either side) is not taken for silence.
    let (_dir, server) = start(|c| {
        c.heartbeat_ms = 50;
        c.client_timeout_ms = 1_000;
    })
    .await;
    let mut talking = server.connect("").await;
    let until = std::time::Instant::now() + Duration::from_millis(3_000);
    while std::time::Instant::now() < until {
        send_text(&mut talking, r#"{"type":"heartbeat"}"#).await;
        let frame = tokio::time::timeout(Duration::from_millis(100), talking.next()).await;
        if let Ok(Some(Ok(Message::Close(frame)))) = frame {
            panic!("a client that talks was closed: {frame:?}");
        }
    }
    // A change reaches it; it keeps talking while waiting (a loaded machine
    // may take longer than the timeout to make the change).
    let base = server.base.clone();
    let write = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{base}/admin/providers"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"id": "still-open", "name": "Still open"}))
            .send()
            .await
            .unwrap()
            .status()
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let version = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the change never came"
        );
        send_text(&mut talking, r#"{"type":"heartbeat"}"#).await;
        match tokio::time::timeout(Duration::from_millis(100), talking.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let event: provider_sync_protocol::SyncEvent = serde_json::from_str(&text).unwrap();
                if matches!(event.payload, EventPayload::ProviderAdded(_)) {
                    break event.version;
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                panic!("a client that talks was closed: {frame:?}")
            }
            _ => {}
        }
    };
    assert_eq!(write.await.unwrap(), 201);
    assert_eq!(version, 1);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_sends_a_close_frame() {
    let (_dir, server) = start(|_| {}).await;
    let mut ws = server.connect("").await;
    next_event(&mut ws).await;
    next_event(&mut ws).await;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(close_code(&mut ws).await, CloseCode::Away);
    stopping.await.unwrap();
}

/// A client that closes gets a close frame back with its own code (RFC 6455
/// §5.5.1): without it, browsers report code 1006, as if the connection had
/// been lost.
async fn closing_gets_the_close_frame_back(mut ws: Ws) {
    next_event(&mut ws).await;
    next_event(&mut ws).await;
    ws.send(Message::Close(Some(
        tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        },
    )))
    .await
    .unwrap();
    assert_eq!(close_code(&mut ws).await, CloseCode::Normal);
    // Then the server ends the connection.
    let end = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("the end in time");
    assert!(end.is_none() || matches!(end, Some(Err(_))), "got {end:?}");
}

#[tokio::test]
async fn a_client_closing_gets_its_close_frame_back() {
    let (_dir, server) = start(|_| {}).await;
    closing_gets_the_close_frame_back(server.connect("").await).await;
    server.stop().await;
}

/// The same where an application serves the routes itself (the session
/// writes its own frames: no fan-out lane), and a frame over the limit
/// answered with 1009 there too.
#[tokio::test]
async fn a_client_closing_gets_its_close_frame_back_inside_an_application() {
    let (_dir, db) = temp_db();
    let mut config = config(&db);
    config.ws_max_message = 1024;
    let sync = provider_sync_server::ProviderSync::build(config)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = sync.router();
    let stopped = sync.shutdown_signal();
    let serving = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
    });
    let url = format!("ws://{addr}/api/provider-sync/ws");
    let (ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("websocket connects");
    closing_gets_the_close_frame_back(ws).await;
    // A frame over the limit: 1009, as from the server's own listener.
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    next_event(&mut ws).await;
    next_event(&mut ws).await;
    ws.send(Message::text("x".repeat(10_000))).await.unwrap();
    assert_eq!(close_code(&mut ws).await, CloseCode::Size);
    sync.shutdown().await;
    serving.await.unwrap().unwrap();
}

/// A client frame that breaks the protocol (here, unmasked) is answered
/// with close code 1002 before the connection ends.
#[tokio::test]
async fn an_unmasked_client_frame_gets_1002() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_dir, server) = start(|_| {}).await;
    let address = server.base.trim_start_matches("http://");
    let host = address.split('/').next().unwrap();
    let mut tcp = tokio::net::TcpStream::connect(host).await.unwrap();
    let path = format!("/{}/ws", address.split_once('/').unwrap().1);
    let upgrade = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(upgrade.as_bytes()).await.unwrap();
    // Everything the server sends until it closes: the 101 answer, hello,
    // full_sync, then the close frame.
    let mut sent_unmasked = false;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buffer))
            .await
            .expect("the server answers in time")
            .unwrap();
        if read == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..read]);
        if !sent_unmasked && received.windows(4).any(|w| w == b"\r\n\r\n") {
            // A text frame "hi" without the mask a client must set.
            tcp.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
            sent_unmasked = true;
        }
    }
    // The last frame: a close (0x88) whose code is 1002 (0x03ea).
    let close = received
        .windows(4)
        .rposition(|w| w[0] == 0x88 && w[2] == 0x03 && w[3] == 0xea);
    assert!(
        close.is_some(),
        "no close frame with 1002 in {:?}",
        received.len()
    );
    server.stop().await;
}

/// An upgrade in another version of the protocol is answered 426 with the
/// version the server speaks (RFC 6455, 4.4), not a bare 400; one without a
/// version, or not an upgrade at all, stays a 400, as does one whose key is
/// not 16 bytes in base64 (every other test's client sends a good one).
#[tokio::test]
async fn another_websocket_version_gets_426_naming_13() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_dir, server) = start(|_| {}).await;
    let address = server.base.trim_start_matches("http://");
    let host = address.split('/').next().unwrap();
    let path = format!("/{}/ws", address.split_once('/').unwrap().1);
    let answer_keyed = |extra: &'static str, key: &'static str| {
        let upgrade = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Sec-WebSocket-Key: {key}\r\n\
             Connection: close\r\n\r\n"
        );
        async move {
            let mut tcp = tokio::net::TcpStream::connect(host).await.unwrap();
            tcp.write_all(upgrade.as_bytes()).await.unwrap();
            let mut received = String::new();
            tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut received))
                .await
                .expect("the server answers in time")
                .unwrap();
            received.to_ascii_lowercase()
        }
    };
    let answer = |extra: &'static str| answer_keyed(extra, "dGhlIHNhbXBsZSBub25jZQ==");
    let old =
        answer("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n").await;
    assert!(old.starts_with("http/1.1 426"), "{old}");
    assert!(old.contains("\r\nsec-websocket-version: 13\r\n"), "{old}");
    assert!(old.contains("\"code\":\"upgrade_required\""), "{old}");
    // A missing or malformed version is a bad request, as any bad header.
    let missing = answer("Upgrade: websocket\r\nConnection: Upgrade\r\n").await;
    assert!(missing.starts_with("http/1.1 400"), "{missing}");
    let malformed =
        answer("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: {}\r\n").await;
    assert!(malformed.starts_with("http/1.1 400"), "{malformed}");
    let plain = answer("").await;
    assert!(plain.starts_with("http/1.1 400"), "{plain}");
    // A key that is not 16 bytes in base64 (RFC 6455, 4.1) is refused too,
    // as a bad request that says which header.
    const UPGRADE: &str =
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";
    for key in [
        "x",
        "dGhlIHNhbXBsZSBub25jZQ",
        "aGVsbG8=",
        "dGhlIHNhbXBsZSBub25jZ!==",
    ] {
        let bad = answer_keyed(UPGRADE, key).await;
        assert!(bad.starts_with("http/1.1 400"), "{key}: {bad}");
        assert!(bad.contains("sec-websocket-key"), "{key}: {bad}");
    }
    server.stop().await;
}

/// Changes written while a client with a tiny receive buffer does not read
/// (so that its session falls far behind the queue of 4 frames); a client
/// that keeps reading gets every event in order meanwhile. Returns the slow
/// client, not read yet.
async fn slow_consumer(
    retention: u64,
) -> (
    tempfile::TempDir,
    TestServer,
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) {
    // About 4 KB each: together more than the socket buffers hold.
    // The slow client reads nothing until every write is done, which takes
    // a minute on a loaded machine: a write deadline shorter than that
    // would drop its session (another test checks the deadline).
    let (dir, server) = start(|c| {
        c.ws_queue = 4;
        c.ws_write_timeout_ms = 600_000;
        c.event_retention = retention;
    })
    .await;
    server.add_provider("p").await;

    // The slow client: a tiny receive buffer, and no reading for now.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.server.addr()).await.unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(server.ws_url(""), stream)
        .await
        .unwrap();
    // Its hello and state (at version 1) before any write, like the fast
    // client's below: a session that took its snapshot after the first
    // write would have that write in its state, not as an event.
    next_event(&mut slow).await;
    assert_eq!(next_event(&mut slow).await.version, 1);

    // The fast client reads everything as it comes. Its hello and state
    // first, before any write, for the same reason (on a shared store its
    // session also catches up from the store before its snapshot).
    let mut fast = server.connect("?since=1&epoch=").await;
    next_event(&mut fast).await;
    assert_eq!(next_event(&mut fast).await.version, 1);
    let fast_reader = tokio::spawn(async move {
        let mut versions = vec![];
        while versions.len() < SLOW_WRITES as usize {
            let event = next_event(&mut fast).await;
            if matches!(event.payload, EventPayload::ProviderUpdated(_)) {
                versions.push(event.version);
            }
        }
        versions
    });

    for i in 0..SLOW_WRITES {
        let capabilities: Vec<String> = (0..64)
            .map(|c| format!("{i:05}-{c:02}-{}", "x".repeat(54)))
            .collect();
        let response = server
            .admin(Method::PATCH, "/providers/p")
            .json(&json!({ "capabilities": capabilities }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let versions = tokio::time::timeout(Duration::from_secs(60), fast_reader)
        .await
        .expect("the fast client gets every event")
        .unwrap();
    assert_eq!(versions, (2..2 + SLOW_WRITES).collect::<Vec<_>>());
    (dir, server, slow)
}

const SLOW_WRITES: u64 = 1200;

/// A slow client whose missed events are no longer all in the log is told
/// to resync once it reads again; the server's queue stays bounded
/// throughout.
#[tokio::test]
async fn a_slow_consumer_beyond_the_log_is_told_to_resync_while_others_keep_receiving() {
    let (_dir, server, mut slow) = slow_consumer(50).await;
    // Now the slow client reads: somewhere in its stream is a resync notice.
    let told = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let event = next_event(&mut slow).await;
            if let EventPayload::ResyncRequired(notice) = event.payload {
                return notice;
            }
        }
    })
    .await
    .expect("the slow client is told to resync");
    assert_eq!(told.reason, "lagged");
    assert!(told.missed > 0);
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics.contains("provider_sync_ws_resyncs_total 0"),
        "{metrics}"
    );
    server.stop().await;
}

/// A slow client whose missed events are all still in the log gets every
/// one of them once it reads again, in order and each once, without a
/// resync: the session sends them from the log.
#[tokio::test]
async fn a_slow_consumer_within_the_log_gets_every_event_from_it() {
    let (_dir, server, mut slow) = slow_consumer(10_000).await;
    let mut versions = vec![];
    tokio::time::timeout(Duration::from_secs(60), async {
        while versions.last() != Some(&(1 + SLOW_WRITES)) {
            let event = next_event(&mut slow).await;
            match event.payload {
                EventPayload::ProviderUpdated(_) => versions.push(event.version),
                EventPayload::ResyncRequired(notice) => panic!("told to resync: {notice:?}"),
                _ => {}
            }
        }
    })
    .await
    .expect("the slow client gets every event");
    assert_eq!(versions, (2..2 + SLOW_WRITES).collect::<Vec<_>>());
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("provider_sync_ws_resyncs_total 0"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("provider_sync_ws_lag_repairs_total 0"),
        "the session fell behind the queue: {metrics}"
    );
    server.stop().await;
}

/// `n` writes of provider `p`'s priority, one after another, in a task of
/// their own.
fn patch_priority(server: &TestServer, n: i32) -> tokio::task::JoinHandle<()> {
    let http = server.http.clone();
    let url = server.url("/admin/providers/p");
    tokio::spawn(async move {
        for i in 0..n {
            http.patch(&url)
                .bearer_auth(TOKEN)
                .json(&json!({"priority": i + 1}))
                .send()
                .await
                .unwrap();
        }
    })
}

/// Heartbeats, broadcast or answered, never name a version ahead of the
/// change events the client has received, and never one behind.
#[tokio::test]
async fn heartbeats_follow_the_changes_they_name() {
    let (_dir, server) = start(|c| c.heartbeat_ms = 5).await;
    server.add_provider("p").await;
    let epoch = server.state().await.metadata.epoch;
    let mut ws = server.connect(&format!("?since=1&epoch={epoch}")).await;
    assert_eq!(hello_sync_type(&next_event(&mut ws).await), SyncType::None);
    let writer = patch_priority(&server, 100);
    let mut seen = 1;
    let mut heartbeats = 0;
    while seen < 101 {
        send_text(&mut ws, r#"{"type":"heartbeat"}"#).await;
        let event = next_event(&mut ws).await;
        match event.payload {
            EventPayload::Heartbeat(h) => {
                assert_eq!(h.version, seen, "a heartbeat out of step with the changes");
                heartbeats += 1;
            }
            EventPayload::ProviderUpdated(_) => {
                assert_eq!(event.version, seen + 1);
                seen = event.version;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    writer.await.unwrap();
    assert!(heartbeats > 0);
    server.stop().await;
}

/// An `error` answering a client's frame names the version the client was
/// sent last, as a heartbeat does (it named the instance's, which could run
/// ahead of the changes on their way, or fall behind them).
#[tokio::test]
async fn errors_follow_the_changes_they_name() {
    let (_dir, server) = start(|_| {}).await;
    server.add_provider("p").await;
    let epoch = server.state().await.metadata.epoch;
    let mut ws = server.connect(&format!("?since=1&epoch={epoch}")).await;
    assert_eq!(hello_sync_type(&next_event(&mut ws).await), SyncType::None);
    let writer = patch_priority(&server, 200);
    let mut seen = 1;
    let mut errors = 0;
    while seen < 201 {
        send_text(&mut ws, r#"{"type":"no_such_message"}"#).await;
        let event = next_event(&mut ws).await;
        match event.payload {
            EventPayload::Error(_) => {
                assert_eq!(event.version, seen, "an error out of step with the changes");
                assert_eq!(event.id, format!("{epoch}:{seen}:error"));
                errors += 1;
            }
            EventPayload::ProviderUpdated(_) => {
                assert_eq!(event.version, seen + 1);
                seen = event.version;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    writer.await.unwrap();
    assert!(errors > 0);
    server.stop().await;
}

#[tokio::test]
async fn read_tokens_guard_the_websocket() {
    let reader = "reader-token-0123456789abcdef012345678";
    let (dir, db) = temp_db();
    let mut config = config(&db);
    config.read_tokens_file = Some(tokens_file(dir.path(), "readers", &[("app", reader)]));
    let server = TestServer::start(config).await;
    for query in ["", "?access_token=wrong-token-0123456789abcdef0123456789"] {
        let refused = tokio_tungstenite::connect_async(server.ws_url(query)).await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "{query}");
            }
            other => panic!("{query}: expected a refused upgrade, got {other:?}"),
        }
    }
    // A browser cannot set headers on a WebSocket: the token goes in the URL.
    let mut ws = server.connect(&format!("?access_token={reader}")).await;
    hello_sync_type(&next_event(&mut ws).await);
    // Other clients may send the header; an admin token reads too.
    for token in [reader, TOKEN] {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = server.ws_url("").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        hello_sync_type(&next_event(&mut ws).await);
    }
    server.stop().await;
}
