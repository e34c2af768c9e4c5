//! The cached copy: what is saved (per `apiBaseUrl`), and whether a saved
//! copy may be used at start. The IndexedDB adapter lives in the browser
//! layer; this part is plain data and rules.

use provider_sync_protocol::SyncState;
use serde::{Deserialize, Serialize};

/// Bumped when the record's shape changes; records of another schema are
/// discarded.
pub const CACHE_SCHEMA: u32 = 1;

/// One saved copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheRecord {
    pub schema: u32,
    /// The `apiBaseUrl` (resolved) the state came from; the record's key.
    pub source: String,
    /// When it was saved, ms since the Unix epoch.
    pub saved_at: f64,
    pub state: SyncState,
}

/// Why a saved record was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    OtherSchema,
    OtherSource,
    Expired,
    /// Its checksum does not match its content: damaged.
    Corrupt,
}

impl Rejected {
    pub fn describe(self) -> &'static str {
        match self {
            Self::OtherSchema => "it has another schema",
            Self::OtherSource => "it came from another server",
            Self::Expired => "it is older than cacheTtl",
            Self::Corrupt => "its checksum does not match its content",
        }
    }
}

/// Whether `record` may serve as the starting copy at `now`.
pub fn usable(record: &CacheRecord, source: &str, now: f64, ttl: f64) -> Result<(), Rejected> {
    if record.schema != CACHE_SCHEMA {
        return Err(Rejected::OtherSchema);
    }
    if record.source != source {
        return Err(Rejected::OtherSource);
    }
    if !(now - record.saved_at <= ttl && record.saved_at <= now + 60_000.0) {
        return Err(Rejected::Expired);
    }
    let computed = provider_sync_protocol::state_checksum(&record.state).to_hex();
    if computed != record.state.metadata.checksum {
        return Err(Rejected::Corrupt);
    }
    Ok(())
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

    #[test]
    fn a_fresh_matching_record_is_used() {
        assert_eq!(
            usable(&record(1000.0), "http://h/api", 2000.0, 5000.0),
            Ok(())
        );
    }

    #[test]
    fn old_foreign_or_damaged_records_are_not() {
        assert_eq!(
            usable(&record(0.0), "http://h/api", 10_000.0, 5000.0),
            Err(Rejected::Expired)
        );
        assert_eq!(
            usable(&record(0.0), "http://other/api", 1.0, 5000.0),
            Err(Rejected::OtherSource)
        );
        let mut other = record(0.0);
        other.schema = 99;
        assert_eq!(
            usable(&other, "http://h/api", 1.0, 5000.0),
            Err(Rejected::OtherSchema)
        );
        let mut damaged = record(0.0);
        damaged.state.active_provider_id = Some("tampered".into());
        assert_eq!(
            usable(&damaged, "http://h/api", 1.0, 5000.0),
            Err(Rejected::Corrupt)
        );
        // Saved "in the future" (a clock that jumped back a lot): not trusted.
        assert_eq!(
            usable(&record(1e9), "http://h/api", 1.0, 5000.0),
            Err(Rejected::Expired)
        );
    }
}
