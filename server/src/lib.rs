//! The provider-sync server: the authoritative copy of an AI provider/model
//! catalog, served over REST and WebSocket, changed through an authenticated
//! admin API, stored in SQLite (one process) or PostgreSQL (several
//! instances); it runs as its own process or inside an axum application of
//! your own (`ProviderSync`).
//!
//! # Layout
//!
//! - `config`: command-line flags and environment variables.
//! - `access`: the named admin and read tokens, matched in constant time.
//! - `audit`: who changed what: the record of each admin write, its trim.
//! - `app`: `fn app`, the router with every route and layer.
//! - `http`: REST handlers, one module per resource (sync, catalog, availability, admin, ops).
//! - `serve`: the accept loop: connection cap, header-read and idle timeouts, write progress.
//! - `limits`: client addresses (trusted proxies), rate limits, origins, WebSocket slots.
//! - `ws`: the WebSocket endpoint and one session's loop.
//! - `service`: the live state, the write path and catch-up planning.
//! - `commands`: admin writes turned into events.
//! - `revision`: how revisions are assigned and what `If-Match` accepts.
//! - `validate`: field checks shared by the admin API and the catalog file.
//! - `catalog`: the catalog file (TOML or LiteLLM's JSON), parsed,
//!   reconciled and reloaded.
//! - `cli`: the `catalog check`, `catalog diff`, `store copy` and `backup` tools.
//! - `store`: the persistence trait, SQLite (one process) and PostgreSQL
//!   (several instances), and backups.
//! - `health`: provider health probes.
//! - `metrics`: Prometheus metrics.
//! - `openapi`: the generated API description.
//! - `precompress`: `GET /state` compressed once per stable version at the best levels.
//! - `error`: the error type and its JSON responses.
//! - `clock`: the current time in protocol formats.
//! - `shutdown`: the shutdown signal every task listens to.

#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

pub mod access;
pub mod app;
pub mod audit;
pub mod catalog;
pub mod cli;
mod clock;
pub mod commands;
pub mod config;
pub mod error;
pub mod health;
pub mod http;
pub mod limits;
pub mod metrics;
mod openapi;
pub mod precompress;
mod revision;
pub mod serve;
pub mod service;
pub mod shutdown;
pub mod store;
mod validate;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

pub use app::{AppState, app};
pub use catalog::{Catalog, CatalogError};
pub use config::Config;
pub use http::auth::Caller;
pub use service::Service;

use crate::health::{HealthBoard, ProbeSettings};
use crate::metrics::Metrics;
use crate::shutdown::ShutdownTrigger;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("catalog refused: {0}")]
    Catalog(#[from] CatalogError),
    #[error("cannot open the store: {0}")]
    Store(#[from] store::StoreError),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot apply the catalog: {0}")]
    Reconcile(#[from] error::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// provider-sync's parts, built and running in the background (heartbeats,
/// health probes, following other instances, catalog reload), but not
/// listening: for mounting inside an application of your own. `router()`
/// gives the routes under `config.prefix`; merge them into your router, put
/// your own middleware in front (your authentication of the admin API, with
/// [`Config::admin_trust_caller`]), serve it on your own listener, and call
/// `shutdown` from your own shutdown.
#[derive(Debug)]
pub struct ProviderSync {
    state: AppState,
    trigger: ShutdownTrigger,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ProviderSync {
    /// Opens the store, applies the catalog file if one is given, and starts
    /// the background tasks.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        config.check().map_err(StartError::Config)?;
        let access = Arc::new(access::Access::from_config(&config).map_err(StartError::Config)?);
        // Check the file before touching the store: a bad file changes nothing.
        let catalog_options = config.catalog_source.options();
        let catalog = config
            .catalog
            .as_deref()
            .map(|path| Catalog::load_with(path, &catalog_options))
            .transpose()?;
        let database = store::normalized_url(&config.database).map_err(StartError::Config)?;
        if store::in_memory(&database) {
            tracing::warn!(
                database = %database,
                "the store is in memory: every write is lost when the server stops; give a file for a store that lasts"
            );
        }
        let store = store::open(
            &database,
            store::OpenOptions {
                lock_timeout: std::time::Duration::from_millis(config.store_lock_timeout_ms),
            },
        )
        .await?;
        if config.new_epoch {
            let epoch = store.rotate_epoch().await?;
            tracing::warn!(%epoch, "started a new epoch: every client will take a full state");
        }
        let metrics = Arc::new(Metrics::new());
        let service = Service::open(
            store,
            service::Retention {
                events: config.event_retention,
                bytes: config.event_retention_bytes,
            },
            config.ws_queue,
            metrics,
        )
        .await?;
        let mut catalog_sources = Vec::new();
        if let Some(catalog) = catalog {
            let path = config
                .catalog
                .as_deref()
                .unwrap_or(std::path::Path::new(""));
            catalog.report.log(&path.display().to_string());
            let written = service.reconcile(&catalog).await?;
            log_reconcile(path, &written.value, written.version);
            catalog_sources = catalog.sources;
        }
        let (trigger, shutdown) = shutdown::channel();
        let health = Arc::new(HealthBoard::default());
        audit::trim(service.store().as_ref(), config.audit_retention_days).await;
        let guards = Arc::new(limits::Guards::new(&config));
        let sessions =
            ws::Sessions::new(ws::Sessions::threads(config.ws_threads)).map_err(|err| {
                StartError::Config(format!("cannot start the WebSocket threads: {err}"))
            })?;
        let state = AppState::new(app::Parts {
            sessions,
            service: service.clone(),
            guards: guards.clone(),
            config: Arc::new(config.clone()),
            access,
            health: health.clone(),
            shutdown: trigger.clone(),
        });

        let mut tasks = vec![
            limits::spawn_cleanup(guards, shutdown.clone()),
            precompress::spawn(
                service.clone(),
                std::time::Duration::from_millis(config.precompress_after_ms),
                shutdown.clone(),
            ),
        ];
        let heartbeat_service = service.clone();
        let mut heartbeat_shutdown = shutdown.clone();
        let heartbeat = config.heartbeat();
        tasks.push(tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
            loop {
                tokio::select! {
                    _ = ticks.tick() => heartbeat_service.broadcast_heartbeat(),
                    _ = heartbeat_shutdown.wait() => return,
                }
            }
        }));
        if service.store().shared() {
            tasks.push(follow(
                service.clone(),
                std::time::Duration::from_millis(config.follow_interval_ms.max(10)),
                shutdown.clone(),
            ));
        }
        if let Some(path) = &config.catalog {
            tasks.push(catalog::watch::spawn(
                service.clone(),
                path.clone(),
                catalog_sources,
                catalog_options,
                config.catalog_watch,
                shutdown.clone(),
            ));
        }
        tasks.push(audit::spawn_trim(
            service.clone(),
            config.audit_retention_days,
            shutdown.clone(),
        ));
        tasks.push(health::spawn(
            service,
            health,
            ProbeSettings {
                interval: std::time::Duration::from_millis(config.health_interval_ms),
                timeout: std::time::Duration::from_millis(config.health_timeout_ms),
                degraded_after: std::time::Duration::from_millis(config.health_degraded_ms),
                failures: config.health_failures.max(1),
                allow_private: config.health_allow_private,
            },
            shutdown,
        ));
        Ok(Self {
            state,
            trigger,
            tasks,
        })
    }

    /// Every route under `config.prefix` (REST, WebSocket, admin, operations,
    /// OpenAPI), with its layers; without a fallback, so it merges into a
    /// router that has one (unless `config.static_dir` is set).
    pub fn router(&self) -> axum::Router {
        app::routes(self.state.clone())
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.state.service
    }

    /// Resolves when `shutdown` has been called: hand it to
    /// `axum::serve(..).with_graceful_shutdown`, so that WebSocket clients get
    /// their close frame and requests in flight finish.
    pub fn shutdown_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut waiter = self.trigger.subscribe();
        async move { waiter.wait().await }
    }

    /// Starts the shutdown: `shutdown_signal` resolves and WebSocket clients
    /// get a close frame. Then let your server finish its requests, and call
    /// `shutdown`.
    pub fn begin_shutdown(&self) {
        self.trigger.trigger();
    }

    /// Stops every background task and lets go of the store (the SQLite
    /// lock, the cluster roles, its connections); starts the shutdown first
    /// if `begin_shutdown` was not called. A request still in flight after
    /// that is answered 503.
    pub async fn shutdown(self) {
        let service = self.stop_tasks().await;
        service.close().await;
    }

    async fn stop_tasks(self) -> Arc<Service> {
        self.trigger.trigger();
        for task in self.tasks {
            let _ = task.await;
        }
        self.state.service.clone()
    }
}

/// A server that is listening. Dropping it does not stop it; call `stop`.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    prefix: String,
    parts: ProviderSync,
    serving: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/PREFIX`, the base of every endpoint.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.prefix)
    }

    pub fn service(&self) -> &Arc<Service> {
        self.parts.service()
    }

    /// Closes WebSockets with a close frame, finishes requests in flight and
    /// stops every task.
    pub async fn stop(self) {
        let service = self.parts.stop_tasks().await;
        let _ = self.serving.await;
        service.close().await;
    }
}

/// Opens the store, applies the catalog file if one is given, and starts
/// listening, the heartbeat and the health probes.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    config.check().map_err(StartError::Config)?;
    // Listen first: a port in use stops the start before anything runs.
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.bind,
        source,
    })?;
    let limits = config.connection_limits().within_open_files();
    // Until the store is open and the catalog applied, requests get 503
    // rather than waiting unanswered in the listener's queue.
    let (ready, starting) = tokio::sync::oneshot::channel::<()>();
    let starting = {
        let (router, limits) = (app::starting(&config), limits.clone());
        tokio::spawn(async move {
            serve::answer_while_starting(listener, router, &limits, async move {
                let _ = starting.await;
            })
            .await
        })
    };
    let built = ProviderSync::build(config.clone()).await;
    let _ = ready.send(());
    let (listener, handed) = starting
        .await
        .expect("the answers given while starting do not panic");
    let parts = built?;
    let router = app(parts.state.clone());
    let stopped = parts.shutdown_signal();
    let serving = tokio::spawn(serve::serve(
        listener,
        Some(handed),
        router,
        limits,
        parts.service().metrics().clone(),
        stopped,
    ));
    tracing::info!(%addr, prefix = %config.prefix(), "listening");
    if config.cors_origins.is_empty() && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "listening beyond loopback with no --cors-origins: pages of every origin may use the API and open WebSockets; name your app's origins"
        );
    }
    if config.catalog.is_none() {
        let source = &config.catalog_source;
        let given: Vec<&str> = [
            (config.catalog_watch, "--catalog-watch"),
            (!source.catalog_modes.is_empty(), "--catalog-modes"),
            (!source.catalog_providers.is_empty(), "--catalog-providers"),
            (
                source.catalog_format != catalog::CatalogFormat::Auto,
                "--catalog-format",
            ),
        ]
        .into_iter()
        .filter_map(|(set, flag)| set.then_some(flag))
        .collect();
        if !given.is_empty() {
            tracing::warn!(
                flags = %given.join(", "),
                "catalog options given without --catalog (PROVIDER_SYNC_CATALOG): they do nothing"
            );
        }
    }
    if !config.cors_origins.is_empty() && config.static_dir.is_some() {
        tracing::info!(
            "--static-dir with --cors-origins: the pages served here are excepted from the list only when they name the server by its address; under a DNS name, list their origin too"
        );
    }
    Ok(RunningServer {
        addr,
        prefix: config.prefix().to_owned(),
        parts,
        serving,
    })
}

fn log_reconcile(path: &std::path::Path, done: &catalog::Reconciled, version: u64) {
    let path = path.display().to_string();
    match done.outcome {
        // A LiteLLM file's age is its modification time, not a revision.
        catalog::Outcome::Older {
            file,
            stored,
            by_time: true,
        } => tracing::warn!(
            catalog = %path,
            file_modified_unix_s = file,
            applied_modified_unix_s = stored,
            hint = catalog::OLDER_BY_TIME_HINT,
            "the catalog's LiteLLM file is older than the one already applied; nothing applied"
        ),
        catalog::Outcome::Older { file, stored, .. } => tracing::warn!(
            catalog = %path,
            file_revision = file,
            applied_revision = stored,
            "the catalog file is older than the one already applied; nothing applied"
        ),
        _ => {
            if done.revision_unchanged {
                tracing::warn!(catalog = %path, "{}", catalog::REVISION_UNCHANGED);
            }
            if done.adopted {
                tracing::warn!(catalog = %path, kept_admin_edits = done.kept_edits, "no record of an applied catalog file: existing entries keep their current values, missing ones are added; later changes to the file apply");
            }
            tracing::info!(
                catalog = %path,
                events = done.events,
                added = done.added,
                updated = done.updated,
                removed = done.removed,
                kept_admin_edits = done.kept_edits,
                pending = done.pending,
                pending_first = ?done.pending_ids,
                version,
                "catalog reconciled"
            );
        }
    }
}

/// Follows the store's log (several instances on one PostgreSQL): every
/// committed event, from any instance, applied in version order and sent to
/// this instance's WebSocket clients. A notification wakes it; it also polls,
/// for notifications lost while the listener was down.
fn follow(
    service: Arc<Service>,
    interval: std::time::Duration,
    mut shutdown: shutdown::Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = service.store().changed() => {}
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait() => return,
            }
            if let Err(err) = service.follow().await {
                tracing::warn!(error = %err, "cannot read the store's log; retrying");
            }
        }
    })
}
