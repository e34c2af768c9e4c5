//! `GET /state` at the best compression: once a version has been stable for
//! a moment (`--precompress-after-ms`), its JSON is compressed once with
//! brotli at quality 11 and gzip at level 9, on a blocking thread, one
//! version at a time, and kept with that version's snapshot. Until then (and
//! for a version superseded before its turn) requests are compressed on the
//! fly as before. The bytes belong to the snapshot they were made from, so a
//! newer version can never be answered with an older one's bytes.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, header};

use crate::service::{Service, Snapshot};
use crate::shutdown::Shutdown;

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

/// Which precompressed encoding a request accepts, brotli first; none when
/// it accepts neither (or refuses both with `q=0`).
pub fn pick<'a>(headers: &HeaderMap, ready: &'a Compressed) -> Option<(&'static str, &'a Bytes)> {
    let accepts = |wanted: &str| {
        headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|item| {
                let mut parts = item.split(';').map(str::trim);
                let name = parts.next().unwrap_or("");
                let refused = parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                name.eq_ignore_ascii_case(wanted) && !refused
            })
    };
    if accepts("br") {
        Some(("br", &ready.br))
    } else if accepts("gzip") {
        Some(("gzip", &ready.gzip))
    } else {
        None
    }
}

/// Compresses `snapshot` unless it has been superseded by the time it is
/// done; gives whether its bytes were kept.
async fn compress_if_current(
    service: &Arc<Service>,
    snapshot: Arc<Snapshot>,
    stopping: Arc<AtomicBool>,
) -> bool {
    let work = snapshot.clone();
    let watched = service.clone();
    let started = Instant::now();
    let compressed = tokio::task::spawn_blocking(move || {
        let version = work.version();
        compress_unless(work.state_json(), &|| {
            stopping.load(Ordering::Relaxed) || watched.snapshot().version() != version
        })
    })
    .await;
    let metrics = service.metrics();
    let Ok(Some(compressed)) = compressed else {
        metrics.precompressed("superseded").inc();
        return false;
    };
    if service.snapshot().version() != snapshot.version() {
        metrics.precompressed("superseded").inc();
        return false;
    }
    tracing::debug!(
        version = snapshot.version(),
        json = snapshot.state_json().len(),
        br = compressed.br.len(),
        gzip = compressed.gzip.len(),
        ms = started.elapsed().as_millis() as u64,
        "state precompressed"
    );
    let _ = snapshot.precompressed.set(compressed);
    metrics.precompressed("ready").inc();
    true
}

/// Watches the current version and precompresses each one that has been
/// stable for `settle`, until shutdown.
pub fn spawn(
    service: Arc<Service>,
    settle: Duration,
    mut shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let tick = (settle / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        let mut seen: Option<(u64, String, Instant)> = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.wait() => return,
            }
            let snapshot = service.snapshot();
            if snapshot.precompressed.get().is_some() {
                continue;
            }
            let key = (snapshot.version(), snapshot.epoch().to_owned());
            match &seen {
                Some((version, epoch, since))
                    if (*version, epoch.as_str()) == (key.0, key.1.as_str()) =>
                {
                    if since.elapsed() >= settle {
                        let stopping = Arc::new(AtomicBool::new(false));
                        let work = compress_if_current(&service, snapshot, stopping.clone());
                        tokio::select! {
                            _ = work => {}
                            _ = shutdown.wait() => {
                                // The blocking thread sees it at its next chunk.
                                stopping.store(true, Ordering::Relaxed);
                                return;
                            }
                        }
                    }
                }
                _ => seen = Some((key.0, key.1, Instant::now())),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

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
        assert_eq!(pick(&HeaderMap::new(), &ready).map(|(n, _)| n), None);
    }
}
