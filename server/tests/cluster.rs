//! Several instances on one PostgreSQL (started by the test itself): every
//! event reaches every client of every instance once, in order; writes on any
//! instance; one instance probes health at a time; a database restart is
//! survived and reported.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pg::{PgServer, shared};
use common::*;
use provider_sync_protocol::{EventPayload, ProviderStatus, SyncState, apply_events};
use reqwest::Method;
use serde_json::{Value, json};

static NEXT_DB: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn fresh_database(server: &PgServer, name: &str) -> String {
    let n = NEXT_DB.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    server.database(&format!("{name}_{}_{n}", std::process::id()))
}

fn instance_config(url: &str) -> provider_sync_server::Config {
    let mut config = config(std::path::Path::new("unused"));
    config.database = url.to_owned();
    config
}

/// A WebSocket client that follows one instance from a full state.
struct Client {
    ws: Ws,
    state: SyncState,
    versions: Vec<u64>,
}

impl Client {
    async fn connect(server: &TestServer) -> Self {
        let mut ws = server.connect("").await;
        let hello = next_event(&mut ws).await;
        assert!(matches!(hello.payload, EventPayload::Hello(_)));
        let full = next_event(&mut ws).await;
        let EventPayload::FullSync(state) = full.payload else {
            panic!("expected a full state, got {full:?}");
        };
        Self {
            ws,
            state,
            versions: Vec::new(),
        }
    }

    /// Applies events until the client is at `version`.
    async fn follow_to(&mut self, version: u64) {
        while self.state.metadata.version < version {
            let event = next_non_heartbeat(&mut self.ws).await;
            assert!(
                event.payload.is_change(),
                "unexpected {:?}",
                event.event_type()
            );
            self.versions.push(event.version);
            apply_events(&mut self.state, std::slice::from_ref(&event)).expect("in order");
        }
    }
}

async fn wait_for_version(server: &TestServer, version: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.version().await < version {
        assert!(
            Instant::now() < deadline,
            "the instance never reached {version}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_deliver_every_event_to_every_client_in_order() {
    let url = fresh_database(shared(), "three");
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(Arc::new(TestServer::start(instance_config(&url)).await));
    }
    let mut clients = Vec::new();
    for instance in &instances {
        for _ in 0..2 {
            clients.push(Client::connect(instance).await);
        }
    }
    let start = clients[0].state.metadata.version;

    // Writes spread over the three instances, three at a time.
    let mut written = 0;
    for round in 0..20 {
        let mut tasks = Vec::new();
        for (i, instance) in instances.iter().enumerate() {
            let instance = instance.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("p-{round}-{i}");
                let response = instance
                    .admin(Method::POST, "/providers")
                    .json(&json!({"id": id, "name": id, "priority": round}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
                // The instance that took the write has applied it already.
                let own = instance.get(&format!("/providers/{id}")).await;
                assert_eq!(
                    own.status(),
                    200,
                    "a write is visible on its instance at once"
                );
                if round % 2 == 1 {
                    let response = instance
                        .admin(Method::PATCH, &format!("/providers/p-{}-{i}", round - 1))
                        .json(&json!({"display_name": format!("updated on instance {i}")}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    2
                } else {
                    1
                }
            }));
        }
        for task in tasks {
            written += task.await.unwrap();
        }
    }
    let last = start + written;
    for instance in &instances {
        wait_for_version(instance, last).await;
    }
    let truth = instances[0].state().await;
    assert_eq!(truth.providers.len(), 60);
    for instance in &instances[1..] {
        let state = instance.state().await;
        assert_eq!(state.metadata.checksum, truth.metadata.checksum);
    }
    for client in &mut clients {
        tokio::time::timeout(Duration::from_secs(10), client.follow_to(last))
            .await
            .expect("every event arrives");
        let expected: Vec<u64> = (start + 1..=last).collect();
        assert_eq!(client.versions, expected, "every event once, in order");
        assert_eq!(client.state.metadata.checksum, truth.metadata.checksum);
    }
    for instance in instances {
        Arc::try_unwrap(instance).ok().unwrap().stop().await;
    }
}

/// The value of one metric line, 0 when absent.
async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = server.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Two instances on a new database (`name`) that probe every 100 ms, with
/// the provider `watched` created, whose endpoint is `health`.
async fn watched_pair(name: &str, health: &str) -> (TestServer, TestServer) {
    let url = fresh_database(shared(), name);
    let start = || {
        let mut config = instance_config(&url);
        config.health_interval_ms = 100;
        config.health_allow_private = true;
        TestServer::start(config)
    };
    let a = start().await;
    let b = start().await;
    let response = a
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "watched", "name": "Watched", "health_url": health}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_probes_health_and_another_takes_over() {
    let (health, _answer) = health_endpoint().await;
    let (a, b) = watched_pair("health", &health).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let probes = "provider_sync_health_probes_total";
    let (on_a, on_b) = (metric(&a, probes).await, metric(&b, probes).await);
    assert!(
        (on_a > 0.0) != (on_b > 0.0),
        "exactly one instance probes: a {on_a}, b {on_b}"
    );
    // One status change (unknown -> available), not one per instance.
    let state = a.state().await;
    let watched = state.provider("watched").unwrap();
    assert_eq!(watched.revision, 2, "{watched:?}");
    // Both instances show the latest reading, not the one stored at that
    // change of status (the instance that did not probe did: a black-box
    // check, 2026-12-07). RFC 3339 times in UTC, to the millisecond, sort as
    // text.
    let stored = watched.health.last_check.clone().unwrap();
    for server in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let body: Value = server
                .get("/providers/watched/availability")
                .await
                .json()
                .await
                .unwrap();
            let latest = body["health"]["last_check"].as_str().unwrap().to_owned();
            if latest > stored {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} shows the reading of the change of status: {body}",
                server.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // The prober goes away; the other takes over.
    let (leader, other) = if on_a > 0.0 { (a, b) } else { (b, a) };
    leader.stop().await;
    let before = metric(&other, probes).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&other, probes).await <= before {
        assert!(Instant::now() < deadline, "nobody took over the probes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    other.stop().await;
}

/// An instance that does not probe has a change of status (an event, within
/// milliseconds) before the readings the prober shares after it: its
/// `/availability` showed the reading from before the change beside the new
/// status until it next read them (a review, 2026-12-07). It never shows a
/// reading older than the one stored with the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_never_shows_a_reading_older_than_the_stored_one() {
    use std::sync::atomic::Ordering;
    let (health, answer) = health_endpoint().await;
    let (a, b) = watched_pair("health_order", &health).await;
    let probes = "provider_sync_health_probes_total";
    let deadline = Instant::now() + Duration::from_secs(10);
    let follower = loop {
        let (on_a, on_b) = (metric(&a, probes).await, metric(&b, probes).await);
        if on_a > 0.0 && on_b == 0.0 {
            break &b;
        }
        if on_b > 0.0 && on_a == 0.0 {
            break &a;
        }
        assert!(
            Instant::now() < deadline,
            "no one instance probes: {on_a} {on_b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Each change of status, as soon as the follower has it.
    for (code, status) in [
        (500, ProviderStatus::Unavailable),
        (200, ProviderStatus::Available),
    ] {
        answer.store(code, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(20);
        let stored = loop {
            let state = follower.state().await;
            let watched = state.provider("watched").unwrap();
            if watched.status == status {
                break watched.health.last_check.clone().unwrap();
            }
            assert!(Instant::now() < deadline, "never {status:?}: {watched:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let body: Value = follower
            .get("/providers/watched/availability")
            .await
            .json()
            .await
            .unwrap();
        let shown = body["health"]["last_check"].as_str().unwrap();
        assert!(
            shown >= stored.as_str(),
            "{status:?}: {body} older than {stored}"
        );
    }
    a.stop().await;
    b.stop().await;
}

/// An instance holding the health role that stops answering while its
/// connection stays open (frozen by SIGSTOP, or cut off behind a proxy
/// that keeps the connection: keepalives answered for it) held the role
/// for good, and no one probed (found by a black-box check, 2026-12-03).
/// Its session, silent for three of its turns, is ended by the next
/// instance to try, which takes the role. The frozen holder here is a
/// connection that took the role's lock and says nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_holder_of_the_health_role_is_replaced() {
    use sqlx::Connection;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let health = format!("http://{}/health", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let url = fresh_database(shared(), "frozen_role");
    // The same role's holder in another database of the same server (another
    // deployment), as silent: not this cluster's, not to be ended.
    let elsewhere = fresh_database(shared(), "frozen_role_elsewhere");
    let mut frozen = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut other = sqlx::PgConnection::connect(&elsewhere).await.unwrap();
    for connection in [&mut frozen, &mut other] {
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(provider_sync_server::store::Role::Health.lock_key())
            .fetch_one(connection)
            .await
            .unwrap();
        assert!(held);
    }

    let mut config = instance_config(&url);
    config.health_interval_ms = 100;
    config.health_timeout_ms = 200;
    config.health_allow_private = true;
    let a = TestServer::start(config).await;
    let response = a
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "watched", "name": "Watched", "health_url": health}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    // Three turns of 0.3 s and 5 s more, then the next tick.
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.state().await.provider("watched").unwrap().status != ProviderStatus::Available {
        assert!(Instant::now() < deadline, "no one probes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(sqlx::query("SELECT 1").execute(&mut frozen).await.is_err());
    assert!(sqlx::query("SELECT 1").execute(&mut other).await.is_ok());
    a.stop().await;
}

/// A server started while its database does not answer yet (started
/// beside it, as a compose file does) waits for it, as it waits for a
/// SQLite lock, rather than exiting at once (black-box check, 2026-12-03).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_before_its_database_waits_for_it() {
    let pg = Arc::new(PgServer::start());
    let url = pg.database("late");
    pg.stop_immediate();
    let later = pg.clone();
    let comes_up = std::thread::spawn(move || {
        // Longer than a connection's own wait (2 s).
        std::thread::sleep(Duration::from_millis(4000));
        later.start_again();
    });
    let a = TestServer::start(instance_config(&url)).await;
    comes_up.join().unwrap();
    a.add_provider("one").await;
    assert_eq!(a.state().await.metadata.version, 1);
    a.stop().await;
}

/// Found by a black-box check (2026-12-04): a database that takes no
/// writes (a standby, or a primary set read-only during a failover)
/// answered every write `500 internal` ("the store failed") with no
/// `Retry-After`, where the README promises a 503 to try again. Reads and
/// readiness are unaffected (the copy is current: the log still reads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_takes_no_writes_answers_503_to_try_again() {
    let pg = PgServer::start();
    let url = pg.database("readonly");
    let a = TestServer::start(instance_config(&url)).await;
    a.add_provider("one").await;
    let psql = |sql: &str| {
        let output = std::process::Command::new("psql")
            .arg(pg.url("postgres"))
            .args(["-q", "-c", sql, "-c", "SELECT pg_reload_conf()"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    };
    psql("ALTER SYSTEM SET default_transaction_read_only = on");
    let patch = |priority: u32| {
        let a = &a;
        async move {
            a.admin(Method::PATCH, "/providers/one")
                .json(&json!({ "priority": priority }))
                .send()
                .await
                .unwrap()
        }
    };
    // The reload reaches the pool's connections at their next statement.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let answer = patch(7).await;
        if answer.status() != 200 || Instant::now() > deadline {
            break answer;
        }
        // Taken before the reload landed: put back as it was.
        patch(0).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .unwrap()
            .to_str()
            .unwrap(),
        "1"
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("takes no writes"),
        "{body}"
    );
    let version = a.version().await;
    // Reads, readiness and the heartbeats' word stand.
    assert_eq!(a.get("/readyz").await.status(), 200);
    assert_eq!(a.state().await.metadata.version, version);
    psql("ALTER SYSTEM RESET default_transaction_read_only");
    // A priority no write above set: the put-back above may itself have
    // been refused (leaving 7), and writing 7 again would change nothing
    // and make no version.
    let deadline = Instant::now() + Duration::from_secs(10);
    while patch(9).await.status() != 200 {
        assert!(Instant::now() < deadline, "writes never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(a.version().await, version + 1);
    a.stop().await;
    // An instance started meanwhile (a standby being promoted) waits for
    // the database to take writes, as for one not up yet (it exited: its
    // migrations write).
    psql("ALTER SYSTEM SET default_transaction_read_only = on");
    let mut waiting = instance_config(&url);
    waiting.store_lock_timeout_ms = 30_000;
    let starting = tokio::spawn(TestServer::start(waiting));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!starting.is_finished(), "it waits");
    psql("ALTER SYSTEM RESET default_transaction_read_only");
    let b = starting.await.unwrap();
    assert_eq!(b.version().await, version + 1);
    b.stop().await;
}

/// libpq's form of a Unix socket URL, the user before an empty host, was
/// refused as an empty host (README, "Running several instances").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_url_with_the_user_before_an_empty_host_is_served() {
    let pg = shared();
    let url = fresh_database(pg, "socket");
    let database = url.rsplit('/').next().unwrap();
    let url = format!(
        "postgres://postgres@/{database}?host={}&port={}",
        pg.socket_dir().display(),
        pg.port()
    );
    let a = TestServer::start(instance_config(&url)).await;
    a.add_provider("one").await;
    assert_eq!(a.state().await.metadata.version, 1);
    a.stop().await;
    // The tools read it too (a review: they still refused it).
    let catalog = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/catalog.toml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_provider-sync-server"))
        .args(["catalog", "diff", catalog, "--database", &url])
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_eq!(output.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("provider_added"), "{out}");
}

/// Found by a black-box check (2026-12-04): with the database stopped, a
/// readiness check and the follower's read waited out sqlx's pool, which
/// tries a refused connection again until its acquire timeout, and said
/// only "pool timed out" (`/readyz` answered 503 after 2 s, heartbeats said
/// the store was gone after about 4 s, where the README says a refused
/// connection is known at once). The store now tries a connection of its
/// own when the pool does not hand one out at once: the answer is the
/// refusal itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_is_told_by_its_refusal_not_by_the_pools_timeout() {
    use provider_sync_server::store::{PostgresStore, Store, StoreError};
    let pg = PgServer::start();
    let store = std::sync::Arc::new(PostgresStore::open(&pg.database("refused")).await.unwrap());
    store.ping().await.unwrap();
    // The pool filled (from the review: a full pool's broken connections
    // turned the probe off, and the first check waited out the pool).
    let reads: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.since("no-such-epoch", 0, None, 10).await })
        })
        .collect();
    for read in reads {
        read.await.unwrap().unwrap();
    }
    pg.stop_immediate();
    let connection_refused = |err: &StoreError| {
        matches!(err, StoreError::Database(sqlx::Error::Io(io))
            if io.kind() == std::io::ErrorKind::ConnectionRefused)
    };
    // The refusal itself, or, within a second of one, the store's word
    // that it cannot be reached: never the pool's timeout.
    let refused =
        |err: &StoreError| connection_refused(err) || matches!(err, StoreError::Unreachable);
    let pinged = store.ping().await.unwrap_err();
    assert!(connection_refused(&pinged), "{pinged:?}");
    let read = store.since("no-such-epoch", 0, None, 10).await.unwrap_err();
    assert!(refused(&read), "{read:?}");
    assert!(read.is_unreachable());
    // Several at once (a readiness check during a follow, several load
    // balancers): each told by the one refusal, none by the pool's
    // timeout (from the review: only the one that probed was).
    let checks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.ping().await.unwrap_err() })
        })
        .collect();
    for check in checks {
        let err = check.await.unwrap();
        assert!(refused(&err), "{err:?}");
    }
    pg.start_again();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_is_reported_and_survived() {
    let pg = PgServer::start();
    let url = pg.database("restart");
    let start = |url: String| async move {
        let mut config = instance_config(&url);
        config.heartbeat_ms = 200;
        config.follow_interval_ms = 100;
        TestServer::start(config).await
    };
    let a = start(url.clone()).await;
    let b = start(url.clone()).await;
    a.add_provider("before").await;
    wait_for_version(&b, 1).await;
    let mut ws = b.connect("?since=1").await;
    let epoch = b.state().await.metadata.epoch;

    pg.stop_immediate();
    // b's heartbeats say the store is gone, from b's own failing reads of
    // it (nothing has asked /readyz yet), and both say they are not ready.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let event = next_event(&mut ws).await;
        if let EventPayload::Heartbeat(h) = &event.payload
            && !h.store_reachable
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no heartbeat said the store is gone"
        );
    }
    for instance in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = instance.get("/readyz").await.status();
            if status == 503 {
                break;
            }
            assert!(Instant::now() < deadline, "/readyz still {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // ...and the metrics (they had no word for it).
        assert_eq!(metric(instance, "provider_sync_store_reachable").await, 0.0);
    }
    // Cut off from the store, an instance cannot tell whether its copy is
    // current: it serves no reads (they were answered from its last copy,
    // "none" to a client behind the others), nor new WebSocket sessions.
    for (method, path) in [
        (Method::GET, "/version"),
        (Method::GET, "/state"),
        (Method::GET, "/models"),
        (Method::POST, "/sync"),
    ] {
        let response = b
            .http
            .request(method, b.url(path))
            .json(&json!({"client_version": 1, "client_epoch": epoch}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503, "{path}");
        assert!(response.headers().contains_key("retry-after"), "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "store_unavailable", "{path}");
        // A read's message, not a write's ("not acknowledged").
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("cannot reach the store"),
            "{path}: {message}"
        );
    }
    assert!(
        tokio_tungstenite::connect_async(b.ws_url("?since=1"))
            .await
            .is_err(),
        "a new session on an instance cut off from the store"
    );
    // The audit, which only the store holds: a read's answer too (it said
    // a change was not acknowledged).
    let response = b.admin(Method::GET, "/audit").send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    assert_eq!(
        body["error"]["message"], "the store does not answer; try again",
        "{body}"
    );
    // A write while the database is down is refused, not lost.
    let response = a
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "during", "name": "During"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));

    pg.start_again();
    for instance in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(15);
        while instance.get("/readyz").await.status() != 200 {
            assert!(Instant::now() < deadline, "not ready again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(metric(instance, "provider_sync_store_reachable").await, 1.0);
    }
    // Writes work again, on either instance, and both converge.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = b
            .admin(Method::POST, "/providers")
            .json(&json!({"id": "after", "name": "After"}))
            .send()
            .await
            .unwrap();
        if response.status() == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "writes never work again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let version = b.version().await;
    wait_for_version(&a, version).await;
    let (sa, sb): (Value, Value) = (
        a.get("/version").await.json().await.unwrap(),
        b.get("/version").await.json().await.unwrap(),
    );
    assert_eq!(sa["checksum"], sb["checksum"]);
    let state = a.state().await;
    assert!(state.provider("before").is_some() && state.provider("after").is_some());
    assert!(state.provider("during").is_none());
    // b's client hears a reachable heartbeat and every change.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let event = next_event(&mut ws).await;
        if let EventPayload::Heartbeat(h) = &event.payload
            && h.store_reachable
            && h.version == version
        {
            break;
        }
        assert!(Instant::now() < deadline);
    }
    a.stop().await;
    b.stop().await;
}

/// A database of another application is refused before anything is added
/// to it, as a SQLite file of another application is (the server moved in
/// beside its tables, or, on a name it shares, stopped half-way with its
/// migrations table left there: a black-box check, 2026-12-07). A store a
/// first start left with its migrations table alone still opens.
#[tokio::test]
async fn a_database_of_another_application_is_refused_and_left_as_it_was() {
    use sqlx::Connection;
    const TABLES: &str = "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() ORDER BY 1";
    for table in ["invoices", "providers"] {
        let url = fresh_database(shared(), "foreign");
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(&format!("CREATE TABLE {table} (id int)"))
            .execute(&mut conn)
            .await
            .unwrap();
        let (code, err) = refused_start(&["--database", &url], &[]);
        assert_ne!(code, 0, "{err}");
        assert!(
            err.contains(&format!(
                "is a PostgreSQL database of something else (its tables: {table})"
            )),
            "{err}"
        );
        let left: Vec<String> = sqlx::query_scalar(TABLES)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert_eq!(left, [table]);
    }
    let url = fresh_database(shared(), "cut_short");
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL, installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL, checksum bytea NOT NULL, execution_time bigint NOT NULL)")
        .execute(&mut conn)
        .await
        .unwrap();
    let server = TestServer::start(instance_config(&url)).await;
    server.add_provider("p").await;
    server.stop().await;
}

/// A write refused because the database takes no writes: the refusal's
/// audit record cannot be kept either, and that was logged as an ERROR for
/// every refused write (a review, 2026-12-04). It is a warning that says
/// why, and the refusal's own log line stands.
#[tokio::test]
async fn a_refusal_by_a_database_that_takes_no_writes_is_no_error_in_the_log() {
    let pg = PgServer::start();
    let url = pg.database("readonly_log");
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let (child, base) = spawn_binary_with(
        &[
            "--database",
            &url,
            "--admin-token",
            TOKEN,
            "--health-interval-ms",
            "3600000",
        ],
        &[("NO_COLOR", "1")],
        log.into(),
    );
    let _child = KillOnDrop(child);
    let http = reqwest::Client::new();
    let write = |priority: i64| {
        http.request(Method::POST, format!("{base}/admin/providers"))
            .bearer_auth(TOKEN)
            .json(&json!({"id": format!("p{priority}"), "name": "P", "priority": priority}))
            .send()
    };
    assert_eq!(write(0).await.unwrap().status(), 201);
    let output = std::process::Command::new("psql")
        .arg(pg.url("postgres"))
        .args([
            "-q",
            "-c",
            "ALTER SYSTEM SET default_transaction_read_only = on",
        ])
        .args(["-c", "SELECT pg_reload_conf()"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    // The reload reaches the pool's connections at their next statement.
    let deadline = Instant::now() + Duration::from_secs(10);
    for priority in 1.. {
        if write(priority).await.unwrap().status() == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "writes were never refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logged.contains("the audit record of a refused admin write is in the log only"),
        "{logged}"
    );
    assert!(!logged.contains("ERROR"), "{logged}");
}

/// The server binary on a free loopback port, on a shared store.
struct Process {
    child: std::process::Child,
    base: String,
}

impl Process {
    fn start(url: &str) -> Self {
        let (child, base) = spawn_binary(&[
            "--database",
            url,
            "--admin-token",
            TOKEN,
            "--follow-interval-ms",
            "100",
            "--health-interval-ms",
            "3600000",
        ]);
        Self { child, base }
    }

    fn addr(&self) -> String {
        self.base
            .strip_prefix("http://")
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A load balancer of the test's own: each connection goes to the next
/// backend that accepts it, round robin.
async fn balancer(backends: Vec<String>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let backends = backends.clone();
            let next = next.clone();
            tokio::spawn(async move {
                for _ in 0..backends.len() {
                    let at =
                        next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % backends.len();
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&backends[at]).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A client behind the load balancer that resumes from its version when its
/// instance goes away.
struct Resuming {
    url: String,
    ws: Option<Ws>,
    state: SyncState,
    /// The version of the first full state.
    started_at: u64,
    versions: Vec<u64>,
    resumes: usize,
}

impl Resuming {
    async fn connect(url: &str) -> Self {
        let mut client = Self {
            url: url.to_owned(),
            ws: None,
            state: SyncState::default(),
            started_at: 0,
            versions: Vec::new(),
            resumes: 0,
        };
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}/ws"))
            .await
            .unwrap();
        let hello = next_event(&mut ws).await;
        assert!(matches!(hello.payload, EventPayload::Hello(_)));
        let EventPayload::FullSync(state) = next_event(&mut ws).await.payload else {
            panic!("expected a full state");
        };
        client.started_at = state.metadata.version;
        client.state = state;
        client.ws = Some(ws);
        client
    }

    async fn resume(&mut self) {
        let query = format!(
            "{}/ws?since={}&epoch={}",
            self.url, self.state.metadata.version, self.state.metadata.epoch
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut ws = loop {
            match tokio_tungstenite::connect_async(&query).await {
                Ok((ws, _)) => break ws,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(err) => panic!("cannot reconnect: {err}"),
            }
        };
        let hello = next_event(&mut ws).await;
        let EventPayload::Hello(hello) = hello.payload else {
            panic!("expected hello");
        };
        assert_ne!(
            hello.sync_type,
            provider_sync_protocol::SyncType::Full,
            "a resume within retention takes no full state"
        );
        self.resumes += 1;
        self.ws = Some(ws);
    }

    async fn follow_to(&mut self, version: u64) {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        while self.state.metadata.version < version {
            let ws = self.ws.as_mut().unwrap();
            let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("a frame within 10 s");
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                // Its instance went away: resume through the balancer.
                _ => {
                    self.resume().await;
                    continue;
                }
            };
            let event: provider_sync_protocol::SyncEvent = serde_json::from_str(&text).unwrap();
            if event.payload.is_change() {
                self.versions.push(event.version);
                apply_events(&mut self.state, std::slice::from_ref(&event)).expect("in order");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_instance_loses_nothing_and_its_clients_resume_elsewhere() {
    let url = fresh_database(shared(), "kill");
    let mut processes: Vec<Process> = (0..3).map(|_| Process::start(&url)).collect();
    let lb = balancer(processes.iter().map(Process::addr).collect()).await;
    let lb_url = format!("ws://{lb}/api/provider-sync");
    // A state large enough that the missed events stay the smaller answer
    // (the server sends a full state when that is smaller).
    let http = reqwest::Client::new();
    let capabilities: Vec<String> = (0..64)
        .map(|i| format!("{i:03}-{}", "c".repeat(60)))
        .collect();
    for i in 0..16 {
        let response = http
            .post(format!("{}/admin/providers", processes[1].base))
            .bearer_auth(TOKEN)
            .json(&json!({"id": format!("ballast-{i}"), "name": "Ballast", "capabilities": capabilities}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let mut clients = Vec::new();
    for _ in 0..6 {
        clients.push(Resuming::connect(&lb_url).await);
    }
    let bases: Vec<String> = processes.iter().map(|p| p.base.clone()).collect();

    // Three writers at once, one per instance, while instance 0 is killed.
    let mut writers = Vec::new();
    for w in 0..3usize {
        let http = http.clone();
        let bases = bases.clone();
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..40 {
                let id = format!("w-{w}-{i}");
                let sent = http
                    .post(format!("{}/admin/providers", bases[(w + i) % 3]))
                    .bearer_auth(TOKEN)
                    .json(&json!({"id": id, "name": id}))
                    .send()
                    .await;
                if let Ok(response) = sent
                    && response.status() == 201
                {
                    acknowledged.push(id);
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    processes[0].child.kill().unwrap();
    processes[0].child.wait().unwrap();
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert!(
        acknowledged.len() >= 60,
        "{} acknowledged",
        acknowledged.len()
    );
    // The survivors agree.
    let version_of = |base: String| {
        let http = http.clone();
        async move {
            let v: Value = http
                .get(format!("{base}/version"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["version"].as_u64().unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (one, two) = (
            version_of(bases[1].clone()).await,
            version_of(bases[2].clone()).await,
        );
        if one == two {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the survivors never agreed: {one} {two}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let survivor = &bases[1];
    let truth: SyncState = http
        .get(format!("{survivor}/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for id in &acknowledged {
        assert!(truth.provider(id).is_some(), "acknowledged write {id} lost");
    }
    let last = truth.metadata.version;
    let mut resumed = 0;
    for client in &mut clients {
        // Each from the version its first full state had: an instance that
        // had not read the last ballast write yet gave an older one.
        let start = client.started_at;
        client.follow_to(last).await;
        let expected: Vec<u64> = (start + 1..=last).collect();
        assert_eq!(client.versions, expected, "every event once, in order");
        assert_eq!(client.state.metadata.checksum, truth.metadata.checksum);
        resumed += client.resumes;
    }
    assert!(
        resumed >= 1,
        "the killed instance's clients resumed elsewhere"
    );
    drop(processes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_copies_into_postgresql_with_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("single.db");
    let mut single = config(&db);
    single.database = db.display().to_string();
    let server = TestServer::start(single).await;
    server.add_ballast().await;
    for i in 0..5 {
        server.add_provider(&format!("p{i}")).await;
    }
    let before = server.state().await;
    server.stop().await;

    // `store copy` from the SQLite file into `to`.
    let copy_into = |to: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_provider-sync-server"))
            .args(["store", "copy", "--from", db.to_str().unwrap(), "--to", to])
            .output()
            .unwrap()
    };
    // A database holding another application's table: refused, unchanged
    // (it was taken for empty: found by a black-box tester, 2026-12-02).
    {
        use sqlx::Connection;
        let foreign = fresh_database(shared(), "foreign");
        let mut conn = sqlx::PgConnection::connect(&foreign).await.unwrap();
        sqlx::query("CREATE TABLE customers (id int)")
            .execute(&mut conn)
            .await
            .unwrap();
        let refused = copy_into(&foreign);
        assert_eq!(refused.status.code(), Some(2));
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains("holds other tables (customers)"), "{err}");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(tables, ["customers"]);
    }
    let url = fresh_database(shared(), "copy");
    let output = copy_into(&url);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Into a store that is not empty: refused.
    let again = copy_into(&url);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let copied = TestServer::start(instance_config(&url)).await;
    let after = copied.state().await;
    assert_eq!(after.metadata.epoch, before.metadata.epoch);
    assert_eq!(after.metadata.version, before.metadata.version);
    assert_eq!(after.metadata.checksum, before.metadata.checksum);
    // A client of the SQLite server carries on incrementally.
    let body = copied
        .sync(json!({"client_version": 2, "client_epoch": before.metadata.epoch}))
        .await;
    assert_eq!(body["sync_type"], "incremental", "{body}");
    assert_eq!(body["events"].as_array().unwrap().len(), 4);
    copied.stop().await;
}

/// A SQLite store whose event log was wiped after its server stopped
/// copies into PostgreSQL as a server would have opened it: in a new epoch
/// (ARCHITECTURE.md: a wiped log is a new epoch), with its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_with_a_wiped_log_copies_in_a_new_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wiped.db");
    let mut single = config(&db);
    single.database = db.display().to_string();
    let server = TestServer::start(single).await;
    for i in 0..3 {
        server.add_provider(&format!("p{i}")).await;
    }
    let before = server.state().await;
    server.stop().await;
    {
        use sqlx::Connection;
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        sqlx::query("DELETE FROM events")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let url = fresh_database(shared(), "wipedcopy");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_provider-sync-server"))
        .args([
            "store",
            "copy",
            "--from",
            db.to_str().unwrap(),
            "--to",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let copied = TestServer::start(instance_config(&url)).await;
    let after = copied.state().await;
    assert_ne!(after.metadata.epoch, before.metadata.epoch);
    assert_eq!(after.metadata.version, before.metadata.version);
    assert_eq!(after.metadata.checksum, before.metadata.checksum);
    copied.stop().await;
    // Started again: the same epoch (its log is empty because it began).
    let again = TestServer::start(instance_config(&url)).await;
    assert_eq!(again.state().await.metadata.epoch, after.metadata.epoch);
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_epoch_on_one_instance_reaches_the_others() {
    let url = fresh_database(shared(), "epoch");
    let a = TestServer::start(instance_config(&url)).await;
    let b = TestServer::start(instance_config(&url)).await;
    a.add_provider("p").await;
    wait_for_version(&b, 1).await;
    let old = b.state().await.metadata.epoch;
    let mut ws = b.connect(&format!("?since=1&epoch={old}")).await;
    assert!(matches!(
        next_event(&mut ws).await.payload,
        EventPayload::Hello(_)
    ));

    // A restore: a third instance starts with --new-epoch.
    let mut restored = instance_config(&url);
    restored.new_epoch = true;
    let c = TestServer::start(restored).await;
    let new = c.state().await.metadata.epoch;
    assert_ne!(new, old);
    // b's client is told to resync, and b serves the new epoch.
    let event = tokio::time::timeout(Duration::from_secs(10), next_non_heartbeat(&mut ws))
        .await
        .expect("a resync notice");
    assert!(
        matches!(event.payload, EventPayload::ResyncRequired(_)),
        "{event:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.state().await.metadata.epoch != new {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The metrics count the reload that told b's clients to resync.
    assert!(metric(&b, "provider_sync_store_reloads_total").await >= 1.0);
    // A write on a, which may not have noticed yet, lands in the new history.
    let response = a
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "q", "name": "Q"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let state = a.state().await;
    assert_eq!(state.metadata.epoch, new);
    assert!(state.provider("p").is_some() && state.provider("q").is_some());
    let body = c
        .sync(json!({"client_version": 1, "client_epoch": old}))
        .await;
    assert_eq!(body["reason"], "epoch_mismatch");
    for server in [a, b, c] {
        server.stop().await;
    }
}

const CATALOG: &str = r#"
[[providers]]
id = "alpha"
name = "Alpha"
priority = PRIORITY
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_with_different_files_apply_the_newer_once() {
    let url = fresh_database(shared(), "files");
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.toml");
    let older = dir.path().join("older.toml");
    std::fs::write(
        &newer,
        format!("revision = 3\n{}", CATALOG.replace("PRIORITY", "30")),
    )
    .unwrap();
    std::fs::write(
        &older,
        format!("revision = 2\n{}", CATALOG.replace("PRIORITY", "20")),
    )
    .unwrap();
    let with = |file: std::path::PathBuf| {
        let mut config = instance_config(&url);
        config.catalog = Some(file);
        TestServer::start(config)
    };
    // Both start at once on an empty store.
    let (a, b) = tokio::join!(with(newer.clone()), with(older.clone()));
    let version = a.version().await.max(b.version().await);
    wait_for_version(&a, version).await;
    wait_for_version(&b, version).await;
    for server in [&a, &b] {
        let state = server.state().await;
        assert_eq!(
            state.provider("alpha").unwrap().priority,
            30,
            "the newer file wins"
        );
    }
    a.stop().await;
    b.stop().await;
    // Restarted alternately: nothing more happens.
    for file in [older.clone(), newer.clone(), older] {
        let server = with(file).await;
        assert_eq!(server.version().await, version);
        server.stop().await;
    }
}

/// A catalog reload compares the file with the one last applied by any
/// instance, not the one this instance last saw: b started when the first
/// file was applied, a applied a second since (b followed its events), and
/// b's reload of a third — which sets back what the second changed — must
/// change it back, not take it for unchanged since the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_builds_on_the_file_another_instance_applied_last() {
    let url = fresh_database(shared(), "reload_base");
    let dir = tempfile::tempdir().unwrap();
    let file = |revision: u32, priority: u32| {
        let path = dir.path().join(format!("catalog-{revision}.toml"));
        std::fs::write(
            &path,
            format!(
                "revision = {revision}\n{}",
                CATALOG.replace("PRIORITY", &priority.to_string())
            ),
        )
        .unwrap();
        path
    };
    let reload = |server: &TestServer, path: std::path::PathBuf| {
        let service = server.server.service().clone();
        async move {
            provider_sync_server::catalog::watch::reload(
                &service,
                &path,
                &Default::default(),
                "test",
            )
            .await;
        }
    };
    let a = TestServer::start(instance_config(&url)).await;
    reload(&a, file(1, 10)).await;
    let b = TestServer::start(instance_config(&url)).await;
    reload(&a, file(2, 20)).await;
    let version = a.version().await;
    wait_for_version(&b, version).await;
    assert_eq!(b.state().await.provider("alpha").unwrap().priority, 20);
    reload(&b, file(3, 10)).await;
    assert!(
        b.version().await > version,
        "the third file changed something"
    );
    wait_for_version(&a, b.version().await).await;
    for server in [&a, &b] {
        assert_eq!(server.state().await.provider("alpha").unwrap().priority, 10);
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_larger_than_the_log_still_reaches_the_other_instances() {
    let url = fresh_database(shared(), "trim");
    let start = |url: String| async move {
        let mut config = instance_config(&url);
        config.event_retention = 5;
        TestServer::start(config).await
    };
    let a = start(url.clone()).await;
    let b = start(url.clone()).await;
    let mut client = Client::connect(&b).await;
    // From a version above 0: the event b holds is kept by the large write
    // (it was trimmed, and b, which could not tell that the write follows
    // from its copy, read the whole state and told its clients to resync).
    a.add_provider("first").await;
    tokio::time::timeout(Duration::from_secs(10), client.follow_to(1))
        .await
        .expect("the first event reaches b's client");
    // One reconcile: 1 provider and 20 models in one commit of 21 events.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.toml");
    let mut text = String::from("[[providers]]\nid = \"big\"\nname = \"Big\"\n");
    for i in 0..20 {
        text += &format!(
            "[[models]]\nid = \"m{i}\"\nprovider_id = \"big\"\nname = \"M{i}\"\ncontext_window = 1000\n"
        );
    }
    std::fs::write(&file, text).unwrap();
    provider_sync_server::catalog::watch::reload(
        a.server.service(),
        &file,
        &Default::default(),
        "test",
    )
    .await;
    assert_eq!(a.version().await, 22);
    // b follows every event (none was trimmed before it could), and its
    // client is sent all of them, not told to resync.
    tokio::time::timeout(Duration::from_secs(10), client.follow_to(22))
        .await
        .expect("every event reaches b's client");
    assert_eq!(client.versions, (1..=22).collect::<Vec<_>>());
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_commit_built_on_another_epoch_is_refused() {
    use provider_sync_server::store::{Commit, PostgresStore, SqliteStore, Store, StoreError};
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("e.db").display().to_string())
        .await
        .unwrap();
    let postgres = PostgresStore::open(&fresh_database(shared(), "epoch_commit"))
        .await
        .unwrap();
    let stores: [&dyn Store; 2] = [&sqlite, &postgres];
    for store in stores {
        let loaded = store.load().await.unwrap();
        // A restore elsewhere starts a new history at the same version.
        store.rotate_epoch().await.unwrap();
        let commit = Commit {
            base_epoch: &loaded.epoch,
            base_version: loaded.version,
            base_tip: None,
            events: vec![],
            rows: vec![],
            retain: 10,
            retain_bytes: 1 << 20,
            catalog: None,
            catalog_base: None,
            audit: None,
        };
        assert!(
            matches!(
                store.commit(&commit).await,
                Err(StoreError::VersionConflict { .. })
            ),
            "{store:?}"
        );
    }
}

/// A write built on a version whose event the store holds another of (it
/// went back in time and was written on again to that version) is refused
/// like one built on an older version, and a read from there says the
/// histories parted; a write or read on the same event goes through.
#[tokio::test]
async fn a_commit_or_read_from_another_history_of_the_same_version_is_refused() {
    use provider_sync_server::store::{Commit, PostgresStore, Since, Store, StoreError};
    let store = PostgresStore::open(&fresh_database(shared(), "tip_commit"))
        .await
        .unwrap();
    let loaded = store.load().await.unwrap();
    let event = |version: u64, name: &str| {
        json!({
            "id": format!("{}:{version}", loaded.epoch),
            "version": version,
            "timestamp": "2026-12-01T00:00:00Z",
            "type": "provider_removed",
            "data": {"provider_id": name, "model_ids": []},
        })
        .to_string()
    };
    let (first, other, next) = (event(1, "kept"), event(1, "lost"), event(2, "next"));
    let (first, other) = (first.as_str(), other.as_str());
    async fn put(
        store: &dyn Store,
        epoch: &str,
        version: u64,
        tip: Option<&str>,
        body: &str,
        retain: u64,
    ) -> Result<(), StoreError> {
        store
            .commit(&Commit {
                base_epoch: epoch,
                base_version: version,
                base_tip: tip,
                events: vec![(version + 1, body)],
                rows: vec![],
                retain,
                retain_bytes: 1 << 20,
                catalog: None,
                catalog_base: None,
                audit: None,
            })
            .await
    }
    let commit = |version, tip, body| put(&store, &loaded.epoch, version, tip, body, 10);
    commit(0, None, first).await.unwrap();
    assert!(matches!(
        commit(1, Some(other), &next).await,
        Err(StoreError::VersionConflict { .. })
    ));
    assert!(matches!(
        store.since(&loaded.epoch, 1, Some(other), 10).await,
        Ok(Since::Diverged)
    ));
    assert!(matches!(
        store.since(&loaded.epoch, 1, Some(first), 10).await,
        Ok(Since::Events { version: 1, ref events }) if events.is_empty()
    ));
    commit(1, Some(first), &next).await.unwrap();
    match store
        .since(&loaded.epoch, 1, Some(first), 10)
        .await
        .unwrap()
    {
        Since::Events { version, events } => {
            assert_eq!(version, 2);
            assert_eq!(
                events.iter().map(|(e, _)| e.version).collect::<Vec<_>>(),
                [2]
            );
        }
        other => panic!("{other:?}"),
    }
    // A log trimmed up to a version exactly cannot tell what follows it:
    // the whole state is read again (it was applied onto the reader's own).
    // A write keeps the event it was built on, so that takes two writes.
    let (third, fourth) = (event(3, "third"), event(4, "fourth"));
    put(&store, &loaded.epoch, 2, Some(&next), &third, 1)
        .await
        .unwrap();
    put(&store, &loaded.epoch, 3, Some(&third), &fourth, 1)
        .await
        .unwrap();
    assert!(matches!(
        store.since(&loaded.epoch, 2, Some(&next), 10).await,
        Ok(Since::Gone)
    ));
    assert!(matches!(
        store.since(&loaded.epoch, 3, Some(&third), 10).await,
        Ok(Since::Events { version: 4, ref events }) if events.len() == 1
    ));
}

/// A write whose connection PostgreSQL ended while this instance sat in
/// its transaction (frozen: a paused VM, a debugger) was not made and may
/// be tried again: the store counts as unreachable for it (503 with
/// `Retry-After`; it answered 500 `internal`).
#[tokio::test]
async fn a_transaction_ended_for_idling_counts_as_the_store_unreachable() {
    use provider_sync_server::store::StoreError;
    use sqlx::Connection;
    let url = fresh_database(shared(), "idled");
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("SET idle_in_transaction_session_timeout = '100ms'")
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut db).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut db).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let err = sqlx::query("SELECT 1").execute(&mut db).await.unwrap_err();
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("25P03"), "{err:?}");
    let err = StoreError::Database(err);
    assert!(err.is_unreachable(), "{err:?}");
}

/// The store's tables wiped under running instances: a new store, a new
/// epoch with what it holds (they served the old catalog as current); its
/// log unreadable: no reads until it is back (they were answered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_or_unreadable_store_is_not_served_as_current() {
    use sqlx::Connection;
    let url = fresh_database(shared(), "wiped");
    let mut tuned = instance_config(&url);
    tuned.follow_interval_ms = 100;
    let a = TestServer::start(tuned).await;
    a.add_provider("one").await;
    let before = a.state().await;
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    async fn wait_for(a: &TestServer, what: &str, ok: fn(u16) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = a.get("/state").await.status().as_u16();
            if ok(status) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: still {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    sqlx::query("ALTER TABLE events RENAME TO events_away")
        .execute(&mut db)
        .await
        .unwrap();
    wait_for(&a, "unreadable log", |s| s == 503).await;
    // A write is not acknowledged, and says to try again (it was a 500
    // without `Retry-After`: found by a black-box tester, 2026-12-02).
    refused_as_unavailable(&a, "while-away").await;
    sqlx::query("ALTER TABLE events_away RENAME TO events")
        .execute(&mut db)
        .await
        .unwrap();
    wait_for(&a, "readable again", |s| s == 200).await;
    assert_eq!(a.state().await.metadata.epoch, before.metadata.epoch);

    sqlx::query("TRUNCATE sync_meta, events, models, providers, catalog_applied")
        .execute(&mut db)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = a.state().await;
        if state.metadata.epoch != before.metadata.epoch {
            assert!(state.providers.is_empty(), "{:?}", state.providers);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the wiped store's catalog still served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Its head row alone wiped: a new history, whose writes go through (the
    // old log's versions were given again: 500).
    let two = a.add_provider("two").await;
    let before = a.state().await;
    sqlx::query("DELETE FROM sync_meta")
        .execute(&mut db)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.state().await.metadata.epoch == before.metadata.epoch {
        assert!(Instant::now() < deadline, "the old head still served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its versions go on above every revision the store holds: none is
    // given again.
    let three = a.add_provider("three").await;
    assert!(
        three["revision"].as_u64() > two["revision"].as_u64(),
        "{three} {two}"
    );
    let after = a.state().await;
    assert!(after.metadata.version > before.metadata.version);
    assert!(after.provider("two").is_some() && after.provider("three").is_some());
    a.stop().await;
}

#[tokio::test]
async fn a_client_ahead_of_its_instance_is_caught_up_to_not_sent_back() {
    use provider_sync_server::metrics::Metrics;
    use provider_sync_server::service::{Retention, Service};
    use provider_sync_server::store;
    let url = fresh_database(shared(), "ahead");
    let open = || async {
        let store = store::open(&url, store::OpenOptions::default())
            .await
            .unwrap();
        // No follower task: this instance moves only when asked to.
        Service::open(store, Retention::events(100), 16, Arc::new(Metrics::new()))
            .await
            .unwrap()
    };
    let a = open().await;
    let b = open().await;
    for id in ["p1", "p2"] {
        a.write(|d| {
            provider_sync_server::commands::create_provider(
                d,
                provider_sync_protocol::NewProvider {
                    id: id.into(),
                    name: id.into(),
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap();
    }
    let ahead = a.snapshot();
    assert_eq!(b.snapshot().version(), 0, "b has not followed");
    // A client of a (at version 2) comes to b.
    b.catch_up_to(Some(ahead.epoch()), ahead.version()).await;
    assert_eq!(b.snapshot().version(), 2);
    assert_eq!(
        b.snapshot().state.metadata.checksum,
        ahead.state.metadata.checksum
    );
    // Without an epoch (a client that never synced) nothing is read.
    a.write(|d| {
        provider_sync_server::commands::create_provider(
            d,
            provider_sync_protocol::NewProvider {
                id: "p3".into(),
                name: "p3".into(),
                ..Default::default()
            },
        )
    })
    .await
    .unwrap();
    b.catch_up_to(None, 3).await;
    assert_eq!(b.snapshot().version(), 2);
}

/// A write on one instance right after another acknowledged a change is
/// checked against that change, not against the instance's own copy, which
/// trails the store by the time its reader takes to apply it. Behind a
/// round-robin balancer they were refused: 404 for a model just created,
/// 412 for the revision just answered ("stale: the current revision is"
/// the one before), 409 for an id just deleted (found by a black-box run:
/// 59 of 100 deletes right after a create).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_checked_against_what_another_instance_acknowledged() {
    let url = fresh_database(shared(), "acknowledged");
    let a = TestServer::start(instance_config(&url)).await;
    let b = TestServer::start(instance_config(&url)).await;
    a.add_provider("p").await;
    // A write through `server`, with `If-Match: "<revision>"` when given: its
    // status and body.
    async fn write(
        server: &TestServer,
        method: Method,
        path: &str,
        revision: Option<&Value>,
        body: Value,
    ) -> (u16, Value) {
        let mut request = server.admin(method, path).json(&body);
        if let Some(revision) = revision {
            request = request.header(reqwest::header::IF_MATCH, format!("\"{revision}\""));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
    for i in 0..25 {
        let id = format!("m{i}");
        let path = format!("/models/{id}");
        let model = json!({"id": id, "name": "M", "provider_id": "p", "context_window": 10});
        let (status, body) = write(&a, Method::POST, "/models", None, model.clone()).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = write(&b, Method::PATCH, &path, None, json!({"name": "N"})).await;
        assert_eq!(status, 200, "{i}: a model just created elsewhere: {body}");
        // The revision one instance answered, in If-Match to the other, both
        // ways.
        let mut body = body;
        for (server, name) in [(&a, "O"), (&b, "P")] {
            let revision = body["revision"].clone();
            let (status, answer) = write(
                server,
                Method::PATCH,
                &path,
                Some(&revision),
                json!({"name": name}),
            )
            .await;
            assert_eq!(
                status, 200,
                "{i}: the revision just answered elsewhere: {answer}"
            );
            body = answer;
        }
        let deleted = a.admin(Method::DELETE, &path).send().await.unwrap();
        assert_eq!(deleted.status(), 204);
        let (status, body) = write(&b, Method::POST, "/models", None, model).await;
        assert_eq!(status, 201, "{i}: an id just deleted elsewhere: {body}");
    }
    // A write that changes nothing on one instance's copy is checked against
    // the store too: another instance may have acknowledged a change that
    // copy does not have yet (the first write's value then stood, and a
    // stale If-Match passed).
    let model = json!({"id": "same", "name": "M", "provider_id": "p", "context_window": 10});
    let (status, created) = write(&a, Method::POST, "/models", None, model).await;
    assert_eq!(status, 201, "{created}");
    let mut revision = created["revision"].clone();
    for i in 0..25 {
        let (status, body) = write(
            &a,
            Method::PATCH,
            "/models/same",
            None,
            json!({"name": "N"}),
        )
        .await;
        assert_eq!(status, 200, "{i}: {body}");
        let (status, body) = write(
            &b,
            Method::PATCH,
            "/models/same",
            Some(&revision),
            json!({"name": "M"}),
        )
        .await;
        assert_eq!(
            status, 412,
            "{i}: a revision another instance replaced: {body}"
        );
        let (status, body) = write(
            &b,
            Method::PATCH,
            "/models/same",
            None,
            json!({"name": "M"}),
        )
        .await;
        assert_eq!(status, 200, "{i}: {body}");
        assert_eq!(body["name"], "M", "{i}: {body}");
        revision = body["revision"].clone();
        let state: Value = b.get("/state").await.json().await.unwrap();
        let stored = state["all_models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == "same")
            .unwrap()
            .clone();
        assert_eq!(
            stored["name"], "M",
            "{i}: the last acknowledged write stands"
        );
        // Both instances at the same version before the next round.
        let head = revision.as_u64().unwrap();
        for _ in 0..200 {
            if a.version().await >= head {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    // A refusal that stands still is one: no model, no write.
    let before = b.version().await;
    let (status, _) = write(&b, Method::DELETE, "/models/no-such-model", None, json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(b.version().await, before);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_change_on_one_instance_leaves_if_match_to_another_as_it_was() {
    let (health_url, answer) = health_endpoint().await;
    answer.store(503, std::sync::atomic::Ordering::SeqCst);
    let url = fresh_database(shared(), "ifmatch");
    let instances = [
        TestServer::start(instance_config(&url)).await,
        TestServer::start(instance_config(&url)).await,
    ];
    let created = instances[0]
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "watched", "name": "Watched", "health_url": health_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let read: Value = created.json().await.unwrap();
    // Probes write only on the instance that holds the health role.
    let mut prober = None;
    for (i, instance) in instances.iter().enumerate() {
        probe_once(instance).await;
        if instance
            .state()
            .await
            .provider("watched")
            .unwrap()
            .status
            .as_str()
            == "unavailable"
        {
            prober = Some(i);
            break;
        }
    }
    let prober = prober.expect("one instance holds the health role");
    let other = &instances[1 - prober];
    wait_for_version(other, instances[prober].version().await).await;
    let seen = other.state().await.provider("watched").unwrap().clone();
    assert_eq!(
        seen.status.as_str(),
        "unavailable",
        "the other instance has the change"
    );
    // The instance that follows the log checks If-Match as the one that
    // probed would: the probe's change does not count.
    let patched = other
        .admin(Method::PATCH, "/providers/watched")
        .header(
            reqwest::header::IF_MATCH,
            format!("\"{}\"", read["revision"]),
        )
        .json(&json!({"priority": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200, "{}", patched.text().await.unwrap());
    for instance in instances {
        instance.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_postgresql_restores_into_an_empty_database_in_a_new_epoch() {
    let (health_url, answer) = health_endpoint().await;
    answer.store(503, std::sync::atomic::Ordering::SeqCst);
    let url = fresh_database(shared(), "backup");
    // Its own prober, if its first round comes after the provider exists,
    // reads the 503 as `probe_once` does.
    let mut settings = instance_config(&url);
    settings.health_allow_private = true;
    settings.health_failures = 1;
    let live = TestServer::start(settings).await;
    live.add_provider("p").await;
    live.add_model("m", "p").await;
    let created = live
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "watched", "name": "Watched", "health_url": health_url}))
        .send()
        .await
        .unwrap();
    let read: Value = created.json().await.unwrap();
    probe_once(&live).await;
    let before = live.state().await;
    assert_eq!(
        before.provider("watched").unwrap().status.as_str(),
        "unavailable"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pg-backup.db");
    let bin = env!("CARGO_BIN_EXE_provider-sync-server");
    let backup = std::process::Command::new(bin)
        .args(["backup", "--database", &url, out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        backup.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    live.stop().await;

    let target = fresh_database(shared(), "restored");
    let copy = std::process::Command::new(bin)
        .args([
            "store",
            "copy",
            "--from",
            out.to_str().unwrap(),
            "--to",
            &target,
        ])
        .output()
        .unwrap();
    assert_eq!(
        copy.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    // Its health probe finds the provider as the backup has it (one failed
    // answer is unavailable), so it writes nothing.
    let mut config = instance_config(&target);
    config.health_failures = 1;
    let restored = TestServer::start(config).await;
    let after = restored.state().await;
    assert_ne!(after.metadata.epoch, before.metadata.epoch, "a new epoch");
    assert_eq!(after.metadata.version, before.metadata.version);
    assert_eq!(after.metadata.checksum, before.metadata.checksum);
    let body = restored
        .sync(json!({"client_version": 1, "client_epoch": before.metadata.epoch}))
        .await;
    assert_eq!(body["sync_type"], "full", "{body}");
    // What If-Match accepts came along: the probe's change still does not
    // count.
    let patched = restored
        .admin(Method::PATCH, "/providers/watched")
        .header(
            reqwest::header::IF_MATCH,
            format!("\"{}\"", read["revision"]),
        )
        .json(&json!({"priority": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200, "{}", patched.text().await.unwrap());
    restored.stop().await;
}

/// An instance frozen in the middle of a write (a paused VM, a debugger)
/// holds the head row, which every instance's writes wait for, only so
/// long: PostgreSQL ends its transaction once it has sat idle for 15 s, and
/// another instance's write that waited goes through (it used to wait until
/// its request timed out: 504).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_held_up_by_a_frozen_instance_goes_through_once_it_is_ended() {
    use sqlx::Connection;
    let pg = shared();
    let url = fresh_database(pg, "frozen");
    let server = TestServer::start(instance_config(&url)).await;
    server.add_provider("before").await;
    // The frozen instance: its write's first statement, then nothing.
    let mut frozen = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut frozen).await.unwrap();
    sqlx::query(provider_sync_server::store::PostgresStore::HEAD_FOR_WRITE)
        .execute(&mut frozen)
        .await
        .unwrap();
    let response = server
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "held", "name": "Held"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(server.state().await.provider("held").is_some());
    // The frozen transaction was ended, its connection with it.
    assert!(sqlx::query("SELECT 1").execute(&mut frozen).await.is_err());
    server.stop().await;
}

/// Two instances on a fresh database (following every 100 ms) after three
/// providers were added through the first: both at version 3, that state,
/// and a connection to the database for the test's own statements.
async fn two_instances_at_three(
    name: &str,
) -> (TestServer, TestServer, SyncState, sqlx::PgConnection) {
    use sqlx::Connection;
    let url = fresh_database(shared(), name);
    let mut tuned = instance_config(&url);
    tuned.follow_interval_ms = 100;
    let a = TestServer::start(tuned.clone()).await;
    let b = TestServer::start(tuned).await;
    for id in ["one", "two", "three"] {
        a.add_provider(id).await;
    }
    wait_for_version(&b, 3).await;
    let state = b.state().await;
    let db = sqlx::PgConnection::connect(&url).await.unwrap();
    (a, b, state, db)
}

/// The store goes back in time under running instances (a restore from a
/// backup, a failover to a replica that lagged): they start a new epoch,
/// so no client keeps a version of the lost history as if the versions
/// given again later were its own (they kept the epoch, and a client at a
/// lost version was sent the new history's events from there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_gone_back_in_time_starts_a_new_epoch() {
    let (a, b, lost, mut db) = two_instances_at_three("rewound").await;
    // Each version's time is the same on both: when it was made, not when
    // each applied it.
    assert_eq!(
        a.state().await.metadata.server_time,
        lost.metadata.server_time
    );
    // The database as a backup taken at version 2 would have it.
    for statement in [
        "DELETE FROM providers WHERE id = 'three'",
        "DELETE FROM events WHERE version > 2",
        "UPDATE sync_meta SET version = 2 WHERE id = 1",
    ] {
        sqlx::query(statement).execute(&mut db).await.unwrap();
    }
    for instance in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let state = instance.state().await;
            if state.metadata.epoch != lost.metadata.epoch {
                assert!(state.provider("three").is_none());
                assert!(state.provider("two").is_some());
                break;
            }
            assert!(Instant::now() < deadline, "still on the old epoch");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // One new history between them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.state().await.metadata.epoch != b.state().await.metadata.epoch {
        assert!(Instant::now() < deadline, "two new epochs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A new change takes the next version in the new epoch; a client that
    // held version 3 of the lost history is sent a full state.
    a.add_provider("four").await;
    let held = json!({"client_version": 3, "client_epoch": lost.metadata.epoch});
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answer = b.sync(held.clone()).await;
    while answer["state"]["providers"]
        .as_array()
        .is_none_or(|p| p.len() != 3)
    {
        assert!(Instant::now() < deadline, "{answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = b.sync(held.clone()).await;
    }
    assert_eq!(answer["sync_type"], "full", "{answer}");
    assert_ne!(answer["epoch"], json!(lost.metadata.epoch));
    a.stop().await;
    b.stop().await;
}

/// The event log emptied by hand under running instances (`TRUNCATE
/// events`, the head row and the entities kept): ARCHITECTURE.md has a
/// wiped log start a new epoch. The instances find the head's own event
/// gone (no trim takes it), and one of them starts one new epoch for all;
/// the data stays, and a client of the old history is sent a full state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_log_wiped_under_running_instances_starts_a_new_epoch() {
    let (a, b, before, mut db) = two_instances_at_three("wipedlog").await;
    sqlx::query("TRUNCATE events")
        .execute(&mut db)
        .await
        .unwrap();
    let a_state = off_epoch(&a, vec![before.metadata.epoch.clone()]).await;
    let b_state = off_epoch(&b, vec![before.metadata.epoch.clone()]).await;
    assert_eq!(a_state.metadata.version, 3);
    assert_eq!(a_state.providers.len(), 3, "the data stays");
    // One new history between them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut b_epoch = b_state.metadata.epoch;
    while a.state().await.metadata.epoch != b_epoch {
        assert!(Instant::now() < deadline, "two new epochs");
        tokio::time::sleep(Duration::from_millis(100)).await;
        b_epoch = b.state().await.metadata.epoch;
    }
    let held = json!({"client_version": 3, "client_epoch": before.metadata.epoch});
    let answer = b.sync(held).await;
    assert_eq!(answer["sync_type"], "full", "{answer}");
    assert_eq!(answer["reason"], "epoch_mismatch", "{answer}");
    // Writes go on in the new epoch, and the other instance follows them.
    a.add_provider("four").await;
    wait_for_version(&b, 4).await;
    assert_eq!(b.state().await.metadata.epoch, b_epoch);
    a.stop().await;
    b.stop().await;
}

/// An epoch started by an instance of an earlier build during a rolling
/// deploy (its `start_epoch` knows nothing of `epoch_version`: a new epoch
/// and an empty log) is not taken for a wiped log by this build's
/// instances, which would start a second epoch at once (every client
/// taking the full state twice: found by a review). The migration's
/// trigger marks where any epoch began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epoch_started_by_an_earlier_build_is_adopted_once() {
    let (a, b, before, mut db) = two_instances_at_three("olderbuild").await;
    let mut tx = sqlx::Connection::begin(&mut db).await.unwrap();
    for statement in [
        "UPDATE sync_meta SET epoch = 'startedbyanolderbuild' WHERE id = 1",
        "DELETE FROM events",
    ] {
        sqlx::query(statement).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    for instance in [&a, &b] {
        let state = off_epoch(instance, vec![before.metadata.epoch.clone()]).await;
        assert_eq!(state.metadata.epoch, "startedbyanolderbuild");
        assert_eq!(state.metadata.version, 3);
    }
    a.add_provider("four").await;
    wait_for_version(&b, 4).await;
    assert_eq!(b.state().await.metadata.epoch, "startedbyanolderbuild");
    a.stop().await;
    b.stop().await;
}

/// The log wiped, then a write at once, before any instance's follower
/// looked: the write is not taken in the old epoch (it would leave the log
/// holding the head's event again, and the wipe unseen); the writer finds
/// the log wiped, starts the new epoch and writes in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_just_after_the_log_was_wiped_lands_in_a_new_epoch() {
    use sqlx::Connection;
    let url = fresh_database(shared(), "wipedwrite");
    let mut slow = instance_config(&url);
    // Followers that only a notification wakes (a wipe sends none).
    slow.follow_interval_ms = 600_000;
    let a = TestServer::start(slow).await;
    for id in ["one", "two", "three"] {
        a.add_provider(id).await;
    }
    let before = a.state().await.metadata;
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM events")
        .execute(&mut db)
        .await
        .unwrap();
    a.add_provider("four").await;
    let state = a.state().await;
    assert_ne!(
        state.metadata.epoch, before.epoch,
        "written in the wiped epoch"
    );
    assert_eq!(state.metadata.version, 4);
    assert_eq!(state.providers.len(), 4);
    a.stop().await;
}

/// The instance's state once its epoch is none of `from`.
async fn off_epoch(instance: &TestServer, from: Vec<String>) -> SyncState {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = instance.state().await;
        if !from.contains(&state.metadata.epoch) {
            return state;
        }
        assert!(Instant::now() < deadline, "still on {from:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The same backup restored twice under running instances (found by a
/// black-box check, 2026-12-03): the first restore started a new epoch;
/// the second brought back the backup's own epoch at its version, which
/// the instances took as another store's history and adopted, so the
/// versions after it were given out twice in that epoch (a client that
/// held one of the first was sent `none`, or the second's events on top).
/// They remember the epochs they left and how far they got in each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_backup_restored_twice_starts_a_new_epoch_each_time() {
    let (a, b, first, mut db) = two_instances_at_three("restored_twice").await;
    // The database as a backup taken at version 2 has it, in its epoch.
    let restore = |epoch: String| {
        [
            "DELETE FROM providers WHERE id NOT IN ('one', 'two')".to_owned(),
            "DELETE FROM events WHERE version > 2".to_owned(),
            format!("UPDATE sync_meta SET version = 2, epoch = '{epoch}' WHERE id = 1"),
        ]
    };
    for statement in restore(first.metadata.epoch.clone()) {
        sqlx::query(&statement).execute(&mut db).await.unwrap();
    }
    let second = off_epoch(&a, vec![first.metadata.epoch.clone()]).await;
    off_epoch(&b, vec![first.metadata.epoch.clone()]).await;
    a.add_provider("four").await;
    wait_for_version(&b, 3).await;

    // The same backup again: its epoch is the first one, at version 2.
    for statement in restore(first.metadata.epoch.clone()) {
        sqlx::query(&statement).execute(&mut db).await.unwrap();
    }
    let left = vec![first.metadata.epoch.clone(), second.metadata.epoch.clone()];
    for instance in [&a, &b] {
        let third = off_epoch(instance, left.clone()).await;
        assert!(third.provider("three").is_none() && third.provider("four").is_none());
    }
    // Written on again to version 3: a client that held version 3 of the
    // first history is sent a full state, not `none`.
    a.add_provider("five").await;
    let held = json!({"client_version": 3, "client_epoch": first.metadata.epoch});
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = b.sync(held.clone()).await;
        if answer["sync_type"] == "full"
            && answer["state"]["providers"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["id"] == "five"))
        {
            assert!(!left.contains(&answer["epoch"].as_str().unwrap().to_owned()));
            break;
        }
        assert!(Instant::now() < deadline, "{answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.stop().await;
    b.stop().await;
}

/// The same backup restored twice, and written on again to the version the
/// instances had reached in its epoch before they read it (an instance
/// started after the first restore remembers nothing of that history, and
/// takes the store as it finds it): the version is where they left the
/// epoch, but its event is another. They took it as the history they had
/// left (a client holding that version of the first history was sent
/// `none`); they now compare the event there and start a new epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_left_epoch_written_on_again_to_where_it_was_left_starts_a_new_epoch() {
    use sqlx::Connection;
    let (a, b, first, mut db) = two_instances_at_three("left_written_on").await;
    let (event, provider): (String, String) = sqlx::query_as(
        "SELECT e.body, p.body FROM events e, providers p WHERE e.version = 3 AND p.id = 'three'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    let restore = |epoch: &str, to: u64| {
        let mut statements = vec![
            "DELETE FROM providers WHERE id NOT IN ('one', 'two')".to_owned(),
            "DELETE FROM events WHERE version > 2".to_owned(),
            format!("UPDATE sync_meta SET version = {to}, epoch = '{epoch}' WHERE id = 1"),
        ];
        if to == 3 {
            // Version 3 again, another change: `other`, not `three`.
            let [event, provider] = [&event, &provider]
                .map(|body| body.replace("\"three\"", "\"other\"").replace('\'', "''"));
            assert!(event.contains("\"other\"") && provider.contains("\"other\""));
            statements.push(format!(
                "INSERT INTO providers (id, revision, body) VALUES ('other', 3, '{provider}')"
            ));
            statements.push(format!(
                "INSERT INTO events (version, body, bytes) VALUES (3, '{event}', octet_length('{event}'))"
            ));
        }
        statements
    };
    for statement in restore(&first.metadata.epoch, 2) {
        sqlx::query(&statement).execute(&mut db).await.unwrap();
    }
    let second = off_epoch(&a, vec![first.metadata.epoch.clone()]).await;
    off_epoch(&b, vec![first.metadata.epoch.clone()]).await;
    // Both remember the first epoch at version 3. The backup again, and
    // version 3 written in one transaction, so that no instance sees it at 2.
    let mut tx = db.begin().await.unwrap();
    for statement in restore(&first.metadata.epoch, 3) {
        sqlx::query(&statement).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let left = vec![first.metadata.epoch.clone(), second.metadata.epoch.clone()];
    for instance in [&a, &b] {
        let third = off_epoch(instance, left.clone()).await;
        assert!(third.provider("other").is_some() && third.provider("three").is_none());
    }
    // A client holding version 3 of the first history is sent the state.
    let held = json!({"client_version": 3, "client_epoch": first.metadata.epoch});
    let answer = b.sync(held).await;
    assert_eq!(answer["sync_type"], "full", "{answer}");
    assert!(!left.contains(&answer["epoch"].as_str().unwrap().to_owned()));
    a.stop().await;
    b.stop().await;
}

/// The store goes back in time and another instance writes on it up to and
/// past a running instance's version before that one reads it (a failover
/// while it could not reach the store, then a fresh instance's writes): the
/// events from its version on are another history. It applied them on top
/// of its own (the lost history's provider kept, the new history's first
/// change missed, under the same versions as the others); it now takes the
/// store's state, in a new epoch, so that no client keeps a mixed state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_gone_back_and_written_on_past_an_instance_is_another_history() {
    use sqlx::Connection;
    let pg = shared();
    let url = fresh_database(pg, "diverged");
    // Only a notification wakes it: it does not poll the store meanwhile.
    let mut asleep = instance_config(&url);
    asleep.follow_interval_ms = 3_600_000;
    let a = TestServer::start(asleep).await;
    for id in ["one", "two", "three"] {
        a.add_provider(id).await;
    }
    let lost = a.state().await;
    assert_eq!(lost.metadata.version, 3);
    // The database as a backup taken at version 2 would have it.
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    for statement in [
        "DELETE FROM providers WHERE id = 'three'",
        "DELETE FROM events WHERE version > 2",
        "UPDATE sync_meta SET version = 2 WHERE id = 1",
    ] {
        sqlx::query(statement).execute(&mut db).await.unwrap();
    }
    // A new instance on the store as restored writes versions 3 and 4.
    let c = TestServer::start(instance_config(&url)).await;
    c.add_provider("four").await;
    c.add_provider("five").await;
    let ids = |state: &SyncState| {
        let mut ids: Vec<String> = state.providers.iter().map(|p| p.id.clone()).collect();
        ids.sort();
        ids
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (held, store) = (a.state().await, c.state().await);
        if held.metadata.epoch != lost.metadata.epoch
            && held.metadata.epoch == store.metadata.epoch
            && ids(&held) == ids(&store)
        {
            assert_eq!(ids(&held), ["five", "four", "one", "two"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the instance kept {:?} at version {} of epoch {} (the lost one: {}); the store has {:?}",
            ids(&held),
            held.metadata.version,
            held.metadata.epoch,
            held.metadata.epoch == lost.metadata.epoch,
            ids(&store)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A client holding version 3 of the lost history is sent a full state.
    let answer = a
        .sync(json!({"client_version": 3, "client_epoch": lost.metadata.epoch}))
        .await;
    assert_eq!(answer["sync_type"], "full", "{answer}");
    a.stop().await;
    c.stop().await;
}

/// A catalog edit made while the store cannot be reached is applied once it
/// A catalog edit made while the store cannot be reached is applied once it
/// can (it was dropped: the served catalog stayed behind the file until the
/// next edit, SIGHUP or restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_edit_made_during_an_outage_lands_when_the_store_is_back() {
    let pg = PgServer::start();
    let url = pg.database("edit_in_outage");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.toml");
    std::fs::write(
        &file,
        format!("revision = 1\n{}", CATALOG.replace("PRIORITY", "10")),
    )
    .unwrap();
    let mut config = instance_config(&url);
    config.catalog = Some(file.clone());
    config.catalog_watch = true;
    config.follow_interval_ms = 100;
    let server = TestServer::start(config).await;
    assert_eq!(server.state().await.provider("alpha").unwrap().priority, 10);

    pg.stop_immediate();
    std::fs::write(
        &file,
        format!("revision = 2\n{}", CATALOG.replace("PRIORITY", "20")),
    )
    .unwrap();
    // The reload fails: counted as such, not as a refused file.
    let failed = "provider_sync_catalog_reloads_total{result=\"failed\"}";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = server.get("/metrics").await.text().await.unwrap();
        if metrics
            .lines()
            .any(|l| l.starts_with(failed) && !l.ends_with(" 0"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no failed reload counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pg.start_again();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let answer = server.get("/providers/alpha").await;
        if answer.status() == 200 {
            let provider: Value = answer.json().await.unwrap();
            if provider["priority"] == 20 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the edit never landed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop().await;
}

/// Sets a provider's priority; the status if the write was refused.
async fn refused_priority(server: &TestServer, id: &str, priority: i64) -> Option<u16> {
    let answer = server
        .admin(Method::PATCH, &format!("/providers/{id}"))
        .json(&json!({ "priority": priority }))
        .send()
        .await
        .unwrap();
    (!answer.status().is_success()).then(|| answer.status().as_u16())
}

/// Two instances, each with a client writing one change after another to
/// its own provider: every write is acknowledged. A write that lost the
/// head row to the other instance was tried again on the state from before
/// its pause, lost again to the steady writer, and after twenty tries was
/// answered 503 (about 1 write in 100).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_writers_on_two_instances_all_get_through() {
    let url = fresh_database(shared(), "steady");
    let a = TestServer::start(instance_config(&url)).await;
    let b = TestServer::start(instance_config(&url)).await;
    a.add_provider("pa").await;
    b.add_provider("pb").await;
    let writer = async |server: &TestServer, id: &'static str| {
        let mut refused = Vec::new();
        for priority in 1..=150 {
            refused.extend(refused_priority(server, id, priority).await);
        }
        refused
    };
    let (on_a, on_b) = tokio::join!(writer(&a, "pa"), writer(&b, "pb"));
    assert!(
        on_a.is_empty() && on_b.is_empty(),
        "refused: {on_a:?} {on_b:?}"
    );
    let version = a.version().await.max(b.version().await);
    assert_eq!(version, 302, "every write one version");
    a.stop().await;
    b.stop().await;
}

/// One instance written back to back (eight requests at a time), another
/// written now and then: each of the second's writes loses its first try to
/// the first's commits, and its next try, made in the cluster's write turn,
/// cannot lose again. Without the turn, each next try raced a commit every
/// millisecond or so and lost most of them: writes answered 503 after 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_gets_through_while_another_instance_writes_back_to_back() {
    let url = fresh_database(shared(), "turn");
    let a = TestServer::start(instance_config(&url)).await;
    let b = TestServer::start(instance_config(&url)).await;
    a.add_provider("pa").await;
    b.add_provider("pb").await;
    let busy = std::sync::atomic::AtomicBool::new(true);
    let stream = |n: i64| {
        let (b, busy) = (&b, &busy);
        async move {
            let mut refused = Vec::new();
            let mut priority = n * 10_000;
            while busy.load(std::sync::atomic::Ordering::Relaxed) {
                priority += 1;
                refused.extend(refused_priority(b, "pb", priority).await);
            }
            refused
        }
    };
    let streams = futures_util::future::join_all((0..8).map(stream));
    let occasional = async {
        let mut refused = Vec::new();
        for priority in 1..=40 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            refused.extend(refused_priority(&a, "pa", priority).await);
        }
        busy.store(false, std::sync::atomic::Ordering::Relaxed);
        refused
    };
    let (on_b, on_a) = tokio::join!(streams, occasional);
    assert_eq!(on_a, Vec::<u16>::new(), "the occasional writer refused");
    assert!(
        on_b.iter().all(Vec::is_empty),
        "the busy writer refused: {on_b:?}"
    );
    let state = a.state().await;
    let pa = state.providers.iter().find(|p| p.id == "pa").unwrap();
    assert_eq!(pa.priority, 40, "the occasional writer's last write");
    // The tries lost to the other instance are counted (hundreds here).
    let conflicts = metric(&a, "provider_sync_write_conflicts_total").await
        + metric(&b, "provider_sync_write_conflicts_total").await;
    eprintln!("write conflicts: {conflicts}");
    assert!(conflicts >= 1.0);
    a.stop().await;
    b.stop().await;
}

/// The database dropped under a running instance: a write is refused as
/// unavailable (503, `Retry-After`), not as an internal error (500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_to_a_dropped_database_is_refused_as_unavailable() {
    use sqlx::Connection;
    let url = fresh_database(shared(), "dropped");
    let a = TestServer::start(instance_config(&url)).await;
    a.add_provider("one").await;
    let name = url.rsplit('/').next().unwrap().to_owned();
    let mut admin = sqlx::PgConnection::connect(&shared().url("postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    refused_as_unavailable(&a, "two").await;
    a.stop().await;
}

/// A provider `id` written through `a` is refused as unavailable: `503
/// store_unavailable` with `Retry-After`, not acknowledged.
async fn refused_as_unavailable(a: &TestServer, id: &str) {
    let refused = a
        .admin(Method::POST, "/providers")
        .json(&json!({"id": id, "name": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
}

/// A TCP proxy to PostgreSQL that, once armed, swallows the next `COMMIT` a
/// client sends (the statements before it are prepared once per connection
/// and named afterwards, so a write's cannot be told from a read's by their
/// text: the test keeps the instance's follower from reading meanwhile)
/// and leaves that connection silent both ways from then on:
/// open, no bytes, no reset (a network that drops its packets, a failover
/// that leaves it hanging). Every other connection goes on working, so the
/// instance's pings and reads still succeed.
struct CommitSwallower {
    port: u16,
    armed: Arc<std::sync::atomic::AtomicBool>,
    swallowed: Arc<std::sync::atomic::AtomicUsize>,
    /// Every `COMMIT` seen, and when the last one went through.
    commits: Arc<std::sync::Mutex<(usize, Instant)>>,
}

impl CommitSwallower {
    fn start(target: u16) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let swallowed = Arc::new(AtomicUsize::new(0));
        let commits = Arc::new(std::sync::Mutex::new((0, Instant::now())));
        let (arm, count, seen) = (armed.clone(), swallowed.clone(), commits.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let silent = Arc::new(AtomicBool::new(false));
                let up = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let watch = Some((arm.clone(), count.clone(), seen.clone()));
                std::thread::spawn({
                    let silent = silent.clone();
                    move || pipe(up.0, up.1, &silent, watch)
                });
                std::thread::spawn(move || pipe(server, client, &silent, None));
            }
        });
        Self {
            port,
            armed,
            swallowed,
            commits,
        }
    }

    /// Waits until at least `count` commits went through and none for a
    /// second (the instance's follower reads once at start and once for
    /// each notification, and commits each read).
    async fn quiet_after(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (seen, last) = *self.commits.lock().unwrap();
            if seen >= count && last.elapsed() >= Duration::from_secs(1) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{seen} commits, the last {:?} ago",
                last.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What a client's side of the proxy watches: whether it is armed, the
/// commits it swallowed, and the count and time of the others.
type Watch = (
    Arc<std::sync::atomic::AtomicBool>,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::Mutex<(usize, Instant)>>,
);

/// Copies `from` to `to` until either ends; once `silent`, reads and drops.
/// `watch`: this is a client's side, and an armed proxy swallows its next
/// `COMMIT`.
fn pipe(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    silent: &std::sync::atomic::AtomicBool,
    watch: Option<Watch>,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering::SeqCst;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((armed, swallowed, commits)) = &watch
            && buf[..n].windows(6).any(|w| w == b"COMMIT")
        {
            if armed.swap(false, SeqCst) {
                silent.store(true, SeqCst);
                swallowed.fetch_add(1, SeqCst);
            } else {
                let mut commits = commits.lock().unwrap();
                *commits = (commits.0 + 1, Instant::now());
            }
        }
        if silent.load(SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    if !silent.load(SeqCst) {
        let _ = to.shutdown(std::net::Shutdown::Both);
    }
}

/// A commit whose connection goes silent is given up: the write is answered
/// 503, not acknowledged, after the commit's time limit, and the writer lock
/// is let go, so the next write goes through on another connection. It
/// waited for as long as TCP takes to give up (many minutes: here the
/// request's 30 s limit answered 504), every write and the following of the
/// log behind it, while the instance's pings, on its other connections,
/// said the store answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_on_a_connection_gone_silent_is_given_up_and_writes_go_on() {
    use std::sync::atomic::Ordering::SeqCst;
    let url = fresh_database(shared(), "silent");
    let proxy = CommitSwallower::start(shared().port());
    let through = url.replacen(
        &format!(":{}/", shared().port()),
        &format!(":{}/", proxy.port),
        1,
    );
    assert_ne!(through, url);
    let mut config = instance_config(&through);
    // The follower reads (and commits) only when woken: as its listener
    // starts, and by the first write's notification, before the proxy is
    // armed.
    config.follow_interval_ms = 3_600_000;
    let a = TestServer::start(config).await;
    a.add_provider("one").await;
    // The write's commit and the follower's reads.
    proxy.quiet_after(2).await;
    proxy.armed.store(true, SeqCst);
    let started = Instant::now();
    let lost = a
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "two", "name": "two"}))
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(
        proxy.swallowed.load(SeqCst),
        1,
        "the write's COMMIT was swallowed"
    );
    assert_eq!(lost.status(), 503, "after {waited:?}");
    let body: Value = lost.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    // A write past its limit says nothing of the store (it may have waited
    // for another instance's long commit): reads go on.
    assert_eq!(a.get("/state").await.status(), 200);
    // The writer lock was let go.
    a.add_provider("three").await;
    let state = a.state().await;
    assert!(state.provider("one").is_some() && state.provider("three").is_some());
    assert!(state.provider("two").is_none(), "never committed");
    a.stop().await;
}

/// A prober that lost its role and writes its round late, from a snapshot
/// older than a provider the instance probing now added, leaves that
/// provider's newer reading in place; a provider no longer probed (its
/// reading older than the round's) loses its row.
#[tokio::test]
async fn a_late_prober_leaves_the_newer_readings_of_providers_it_did_not_read() {
    use provider_sync_protocol::ProviderHealth;
    use provider_sync_server::store::{PostgresStore, SharedReading, Store};
    let store = PostgresStore::open(&fresh_database(shared(), "late_prober"))
        .await
        .unwrap();
    let reading = |id: &str, at: &str| SharedReading {
        provider_id: id.into(),
        url: format!("http://127.0.0.1:9/{id}"),
        health: ProviderHealth {
            last_check: Some(at.into()),
            latency_ms: Some(5),
            error_rate: 0.0,
            consecutive_failures: 0,
            message: None,
        },
    };
    // The instance probing now: `old` (no longer probed after this), and
    // `added` (a provider the late prober's snapshot does not hold).
    store
        .share_readings(&[
            reading("old", "2026-12-01T00:00:00.000Z"),
            reading("kept", "2026-12-01T00:00:10.000Z"),
            reading("added", "2026-12-01T00:00:10.000Z"),
        ])
        .await
        .unwrap();
    // The late one, whose round read `kept` before the other's last did.
    store
        .share_readings(&[reading("kept", "2026-12-01T00:00:05.000Z")])
        .await
        .unwrap();
    let mut rows: Vec<_> = store
        .readings()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.provider_id, r.health.last_check.unwrap()))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("added".to_string(), "2026-12-01T00:00:10.000Z".to_string()),
            ("kept".to_string(), "2026-12-01T00:00:10.000Z".to_string()),
        ],
        "the late round neither removed `added` nor set `kept` back; `old`, read before it, is gone"
    );
}
