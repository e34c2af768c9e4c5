//! A real server on 127.0.0.1:0 over a SQLite file in a temporary directory,
//! with an HTTP client and WebSocket helpers.

#![allow(dead_code, unreachable_pub)]

pub mod pg;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use provider_sync_protocol::{EventPayload, SyncEvent, SyncState};
use provider_sync_server::{Config, RunningServer};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The admin token of the test servers (`--admin-token`: the audit log
/// calls its holder `admin`).
pub const TOKEN: &str = "test-admin-token-of-at-least-32-bytes";

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub fn config(db: &Path) -> Config {
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".parse().unwrap();
    // PROVIDER_SYNC_TEST_STORE=postgres runs the same suite on PostgreSQL:
    // one database per path, so a restart finds the same store.
    config.database = if pg::selected() {
        pg::database_for(db)
    } else {
        db.display().to_string()
    };
    config.store_lock_timeout_ms = 5_000;
    config.follow_interval_ms = 200;
    config.admin_token = Some(TOKEN.into());
    config.heartbeat_ms = 60_000;
    config.health_interval_ms = 3_600_000;
    // No background compression of large test states (its own test sets it).
    config.precompress_after_ms = 3_600_000;
    // Suites that write hundreds of times a second from one address; the
    // limits have tests of their own (`limits.rs`).
    config.read_rate_limit = 0;
    config.admin_rate_limit = 0;
    config
}

pub struct TestServer {
    pub server: RunningServer,
    pub base: String,
    pub http: reqwest::Client,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        let server = provider_sync_server::start(config)
            .await
            .expect("server starts");
        let base = server.base_url();
        Self {
            server,
            base,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("{}/ws{query}", self.base.replacen("http://", "ws://", 1))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn state(&self) -> SyncState {
        self.get("/state").await.json().await.unwrap()
    }

    /// `GET /state` with a bearer token (a server with read tokens).
    pub async fn state_with(&self, token: &str) -> SyncState {
        let response = self
            .http
            .get(self.url("/state"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn version(&self) -> u64 {
        let v: Value = self.get("/version").await.json().await.unwrap();
        v["version"].as_u64().unwrap()
    }

    pub async fn sync(&self, body: Value) -> Value {
        let response = self
            .http
            .post(self.url("/sync"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// An admin request with the token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(&format!("/admin{path}")))
            .bearer_auth(TOKEN)
    }

    pub async fn add_provider(&self, id: &str) -> Value {
        let response = self
            .admin(reqwest::Method::POST, "/providers")
            .json(&json!({ "id": id, "name": id }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    pub async fn add_model(&self, id: &str, provider_id: &str) -> Value {
        let response = self
            .admin(reqwest::Method::POST, "/models")
            .json(&json!({ "id": id, "name": id.to_uppercase(), "provider_id": provider_id, "context_window": 8192 }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    pub async fn connect(&self, query: &str) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(self.ws_url(query))
            .await
            .expect("websocket connects");
        ws
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// The next text frame as an event; fails after five seconds.
pub async fn next_event<S>(ws: &mut WebSocketStream<S>) -> SyncEvent
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    next_event_within(ws, Duration::from_secs(5)).await
}

/// The next text frame as an event; fails after `within`.
pub async fn next_event_within<S>(ws: &mut WebSocketStream<S>, within: Duration) -> SyncEvent
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let message = tokio::time::timeout(within, ws.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a valid frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("a SyncEvent"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The next event that is not a heartbeat.
pub async fn next_non_heartbeat<S>(ws: &mut WebSocketStream<S>) -> SyncEvent
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let event = next_event(ws).await;
        if !matches!(event.payload, EventPayload::Heartbeat(_)) {
            return event;
        }
    }
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

/// The server binary with `args` (a loopback port of its own is added), once
/// it listens: its process and its API base URL.
pub fn spawn_binary(args: &[&str]) -> (std::process::Child, String) {
    spawn_binary_with(args, &[], std::process::Stdio::null())
}

/// `spawn_binary` with environment variables and somewhere for its log.
pub fn spawn_binary_with(
    args: &[&str],
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> (std::process::Child, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_provider-sync-server"));
    command.args(args).envs(env.iter().copied()).stderr(stderr);
    spawn_listening(command)
}

/// Starts `command` (the server binary, or a shell that runs it) on a port
/// of its choosing (`--bind 127.0.0.1:0` added) and waits until it says it
/// listens: the child and its base URL.
pub fn spawn_listening(mut command: std::process::Command) -> (std::process::Child, String) {
    let mut child = command
        .args(["--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = listening_at(&mut child);
    (child, base)
}

/// Waits until a server started with its standard output piped says it
/// listens: its base URL.
pub fn listening_at(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("provider-sync-server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

/// The `host:port` of a base URL (`http://127.0.0.1:1234/api/provider-sync`).
pub fn host_of(base: &str) -> String {
    base.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

/// A child process that is killed when dropped, so that a failing test
/// leaves no server behind.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server binary with `args` and `env`, for a start that must be
/// refused: its exit code and what it printed on stderr. Fails if it starts
/// listening instead.
pub fn refused_start(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    use std::io::{BufRead, Read};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_provider-sync-server"))
        .args(["--bind", "127.0.0.1:0"])
        .args(args)
        .env_remove("PROVIDER_SYNC_ADMIN_TOKEN")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if !line.is_empty() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the server started: {line:?}");
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), stderr)
}

/// A token file (`name:token` lines) in `dir`.
pub fn tokens_file(dir: &Path, name: &str, lines: &[(&str, &str)]) -> PathBuf {
    let path = dir.join(name);
    let text: String = lines
        .iter()
        .map(|(name, token)| format!("{name}:{token}\n"))
        .collect();
    std::fs::write(&path, format!("# tokens for the tests\n\n{text}")).unwrap();
    path
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A server on `db` with the catalog file `catalog`.
pub async fn with_catalog(db: &Path, catalog: &Path) -> TestServer {
    let mut config = config(db);
    config.catalog = Some(catalog.to_owned());
    TestServer::start(config).await
}

/// Runs `statement` on the store at `db` as a hand edit of the database
/// would (`sqlite3`, `psql`).
pub async fn edit_store(db: &Path, statement: &str) {
    use sqlx::Connection;
    if pg::selected() {
        let mut conn = sqlx::PgConnection::connect(&pg::database_for(db))
            .await
            .unwrap();
        sqlx::query(statement).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    } else {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        sqlx::query(statement).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
}

/// Removes the store at `db` (its files, or its PostgreSQL database).
pub fn wipe_store(db: &Path) {
    if pg::selected() {
        pg::drop_database_for(db);
    } else {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
}

/// A provider health endpoint on loopback whose answer (an HTTP status) the
/// test controls: its URL and the answer.
pub async fn health_endpoint() -> (String, std::sync::Arc<std::sync::atomic::AtomicU16>) {
    use std::sync::atomic::{AtomicU16, Ordering};
    let answer = std::sync::Arc::new(AtomicU16::new(200));
    let shared = answer.clone();
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(move || {
            let code = shared.load(Ordering::SeqCst);
            async move { axum::http::StatusCode::from_u16(code).unwrap() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/health"), answer)
}

/// Probes the monitored providers of `server` once, as its health task does
/// on each tick: one failed answer makes a provider unavailable, and no
/// answer is slow enough to make it degraded.
pub async fn probe_once(server: &TestServer) {
    use provider_sync_server::health::{HealthBoard, ProbeSettings, probe_all};
    let settings = ProbeSettings {
        interval: Duration::from_secs(3600),
        timeout: Duration::from_secs(30),
        degraded_after: Duration::from_secs(30),
        failures: 1,
        // The stand-in endpoints listen on loopback.
        allow_private: true,
    };
    probe_all(
        server.server.service(),
        &HealthBoard::default(),
        &reqwest::Client::new(),
        &settings,
    )
    .await;
}

/// A fresh temporary directory with the database path inside it.
pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    (dir, db)
}

impl TestServer {
    /// Adds a provider with a large capability list, so that the state
    /// outweighs a handful of events and `/sync` answers incrementally (it
    /// sends the full state when that is smaller).
    pub async fn add_ballast(&self) {
        // As many capabilities as a provider may list, each as long as it may be.
        let capabilities: Vec<String> = (0..64)
            .map(|i| format!("{i:03}-{}", "c".repeat(60)))
            .collect();
        let response = self
            .admin(reqwest::Method::POST, "/providers")
            .json(&json!({ "id": "ballast", "name": "Ballast", "capabilities": capabilities }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
}
