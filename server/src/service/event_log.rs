//! The in-memory event log a snapshot serves catch-ups from.
//!
//! Each snapshot has its own log, and every write made the next one by
//! copying the whole of the last: an `Arc` cloned (and later dropped) for
//! every event retained, each on a line of its own — the largest part of a
//! write's own code with LiteLLM's catalog (`trimmed_log`, 3% of a write's
//! CPU at the default 1,000 events), and a write whose cost grew with
//! `--event-retention`. An [`EventLog`] is kept in chunks that logs share:
//! adding events copies the list of chunks and at most the first and last
//! chunk, so a write touches about `len / CHUNK + 2 × CHUNK` entries
//! whatever the retention.

use std::sync::Arc;

use super::{LoggedEvent, Retention};

/// Events per chunk.
const CHUNK: usize = 64;

/// Events, oldest first, shared by the logs that hold them.
type Chunk = Arc<[Arc<LoggedEvent>]>;

/// Change events, oldest first, as a snapshot serves them.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventLog {
    /// No chunk is empty; every chunk but the first and the last holds
    /// [`CHUNK`] events.
    chunks: Vec<Chunk>,
    len: usize,
    /// The JSON bytes of the events held (what `--event-retention-bytes`
    /// bounds).
    bytes: u64,
}

impl EventLog {
    /// The log of `events` (oldest first), bounded by `retention`.
    pub(crate) fn of(events: &[Arc<LoggedEvent>], retention: Retention) -> Self {
        let most = usize::try_from(retention.events).unwrap_or(usize::MAX);
        Self::default().appended(&events[events.len().saturating_sub(most)..], retention)
    }

    /// This log with `new` after it, then its oldest events dropped until
    /// it is within `retention` (the newest kept).
    pub(crate) fn appended(&self, new: &[Arc<LoggedEvent>], retention: Retention) -> Self {
        let mut log = self.clone();
        let mut new = new;
        // The last chunk, if it has room, is copied with the first of the
        // new events; the rest go in chunks of their own.
        if let Some(last) = log.chunks.last_mut()
            && last.len() < CHUNK
            && !new.is_empty()
        {
            let (head, tail) = new.split_at(new.len().min(CHUNK - last.len()));
            *last = last.iter().chain(head).cloned().collect();
            log.count(head);
            new = tail;
        }
        for chunk in new.chunks(CHUNK) {
            log.chunks.push(chunk.into());
            log.count(chunk);
        }
        log.trim(retention);
        log
    }

    fn count(&mut self, events: &[Arc<LoggedEvent>]) {
        self.len += events.len();
        self.bytes += events.iter().map(|e| e.json.len() as u64).sum::<u64>();
    }

    /// Drops the oldest events while more than `retention` are held.
    fn trim(&mut self, retention: Retention) {
        // Whole chunks dropped, then events dropped from the next one.
        let (mut whole, mut dropped) = (0, 0);
        while self.len > 0 && (self.len as u64 > retention.events || self.bytes > retention.bytes) {
            let chunk = &self.chunks[whole];
            self.bytes -= chunk[dropped].json.len() as u64;
            self.len -= 1;
            dropped += 1;
            if dropped == chunk.len() {
                whole += 1;
                dropped = 0;
            }
        }
        self.chunks.drain(..whole);
        if dropped > 0 {
            self.chunks[0] = self.chunks[0][dropped..].into();
        }
    }

    pub(crate) fn first(&self) -> Option<&Arc<LoggedEvent>> {
        self.chunks.first().and_then(|chunk| chunk.first())
    }

    pub(crate) fn last(&self) -> Option<&Arc<LoggedEvent>> {
        self.chunks.last().and_then(|chunk| chunk.last())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<LoggedEvent>> {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }

    /// The events after `version` (the log is in version order).
    pub(crate) fn after(&self, version: u64) -> impl Iterator<Item = &Arc<LoggedEvent>> {
        // The first chunk that ends after `version` (no chunk is empty).
        let at = self
            .chunks
            .partition_point(|chunk| chunk.last().is_some_and(|e| e.event.version <= version));
        let (first, rest): (&[Arc<LoggedEvent>], &[Chunk]) = match self.chunks.get(at) {
            Some(chunk) => {
                let from = chunk.partition_point(|e| e.event.version <= version);
                (&chunk[from..], &self.chunks[at + 1..])
            }
            None => (&[], &[]),
        };
        first
            .iter()
            .chain(rest.iter().flat_map(|chunk| chunk.iter()))
    }

    /// Only the events `keep` keeps (for a reload; copies the log).
    pub(crate) fn retain(&mut self, keep: impl Fn(&LoggedEvent) -> bool) {
        let kept: Vec<Arc<LoggedEvent>> = self.iter().filter(|e| keep(e)).cloned().collect();
        *self = Self::of(&kept, Retention::events(u64::MAX));
    }

    /// Whether two logs hold the event of `version` in the same chunk (a
    /// test of what [`appended`](Self::appended) copies).
    #[cfg(test)]
    fn shares_with(&self, other: &Self, version: u64) -> bool {
        let chunk_of = |log: &Self| {
            log.chunks
                .iter()
                .find(|c| c.iter().any(|e| e.event.version == version))
                .cloned()
        };
        match (chunk_of(self), chunk_of(other)) {
            (Some(a), Some(b)) => Arc::ptr_eq(&a, &b),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(version: u64, len: usize) -> Arc<LoggedEvent> {
        crate::service::tests::logged(version..version + 1, len).remove(0)
    }

    fn versions<'a>(events: impl Iterator<Item = &'a Arc<LoggedEvent>>) -> Vec<u64> {
        events.map(|e| e.event.version).collect()
    }

    /// What the log must hold: the newest events, as many as fit both
    /// bounds (the whole list copied, as each write once did).
    fn model(all: &[Arc<LoggedEvent>], retention: Retention) -> Vec<u64> {
        let mut keep = 0;
        let mut bytes = 0u64;
        for e in all.iter().rev() {
            bytes += e.json.len() as u64;
            if keep as u64 >= retention.events || bytes > retention.bytes {
                break;
            }
            keep += 1;
        }
        versions(all[all.len() - keep..].iter())
    }

    /// Writes of 0 to 150 events (sizes 1 to 40 bytes) onto logs bounded by
    /// count or bytes, against the model after each: the same events, the
    /// same order, the same first, last and length, and `after` as a
    /// filter of them for every version around the log.
    #[test]
    fn a_log_holds_what_a_copy_of_every_event_would() {
        let bounds = [
            Retention::events(1),
            Retention::events(63),
            Retention::events(64),
            Retention::events(65),
            Retention::events(1000),
            Retention {
                events: 10_000,
                bytes: 2_000,
            },
            Retention {
                events: 100,
                bytes: 1_000,
            },
            // Events larger than the bound (up to 40 bytes against 20 and
            // 1), and none kept at all.
            Retention {
                events: 100,
                bytes: 20,
            },
            Retention {
                events: 5,
                bytes: 1,
            },
            Retention::events(0),
        ];
        for retention in bounds {
            let mut seed = 7u64;
            let mut next = |range: u64| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 33) % range
            };
            let mut all = Vec::new();
            let mut log = EventLog::default();
            let mut version = 0;
            for _ in 0..200 {
                let most = if next(4) == 0 { 150 } else { 3 };
                let count = next(most + 1);
                let new: Vec<_> = (0..count)
                    .map(|i| event(version + 1 + i, 1 + next(40) as usize))
                    .collect();
                version += count;
                all.extend(new.iter().cloned());
                log = log.appended(&new, retention);
                let want = model(&all, retention);
                assert_eq!(versions(log.iter()), want, "{retention:?}");
                // The same log made at once from every event.
                assert_eq!(versions(EventLog::of(&all, retention).iter()), want);
                assert_eq!(log.len, want.len());
                assert_eq!(log.first().map(|e| e.event.version), want.first().copied());
                assert_eq!(log.last().map(|e| e.event.version), want.last().copied());
                let bytes: u64 = log.iter().map(|e| e.json.len() as u64).sum();
                assert_eq!(log.bytes, bytes);
                assert!(log.chunks.iter().all(|c| !c.is_empty()));
                // Around the oldest, the chunks' edges and the newest.
                let from = want.first().copied().unwrap_or(version);
                let edges: Vec<u64> = log
                    .chunks
                    .iter()
                    .flat_map(|c| [c[0].event.version, c[c.len() - 1].event.version])
                    .flat_map(|v| [v - 1, v, v + 1])
                    .collect();
                let ends = from.saturating_sub(2)..from + 2;
                for since in ends
                    .chain(edges)
                    .chain(version.saturating_sub(2)..=version + 1)
                {
                    let after: Vec<u64> = want.iter().copied().filter(|&v| v > since).collect();
                    assert_eq!(versions(log.after(since)), after, "after {since}");
                }
            }
        }
    }

    /// Exactly the count, or exactly the bytes, of the newest events fit;
    /// one byte short, one fewer.
    #[test]
    fn the_log_keeps_the_newest_events_up_to_both_bounds_inclusive() {
        let old: Vec<_> = (1..4).map(|v| event(v, 10)).collect();
        let new: Vec<_> = (4..6).map(|v| event(v, 10)).collect();
        let kept = |events, bytes| {
            let retention = Retention { events, bytes };
            versions(
                EventLog::of(&old, retention)
                    .appended(&new, retention)
                    .iter(),
            )
        };
        assert_eq!(kept(3, u64::MAX), [3, 4, 5]);
        assert_eq!(kept(100, 30), [3, 4, 5]);
        assert_eq!(kept(100, 29), [4, 5]);
        // Room for everything: everything, oldest first.
        assert_eq!(kept(10, u64::MAX), [1, 2, 3, 4, 5]);
    }

    /// Adding an event to a log of 1,000 shares every chunk but the first
    /// and last with the log it came from: its cost does not grow with the
    /// retention.
    #[test]
    fn adding_an_event_copies_no_more_than_two_chunks() {
        let retention = Retention::events(1000);
        let first: Vec<_> = (1..=1000).map(|v| event(v, 10)).collect();
        let log = EventLog::of(&first, retention);
        let next = log.appended(&[event(1001, 10)], retention);
        assert_eq!(versions(next.iter()), (2..=1001).collect::<Vec<_>>());
        let shared = (2..=1001).filter(|&v| next.shares_with(&log, v)).count();
        // Chunks of 64 from version 1: the first (now from version 2) and
        // the last (with 1001 added) are copies; the 14 full chunks between
        // them are the same chunks.
        assert_eq!(shared, 14 * CHUNK);
    }

    #[test]
    fn retain_keeps_the_events_asked_for_in_order() {
        let events: Vec<_> = (1..=200).map(|v| event(v, 10)).collect();
        let mut log = EventLog::of(&events, Retention::events(1000));
        log.retain(|e| e.event.version > 130);
        assert_eq!(versions(log.iter()), (131..=200).collect::<Vec<_>>());
        assert_eq!(log.len, 70);
        assert_eq!(log.bytes, 700);
    }
}
