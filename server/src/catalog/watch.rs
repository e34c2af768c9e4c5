//! Live reload: the catalog file is read again and reconciled when it changes
//! (`--catalog-watch`) or on SIGHUP. A file that does not pass is refused
//! with its line and field, and the running catalog stays as it is.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{Catalog, LoadOptions, Outcome};
use crate::metrics::ReloadLabels;
use crate::service::Service;
use crate::shutdown::Shutdown;

/// Changes closer together than this are one reload (an editor's save is
/// often several writes and a rename).
const SETTLE: Duration = Duration::from_millis(200);

/// How long a changed file must stay as it is before it is read: a file
/// written in several steps (a script's `cat > file`, a slow copy) is not
/// read half-written, which may still parse and would remove what its
/// missing half holds (admin edits on it with it). A SIGHUP reads at once.
const STILL: Duration = Duration::from_secs(2);

/// A reload the store could not take (unreachable, or other instances
/// writing first) is tried again, this long after the first failure,
/// doubling up to [`RETRY_MAX`], until it lands or a newer edit replaces it:
/// an edit made during an outage is applied once the store is back.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What came of a reload.
#[derive(Debug, PartialEq)]
pub enum Reloaded {
    /// Applied, unchanged or older than the applied one: the files it was
    /// read from.
    Done(Vec<PathBuf>),
    /// The file did not pass: nothing to try again until it changes.
    Refused,
    /// The store could not take it: worth trying again.
    Failed(Vec<PathBuf>),
}

/// Reads the file again and reconciles it; logs and counts the result.
pub async fn reload(
    service: &Arc<Service>,
    path: &Path,
    options: &LoadOptions,
    why: &str,
) -> Reloaded {
    let shown = path.display().to_string();
    let load = {
        let path = path.to_owned();
        let options = options.clone();
        tokio::task::spawn_blocking(move || Catalog::load_with(&path, &options))
    };
    let catalog = match load.await.expect("loading does not panic") {
        Ok(catalog) => catalog,
        Err(err) => {
            count(service, "refused");
            tracing::error!(catalog = %shown, trigger = why, error = %err, "catalog reload refused; the running catalog is unchanged");
            return Reloaded::Refused;
        }
    };
    catalog.report.log(&shown);
    match service.reconcile(&catalog).await {
        Ok(written) => {
            let done = written.value;
            let result = match done.outcome {
                Outcome::Applied => "applied",
                Outcome::Unchanged => "unchanged",
                Outcome::Older { .. } => "older",
            };
            count(service, result);
            if let Outcome::Older {
                file,
                stored,
                by_time: true,
            } = done.outcome
            {
                // A LiteLLM file's age is its modification time.
                tracing::warn!(catalog = %shown, trigger = why, file_modified_unix_s = file, applied_modified_unix_s = stored, hint = super::OLDER_BY_TIME_HINT, "catalog reload: the LiteLLM file is older than the one applied; nothing applied");
            } else if let Outcome::Older { file, stored, .. } = done.outcome {
                tracing::warn!(catalog = %shown, trigger = why, file_revision = file, applied_revision = stored, "catalog reload: the file is older than the applied catalog; nothing applied");
            } else {
                if done.revision_unchanged {
                    tracing::warn!(catalog = %shown, trigger = why, revision = catalog.revision.unwrap_or(0), "{}", super::REVISION_UNCHANGED);
                }
                tracing::info!(catalog = %shown, trigger = why, result, events = done.events, added = done.added, updated = done.updated, removed = done.removed, kept_admin_edits = done.kept_edits, pending = done.pending, pending_first = ?done.pending_ids, version = written.version, "catalog reloaded");
            }
        }
        // Worth trying again: the store did not answer, or other instances
        // kept writing first (not a store that refuses the catalog).
        Err(err)
            if matches!(&err, crate::error::Error::Unavailable(_))
                || matches!(&err, crate::error::Error::Store(e)
                    if e.is_unreachable() || e.is_read_only()) =>
        {
            count(service, "failed");
            tracing::error!(catalog = %shown, trigger = why, error = %err, "catalog reload could not be written; the running catalog is unchanged until it is, tried again shortly");
            return Reloaded::Failed(catalog.sources);
        }
        Err(err) => {
            count(service, "refused");
            tracing::error!(catalog = %shown, trigger = why, error = %err, "catalog reload refused; the running catalog is unchanged");
            return Reloaded::Refused;
        }
    }
    Reloaded::Done(catalog.sources)
}

/// What the catalog's files hold, to tell a real change from a touch: each
/// file's content, or that it cannot be read (a file that went missing, or
/// came back, is a change; one still missing while another changes is
/// not the only thing looked at).
fn digest(sources: &[PathBuf]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for source in sources {
        // Bounded as the catalog's own read is (a file swapped for a huge
        // one, or a link to `/dev/zero`, was read whole here).
        super::read_bounded(source, super::MAX_CATALOG_BYTES)
            .ok()
            .hash(&mut hasher);
    }
    hasher.finish()
}

fn count(service: &Service, result: &'static str) {
    service
        .metrics()
        .catalog_reloads
        .get_or_create(&ReloadLabels { result })
        .inc();
}

/// Reloads on SIGHUP and, with `watch`, when one of the catalog's files
/// changes, until shutdown.
pub fn spawn(
    service: Arc<Service>,
    path: PathBuf,
    sources: Vec<PathBuf>,
    options: LoadOptions,
    watch: bool,
    mut shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
    // The watcher lives as long as the task.
    let watcher = if watch {
        match watch_files(&path, &sources, tx.clone()) {
            Ok(w) => Some(w),
            Err(err) => {
                tracing::error!(error = %err, "cannot watch the catalog file; reload with SIGHUP");
                None
            }
        }
    } else {
        None
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hangups) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while hangups.recv().await.is_some() {
                        if tx.send("SIGHUP").is_err() {
                            return;
                        }
                    }
                });
            }
            Err(err) => tracing::warn!(error = %err, "cannot listen for SIGHUP"),
        }
    }
    tokio::spawn(async move {
        let mut sources = sources;
        let mut seen = digest(&sources);
        let mut _watcher = watcher;
        // A reload the store could not take: when to try again, and the
        // wait after that.
        let mut retry: Option<(tokio::time::Instant, Duration)> = None;
        loop {
            let again = async {
                match retry {
                    Some((at, _)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let why = tokio::select! {
                why = rx.recv() => match why { Some(why) => why, None => return },
                () = again => "retry",
                _ = shutdown.wait() => return,
            };
            let mut why = why;
            tokio::select! {
                () = settle(&mut why, &mut rx, || digest(&sources)) => {}
                _ = shutdown.wait() => return,
            }
            // A file event is any change in the folders (editors rename,
            // Kubernetes swaps a symlink, the store's own files beside it):
            // reload only if the content moved. A file that went missing
            // is that too, once: then refused, not again at every event
            // until it is back.
            let now = digest(&sources);
            if why != "SIGHUP" && why != "retry" && retry.is_none() && now == seen {
                continue;
            }
            seen = now;
            let read = match reload(&service, &path, &options, why).await {
                Reloaded::Done(read) => {
                    retry = None;
                    Some(read)
                }
                Reloaded::Refused => {
                    retry = None;
                    None
                }
                Reloaded::Failed(read) => {
                    let wait = retry.map_or(RETRY_FIRST, |(_, wait)| (wait * 2).min(RETRY_MAX));
                    retry = Some((tokio::time::Instant::now() + wait, wait));
                    Some(read)
                }
            };
            if let Some(read) = read
                && read != sources
            {
                sources = read;
                seen = digest(&sources);
                if watch {
                    _watcher = watch_files(&path, &sources, tx.clone())
                        .map_err(
                            |err| tracing::error!(error = %err, "cannot watch the catalog's files"),
                        )
                        .ok();
                }
            }
        }
    })
}

/// Lets a burst of changes settle into one reload: a file change (or a
/// retry: the file may have changed while the store was out) waits until
/// the files' content has stayed the same for [`STILL`], looked at every
/// [`SETTLE`]; a SIGHUP (`why`, also when one comes meanwhile) waits
/// [`SETTLE`] alone. By content: events come for any file in the folders
/// (the store's own beside it, at every write), and the first one may come
/// in the middle of a write (a `cp` over the file): stillness is counted
/// from the last change seen, not from a look taken then (which made the
/// wait 2–4 s).
async fn settle(
    why: &mut &'static str,
    rx: &mut mpsc::UnboundedReceiver<&'static str>,
    content: impl Fn() -> u64,
) {
    let mut seen = content();
    let mut still_since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(SETTLE).await;
        while let Ok(next) = rx.try_recv() {
            if next == "SIGHUP" {
                *why = next;
            }
        }
        if *why == "SIGHUP" {
            return;
        }
        let now = content();
        if now != seen {
            seen = now;
            still_since = tokio::time::Instant::now();
        } else if still_since.elapsed() >= STILL {
            return;
        }
    }
}

fn watch_files(
    path: &Path,
    sources: &[PathBuf],
    tx: mpsc::UnboundedSender<&'static str>,
) -> notify::Result<notify::RecommendedWatcher> {
    // Editors often replace a file rather than write it, and Kubernetes
    // swaps a symlink beside it: watch the folders (of the path as given and
    // of the files it resolves to), and let the content decide.
    let mut folders: Vec<PathBuf> = Vec::new();
    for file in std::iter::once(path).chain(sources.iter().map(PathBuf::as_path)) {
        for resolved in [
            std::path::absolute(file).ok(),
            std::fs::canonicalize(file).ok(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(folder) = resolved.parent() {
                folders.push(folder.to_owned());
            }
        }
    }
    folders.sort();
    folders.dedup();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // A database beside the catalog writes its journal all the time.
        let journal = |p: &PathBuf| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            name.ends_with("-wal") || name.ends_with("-shm") || name.ends_with("-journal")
        };
        if let Ok(event) = event
            && !event.kind.is_access()
            && !event.paths.iter().all(journal)
        {
            let _ = tx.send("file change");
        }
    })?;
    for folder in &folders {
        watcher.watch(folder, RecursiveMode::NonRecursive)?;
    }
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// The first event of a `cp` over the catalog comes as the file is
    /// emptied; its content is complete 50 ms later. The reload is read
    /// once the content has stayed for [`STILL`] after that, not after a
    /// second whole wait (a black-box check, 2026-12-04: 4 s, not 2 s).
    #[tokio::test(start_paused = true)]
    async fn stillness_counts_from_the_last_change_seen() {
        let content = Arc::new(AtomicU64::new(0));
        let writer = content.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            writer.store(1, Ordering::SeqCst);
        });
        let (_tx, mut rx) = mpsc::unbounded_channel();
        let started = tokio::time::Instant::now();
        let mut why = "file change";
        settle(&mut why, &mut rx, || content.load(Ordering::SeqCst)).await;
        let waited = started.elapsed();
        assert!(
            waited >= STILL && waited <= STILL + 2 * SETTLE,
            "read after {waited:?}"
        );
        // A file that keeps changing is not read until it stops.
        let started = tokio::time::Instant::now();
        let writer = content.clone();
        tokio::spawn(async move {
            for step in 2..12 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                writer.store(step, Ordering::SeqCst);
            }
        });
        settle(&mut why, &mut rx, || content.load(Ordering::SeqCst)).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(5) + STILL,
            "read after {waited:?}, while the file still changed"
        );
        // A SIGHUP meanwhile reads at once.
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send("SIGHUP").unwrap();
        let started = tokio::time::Instant::now();
        let mut why = "file change";
        settle(&mut why, &mut rx, || content.load(Ordering::SeqCst)).await;
        assert_eq!((why, started.elapsed()), ("SIGHUP", SETTLE));
    }
}
