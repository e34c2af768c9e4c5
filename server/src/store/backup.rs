//! Backups: a consistent copy of a store, live or not, in one SQLite file,
//! marked (the `restore_pending` row) so that whatever opens it starts a new
//! epoch: the live store may go on past the copy with other content, so no
//! client may keep a version it had.
//!
//! - SQLite: `VACUUM INTO` from a read-only connection copies what one read
//!   transaction sees, while the server goes on writing through its WAL.
//! - PostgreSQL: everything is read in one `REPEATABLE READ` transaction and
//!   written into a new SQLite file, without the event log (a restore starts
//!   a new epoch, which drops it anyway). Run a server on that file, or put
//!   it back into an empty database with `store copy`.
//!
//! The copy is made under a temporary name beside the target (locked while
//! it is written: a second backup to the same target is refused) and given
//! the target's name once it is complete and marked, so the target is never
//! half a backup, nor a file that was there already.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{Loaded, PostgresStore, StoreError, sqlite};
use crate::clock::now_rfc3339;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    #[error("{0} already exists: a backup never overwrites a file")]
    Exists(PathBuf),
    #[error("another backup is writing {0} now: wait for it, or choose another file")]
    Busy(PathBuf),
    #[error("no store at {0}")]
    NoStore(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for BackupError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(err))
    }
}

impl From<sqlx::migrate::MigrateError> for BackupError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Self::Store(StoreError::Migrate(err))
    }
}

/// What a backup holds: the store as it was at one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub epoch: String,
    pub version: u64,
    pub providers: u64,
    pub models: u64,
}

/// Copies the store at `database` (a SQLite file or `postgres://…`) into
/// the new file `out`.
pub async fn backup(database: &str, out: &Path) -> Result<Taken, BackupError> {
    if out.exists() {
        return Err(BackupError::Exists(out.to_owned()));
    }
    let mut name = std::ffi::OsString::from(".");
    name.push(out.file_name().unwrap_or_default());
    name.push(".partial");
    let partial = out.with_file_name(name);
    // The temporary copy is made anew and locked to the end: a second
    // backup to the same file (a scheduled one overlapping one by hand) is
    // refused rather than writing into the first one's copy (both failed,
    // with SQLite's errors). One left by a backup that was stopped half-way
    // holds no lock: it is removed first. (`VACUUM INTO` takes an empty
    // file.)
    let claim = claim(&partial, out)?;
    let made = async {
        if super::is_postgres(database) {
            let loaded = PostgresStore::peek(database)
                .await?
                .ok_or_else(|| BackupError::NoStore(super::without_password(database)))?;
            write(&loaded, &partial).await?;
        } else {
            vacuum_into(database, &partial).await?;
        }
        mark(&partial).await
    }
    .await;
    let finished = made.and_then(|taken| {
        put_in_place(&partial, out)?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The new name on disk too (best effort: not every system can).
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(taken)
    });
    if finished.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    drop(claim);
    finished
}

/// Creates and locks the temporary copy `partial` of a backup to `out`;
/// refused while another backup holds it. One a stopped backup left (or
/// anything else under that name: a link, another user's file) is not
/// written into but unlinked, so a file it may also name (the backup it
/// became, moved away since) is left whole.
fn claim(partial: &Path, out: &Path) -> Result<std::fs::File, BackupError> {
    let io = |source| BackupError::Io {
        path: partial.to_owned(),
        source,
    };
    for _ in 0..3 {
        match open_no_follow(partial) {
            Ok(left) => {
                lock(&left, partial, out)?;
                remove_unless_gone(partial).map_err(io)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // A symbolic link, a file this user may not read.
            Err(_) => remove_unless_gone(partial).map_err(io)?,
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(partial)
        {
            Ok(file) => return claim_opened(file, partial, out),
            // Another backup made it meanwhile: look again.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(io(source)),
        }
    }
    Err(BackupError::Busy(out.to_owned()))
}

/// Removes `path`; gone already is fine.
fn remove_unless_gone(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Opens `path` to read, not through a symbolic link.
fn open_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// [`claim`] once `partial` is made as `file`: locked, and still the file
/// of that name (another backup may have taken the name for a file of its
/// own between the two).
fn claim_opened(
    file: std::fs::File,
    partial: &Path,
    out: &Path,
) -> Result<std::fs::File, BackupError> {
    lock(&file, partial, out)?;
    if !still_named(&file, partial) {
        return Err(BackupError::Busy(out.to_owned()));
    }
    Ok(file)
}

/// Locks `file` (opened as `partial`) for the backup to `out`: refused
/// while another backup holds it.
fn lock(file: &std::fs::File, partial: &Path, out: &Path) -> Result<(), BackupError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(BackupError::Busy(out.to_owned())),
        Err(std::fs::TryLockError::Error(source)) => Err(BackupError::Io {
            path: partial.to_owned(),
            source,
        }),
    }
}

/// Whether `path` still names the open `file` (and nothing else does).
#[cfg(unix)]
fn still_named(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => {
            open.dev() == named.dev() && open.ino() == named.ino() && open.nlink() == 1
        }
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_named(_: &std::fs::File, path: &Path) -> bool {
    path.exists()
}

/// Gives the finished copy its name, never replacing a file that has it
/// (one may have appeared while the copy was made): a new link, then the
/// temporary name removed; where the file system has no links, a rename
/// after a last look.
fn put_in_place(partial: &Path, out: &Path) -> Result<(), BackupError> {
    let io = |source| BackupError::Io {
        path: out.to_owned(),
        source,
    };
    match std::fs::hard_link(partial, out) {
        Ok(()) => {
            // The backup is in place; a temporary name left over is
            // unlinked by the next backup to this file.
            let _ = std::fs::remove_file(partial);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(BackupError::Exists(out.to_owned()))
        }
        Err(_) => {
            if out.exists() {
                return Err(BackupError::Exists(out.to_owned()));
            }
            std::fs::rename(partial, out).map_err(io)
        }
    }
}

fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(if url.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url)?
    } else {
        SqliteConnectOptions::new().filename(url)
    })
}

/// A new (or just copied) SQLite file, in rollback-journal mode so that the
/// backup stays one file.
async fn open_copy(file: &Path, create: bool) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(file)
                .create_if_missing(create)
                .journal_mode(SqliteJournalMode::Delete)
                .synchronous(SqliteSynchronous::Full),
        )
        .await
}

/// `VACUUM INTO` from the live SQLite store at `url`.
async fn vacuum_into(url: &str, partial: &Path) -> Result<(), BackupError> {
    let connect = sqlite_options(url)?;
    let file = connect.get_filename().to_owned();
    if !file.exists() {
        return Err(BackupError::NoStore(url.to_owned()));
    }
    if file.is_dir() {
        return Err(StoreError::Directory(url.to_owned()).into());
    }
    // A running server holds the lock: a read-only connection reads through
    // its WAL. With none running, the lock is held here, so none starts
    // writing meanwhile, and a store with no WAL beside it is opened
    // immutable (SQLite then creates no -wal or -shm file).
    // A file with several hard links is refused, as the server refuses
    // it (it was read through the name given).
    let held = match sqlite::tool_lock(&file) {
        Ok(held) => Some(held),
        Err(err @ StoreError::HardLinked { .. }) => return Err(err.into()),
        Err(_) => None,
    };
    let mut wal = file.clone().into_os_string();
    wal.push("-wal");
    let immutable = held.is_some() && !Path::new(&wal).exists();
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            connect
                .read_only(true)
                .immutable(immutable)
                .create_if_missing(false),
        )
        .await;
    let pool = match pool {
        Ok(pool) => pool,
        Err(err) => {
            drop(held);
            return Err(err.into());
        }
    };
    let copied = async {
        let meta: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'sync_meta'",
        )
        .fetch_optional(&pool)
        .await?;
        if meta.is_none() {
            return Err(BackupError::NoStore(url.to_owned()));
        }
        sqlx::query("VACUUM INTO ?")
            .bind(partial.display().to_string())
            .execute(&pool)
            .await?;
        Ok(())
    }
    .await;
    pool.close().await;
    // Nothing left beside the store (see `ToolLock`).
    drop(held);
    copied
}

/// Writes what a PostgreSQL store holds into a new SQLite file.
async fn write(loaded: &Loaded, partial: &Path) -> Result<(), BackupError> {
    let pool = open_copy(partial, true).await?;
    let written = async {
        sqlx::migrate!("./migrations").run(&pool).await?;
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO sync_meta (id, epoch, version, active_provider_id, default_provider_id) \
             VALUES (1, ?, ?, ?, ?)",
        )
        .bind(&loaded.epoch)
        .bind(loaded.version as i64)
        .bind(&loaded.active_provider_id)
        .bind(&loaded.default_provider_id)
        .execute(&mut *tx)
        .await?;
        for p in &loaded.providers {
            let body = serde_json::to_string(p)
                .map_err(|e| StoreError::Corrupt(format!("provider: {e}")))?;
            let operator_revision = loaded.probed.get(&p.id).copied().unwrap_or(p.revision);
            sqlx::query("INSERT INTO providers (id, revision, body) VALUES (?, ?, ?)")
                .bind(&p.id)
                .bind(operator_revision as i64)
                .bind(body)
                .execute(&mut *tx)
                .await?;
        }
        for m in &loaded.models {
            let body =
                serde_json::to_string(m).map_err(|e| StoreError::Corrupt(format!("model: {e}")))?;
            sqlx::query("INSERT INTO models (id, provider_id, revision, body) VALUES (?, ?, ?, ?)")
                .bind(&m.id)
                .bind(&m.provider_id)
                .bind(m.revision as i64)
                .bind(body)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(catalog) = &loaded.catalog {
            sqlx::query("INSERT INTO catalog_applied (id, body) VALUES (1, ?)")
                .bind(catalog)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok::<(), BackupError>(())
    }
    .await;
    pool.close().await;
    written
}

/// Marks the copy as a backup (bringing its schema up to date first, so a
/// copy of an older store has the table) and says what it holds.
async fn mark(partial: &Path) -> Result<Taken, BackupError> {
    let pool = open_copy(partial, false).await?;
    let marked = async {
        sqlx::migrate!("./migrations").run(&pool).await?;
        let mut tx = pool.begin().await?;
        let Some(meta) = sqlx::query("SELECT epoch, version FROM sync_meta WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Err(BackupError::NoStore(
                "the store was never opened by a server".into(),
            ));
        };
        let (epoch, version): (String, i64) = (meta.try_get(0)?, meta.try_get(1)?);
        sqlx::query(
            "INSERT INTO restore_pending (id, epoch, version, taken_at) VALUES (1, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch, version = excluded.version, \
             taken_at = excluded.taken_at",
        )
        .bind(&epoch)
        .bind(version)
        .bind(now_rfc3339())
        .execute(&mut *tx)
        .await?;
        // An identity of its own: put in place of a store (even of the one
        // it was taken from, or of one restored from another backup), it
        // is not taken for that store's file (see `sqlite::Watch`).
        let taken_id: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await?;
        let id = super::sqlite::new_identity(&[Some(taken_id as u32)]);
        sqlx::query(&format!("PRAGMA user_version = {}", id as i32))
            .execute(&mut *tx)
            .await?;
        let providers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM providers")
            .fetch_one(&mut *tx)
            .await?;
        let models: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM models")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Taken {
            epoch,
            version: version.max(0) as u64,
            providers: providers.max(0) as u64,
            models: models.max(0) as u64,
        })
    }
    .await;
    pool.close().await;
    marked
}

/// Whether the SQLite store behind `pool` is a backup no server has opened
/// yet (its schema has the `restore_pending` table).
pub(super) async fn pending(pool: &SqlitePool) -> Result<bool, StoreError> {
    let row: Option<i64> = sqlx::query_scalar("SELECT id FROM restore_pending WHERE id = 1")
        .fetch_optional(pool)
        .await?;
    Ok(row.is_some())
}

/// On opening a backup: a new epoch and an empty log, in one transaction
/// with removing the mark, so it happens once for each restore.
pub(super) async fn start_new_epoch_if_restored(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    let Some(mark) =
        sqlx::query("SELECT epoch, version, taken_at FROM restore_pending WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?
    else {
        return Ok(());
    };
    let (taken_epoch, taken_version, taken_at): (String, i64, String) =
        (mark.try_get(0)?, mark.try_get(1)?, mark.try_get(2)?);
    let epoch = super::sqlite::begin_epoch(&mut tx).await?;
    sqlx::query("DELETE FROM restore_pending")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::warn!(
        %epoch,
        backup_epoch = %taken_epoch,
        backup_version = taken_version,
        taken_at = %taken_at,
        "this store is a restored backup: started a new epoch, every client will take a full state"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backup that opened the temporary copy just before the one holding
    /// it gave it the target's name and let go: the file it has open is the
    /// finished backup, which it must not take.
    #[test]
    fn a_copy_opened_as_it_became_the_backup_is_left_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (partial, out) = (dir.path().join(".b.db.partial"), dir.path().join("b.db"));
        let first = claim(&partial, &out).unwrap();
        std::fs::write(&partial, "the whole backup").unwrap();
        let early = std::fs::OpenOptions::new()
            .write(true)
            .open(&partial)
            .unwrap();
        assert!(matches!(claim(&partial, &out), Err(BackupError::Busy(_))));
        put_in_place(&partial, &out).unwrap();
        drop(first);
        assert!(matches!(
            claim_opened(early, &partial, &out),
            Err(BackupError::Busy(_))
        ));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "the whole backup");
    }

    /// What a stopped backup left under the temporary name is unlinked, not
    /// written into: the finished backup it also names (stopped between its
    /// two names; the backup moved away since), a symbolic link's target.
    #[test]
    fn what_is_left_under_the_temporary_name_is_unlinked_not_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let (partial, out) = (dir.path().join(".b.db.partial"), dir.path().join("b.db"));
        std::fs::write(&partial, "a finished backup").unwrap();
        let moved = dir.path().join("b.db.1");
        std::fs::hard_link(&partial, &moved).unwrap();
        let claimed = claim(&partial, &out).unwrap();
        assert_eq!(claimed.metadata().unwrap().len(), 0);
        assert_eq!(
            std::fs::read_to_string(&moved).unwrap(),
            "a finished backup"
        );
        drop(claimed);
        std::fs::remove_file(&partial).unwrap();
        #[cfg(unix)]
        {
            let target = dir.path().join("precious");
            std::fs::write(&target, "not a backup").unwrap();
            std::os::unix::fs::symlink(&target, &partial).unwrap();
            let claimed = claim(&partial, &out).unwrap();
            assert!(!std::fs::symlink_metadata(&partial).unwrap().is_symlink());
            assert_eq!(std::fs::read_to_string(&target).unwrap(), "not a backup");
            drop(claimed);
        }
    }
}
