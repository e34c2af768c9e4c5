//! A real `provider-sync-server` for tests that cannot start processes
//! themselves (a browser page), plus a small control service beside it.
//!
//! It prints `SERVER_URL=…` and `CONTROL_URL=…` once both listen, then runs
//! until it gets SIGTERM or Ctrl-C. Control endpoints (CORS open, loopback
//! only): `POST /stop`, `POST /start` (same port, same store), `POST /wipe`
//! (delete the store and start again: a new epoch), `POST /read-limit/N`
//! (restart with `--read-rate-limit N`; 0, the start's setting, is none),
//! `GET /status`, and `GET /hang/…`, which answers only after a minute; with
//! `--static-dir`, it serves that directory too.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use clap::Parser;
use provider_sync_server::{Config, RunningServer};
use serde_json::json;
use tokio::sync::Mutex;
use tower_http::cors::CorsLayer;

#[derive(Debug, Parser)]
struct Args {
    /// Catalog to seed the store with.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Admin token of the server.
    #[arg(long, default_value = "testbed-admin-token-of-32-bytes-or-more")]
    admin_token: String,
    /// Named read tokens (`name:token` lines): the read API and the
    /// WebSocket then need one.
    #[arg(long)]
    read_tokens_file: Option<PathBuf>,
    /// Server heartbeat, ms.
    #[arg(long, default_value_t = 500)]
    heartbeat_ms: u64,
    /// Frames queued per WebSocket before a session falls behind (then it is
    /// caught up from the log, or told to resync past it).
    #[arg(long, default_value_t = 256)]
    ws_queue: usize,
    /// Events kept in the log: a session that falls further behind its queue
    /// than this is told to resync (within it, it is caught up from the log).
    #[arg(long, default_value_t = 1000)]
    event_retention: u64,
    /// A directory the control service serves at `/`: pages that must stay
    /// reachable while the server is stopped.
    #[arg(long)]
    static_dir: Option<PathBuf>,
}

struct Bed {
    config: Config,
    dir: tempfile::TempDir,
    server: Option<RunningServer>,
}

type Shared = Arc<Mutex<Bed>>;

impl Bed {
    async fn start(&mut self) -> Result<(), String> {
        if self.server.is_none() {
            let server = provider_sync_server::start(self.config.clone())
                .await
                .map_err(|e| e.to_string())?;
            // Restarts reuse the first port, so clients find it again.
            self.config.bind = server.addr();
            self.server = Some(server);
        }
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    async fn wipe(&mut self) -> Result<(), String> {
        self.stop().await;
        for entry in std::fs::read_dir(self.dir.path()).map_err(|e| e.to_string())? {
            std::fs::remove_file(entry.map_err(|e| e.to_string())?.path())
                .map_err(|e| e.to_string())?;
        }
        self.start().await
    }
}

async fn answer(result: Result<(), String>, bed: &Bed) -> axum::Json<serde_json::Value> {
    axum::Json(json!({
        "ok": result.is_ok(),
        "error": result.err(),
        "running": bed.server.is_some(),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".parse()?;
    config.database = dir.path().join("testbed.db").display().to_string();
    config.catalog = args.catalog.clone();
    config.admin_token = Some(args.admin_token);
    config.read_tokens_file = args.read_tokens_file;
    config.heartbeat_ms = args.heartbeat_ms;
    config.client_timeout_ms = args.heartbeat_ms * 20;
    config.ws_queue = args.ws_queue;
    config.event_retention = args.event_retention;
    config.health_interval_ms = 3_600_000;
    // The suites run many clients and writes from one loopback address in
    // little time: no per-address rate limits here (the server's own tests
    // check the limits).
    config.read_rate_limit = 0;
    config.admin_rate_limit = 0;
    let mut bed = Bed {
        config,
        dir,
        server: None,
    };
    bed.start().await?;
    let server_url = bed
        .server
        .as_ref()
        .map(|s| s.base_url())
        .unwrap_or_default();
    let bed: Shared = Arc::new(Mutex::new(bed));

    let control = Router::new()
        .route(
            "/stop",
            post(|State(bed): State<Shared>| async move {
                let mut bed = bed.lock().await;
                bed.stop().await;
                answer(Ok(()), &bed).await
            }),
        )
        .route(
            "/start",
            post(|State(bed): State<Shared>| async move {
                let mut bed = bed.lock().await;
                let started = bed.start().await;
                answer(started, &bed).await
            }),
        )
        .route(
            "/wipe",
            post(|State(bed): State<Shared>| async move {
                let mut bed = bed.lock().await;
                let wiped = bed.wipe().await;
                answer(wiped, &bed).await
            }),
        )
        // The server again with another per-address read limit (requests a
        // second): for tests of 429 and Retry-After.
        .route(
            "/read-limit/{per_second}",
            post(
                |State(bed): State<Shared>, Path(per_second): Path<u32>| async move {
                    let mut bed = bed.lock().await;
                    bed.stop().await;
                    bed.config.read_rate_limit = per_second;
                    let started = bed.start().await;
                    answer(started, &bed).await
                },
            ),
        )
        // Never answers in time: for tests of request deadlines.
        .route(
            "/hang/{*rest}",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                "too late"
            }),
        )
        .route(
            "/status",
            get(|State(bed): State<Shared>| async move {
                let bed = bed.lock().await;
                answer(Ok(()), &bed).await
            }),
        )
        .layer(CorsLayer::permissive())
        .with_state(bed.clone());
    let control = match &args.static_dir {
        Some(dir) => control.fallback_service(tower_http::services::ServeDir::new(dir)),
        None => control,
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let control_url = format!("http://{}", listener.local_addr()?);
    // Caught before the URLs are printed (a test may signal at once).
    let mut signals = provider_sync_server::shutdown::OsSignals::new();
    println!("SERVER_URL={server_url}");
    println!("CONTROL_URL={control_url}");
    tokio::spawn(async move {
        let _ = axum::serve(listener, control).await;
    });

    signals.recv().await;
    bed.lock().await.stop().await;
    Ok(())
}
