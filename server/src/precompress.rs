//! `GET /state` and full `POST /sync` answers at the best compression: once
//! a version has been stable for a moment (`--precompress-after-ms`), its
//! state JSON is compressed once with brotli at quality 11 and gzip at level
//! 9, on a blocking thread, one version at a time, and kept with that
//! version's snapshot; then, the same way, the full `/sync` answer for each
//! reason (`too_old`, `epoch_mismatch`, …) that a client has been given at
//! this version (the answers differ by their reason, and compressing all
//! five for every version would cost five times the CPU). Until then (and
//! for a version superseded before its turn) answers are compressed at the
//! on-the-fly levels, once per answer and encoding ([`QuickCopies`]). The
//! bytes belong to the snapshot they were made from, so a newer version can
//! never be answered with an older one's bytes.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use prometheus_client::metrics::counter::Counter;
use provider_sync_protocol::FullSyncReason;

use crate::service::{Service, Snapshot};
use crate::shutdown::Shutdown;

/// Every reason a full `/sync` answer can give, in [`reason_index`] order.
const REASONS: [FullSyncReason; 5] = [
    FullSyncReason::Requested,
    FullSyncReason::EpochMismatch,
    FullSyncReason::TooOld,
    FullSyncReason::FutureVersion,
    FullSyncReason::Smaller,
];

fn reason_index(reason: FullSyncReason) -> usize {
    match reason {
        FullSyncReason::Requested => 0,
        FullSyncReason::EpochMismatch => 1,
        FullSyncReason::TooOld => 2,
        FullSyncReason::FutureVersion => 3,
        FullSyncReason::Smaller => 4,
    }
}

/// One version's full `/sync` answers at the best levels, per reason: made
/// in the background for a reason once a client has been given it.
#[derive(Debug, Default)]
pub struct FullSyncs {
    wanted: [AtomicBool; REASONS.len()],
    ready: [OnceLock<Compressed>; REASONS.len()],
    /// The answers as JSON, made once per reason and shared by every
    /// request given it (as `/state`'s bytes are): a client that does not
    /// read its answer holds a reference, not a copy of the catalog.
    json: [OnceLock<Bytes>; REASONS.len()],
}

impl FullSyncs {
    /// The JSON answer for `reason`, made by `make` the first time.
    pub fn json(&self, reason: FullSyncReason, make: impl FnOnce() -> Vec<u8>) -> &Bytes {
        self.json[reason_index(reason)].get_or_init(|| Bytes::from(make()))
    }

    /// The answer for `reason` at the best levels, if it is ready.
    pub fn get(&self, reason: FullSyncReason) -> Option<&Compressed> {
        self.ready[reason_index(reason)].get()
    }

    /// A client was given the answer for `reason`: make it at the best
    /// levels when this version has been stable for a moment.
    /// Whether it was not asked for before.
    pub fn want(&self, reason: FullSyncReason) -> bool {
        !self.wanted[reason_index(reason)].swap(true, Ordering::Relaxed)
    }

    /// The reasons wanted and not ready yet.
    fn pending(&self) -> Vec<FullSyncReason> {
        REASONS
            .into_iter()
            .filter(|&r| {
                self.wanted[reason_index(r)].load(Ordering::Relaxed) && self.get(r).is_none()
            })
            .collect()
    }

    fn set(&self, reason: FullSyncReason, compressed: Compressed) {
        let _ = self.ready[reason_index(reason)].set(compressed);
    }
}

/// What the background task compresses for a version.
#[derive(Debug, Clone, Copy)]
enum Job {
    State,
    FullSync(FullSyncReason),
}

impl Job {
    fn json(self, snapshot: &Snapshot) -> Bytes {
        match self {
            Self::State => snapshot.state_json().clone(),
            Self::FullSync(reason) => crate::http::sync::full_sync_body(snapshot, reason),
        }
    }

    fn done(self, snapshot: &Snapshot) -> bool {
        match self {
            Self::State => snapshot.precompressed.get().is_some(),
            Self::FullSync(reason) => snapshot.full_syncs.get(reason).is_some(),
        }
    }

    fn keep(self, snapshot: &Snapshot, compressed: Compressed) {
        match self {
            Self::State => {
                let _ = snapshot.precompressed.set(compressed);
                snapshot.quick.clear(Answer::State);
            }
            Self::FullSync(reason) => {
                snapshot.full_syncs.set(reason, compressed);
                snapshot.quick.clear(Answer::FullSync(reason));
            }
        }
    }

    fn counter(self, service: &Service, result: &'static str) -> Counter {
        let metrics = service.metrics();
        match self {
            Self::State => metrics.precompressed(result),
            Self::FullSync(_) => metrics.sync_precompressed(result),
        }
    }
}

/// One version's state JSON, compressed at the best levels.
#[derive(Debug, Clone)]
pub struct Compressed {
    pub br: Bytes,
    pub gzip: Bytes,
}

/// Compresses `json` at the best brotli (quality 11, 4 MiB window) and gzip
/// (level 9) settings.
pub fn compress(json: &[u8]) -> Compressed {
    compress_unless(json, &|| false).expect("never cancelled")
}

/// [`compress`], fed 64 KiB at a time and given up (None) as soon as
/// `cancelled` says so: a version superseded, or the server shutting down,
/// does not hold a thread for the seconds a large state takes.
pub fn compress_unless(json: &[u8], cancelled: &dyn Fn() -> bool) -> Option<Compressed> {
    const CHUNK: usize = 64 * 1024;
    let mut br = Vec::with_capacity(json.len() / 8);
    {
        let mut writer = brotli::CompressorWriter::new(&mut br, CHUNK, 11, 22);
        for chunk in json.chunks(CHUNK) {
            if cancelled() {
                return None;
            }
            writer
                .write_all(chunk)
                .expect("writing to a Vec cannot fail");
        }
    }
    let mut gzip = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 6),
        flate2::Compression::best(),
    );
    for chunk in json.chunks(CHUNK) {
        if cancelled() {
            return None;
        }
        gzip.write_all(chunk).expect("writing to a Vec cannot fail");
    }
    Some(Compressed {
        br: Bytes::from(br),
        gzip: Bytes::from(gzip.finish().expect("writing to a Vec cannot fail")),
    })
}

/// A compressed encoding a client can be answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Br,
    Gzip,
}

impl Coding {
    /// Its `Content-Encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Br => "br",
            Self::Gzip => "gzip",
        }
    }

    /// These bytes of a version's best copies.
    pub fn of(self, ready: &Compressed) -> &Bytes {
        match self {
            Self::Br => &ready.br,
            Self::Gzip => &ready.gzip,
        }
    }
}

/// A full-state answer of one version: `GET /state`'s, or the full
/// `POST /sync` answer for a reason.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    State,
    FullSync(FullSyncReason),
}

/// One version's full-state answers compressed at the levels of on-the-fly
/// compression (brotli 4, gzip 6: tower-http's), made by the first request
/// that needs one before the best copies are ready and shared by every
/// request for it meanwhile. Each request compressed the whole catalog for
/// itself before: with a 6 MB state, 60–130 ms of CPU per request for the
/// seconds the best copies take, which a flood of full syncs after a write
/// turned into seconds of latency for everyone else. Dropped once the
/// answer's best copies are ready ([`QuickCopies::clear`]).
#[derive(Default)]
pub struct QuickCopies {
    /// By answer (`GET /state`, then the reasons in [`reason_index`] order)
    /// and encoding (brotli, gzip).
    copies: [[std::sync::Mutex<Option<Quick>>; 2]; 1 + REASONS.len()],
}

/// A compression on the blocking pool, awaited by every request that wants
/// its bytes.
type Quick = futures_util::future::Shared<futures_util::future::BoxFuture<'static, Option<Bytes>>>;

impl std::fmt::Debug for QuickCopies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuickCopies").finish_non_exhaustive()
    }
}

impl QuickCopies {
    fn slots(&self, answer: Answer) -> &[std::sync::Mutex<Option<Quick>>; 2] {
        &self.copies[match answer {
            Answer::State => 0,
            Answer::FullSync(reason) => 1 + reason_index(reason),
        }]
    }

    /// The `answer` in `coding`: its best copy if `best` has one ready;
    /// else compressed from `json` the first time (on the blocking pool, to
    /// its end even if the request that started it goes away: the requests
    /// that come meanwhile, or later, take its bytes rather than start
    /// again; `made` counts it); none if that could not be done (the caller
    /// then answers uncompressed and the layer compresses). `best` is asked
    /// under the slot's lock before a compression starts: the best copy is
    /// kept before [`QuickCopies::clear`] takes that lock, so a request
    /// racing the best copy either takes it or starts a copy that `clear`
    /// then drops (none is left in memory beside the best one).
    pub async fn get(
        &self,
        answer: Answer,
        coding: Coding,
        made: &Counter,
        best: impl Fn() -> Option<Bytes>,
        json: impl FnOnce() -> Bytes,
    ) -> Option<Bytes> {
        use futures_util::FutureExt;
        let slot = &self.slots(answer)[coding as usize];
        let lock = || {
            slot.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        // Once the best copy is ready (most requests), without the lock.
        if let Some(bytes) = best() {
            return Some(bytes);
        }
        let started = {
            let held = lock();
            if let Some(bytes) = best() {
                return Some(bytes);
            }
            held.clone()
        };
        let quick = match started {
            Some(quick) => quick,
            None => {
                // The JSON made (a full answer's, the first time) outside the
                // lock; a request that started the work meanwhile wins.
                let json = json();
                let mut held = lock();
                if let Some(bytes) = best() {
                    return Some(bytes);
                }
                held.get_or_insert_with(|| {
                    let made = made.clone();
                    let task = tokio::task::spawn_blocking(move || {
                        let bytes = compress_quick(&json, coding);
                        made.inc();
                        bytes
                    });
                    async move { task.await.ok() }.boxed().shared()
                })
                .clone()
            }
        };
        quick.await
    }

    /// Drops the copies of `answer`: its best ones are ready.
    pub fn clear(&self, answer: Answer) {
        for slot in self.slots(answer) {
            *slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
    }
}

/// `json` at the levels of on-the-fly compression.
fn compress_quick(json: &[u8], coding: Coding) -> Bytes {
    let mut out = Vec::with_capacity(json.len() / 6);
    match coding {
        Coding::Br => {
            let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, 4, 22);
            writer
                .write_all(json)
                .expect("writing to a Vec cannot fail");
        }
        Coding::Gzip => {
            let mut writer = flate2::write::GzEncoder::new(&mut out, flate2::Compression::new(6));
            writer
                .write_all(json)
                .expect("writing to a Vec cannot fail");
            writer.finish().expect("writing to a Vec cannot fail");
        }
    }
    Bytes::from(out)
}

/// A request's `Accept-Encoding` values alone (all [`pick`] reads), so a
/// handler that may answer with precompressed bytes copies no other header.
#[derive(Debug)]
pub struct AcceptEncoding(pub HeaderMap);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AcceptEncoding {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let mut headers = HeaderMap::new();
        for value in parts.headers.get_all(header::ACCEPT_ENCODING) {
            headers.append(header::ACCEPT_ENCODING, value.clone());
        }
        Ok(Self(headers))
    }
}

/// Which precompressed encoding a request prefers, as tower-http's
/// on-the-fly compression chooses (held to it by a test that asks the
/// layer itself): each entry's `q` as tower-http reads it ([`qvalue`]; an
/// entry whose parameter is anything else is left out, as are unknown
/// codings), refused codings (`q=0`) dropped, then the highest `q`, brotli
/// before gzip (`x-gzip` too) before `identity` on a tie; none when that is
/// `identity` or nothing is left.
pub fn pick<'a>(headers: &HeaderMap, ready: &'a Compressed) -> Option<(&'static str, &'a Bytes)> {
    preferred(headers).map(|coding| (coding.name(), coding.of(ready)))
}

/// The encoding [`pick`] chooses for a request, if any.
pub fn preferred(headers: &HeaderMap) -> Option<Coding> {
    const IDENTITY: u8 = 0;
    const GZIP: u8 = 1;
    const BR: u8 = 2;
    let best = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let mut parts = item.splitn(2, ';');
            let name = parts.next()?.trim();
            let coding = if name.eq_ignore_ascii_case("br") {
                BR
            } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                GZIP
            } else if name.eq_ignore_ascii_case("identity") {
                IDENTITY
            } else {
                return None;
            };
            let q = match parts.next() {
                None => 1000,
                Some(q) => qvalue(q.trim())?,
            };
            Some((q, coding))
        })
        .filter(|&(q, _)| q > 0)
        .max();
    match best {
        Some((_, BR)) => Some(Coding::Br),
        Some((_, GZIP)) => Some(Coding::Gzip),
        _ => None,
    }
}

/// A q-value in thousandths, as tower-http reads one (RFC 9110, 12.4.2):
/// `q=` (or `Q=`), then `0` or `1`, optionally a point and at most three
/// digits, at most 1; anything else is none.
fn qvalue(text: &str) -> Option<u16> {
    let rest = text.strip_prefix(['q', 'Q'])?.strip_prefix('=')?;
    let (whole, fraction) = rest.split_once('.').unwrap_or((rest, ""));
    let mut value: u16 = match whole {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    for (digit, factor) in fraction.bytes().zip([100, 10, 1]) {
        value += u16::from(digit - b'0') * factor;
    }
    (value <= 1000).then_some(value)
}

/// What became of one compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Its bytes were kept for the version.
    Kept,
    /// The version was superseded (or the server is stopping) first.
    Superseded,
    /// It could not be done: no thread could be started for it, or the
    /// thread ended without an answer.
    Failed,
}

/// Compresses what `job` names of `snapshot` unless the version has been
/// superseded by the time it is done.
async fn compress_if_current(
    service: &Arc<Service>,
    snapshot: Arc<Snapshot>,
    job: Job,
    stopping: Arc<AtomicBool>,
) -> Outcome {
    let work = snapshot.clone();
    let watched = service.clone();
    let started = Instant::now();
    // On a thread of its own at the lowest priority: seconds of CPU for a
    // large catalog, which answers to clients must not wait behind.
    let (done, compressed) = tokio::sync::oneshot::channel();
    let spawned = if refused_for_test(service) {
        Err(std::io::Error::other("refused by a test"))
    } else {
        std::thread::Builder::new()
            .name("precompress".into())
            .spawn(move || {
                lowest_priority();
                let json = job.json(&work);
                let compressed = compress_unless(&json, &|| {
                    stopping.load(Ordering::Relaxed) || !same_state(&watched.snapshot(), &work)
                });
                let _ = done.send((json.len(), compressed));
                give_back_memory();
            })
    };
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "cannot start a thread to precompress: answers stay compressed on the fly until it is tried again");
        job.counter(service, "failed").inc();
        return Outcome::Failed;
    }
    let (json, compressed) = match compressed.await {
        Ok((json, Some(compressed))) => (json, compressed),
        Ok((_, None)) => {
            job.counter(service, "superseded").inc();
            return Outcome::Superseded;
        }
        // The thread ended without an answer: it panicked.
        Err(_) => {
            tracing::warn!("the precompressing thread failed: tried again");
            job.counter(service, "failed").inc();
            return Outcome::Failed;
        }
    };
    if !same_state(&service.snapshot(), &snapshot) {
        job.counter(service, "superseded").inc();
        return Outcome::Superseded;
    }
    tracing::debug!(
        version = snapshot.version(),
        what = ?job,
        json,
        br = compressed.br.len(),
        gzip = compressed.gzip.len(),
        ms = started.elapsed().as_millis() as u64,
        "precompressed"
    );
    job.keep(&snapshot, compressed);
    job.counter(service, "ready").inc();
    Outcome::Kept
}

/// Services (by address, once per entry) whose next attempts to start a
/// compressing thread fail, as on a system out of threads: the retry's
/// test.
#[cfg(test)]
static REFUSED_THREADS: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// The next attempt to start a compressing thread for `service` (one more
/// for each call) fails.
#[cfg(test)]
pub(crate) fn refuse_next_thread(service: &Arc<Service>) {
    let me = Arc::as_ptr(service) as usize;
    REFUSED_THREADS.lock().expect("refusals lock").push(me);
}

#[cfg(test)]
fn refused_for_test(service: &Arc<Service>) -> bool {
    let mut refused = REFUSED_THREADS.lock().expect("refusals lock");
    let me = Arc::as_ptr(service) as usize;
    match refused.iter().position(|&one| one == me) {
        Some(at) => {
            refused.swap_remove(at);
            true
        }
        None => false,
    }
}

#[cfg(not(test))]
fn refused_for_test(_: &Arc<Service>) -> bool {
    false
}

/// Gives the calling thread the lowest scheduling priority (nice 19: on
/// Linux a thread's own), so that it takes only CPU time the others leave.
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its arguments; `who` 0 is the calling
    // thread on Linux.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
    }
}

/// Hands the allocator's free memory back to the system: the best brotli
/// level works in tens of megabytes, freed when it ends but kept by the
/// allocator (its arenas) as the server's resident memory.
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Whether `now` holds the state `then` did: the same version of the same
/// epoch with the same checksum (a store copied back from a backup without
/// a new epoch can reach a version again with other content).
fn same_state(now: &Snapshot, then: &Snapshot) -> bool {
    now.version() == then.version()
        && now.epoch() == then.epoch()
        && now.state.metadata.checksum == then.state.metadata.checksum
}

/// What is left to compress for `snapshot`: its state, then the full
/// `/sync` answers clients have been given.
fn jobs(snapshot: &Snapshot) -> Vec<Job> {
    let mut jobs = Vec::new();
    if !Job::State.done(snapshot) {
        jobs.push(Job::State);
    }
    jobs.extend(snapshot.full_syncs.pending().into_iter().map(Job::FullSync));
    jobs
}

/// Precompresses each version once it has been current for `settle` (at
/// least 10 ms), and the full `/sync` answers clients are given for it,
/// until shutdown. It sleeps until the current version will have settled,
/// or, with nothing left to do, until a new one is published or an answer
/// asked for: an idle server has no timer of its own, and writes in quick
/// succession wake it about once per `settle`, not once per write. A
/// compression that could not be done (no thread for it, or it failed) is
/// tried again after a quarter of `settle` (10 to 250 ms), then after twice
/// as long at each failure in a row, up to 30 s ([`retry_delay`]).
pub fn spawn(
    service: Arc<Service>,
    settle: Duration,
    mut shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    let settle = settle.max(Duration::from_millis(10));
    let retry_after = (settle / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
    tokio::spawn(async move {
        // Compressions that could not be done, in a row.
        let mut failures = 0u32;
        loop {
            // Not held while it waits: a write takes the snapshot it
            // replaced for its successor's draft once nothing holds it
            // (`Service::working_copy`).
            let snapshot = service.snapshot();
            let settled = snapshot.made + settle;
            if tokio::time::Instant::now() < settled {
                drop(snapshot);
                tokio::select! {
                    _ = tokio::time::sleep_until(settled) => {}
                    _ = shutdown.wait() => return,
                }
                continue;
            }
            // A job not kept: superseded (a publication, which wakes the
            // task anyway), or not done; either way, look again.
            let mut unfinished = false;
            for job in jobs(&snapshot) {
                let stopping = Arc::new(AtomicBool::new(false));
                let work = compress_if_current(&service, snapshot.clone(), job, stopping.clone());
                tokio::select! {
                    outcome = work => {
                        match outcome {
                            Outcome::Kept => {
                                failures = 0;
                                continue;
                            }
                            Outcome::Superseded => {}
                            Outcome::Failed => failures = failures.saturating_add(1),
                        }
                        unfinished = true;
                        break;
                    },
                    _ = shutdown.wait() => {
                        // The blocking thread sees it at its next chunk.
                        stopping.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
            drop(snapshot);
            tokio::select! {
                _ = service.published() => {}
                _ = tokio::time::sleep(retry_delay(retry_after, failures)), if unfinished => {}
                _ = shutdown.wait() => return,
            }
        }
    })
}

/// How long to wait before trying again after `failures` compressions in a
/// row could not be done: `first`, doubled at each further one, at most
/// 30 s (a system out of threads is not asked four times a second).
fn retry_delay(first: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    first
        .saturating_mul(1 << doublings)
        .min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// The precompressing thread runs at nice 19; the others keep theirs.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_compressing_thread_takes_the_lowest_priority() {
        let nice = || {
            // SAFETY: getpriority only reads its arguments.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
        };
        let before = nice();
        let inside = std::thread::spawn(move || {
            lowest_priority();
            nice()
        })
        .join()
        .unwrap();
        assert_eq!(inside, 19);
        assert_eq!(nice(), before, "only the calling thread");
    }

    /// A retry after a compression that could not be done waits `first`,
    /// then twice as long at each failure in a row, never over 30 s.
    #[test]
    fn the_retry_waits_longer_after_each_failure_in_a_row() {
        let first = Duration::from_millis(250);
        let waits: Vec<u64> = (0..10)
            .map(|failures| retry_delay(first, failures).as_millis() as u64)
            .collect();
        assert_eq!(
            waits,
            [250, 250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
        assert_eq!(retry_delay(first, u32::MAX), Duration::from_secs(30));
        let short = Duration::from_millis(10);
        assert_eq!(retry_delay(short, 1), short);
        assert_eq!(retry_delay(short, 3), Duration::from_millis(40));
    }

    #[test]
    fn both_encodings_give_back_the_json() {
        let json = br#"{"providers":[],"all_models":[],"metadata":{"version":3}}"#.repeat(50);
        let ready = compress(&json);
        let mut plain = Vec::new();
        brotli::Decompressor::new(&ready.br[..], 4096)
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, json);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&ready.gzip[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, json);
    }

    #[test]
    fn every_reason_has_its_own_place() {
        for (i, reason) in REASONS.into_iter().enumerate() {
            assert_eq!(reason_index(reason), i, "{reason:?}");
        }
        let syncs = FullSyncs::default();
        assert!(syncs.pending().is_empty());
        syncs.want(FullSyncReason::TooOld);
        syncs.want(FullSyncReason::Requested);
        assert_eq!(
            syncs.pending(),
            [FullSyncReason::Requested, FullSyncReason::TooOld]
        );
        syncs.set(FullSyncReason::TooOld, compress(b"{}"));
        assert!(syncs.get(FullSyncReason::TooOld).is_some());
        assert!(syncs.get(FullSyncReason::Requested).is_none());
        assert_eq!(syncs.pending(), [FullSyncReason::Requested]);
    }

    /// Every request given a reason's full answer at one version shares its
    /// bytes (each built its own: 1.8 MB with LiteLLM's catalog, held per
    /// connection by a client that does not read).
    #[test]
    fn a_full_answer_is_made_once_and_shared() {
        let syncs = FullSyncs::default();
        let made = std::cell::Cell::new(0);
        let make = || {
            made.set(made.get() + 1);
            b"{\"sync_type\":\"full\"}".to_vec()
        };
        let first = syncs.json(FullSyncReason::TooOld, make).clone();
        let second = syncs.json(FullSyncReason::TooOld, make).clone();
        assert_eq!(made.get(), 1);
        assert_eq!(
            first.as_ptr(),
            second.as_ptr(),
            "the same bytes, not a copy"
        );
        syncs.json(FullSyncReason::Requested, make);
        assert_eq!(made.get(), 2, "each reason its own");
    }

    /// A request that found no best copy and, while it built the JSON to
    /// compress, saw the best copy kept (and the quick copies cleared) takes
    /// the best copy: no quick compression is started then, and none stays
    /// in memory beside the best one. Before, it started one that nothing
    /// cleared until the version was superseded.
    #[tokio::test]
    async fn a_quick_copy_is_not_started_once_the_best_one_is_kept() {
        let copies = QuickCopies::default();
        let made = Counter::default();
        let best = std::sync::OnceLock::<Bytes>::new();
        let body = copies
            .get(
                Answer::State,
                Coding::Br,
                &made,
                || best.get().cloned(),
                || {
                    // The background task keeps the best copy, then clears.
                    best.set(Bytes::from_static(b"best")).unwrap();
                    copies.clear(Answer::State);
                    Bytes::from_static(b"{}")
                },
            )
            .await;
        assert_eq!(body.as_deref(), Some(&b"best"[..]));
        assert_eq!(made.get(), 0, "no quick compression");
        assert!(
            copies.slots(Answer::State)[Coding::Br as usize]
                .lock()
                .unwrap()
                .is_none()
        );

        // Before the best copy, a request compresses once for every one.
        let copies = QuickCopies::default();
        let get = || {
            copies.get(
                Answer::State,
                Coding::Gzip,
                &made,
                || None,
                || Bytes::from_static(b"{\"providers\":[]}"),
            )
        };
        let (one, two) = tokio::join!(get(), get());
        assert_eq!(one, two);
        assert!(one.is_some());
        assert_eq!(made.get(), 1);
    }

    #[test]
    fn the_encoding_follows_accept_encoding() {
        let ready = compress(b"{}");
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
            pick(&headers, &ready).map(|(name, _)| name)
        };
        assert_eq!(with("gzip, deflate, br, zstd"), Some("br"));
        assert_eq!(with("gzip"), Some("gzip"));
        assert_eq!(with("br;q=0, gzip;q=0.5"), Some("gzip"));
        assert_eq!(with("BR"), Some("br"));
        assert_eq!(with("identity"), None);
        assert_eq!(with("br;q=0, gzip;q=0"), None);
        // The client's preference by q, brotli on a tie.
        assert_eq!(with("br;q=0.5, gzip;q=1"), Some("gzip"));
        assert_eq!(with("gzip;q=0.001, br;q=0.0001"), Some("gzip"));
        assert_eq!(with("gzip;q=0.8, br;q=0.8"), Some("br"));
        assert_eq!(with("gzip;q=0.5, br"), Some("br"));
        // identity listed above both: nothing compressed; x-gzip is gzip; a
        // q out of range leaves its entry out.
        assert_eq!(with("identity;q=1, br;q=0.5"), None);
        assert_eq!(with("identity;q=0.5, br;q=0.5"), Some("br"));
        assert_eq!(with("x-gzip"), Some("gzip"));
        assert_eq!(with("br;q=5, gzip;q=0.2"), Some("gzip"));
        assert_eq!(pick(&HeaderMap::new(), &ready).map(|(n, _)| n), None);
    }

    /// The stored copy's encoding is the one tower-http's compression layer
    /// picks on the fly for the same request (they differed: `Q=0` was not
    /// read as a refusal, `q=.5` was taken), so that an answer's encoding
    /// does not depend on whether its version has settled.
    #[tokio::test]
    async fn the_stored_copy_is_picked_as_the_layer_picks() {
        use tower::{Service, ServiceBuilder, ServiceExt};
        let ready = compress(b"{}");
        let mut layer = ServiceBuilder::new()
            .layer(tower_http::compression::CompressionLayer::new())
            .service_fn(|_: axum::http::Request<axum::body::Body>| async {
                let mut response =
                    axum::http::Response::new(axum::body::Body::from(vec![b' '; 4096]));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
                Ok::<_, std::convert::Infallible>(response)
            });
        for accept in [
            "gzip;Q=0",
            "gzip;Q=0.1, br;q=0.5",
            "br;q=.5",
            "br;q=0.50000",
            "br;level=3",
            "br;q=0.5;level=3",
            "gzip, deflate, br, zstd",
            "gzip",
            "br;q=0, gzip;q=0.5",
            "BR",
            "identity",
            "br;q=0, gzip;q=0",
            "br;q=0.5, gzip;q=1",
            "gzip;q=0.001, br;q=0.0001",
            "gzip;q=0.8, br;q=0.8",
            "gzip;q=0.5, br",
            "identity;q=1, br;q=0.5",
            "identity;q=0.5, br;q=0.5",
            "identity;q=0, br;q=0",
            "x-gzip",
            "br;q=5, gzip;q=0.2",
            "gzip;q=0., br;q=0.",
            "gzip;q=1.000",
            "gzip;q=1.001",
            " gzip\t; q=0.5 ,\tbr ;\tq=0.8\t",
            "*",
            "zstd, deflate",
            "",
        ] {
            let mut request = axum::http::Request::new(axum::body::Body::empty());
            request
                .headers_mut()
                .insert(header::ACCEPT_ENCODING, accept.parse().unwrap());
            let picked = pick(request.headers(), &ready).map(|(name, _)| name);
            let response = layer.ready().await.unwrap().call(request).await.unwrap();
            let on_the_fly = response
                .headers()
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(
                picked.map(str::to_owned),
                on_the_fly,
                "Accept-Encoding: {accept:?}"
            );
        }
    }
}
