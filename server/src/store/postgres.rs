//! The shared store for several instances: PostgreSQL.
//!
//! - Every write locks the one `sync_meta` row (`SELECT … FOR UPDATE`) for
//!   the length of its transaction: versions are assigned inside it,
//!   contiguous and in commit order across instances, and a rolled-back write
//!   leaves no hole.
//! - Each commit sends `NOTIFY provider_sync, '<version>'`. A listener on its
//!   own direct connection (never through a pooler in transaction mode, which
//!   breaks `LISTEN`) wakes this instance's reader; the reader also polls, so
//!   a lost notification or a dropped listener only delays it.
//! - Roles that one instance of the cluster plays at a time (health probes)
//!   are session advisory locks on a dedicated connection: released when that
//!   connection or process dies, taken over by another instance's next try.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use provider_sync_protocol::{ModelSpecification, ProviderSyncInfo, SyncEvent};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Row};
use tokio::sync::{Mutex, Notify, watch};

use super::{
    Commit, Loaded, Role, RowChange, SharedReading, Since, Store, StoreError, WriteTurn, since_of,
};
use crate::audit::AuditRecord;

/// The lowest version a new head row may take (`floor`): above every
/// revision the rows carry and every version the log holds; 0 for a new
/// store (see [`NEW_HEAD`]).
macro_rules! version_floor {
    () => {
        "SELECT GREATEST(\
           COALESCE((SELECT MAX((body::jsonb->>'revision')::bigint) FROM providers), 0), \
           COALESCE((SELECT MAX((body::jsonb->>'revision')::bigint) FROM models), 0), \
           COALESCE((SELECT MAX(version) FROM events), 0)) AS floor"
    };
}

const CHANNEL: &str = "provider_sync";
/// How long a readiness check or a role check waits for the database.
const QUICK: Duration = Duration::from_secs(2);
/// A server's connections to the database, at most.
const POOL_SIZE: u32 = 8;
/// How long a pooled connection may take before the store tries one of its
/// own, to learn whether the database refuses connections
/// ([`PostgresStore::connection`]).
const REFUSED_AFTER: Duration = Duration::from_millis(100);

/// Whether a connection's failure says the database refuses connections
/// now: nothing listens (stopped), or it is shutting down or starting up.
fn refuses(err: &sqlx::Error) -> bool {
    use std::io::ErrorKind;
    match err {
        // Not a reset or an abort: a proxy between may do that to one new
        // connection while the pooled ones are well.
        sqlx::Error::Io(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionRefused | ErrorKind::NotFound
        ),
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    options: PgConnectOptions,
    wake: Arc<Notify>,
    /// Connections that hold a role's advisory lock, by role.
    roles: Mutex<Vec<(Role, PgConnection)>>,
    /// Sent on (or dropped with) the store: stops the listener task.
    stop: watch::Sender<()>,
    /// Held while a connection of the store's own asks whether the database
    /// refuses connections (one at a time), with what the last one found.
    probing: Mutex<Option<Probed>>,
}

/// What a probe of [`PostgresStore::connection`] found, and when.
#[derive(Debug, Clone, Copy)]
struct Probed {
    at: std::time::Instant,
    /// Refused: with the I/O error's kind when it was one (else the
    /// database said it is shutting down or starting up); `None`: not.
    refused: Option<Option<std::io::ErrorKind>>,
}

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

fn version_of(value: i64) -> u64 {
    value.max(0) as u64
}

/// The transaction-level advisory lock the audit trim runs under ("psyncaud"
/// as a number): one instance trims at a time, and nothing is held between
/// trims.
const AUDIT_TRIM_LOCK: i64 = 0x7073_796e_6361_7564;

async fn insert_audit(conn: &mut PgConnection, record: &AuditRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (at_ms, token, client, request_id, method, path, status, epoch, \
         first_version, last_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(record.at_ms)
    .bind(&record.token)
    .bind(&record.client)
    .bind(&record.request_id)
    .bind(&record.method)
    .bind(&record.path)
    .bind(i32::from(record.status))
    .bind(&record.epoch)
    .bind(record.versions.map(|v| v.0 as i64))
    .bind(record.versions.map(|v| v.1 as i64))
    .execute(conn)
    .await?;
    Ok(())
}

fn audit_of(row: &sqlx::postgres::PgRow) -> Result<(u64, AuditRecord), StoreError> {
    let first: Option<i64> = row.try_get("first_version")?;
    let last: Option<i64> = row.try_get("last_version")?;
    Ok((
        version_of(row.try_get("id")?),
        AuditRecord {
            at_ms: row.try_get("at_ms")?,
            token: row.try_get("token")?,
            client: row.try_get("client")?,
            request_id: row.try_get("request_id")?,
            method: row.try_get("method")?,
            path: row.try_get("path")?,
            status: u16::try_from(row.try_get::<i32, _>("status")?).unwrap_or(0),
            epoch: row.try_get("epoch")?,
            versions: first.zip(last).map(|(f, l)| (version_of(f), version_of(l))),
        },
    ))
}

impl PostgresStore {
    /// A write's first statement: the head row, locked for the write's
    /// transaction (so versions follow commit order), and a bound on how
    /// long that transaction may sit idle, 15 s, unless the server or role
    /// sets one. Every instance's writes wait for the head row: an instance
    /// frozen in the middle of one (a paused VM, a debugger, swapping) held
    /// them all until their requests timed out (504); PostgreSQL now ends
    /// its transaction, rolling it back (that write was not acknowledged),
    /// and the others go on. Set for the transaction only
    /// (`set_config(…, true)`), so it holds behind PgBouncer in any mode.
    pub const HEAD_FOR_WRITE: &'static str = "SELECT epoch, version, \
         CASE WHEN current_setting('idle_in_transaction_session_timeout') = '0' \
         THEN set_config('idle_in_transaction_session_timeout', '15s', true) END \
         FROM sync_meta WHERE id = 1 FOR UPDATE";

    /// Begins a write: the head row locked (see [`Self::HEAD_FOR_WRITE`]).
    async fn head_for_write(&self) -> Result<Head, StoreError> {
        let mut tx = self.pool.begin().await?;
        let head = sqlx::query(Self::HEAD_FOR_WRITE)
            .fetch_one(&mut *tx)
            .await?;
        let head = (head.try_get(0)?, head.try_get(1)?);
        Ok((tx, head))
    }

    /// Connects, brings the schema up to date (safe when several instances
    /// start at once: the migrator holds an advisory lock) and starts the
    /// listener.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = super::libpq_form(url).parse()?;
        let pool = pool_of(&options, POOL_SIZE).await?;
        if let Err(err) = refuse_foreign(&pool, &options).await {
            pool.close().await;
            return Err(err);
        }
        sqlx::migrate!("./migrations-postgres").run(&pool).await?;
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(());
        tokio::spawn(listen(options.clone(), wake.clone(), stopped));
        Ok(Self {
            pool,
            options,
            wake,
            roles: Mutex::new(Vec::new()),
            stop,
            probing: Mutex::new(None),
        })
    }

    /// A connection from the pool, or, when the database refuses
    /// connections, that refusal at once. sqlx's pool tries a refused
    /// connection again until its acquire timeout (2 s): a stopped database
    /// was reported that late by `/readyz`, and about 4 s late in
    /// heartbeats. So when the pool has not handed one out within 100 ms,
    /// one connection of the store's own is tried (one at a time, at most
    /// one a second, its verdict shared meanwhile), and a refusal (nothing
    /// listens, or the database is shutting down or starting up) is the
    /// answer; otherwise the pool's.
    async fn connection(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
        let acquire = self.pool.acquire();
        tokio::pin!(acquire);
        tokio::select! {
            got = &mut acquire => return Ok(got?),
            () = tokio::time::sleep(REFUSED_AFTER) => {}
        }
        // One probe at a time, and at most one a second: callers meanwhile
        // take its verdict (a pool whose connections are all busy, with the
        // database up, opens one connection of the store's own a second).
        let refused =
            async {
                let mut probed = self.probing.lock().await;
                if let Some(last) = *probed
                    && last.at.elapsed() < Duration::from_secs(1)
                {
                    return last.refused.map(|kind| match kind {
                        Some(kind) => StoreError::Database(sqlx::Error::Io(kind.into())),
                        None => StoreError::Unreachable,
                    });
                }
                let verdict =
                    match tokio::time::timeout(QUICK, PgConnection::connect_with(&self.options))
                        .await
                    {
                        Ok(Err(err)) if refuses(&err) => Some(err),
                        Ok(Ok(connection)) => {
                            let _ = connection.close().await;
                            None
                        }
                        _ => None,
                    };
                *probed = Some(Probed {
                    at: std::time::Instant::now(),
                    refused: verdict.as_ref().map(|err| match err {
                        sqlx::Error::Io(io) => Some(io.kind()),
                        _ => None,
                    }),
                });
                verdict.map(StoreError::from)
            };
        tokio::select! {
            got = &mut acquire => Ok(got?),
            Some(err) = refused => Err(err),
        }
    }

    /// Fills an empty store with another store's contents: the same epoch,
    /// versions, entities, event log and applied catalog (`store copy`).
    pub async fn import(&self, from: &Loaded) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO sync_meta (id, epoch, version) VALUES (1, $1, 0) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&from.epoch)
        .execute(&mut *tx)
        .await?;
        let version: i64 =
            sqlx::query_scalar("SELECT version FROM sync_meta WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        let entities: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM providers) + (SELECT COUNT(*) FROM models)",
        )
        .fetch_one(&mut *tx)
        .await?;
        if version != 0 || entities != 0 {
            return Err(StoreError::NotEmpty(version_of(version)));
        }
        sqlx::query(
            "UPDATE sync_meta SET epoch = $1, version = $2, active_provider_id = $3, default_provider_id = $4 WHERE id = 1",
        )
        .bind(&from.epoch)
        .bind(from.version as i64)
        .bind(&from.active_provider_id)
        .bind(&from.default_provider_id)
        .execute(&mut *tx)
        .await?;
        // Set on its own: the epoch's change above marked it at the version
        // (migration 0003's trigger). A log without the head's event is
        // taken as at its epoch's start (a copy cannot tell a new epoch from
        // a wiped log; `peek` gave a wiped one a new epoch already).
        sqlx::query("UPDATE sync_meta SET epoch_version = $1 WHERE id = 1")
            .bind(
                if from
                    .log
                    .last()
                    .is_some_and(|(e, _)| e.version == from.version)
                {
                    0
                } else {
                    from.version as i64
                },
            )
            .execute(&mut *tx)
            .await?;
        for p in &from.providers {
            let body = serde_json::to_string(p).map_err(|e| corrupt("provider", e))?;
            let operator_revision = from.probed.get(&p.id).copied().unwrap_or(p.revision);
            sqlx::query("INSERT INTO providers (id, revision, body) VALUES ($1, $2, $3)")
                .bind(&p.id)
                .bind(operator_revision as i64)
                .bind(body)
                .execute(&mut *tx)
                .await?;
        }
        for m in &from.models {
            let body = serde_json::to_string(m).map_err(|e| corrupt("model", e))?;
            sqlx::query(
                "INSERT INTO models (id, provider_id, revision, body) VALUES ($1, $2, $3, $4)",
            )
            .bind(&m.id)
            .bind(&m.provider_id)
            .bind(m.revision as i64)
            .bind(body)
            .execute(&mut *tx)
            .await?;
        }
        for (event, body) in &from.log {
            sqlx::query("INSERT INTO events (version, body, bytes) VALUES ($1, $2, $3)")
                .bind(event.version as i64)
                .bind(body)
                .bind(body.len() as i32)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(catalog) = &from.catalog {
            sqlx::query("INSERT INTO catalog_applied (id, body) VALUES (1, $1)")
                .bind(catalog)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tables in the schema of the database at `url` that are not a
    /// store's: `store copy` writes only into a database that holds none.
    pub async fn other_tables(url: &str) -> Result<Vec<String>, StoreError> {
        let pool = one_connection(url).await?;
        let found = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name::text <> ALL($1) \
             ORDER BY table_name",
        )
        .bind(
            [
                "sync_meta",
                "providers",
                "models",
                "events",
                "catalog_applied",
                "audit",
                "health_readings",
                "_sqlx_migrations",
            ]
            .as_slice(),
        )
        .fetch_all(&pool)
        .await;
        pool.close().await;
        Ok(found?)
    }

    /// Reads the store at `url` without changing it, in one transaction
    /// (no migration, no listener, no head row written): `None` when the
    /// database has no store yet (`catalog diff`, `backup`).
    pub async fn peek(url: &str) -> Result<Option<Loaded>, StoreError> {
        let pool = one_connection(url).await?;
        let read = async {
            let table: bool = sqlx::query_scalar("SELECT to_regclass('sync_meta') IS NOT NULL")
                .fetch_one(&pool)
                .await?;
            if table {
                read(&pool).await.map(Some)
            } else {
                Ok::<_, StoreError>(None)
            }
        }
        .await;
        pool.close().await;
        read
    }

    async fn read(&self) -> Result<Loaded, StoreError> {
        read(&self.pool).await
    }
}

/// A database of another application (tables in the schema, none of them
/// this store's `sync_meta`) is refused before anything is added to it, as
/// a SQLite file of another application is. Only `_sqlx_migrations` (a
/// first start cut short, or another instance's start under way: its first
/// migration makes `sync_meta` with the other tables at once) counts as
/// this store's.
async fn refuse_foreign(pool: &PgPool, options: &PgConnectOptions) -> Result<(), StoreError> {
    // From the catalog, not `information_schema` (which lists only the
    // tables this user has a privilege on); an extension's own tables
    // (PostGIS's `spatial_ref_sys`) are not an application's.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
         AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
           AND d.objid = c.oid AND d.deptype = 'e') \
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    if tables.iter().any(|t| t == "sync_meta") || tables.iter().all(|t| t == "_sqlx_migrations") {
        return Ok(());
    }
    Err(StoreError::Foreign {
        kind: "PostgreSQL",
        path: format!(
            "the database {:?} on {}:{}",
            options.get_database().unwrap_or_default(),
            options.get_host(),
            options.get_port()
        ),
        tables: tables
            .iter()
            .filter(|t| *t != "_sqlx_migrations")
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// One connection to `url`, for a tool's read.
async fn one_connection(url: &str) -> Result<PgPool, StoreError> {
    pool_of(&super::libpq_form(url).parse()?, 1).await
}

/// A pool of at most `max` connections, with one made at once. When the
/// pool gives up ("pool timed out"), one connection of its own says why
/// (refused, no such host, a password refused).
async fn pool_of(options: &PgConnectOptions, max: u32) -> Result<PgPool, StoreError> {
    let made = PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(QUICK)
        .connect_with(options.clone())
        .await;
    match made {
        Err(sqlx::Error::PoolTimedOut) => {
            match tokio::time::timeout(QUICK, PgConnection::connect_with(options)).await {
                Ok(Err(why)) => Err(why.into()),
                Ok(Ok(connection)) => {
                    let _ = connection.close().await;
                    Err(sqlx::Error::PoolTimedOut.into())
                }
                Err(_) => Err(sqlx::Error::PoolTimedOut.into()),
            }
        }
        made => Ok(made?),
    }
}

/// Reads everything in one `REPEATABLE READ` transaction: one version's
/// state, whatever commits meanwhile.
async fn read(pool: &PgPool) -> Result<Loaded, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(
            "SELECT epoch, version, active_provider_id, default_provider_id FROM sync_meta WHERE id = 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
    // Without its head row (wiped alone) the store is read as a server
    // opening it finds it: what its tables hold, at the version its new
    // head row would take (above every revision and logged version) of a
    // history not started yet (no epoch), without the old log and the
    // active and default provider. `load` writes the head row first.
    let headless = row.is_none();
    let (epoch, version, active_provider_id, default_provider_id) = match row {
        Some(row) => (
            row.try_get::<String, _>(0)?,
            version_of(row.try_get(1)?),
            row.try_get(2)?,
            row.try_get(3)?,
        ),
        None => {
            let floor: i64 = sqlx::query_scalar(version_floor!())
                .fetch_one(&mut *tx)
                .await?;
            (String::new(), version_of(floor), None, None)
        }
    };
    let mut providers = Vec::new();
    let mut probed = BTreeMap::new();
    for row in sqlx::query("SELECT revision, body FROM providers ORDER BY id")
        .fetch_all(&mut *tx)
        .await?
    {
        let body: String = row.try_get(1)?;
        let provider: ProviderSyncInfo =
            serde_json::from_str(&body).map_err(|e| corrupt("provider", e))?;
        let operator_revision = version_of(row.try_get(0)?);
        if operator_revision < provider.revision {
            probed.insert(provider.id.clone(), operator_revision);
        }
        providers.push(provider);
    }
    let mut models = Vec::new();
    for row in sqlx::query("SELECT body FROM models ORDER BY id")
        .fetch_all(&mut *tx)
        .await?
    {
        let body: String = row.try_get(0)?;
        let model: ModelSpecification =
            serde_json::from_str(&body).map_err(|e| corrupt("model", e))?;
        models.push(model);
    }
    let mut log = Vec::new();
    for row in sqlx::query("SELECT body FROM events WHERE NOT $1 ORDER BY version")
        .bind(headless)
        .fetch_all(&mut *tx)
        .await?
    {
        let body: String = row.try_get(0)?;
        let event: SyncEvent = serde_json::from_str(&body).map_err(|e| corrupt("event", e))?;
        log.push((event, body));
    }
    let catalog: Option<String> =
        sqlx::query_scalar("SELECT body FROM catalog_applied WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(Loaded {
        epoch,
        version,
        providers,
        models,
        active_provider_id,
        default_provider_id,
        log,
        catalog,
        probed,
    })
}

/// Wakes the reader on every notification, and whenever the listening
/// connection was lost and is back (notifications sent meanwhile are gone).
async fn listen(options: PgConnectOptions, wake: Arc<Notify>, mut stop: watch::Receiver<()>) {
    loop {
        let connected = async {
            let mut listener =
                PgListener::connect_with(&PgPool::connect_lazy_with(options.clone())).await?;
            listener.listen(CHANNEL).await?;
            wake.notify_one();
            loop {
                match listener.try_recv().await? {
                    Some(_) => wake.notify_one(),
                    // The connection was lost; the next call reconnects.
                    None => {
                        tracing::warn!("the LISTEN connection was lost; reconnecting");
                        wake.notify_one();
                    }
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            result = connected => {
                if let Err(err) = result {
                    tracing::warn!(error = %err, "cannot LISTEN for changes; retrying (the reader polls meanwhile)");
                }
            }
            _ = stop.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn load(&self) -> Result<Loaded, StoreError> {
        let epoch = uuid::Uuid::new_v4().simple().to_string();
        let mut tx = self.pool.begin().await?;
        let started: Option<i64> = sqlx::query_scalar(NEW_HEAD)
            .bind(&epoch)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(floor) = started {
            // A new history has no log (its head row alone was wiped: the
            // old events' versions would be given again).
            let old = sqlx::query("DELETE FROM events").execute(&mut *tx).await?;
            super::headless_started(&epoch, floor, old.rows_affected());
        } else if log_wiped(&mut tx).await? && {
            // Checked again under the head row's lock, in a statement of its
            // own (whose snapshot is taken once the lock is held: a check
            // that waited for the lock in the same statement would read the
            // events as they were before the wait): one instance starts the
            // new epoch, the others then find it started.
            sqlx::query("SELECT 1 FROM sync_meta WHERE id = 1 FOR UPDATE")
                .execute(&mut *tx)
                .await?;
            log_wiped(&mut tx).await?
        } {
            let version: i64 = sqlx::query_scalar("SELECT version FROM sync_meta WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
            tracing::warn!(
                %epoch,
                version,
                "the event log was wiped (it lacks the event of the store's version): started a new epoch, every client will take a full state"
            );
            start_epoch(tx, &epoch).await?;
            return self.read().await;
        }
        tx.commit().await?;
        self.read().await
    }

    async fn commit(&self, commit: &Commit<'_>) -> Result<(), StoreError> {
        let (tx, head) = self.head_for_write().await?;
        write_in(tx, head, commit).await
    }

    async fn write_turn(&self) -> Result<Option<Box<dyn WriteTurn>>, StoreError> {
        let (tx, head) = self.head_for_write().await?;
        Ok(Some(Box::new(PgTurn { tx, head })))
    }

    async fn since(
        &self,
        epoch: &str,
        after: u64,
        tip: Option<&str>,
        limit: usize,
    ) -> Result<Since, StoreError> {
        let mut connection = self.connection().await?;
        let mut tx = connection.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await?;
        // No head row: the store was wiped (a new one starts at the reload).
        let Some(row) = sqlx::query("SELECT epoch, version FROM sync_meta WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(Since::Gone);
        };
        let (stored_epoch, version): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
        let version = version_of(version);
        if stored_epoch != epoch || version < after {
            return Ok(Since::Gone);
        }
        // From the event at `after` when there is one to compare.
        let from = if tip.is_some() && after > 0 {
            after
        } else {
            after + 1
        };
        let mut rows = Vec::new();
        if version >= from {
            for row in sqlx::query(
                "SELECT version, body FROM events WHERE version >= $1 ORDER BY version LIMIT $2",
            )
            .bind(from as i64)
            .bind((limit + (from == after) as usize) as i64)
            .fetch_all(&mut *tx)
            .await?
            {
                rows.push((row.try_get(0)?, row.try_get(1)?));
            }
        }
        tx.commit().await?;
        since_of(rows, after, version, tip)
    }

    async fn applied_catalog(&self) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT body FROM catalog_applied WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn rotate_epoch(&self) -> Result<String, StoreError> {
        let epoch = uuid::Uuid::new_v4().simple().to_string();
        let mut tx = self.pool.begin().await?;
        sqlx::query(NEW_HEAD).bind(&epoch).execute(&mut *tx).await?;
        sqlx::query("SELECT version FROM sync_meta WHERE id = 1 FOR UPDATE")
            .execute(&mut *tx)
            .await?;
        start_epoch(tx, &epoch).await?;
        Ok(epoch)
    }

    async fn rotate_epoch_from(&self, epoch: &str, version: u64) -> Result<bool, StoreError> {
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        let mut tx = self.pool.begin().await?;
        let head = sqlx::query("SELECT epoch, version FROM sync_meta WHERE id = 1 FOR UPDATE")
            .fetch_optional(&mut *tx)
            .await?;
        let Some(head) = head else { return Ok(false) };
        let (stored_epoch, stored): (String, i64) = (head.try_get(0)?, head.try_get(1)?);
        if stored_epoch != epoch || version_of(stored) != version {
            return Ok(false);
        }
        start_epoch(tx, &fresh).await?;
        Ok(true)
    }

    /// A reading is not replaced by an older one of the same endpoint (a
    /// prober that lost its role while it probed, writing late).
    async fn share_readings(&self, readings: &[SharedReading]) -> Result<(), StoreError> {
        let mut ids = Vec::with_capacity(readings.len());
        let mut urls = Vec::with_capacity(readings.len());
        let mut bodies = Vec::with_capacity(readings.len());
        for reading in readings {
            ids.push(reading.provider_id.as_str());
            urls.push(reading.url.as_str());
            bodies.push(serde_json::to_string(&reading.health).expect("a reading serialises"));
        }
        // A provider this round did not read loses its row only if the row
        // is older than the round's newest reading: one the catalog no
        // longer probes. A prober that lost its role, writing late from an
        // older snapshot, leaves the rows of providers added since (read
        // later than its own readings) to the instance that probes now.
        let newest = readings
            .iter()
            .filter_map(|reading| reading.health.last_check.clone())
            .max()
            .unwrap_or_else(crate::clock::now_rfc3339);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM health_readings WHERE provider_id <> ALL($1) \
             AND (body::jsonb->>'last_check') COLLATE \"C\" < $2",
        )
        .bind(&ids)
        .bind(&newest)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO health_readings (provider_id, url, body) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) \
             ON CONFLICT (provider_id) DO UPDATE SET url = excluded.url, body = excluded.body \
             WHERE health_readings.url <> excluded.url \
             OR (excluded.body::jsonb->>'last_check') COLLATE \"C\" >= (health_readings.body::jsonb->>'last_check')",
        )
        .bind(&ids)
        .bind(&urls)
        .bind(&bodies)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn readings(&self) -> Result<Vec<SharedReading>, StoreError> {
        let mut connection = self.connection().await?;
        let mut readings = Vec::new();
        for row in sqlx::query("SELECT provider_id, url, body FROM health_readings")
            .fetch_all(&mut *connection)
            .await?
        {
            let body: String = row.try_get(2)?;
            readings.push(SharedReading {
                provider_id: row.try_get(0)?,
                url: row.try_get(1)?,
                health: serde_json::from_str(&body).map_err(|e| corrupt("health reading", e))?,
            });
        }
        Ok(readings)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let ping = async {
            let mut connection = self.connection().await?;
            sqlx::query("SELECT 1").execute(&mut *connection).await?;
            Ok(())
        };
        match tokio::time::timeout(QUICK, ping).await {
            Ok(done) => done,
            Err(_) => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
        }
    }

    async fn record_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        insert_audit(&mut *self.pool.acquire().await?, record).await
    }

    async fn audit(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
        sqlx::query("SELECT * FROM audit WHERE id < $1 ORDER BY id DESC LIMIT $2")
            .bind(before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(audit_of)
            .collect()
    }

    async fn trim_audit(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(AUDIT_TRIM_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !ours {
            return Ok(0);
        }
        let done = sqlx::query("DELETE FROM audit WHERE at_ms < $1")
            .bind(older_than_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    fn shared(&self) -> bool {
        true
    }

    async fn changed(&self) {
        self.wake.notified().await;
    }

    async fn close(&self) {
        let _ = self.stop.send(());
        let mut roles = self.roles.lock().await;
        for (_, conn) in roles.drain(..) {
            let _ = tokio::time::timeout(QUICK, conn.close()).await;
        }
        // A commit stuck on an unreachable database must not hold up the
        // process's exit.
        let _ = tokio::time::timeout(QUICK, self.pool.close()).await;
    }

    async fn lead(&self, role: Role, every: Duration) -> bool {
        let mut roles = self.roles.lock().await;
        if let Some(at) = roles.iter().position(|(r, _)| *r == role) {
            let alive =
                tokio::time::timeout(QUICK, sqlx::query("SELECT 1").execute(&mut roles[at].1))
                    .await
                    .is_ok_and(|r| r.is_ok());
            if alive {
                return true;
            }
            tracing::warn!(role = ?role, "lost the connection that held a cluster role");
            roles.remove(at);
            return false;
        }
        let tried = tokio::time::timeout(QUICK, async {
            // Keepalives on the server's side of this session: a connection
            // that died without a word releases the role in seconds, not
            // hours.
            let options = self.options.clone().options([
                ("tcp_keepalives_idle", "5"),
                ("tcp_keepalives_interval", "2"),
                ("tcp_keepalives_count", "3"),
            ]);
            let mut conn = PgConnection::connect_with(&options).await?;
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(role.lock_key())
                .fetch_one(&mut conn)
                .await?;
            if got {
                Ok::<_, sqlx::Error>(Some(conn))
            } else {
                // The holder's connection asks `SELECT 1` at every one of
                // its turns; one silent for three of them is a process
                // frozen or cut off behind something that keeps its
                // connection open (keepalives answered for it): its session
                // is ended, and its lock with it, for the next try to take.
                // Only in this database (advisory locks are per database;
                // another deployment on the same server uses the same key)
                // and of this user (whose sessions it may end).
                let stale = (every * 3 + Duration::from_secs(5)).as_secs_f64();
                let ended: Option<i32> = sqlx::query_scalar(
                    // Materialised first: the session ended is only ever
                    // the one found (no condition's order left to the
                    // planner).
                    "WITH silent AS MATERIALIZED (SELECT a.pid FROM pg_locks l \
                     JOIN pg_stat_activity a ON a.pid = l.pid \
                     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                     AND a.usename = current_user \
                     AND l.classid = (($1 >> 32) & 4294967295)::oid \
                     AND l.objid = ($1 & 4294967295)::oid \
                     AND a.state = 'idle' \
                     AND a.state_change < now() - make_interval(secs => $2)) \
                     SELECT pid FROM silent WHERE pg_terminate_backend(pid)",
                )
                .bind(role.lock_key())
                .bind(stale)
                .fetch_optional(&mut conn)
                .await?;
                if let Some(pid) = ended {
                    tracing::warn!(role = ?role, holder = pid, silent_for_more_than_s = stale, "the instance holding a cluster role has not checked it in time (frozen, or cut off); ended its session");
                }
                let _ = conn.close().await;
                Ok(None)
            }
        })
        .await;
        match tried {
            Ok(Ok(Some(conn))) => {
                tracing::info!(role = ?role, "this instance took a cluster role");
                roles.push((role, conn));
                true
            }
            Ok(Ok(None)) => false,
            Ok(Err(err)) => {
                tracing::warn!(role = ?role, error = %err, "cannot try a cluster role");
                false
            }
            Err(_) => false,
        }
    }
}

/// Makes the head row when there is none (a new store, or its head row
/// deleted by hand), at epoch `$1`, and gives its version; nothing when
/// there is one. Its version is above every revision the rows carry and
/// every version the log holds, so a head row lost while the rows stay
/// starts a history that gives no revision again (an `If-Match` read
/// before would be taken as current) and takes none back; 0 for a new
/// store.
const NEW_HEAD: &str = concat!(
    "INSERT INTO sync_meta (id, epoch, version, epoch_version) \
     SELECT 1, $1, floor, floor FROM (",
    version_floor!(),
    ") AS head \
     WHERE NOT EXISTS (SELECT 1 FROM sync_meta WHERE id = 1) \
     ON CONFLICT (id) DO NOTHING RETURNING version"
);

/// Whether the log was wiped by hand (`TRUNCATE events`, or its newest
/// events deleted) with the head row kept: past the version its epoch
/// began at, the log always holds the head's own event (no trim takes it).
/// ARCHITECTURE.md has a wiped log start a new epoch.
async fn log_wiped(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT version > epoch_version AND NOT EXISTS \
         (SELECT 1 FROM events WHERE events.version = sync_meta.version) \
         FROM sync_meta WHERE id = 1",
    )
    .fetch_optional(&mut **tx)
    .await?
    .unwrap_or(false))
}

/// Under the head row's lock (taken by `tx`): `epoch` from now on, with an
/// empty log, and the other instances told.
async fn start_epoch(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    epoch: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sync_meta SET epoch = $1, epoch_version = version WHERE id = 1")
        .bind(epoch)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM events").execute(&mut *tx).await?;
    sqlx::query("SELECT pg_notify($1, 'epoch')")
        .bind(CHANNEL)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The head row and the transaction that holds its lock: a write's start.
type Head = (sqlx::Transaction<'static, sqlx::Postgres>, (String, i64));

/// The write turn: the head row locked in a transaction, for one write.
struct PgTurn {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    head: (String, i64),
}

#[async_trait::async_trait]
impl WriteTurn for PgTurn {
    async fn commit(self: Box<Self>, commit: &Commit<'_>) -> Result<(), StoreError> {
        write_in(self.tx, self.head, commit).await
    }
}

/// Applies one write in the transaction that locked the head row, which
/// read `head` (its epoch and version), and commits it.
async fn write_in(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    (epoch, found): (String, i64),
    commit: &Commit<'_>,
) -> Result<(), StoreError> {
    let new_version = commit
        .events
        .last()
        .map_or(commit.base_version, |(v, _)| *v);
    if version_of(found) != commit.base_version || epoch != commit.base_epoch {
        return Err(StoreError::VersionConflict {
            expected: commit.base_version,
            found: version_of(found),
        });
    }
    // The same history, not only the same version.
    if let Some(tip) = commit.base_tip
        && commit.base_version > 0
    {
        let same: Option<bool> =
            sqlx::query_scalar("SELECT body = $2 FROM events WHERE version = $1")
                .bind(commit.base_version as i64)
                .bind(tip)
                .fetch_optional(&mut *tx)
                .await?;
        // No event there at all: the log was wiped under this instance
        // (the head's own event is never trimmed). Refused too: the writer
        // catches up, finds the log wiped and starts the new epoch
        // (ARCHITECTURE.md), then writes in it; a write landing first
        // would leave the wipe unseen.
        if same != Some(true) {
            return Err(StoreError::VersionConflict {
                expected: commit.base_version,
                found: version_of(found),
            });
        }
    }
    // Under the head row's lock: a catalog is applied over the record it
    // was built on, or not at all.
    if commit.catalog.is_some() {
        let current: Option<String> =
            sqlx::query_scalar("SELECT body FROM catalog_applied WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await?;
        if current.as_deref() != commit.catalog_base {
            return Err(StoreError::VersionConflict {
                expected: commit.base_version,
                found: version_of(found),
            });
        }
    }
    for row in &commit.rows {
        match row {
            RowChange::Provider {
                provider: p,
                operator_revision,
            } => {
                let body = serde_json::to_string(p).map_err(|e| corrupt("provider", e))?;
                sqlx::query(
                    "INSERT INTO providers (id, revision, body) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, body = excluded.body",
                )
                .bind(&p.id)
                .bind(*operator_revision as i64)
                .bind(body)
                .execute(&mut *tx)
                .await?;
            }
            RowChange::ProviderGone(id) => {
                sqlx::query("DELETE FROM providers WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM models WHERE provider_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            RowChange::Model(m) => {
                let body = serde_json::to_string(m).map_err(|e| corrupt("model", e))?;
                sqlx::query(
                    "INSERT INTO models (id, provider_id, revision, body) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (id) DO UPDATE SET provider_id = excluded.provider_id, \
                     revision = excluded.revision, body = excluded.body",
                )
                .bind(&m.id)
                .bind(&m.provider_id)
                .bind(m.revision as i64)
                .bind(body)
                .execute(&mut *tx)
                .await?;
            }
            RowChange::ModelGone(id) => {
                sqlx::query("DELETE FROM models WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            RowChange::Pointers { active, default } => {
                sqlx::query(
                    "UPDATE sync_meta SET active_provider_id = $1, default_provider_id = $2 WHERE id = 1",
                )
                .bind(active)
                .bind(default)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    for (version, body) in &commit.events {
        sqlx::query("INSERT INTO events (version, body, bytes) VALUES ($1, $2, $3)")
            .bind(*version as i64)
            .bind(*body)
            .bind(body.len() as i32)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(catalog) = commit.catalog {
        sqlx::query(
            "INSERT INTO catalog_applied (id, body) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body",
        )
        .bind(catalog)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(record) = commit.audit {
        insert_audit(&mut tx, record).await?;
    }
    sqlx::query("UPDATE sync_meta SET version = $1 WHERE id = 1")
        .bind(new_version as i64)
        .execute(&mut *tx)
        .await?;
    // Trim the log by count and by bytes (newest kept), never at or
    // above the version the write was built on: its own events stay for
    // the other instances to follow, and so does the event they hold
    // (what tells them the write follows from their copy; without it
    // they would read the whole state again after each large write).
    let keep_from = commit.base_version.saturating_sub(1);
    sqlx::query("DELETE FROM events WHERE version <= $1")
        .bind(new_version.saturating_sub(commit.retain).min(keep_from) as i64)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM events WHERE version <= $1 AND version <= (SELECT version FROM \
         (SELECT version, SUM(bytes) OVER (ORDER BY version DESC) AS newer FROM events) t \
         WHERE newer > $2 ORDER BY version DESC LIMIT 1)",
    )
    .bind(keep_from as i64)
    .bind(commit.retain_bytes.min(i64::MAX as u64) as i64)
    .execute(&mut *tx)
    .await?;
    if !commit.events.is_empty() {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(new_version.to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
