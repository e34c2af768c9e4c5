//! The cached copy: what is saved (per `apiBaseUrl`), and whether a saved
//! copy may be used at start. The IndexedDB adapter lives in the browser
//! layer; this part is plain data and rules.
//!
//! A copy's age counts from when it was last known current: saved, or
//! confirmed unchanged by the server (a heartbeat, a poll), which is stored
//! apart (a number under [`confirmed_key`]) so that confirming never rewrites
//! the whole state.

use provider_sync_protocol::SyncState;
use serde::{Deserialize, Serialize};

/// Bumped when the record's shape changes; records of another schema are
/// discarded.
pub const CACHE_SCHEMA: u32 = 1;

/// One saved copy.
/// Read and written by the SDK with [`provider_sync_wire::Read`] and
/// [`provider_sync_wire::Write`]; serde's derives are kept for the tests
/// and fuzz checks, which hold the two side by side.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    provider_sync_wire::Read,
    provider_sync_wire::Write,
)]
pub struct CacheRecord {
    pub schema: u32,
    /// The `apiBaseUrl` (resolved) the state came from; the record's key.
    pub source: String,
    /// When it was saved, ms since the Unix epoch.
    pub saved_at: f64,
    pub state: SyncState,
}

/// A [`CacheRecord`]'s JSON text, written from its parts: the state is
/// written where it is, not cloned into a record first (3,345 models of
/// LiteLLM's catalog at every save).
pub fn record_text(source: &str, saved_at: f64, state: &SyncState) -> String {
    use crate::json::{Write, Writer};
    let mut out = Writer::default();
    out.raw("{\"schema\":");
    out.unsigned(CACHE_SCHEMA.into());
    out.raw(",\"source\":");
    source.write(&mut out);
    out.raw(",\"saved_at\":");
    saved_at.write(&mut out);
    out.raw(",\"state\":");
    state.write(&mut out);
    out.raw("}");
    out.finish()
}

/// The key under which the time a copy was last confirmed is kept.
pub fn confirmed_key(source: &str) -> String {
    crate::json::concat(&[source, "#confirmed"])
}

/// Why a saved record was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    OtherSchema,
    OtherSource,
    /// Its checksum does not match its content: damaged.
    Corrupt,
}

impl Rejected {
    pub fn describe(self) -> &'static str {
        match self {
            Self::OtherSchema => "it has another schema",
            Self::OtherSource => "it came from another server",
            Self::Corrupt => "its checksum does not match its content",
        }
    }
}

/// How a sound record may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Younger than `cacheTtl`: shown at once (status `stale`).
    Fresh,
    /// Older (or dated in the future by more than a minute): shown only if
    /// the server cannot be reached.
    Expired,
}

/// When `record` was last known current: saved, or confirmed since.
pub fn known_current(record: &CacheRecord, confirmed_at: Option<f64>) -> f64 {
    confirmed_at.map_or(record.saved_at, |c| c.max(record.saved_at))
}

/// Whether `record` may serve as the starting copy at `now`, given when it
/// was last confirmed current (if ever since it was saved).
pub fn usable(
    record: &CacheRecord,
    source: &str,
    confirmed_at: Option<f64>,
    now: f64,
    ttl: f64,
) -> Result<Freshness, Rejected> {
    if record.schema != CACHE_SCHEMA {
        return Err(Rejected::OtherSchema);
    }
    if record.source != source {
        return Err(Rejected::OtherSource);
    }
    let computed = provider_sync_protocol::state_checksum(&record.state).to_hex();
    if computed != record.state.metadata.checksum {
        return Err(Rejected::Corrupt);
    }
    let known_current = known_current(record, confirmed_at);
    if now - known_current <= ttl && known_current <= now + 60_000.0 {
        Ok(Freshness::Fresh)
    } else {
        Ok(Freshness::Expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(saved_at: f64) -> CacheRecord {
        let mut state = SyncState::default();
        state.metadata.epoch = "e".into();
        state.refresh_metadata();
        CacheRecord {
            schema: CACHE_SCHEMA,
            source: "http://h/api".into(),
            saved_at,
            state,
        }
    }

    const H: &str = "http://h/api";

    #[test]
    fn the_record_text_is_the_records() {
        let mut record = record(1_764_547_200_123.5);
        record.source = "http://h/a\"pi".into();
        record.state.metadata.epoch = "e \u{1F600}\n".into();
        record.state.refresh_metadata();
        let text = record_text(&record.source, record.saved_at, &record.state);
        assert_eq!(text, crate::json::write(&record));
        assert_eq!(crate::json::read::<CacheRecord>(&text).unwrap(), record);
    }

    #[test]
    fn a_fresh_matching_record_is_used() {
        assert_eq!(
            usable(&record(1000.0), H, None, 2000.0, 5000.0),
            Ok(Freshness::Fresh)
        );
    }

    #[test]
    fn age_counts_from_the_last_confirmation() {
        // Saved long ago, confirmed a moment ago: fresh.
        assert_eq!(
            usable(&record(0.0), H, Some(9_000.0), 10_000.0, 5000.0),
            Ok(Freshness::Fresh)
        );
        // Neither recent: expired, but sound (kept for an offline start).
        assert_eq!(
            usable(&record(0.0), H, Some(1_000.0), 10_000.0, 5000.0),
            Ok(Freshness::Expired)
        );
        // A confirmation older than the save does not age it.
        assert_eq!(
            usable(&record(8_000.0), H, Some(1.0), 10_000.0, 5000.0),
            Ok(Freshness::Fresh)
        );
    }

    #[test]
    fn old_foreign_or_damaged_records_are_not_fresh() {
        assert_eq!(
            usable(&record(0.0), H, None, 10_000.0, 5000.0),
            Ok(Freshness::Expired)
        );
        assert_eq!(
            usable(&record(0.0), "http://other/api", None, 1.0, 5000.0),
            Err(Rejected::OtherSource)
        );
        let mut other = record(0.0);
        other.schema = 99;
        assert_eq!(
            usable(&other, H, None, 1.0, 5000.0),
            Err(Rejected::OtherSchema)
        );
        let mut damaged = record(0.0);
        damaged.state.active_provider_id = Some("tampered".into());
        assert_eq!(
            usable(&damaged, H, None, 1.0, 5000.0),
            Err(Rejected::Corrupt)
        );
        // Saved "in the future" (a clock that jumped back a lot): not trusted
        // as fresh.
        assert_eq!(
            usable(&record(1e9), H, None, 1.0, 5000.0),
            Ok(Freshness::Expired)
        );
        // Up to a minute ahead is clock skew between tabs: fresh; more is not.
        let now = 1_795_608_000_000.0;
        assert_eq!(
            usable(&record(now + 60_000.0), H, None, now, 5000.0),
            Ok(Freshness::Fresh)
        );
        assert_eq!(
            usable(&record(now + 60_001.0), H, None, now, 5000.0),
            Ok(Freshness::Expired)
        );
    }

    #[test]
    fn confirmations_are_kept_beside_the_record_of_their_source() {
        // Stored in IndexedDB: a new key would forget every confirmation.
        assert_eq!(confirmed_key(H), "http://h/api#confirmed");
    }

    #[test]
    fn each_rejection_says_why() {
        assert!(Rejected::OtherSchema.describe().contains("schema"));
        assert!(Rejected::OtherSource.describe().contains("another server"));
        assert!(Rejected::Corrupt.describe().contains("checksum"));
    }
}
