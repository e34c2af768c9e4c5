//! Health probes against a real HTTP endpoint standing in for a provider.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use provider_sync_protocol::{EventPayload, ProviderStatus};
use reqwest::Method;
use serde_json::{Value, json};

async fn wait_for_status(server: &TestServer, id: &str, want: ProviderStatus) {
    for _ in 0..100 {
        if server.state().await.provider(id).unwrap().status == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("provider {id} never became {want:?}");
}

#[tokio::test]
async fn probes_change_status_and_emit_events() {
    let (health_url, answer) = health_endpoint().await;
    let (_dir, db) = temp_db();
    let mut config = config(&db);
    config.health_interval_ms = 100;
    config.health_failures = 2;
    // The stand-in provider listens on loopback.
    config.health_allow_private = true;
    let server = TestServer::start(config).await;
    server.add_provider("backup").await;
    let response = server
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "watched", "name": "Watched", "health_url": health_url, "fallback_provider_id": "backup"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["status"], "unknown");
    let mut ws = server
        .connect(&format!(
            "?since=2&epoch={}",
            server.state().await.metadata.epoch
        ))
        .await;
    next_event(&mut ws).await; // hello

    wait_for_status(&server, "watched", ProviderStatus::Available).await;
    let event = next_non_heartbeat(&mut ws).await;
    let EventPayload::ProviderStatusChanged(change) = event.payload else {
        panic!("expected a status change, got {event:?}")
    };
    assert_eq!(
        (change.previous_status, change.status),
        (ProviderStatus::Unknown, ProviderStatus::Available)
    );
    assert!(change.health.latency_ms.is_some());

    // Failing: degraded after one failure, unavailable after two.
    answer.store(503, Ordering::SeqCst);
    wait_for_status(&server, "watched", ProviderStatus::Unavailable).await;
    let mut seen = vec![];
    while seen.last() != Some(&ProviderStatus::Unavailable) {
        if let EventPayload::ProviderStatusChanged(change) =
            next_non_heartbeat(&mut ws).await.payload
        {
            seen.push(change.status);
        }
    }
    assert_eq!(
        seen,
        [ProviderStatus::Degraded, ProviderStatus::Unavailable]
    );
    let availability = availability_of(&server, "watched").await;
    assert_eq!(availability["is_available"], false);
    assert_eq!(availability["fallback_provider_id"], "backup");
    assert!(
        availability["health"]["consecutive_failures"]
            .as_u64()
            .unwrap()
            >= 2
    );
    // A category, not the upstream's text or the URL.
    assert_eq!(availability["health"]["message"], "HTTP 503");

    // Recovery.
    answer.store(200, Ordering::SeqCst);
    wait_for_status(&server, "watched", ProviderStatus::Available).await;

    // An operator's status holds while the probes' reading stays as it was
    // (it was put back at the next tick, the operator's message gone)...
    let response = server
        .admin(Method::PUT, "/providers/watched/status")
        .json(&json!({"status": "unavailable", "message": "manual outage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let held = server.state().await.provider("watched").unwrap().clone();
    assert_eq!(held.status, ProviderStatus::Unavailable);
    assert_eq!(held.health.message.as_deref(), Some("manual outage"));
    // ...and the probes take over once their reading changes.
    answer.store(503, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    answer.store(200, Ordering::SeqCst);
    wait_for_status(&server, "watched", ProviderStatus::Available).await;

    // The probes' own status, then an operator's edit of another field (a
    // provider disabled during the outage, enabled again once it is over):
    // the probes still bring it back (it stayed unavailable for good).
    answer.store(503, Ordering::SeqCst);
    wait_for_status(&server, "watched", ProviderStatus::Unavailable).await;
    for enabled in [false, true] {
        if enabled {
            answer.store(200, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let response = server
            .admin(Method::PATCH, "/providers/watched")
            .json(&json!({ "enabled": enabled }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    wait_for_status(&server, "watched", ProviderStatus::Available).await;

    // Maintenance set by an operator is left alone by the probes. The
    // availability answer keeps the probes' last reading (not the older
    // one stored with the last status change) and the operator's message.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = availability_of(&server, "watched").await["health"].clone();
    server
        .admin(Method::PUT, "/providers/watched/status")
        .json(&json!({"status": "maintenance", "message": "upgrading"}))
        .send()
        .await
        .unwrap();
    answer.store(500, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.state().await.provider("watched").unwrap().status,
        ProviderStatus::Maintenance
    );
    let availability = availability_of(&server, "watched").await;
    assert_eq!(availability["health"]["message"], "upgrading");
    let last_check = |health: &Value| {
        let text = health["last_check"].as_str().unwrap();
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    };
    assert!(
        last_check(&availability["health"]) >= last_check(&before),
        "the reading went back: {before} then {}",
        availability["health"]
    );
    // Given another endpoint while in maintenance: the reading of the one
    // it had is no longer shown (nothing probed the new one yet), nor once
    // it is disabled.
    for edit in [
        json!({"health_url": format!("{health_url}/other")}),
        json!({"health_url": health_url, "enabled": false}),
    ] {
        let response = server
            .admin(Method::PATCH, "/providers/watched")
            .json(&edit)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let stored =
            serde_json::to_value(&server.state().await.provider("watched").unwrap().health)
                .unwrap();
        let availability = availability_of(&server, "watched").await;
        assert_eq!(availability["health"], stored, "{edit}");
        assert_ne!(
            availability["health"]["last_check"], before["last_check"],
            "{edit}"
        );
    }
    server.stop().await;
}

/// A loopback listener that counts the connections it accepts and answers
/// each with `answer` (raw HTTP); a probe that reaches it is counted.
async fn counting_listener(answer: &'static str) -> (u16, Arc<AtomicUsize>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (port, count)
}

/// `GET /providers/{id}/availability`'s answer.
async fn availability_of(server: &TestServer, id: &str) -> Value {
    server
        .get(&format!("/providers/{id}/availability"))
        .await
        .json()
        .await
        .unwrap()
}

/// The health message of a provider once it has become unavailable.
async fn failure_message(server: &TestServer, id: &str) -> Value {
    wait_for_status(server, id, ProviderStatus::Unavailable).await;
    let availability = availability_of(server, id).await;
    availability["health"]["message"].clone()
}

async fn watch(server: &TestServer, id: &str, health_url: &str) {
    let response = server
        .admin(Method::POST, "/providers")
        .json(&json!({"id": id, "name": id, "health_url": health_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{health_url}");
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

#[tokio::test]
async fn probes_refuse_non_public_targets_unless_allowed() {
    // Every target below reaches this loopback listener if it is contacted:
    // as an address, in the forms that hide one, and through a name.
    let (port, reached) = counting_listener(OK).await;
    let (_dir, db) = temp_db();
    let mut config = config(&db);
    config.health_interval_ms = 100;
    config.health_failures = 2;
    let server = TestServer::start(config).await;
    let targets = [
        ("literal", format!("http://127.0.0.1:{port}/health")),
        ("decimal", format!("http://2130706433:{port}/health")),
        ("mapped", format!("http://[::ffff:127.0.0.1]:{port}/health")),
        ("named", format!("http://localhost:{port}/health")),
    ];
    for (id, url) in &targets {
        watch(&server, id, url).await;
    }
    for (id, _) in &targets {
        assert_eq!(
            failure_message(&server, id).await,
            "address not allowed",
            "{id}"
        );
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "a refused probe was sent"
    );
    server.stop().await;

    // The same target with --health-allow-private is probed.
    let (_dir, db) = temp_db();
    let mut allowing = common::config(&db);
    allowing.health_interval_ms = 100;
    allowing.health_allow_private = true;
    let server = TestServer::start(allowing).await;
    watch(&server, "literal", &targets[0].1).await;
    wait_for_status(&server, "literal", ProviderStatus::Available).await;
    assert!(reached.load(Ordering::SeqCst) > 0);
    server.stop().await;
}

#[tokio::test]
async fn probes_do_not_follow_redirects_and_publish_a_category() {
    let (elsewhere, followed) = counting_listener(OK).await;
    let redirect: &'static str = Box::leak(
        format!(
            "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{elsewhere}/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .into_boxed_str(),
    );
    let (port, _) = counting_listener(redirect).await;
    // A port nothing listens on: the connection is refused.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_dir, db) = temp_db();
    let mut config = config(&db);
    config.health_interval_ms = 100;
    config.health_failures = 2;
    config.health_allow_private = true;
    let server = TestServer::start(config).await;
    watch(&server, "moved", &format!("http://127.0.0.1:{port}/health")).await;
    watch(
        &server,
        "gone",
        &format!("http://127.0.0.1:{closed}/health"),
    )
    .await;
    assert_eq!(
        failure_message(&server, "moved").await,
        "redirect not followed"
    );
    assert_eq!(
        followed.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    // The category only: the connection error's text names the address.
    assert_eq!(failure_message(&server, "gone").await, "connection failed");
    let state = server.state().await;
    let gone = state.provider("gone").unwrap();
    assert_eq!(gone.health.message.as_deref(), Some("connection failed"));
    server.stop().await;
}

/// Probes as one process's health task makes them, round by round on
/// `board`, with a failure threshold of two.
async fn probe_round(server: &TestServer, board: &provider_sync_server::health::HealthBoard) {
    use provider_sync_server::health::{ProbeSettings, probe_all};
    let settings = ProbeSettings {
        interval: Duration::from_secs(3600),
        timeout: Duration::from_secs(30),
        degraded_after: Duration::from_secs(30),
        failures: 2,
        allow_private: true,
    };
    probe_all(
        server.server.service(),
        board,
        &reqwest::Client::new(),
        &settings,
    )
    .await;
}

async fn put_status(server: &TestServer, id: &str, body: Value) {
    server
        .admin(Method::PUT, &format!("/providers/{id}/status"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
}

/// Three cases a black-box tester found (2026-12-02): an operator's
/// `unavailable` made usable (`degraded`) by the endpoint's first failure;
/// an operator's status that ends maintenance replaced at the next reading
/// (maintenance had dropped the probes' last reading, so the next counted
/// as a first); and the availability endpoint without the operator's
/// reason once a healthy reading came.
#[tokio::test]
async fn an_operators_status_is_not_made_more_usable_by_a_failure_or_lost_after_maintenance() {
    let (health_url, answer) = health_endpoint().await;
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    server
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "w", "name": "W", "health_url": health_url}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let board = provider_sync_server::health::HealthBoard::default();
    probe_round(&server, &board).await;
    let status =
        async |server: &TestServer| server.state().await.provider("w").unwrap().status.clone();
    assert_eq!(status(&server).await, ProviderStatus::Available);

    put_status(
        &server,
        "w",
        json!({"status": "unavailable", "message": "vendor outage"}),
    )
    .await;
    probe_round(&server, &board).await;
    let availability = availability_of(&server, "w").await;
    assert_eq!(
        availability["health"]["message"], "vendor outage",
        "{availability}"
    );
    assert_eq!(availability["is_available"], false);
    answer.store(503, Ordering::SeqCst);
    probe_round(&server, &board).await;
    assert_eq!(
        status(&server).await,
        ProviderStatus::Unavailable,
        "a failure made it usable"
    );
    let availability = availability_of(&server, "w").await;
    assert_eq!(availability["is_available"], false, "{availability}");
    // Recovered: the reading changed, the probes take over.
    answer.store(200, Ordering::SeqCst);
    probe_round(&server, &board).await;
    assert_eq!(status(&server).await, ProviderStatus::Available);

    // Maintenance, then an operator's status over a healthy endpoint.
    put_status(&server, "w", json!({"status": "maintenance"})).await;
    probe_round(&server, &board).await;
    put_status(
        &server,
        "w",
        json!({"status": "unavailable", "message": "still broken"}),
    )
    .await;
    let version = server.version().await;
    probe_round(&server, &board).await;
    assert_eq!(status(&server).await, ProviderStatus::Unavailable);
    assert_eq!(server.version().await, version, "the probes replaced it");
    server.stop().await;
}

/// A probe's answer that comes after its provider was deleted and created
/// again under the same id without a health URL is not applied to the new
/// one (it was: the failure made the new one `degraded`, never probed
/// again to mend it).
#[tokio::test]
async fn a_reading_is_not_applied_to_a_provider_made_again_under_its_id() {
    use tokio::sync::Notify;
    // An endpoint that answers 503 once the test lets it, and says when it
    // has a request waiting.
    let (arrived, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (on_arrival, on_release) = (arrived.clone(), release.clone());
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(move || {
            let (arrived, release) = (on_arrival.clone(), on_release.clone());
            async move {
                arrived.notify_one();
                release.notified().await;
                axum::http::StatusCode::SERVICE_UNAVAILABLE
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (_dir, db) = temp_db();
    let server = Arc::new(TestServer::start(config(&db)).await);
    server
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "z", "name": "Z", "health_url": format!("http://{addr}/health")}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let probing = {
        let server = server.clone();
        tokio::spawn(async move {
            let board = provider_sync_server::health::HealthBoard::default();
            probe_round(&server, &board).await;
        })
    };
    arrived.notified().await;
    let deleted = server
        .admin(Method::DELETE, "/providers/z")
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    server
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "z", "name": "Z again"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let version = server.version().await;
    let made = server.state().await.provider("z").unwrap().clone();
    release.notify_one();
    probing.await.unwrap();
    let z = server.state().await.provider("z").unwrap().clone();
    assert_eq!(z, made);
    assert_eq!(
        server.version().await,
        version,
        "the old reading was applied"
    );
    Arc::try_unwrap(server).ok().unwrap().stop().await;
}

/// A listener that accepts and never answers, until `release` is sent (then
/// it closes what it holds).
async fn hanging_listener() -> (u16, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (release, mut released) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => held.push(socket),
                    Err(_) => return,
                },
                _ = &mut released => return,
            }
        }
    });
    (port, release)
}

/// Found by a black-box tester (2026-12-02): one endpoint that hangs held
/// every other provider's change until its own timeout. The readings in
/// hand are written once the slowest could only be `degraded`; the hanging
/// one's follows when it ends.
#[tokio::test]
async fn an_endpoint_that_hangs_does_not_hold_back_the_others() {
    use provider_sync_server::health::{HealthBoard, ProbeSettings, probe_all};
    let (hanging, release) = hanging_listener().await;
    let (failing, _) = counting_listener(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    )
    .await;
    let (_dir, db) = temp_db();
    let mut config = config(&db);
    config.health_allow_private = true;
    let server = TestServer::start(config).await;
    watch(
        &server,
        "stuck",
        &format!("http://127.0.0.1:{hanging}/health"),
    )
    .await;
    watch(
        &server,
        "down",
        &format!("http://127.0.0.1:{failing}/health"),
    )
    .await;
    let service = server.server.service().clone();
    let round = tokio::spawn(async move {
        let settings = ProbeSettings {
            interval: Duration::from_secs(3600),
            timeout: Duration::from_secs(120),
            degraded_after: Duration::from_millis(500),
            failures: 1,
            allow_private: true,
        };
        let board = HealthBoard::default();
        probe_all(&service, &board, &reqwest::Client::new(), &settings).await;
    });
    wait_for_status(&server, "down", ProviderStatus::Unavailable).await;
    assert!(!round.is_finished(), "the hanging probe ended on its own");
    assert_eq!(
        server.state().await.provider("stuck").unwrap().status,
        ProviderStatus::Unknown
    );
    // The hanging endpoint closes its connection: that probe fails, and
    // its reading is written in the same round.
    release.send(()).unwrap();
    round.await.unwrap();
    assert_eq!(
        server.state().await.provider("stuck").unwrap().status,
        ProviderStatus::Unavailable
    );
    server.stop().await;
}
