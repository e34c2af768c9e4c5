//! `POST /sync` and `GET /version`, and the one decision both sides must
//! agree on: can a client be brought up to date with events, or does it need
//! the whole state?

use serde::{Deserialize, Serialize};

use crate::event::SyncEvent;
use crate::state::SyncState;

/// The body of `POST /sync`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncRequest {
    /// The version the client holds; 0 for none.
    pub client_version: u64,
    /// The epoch of the client's copy. Without it, only a full state is safe.
    #[serde(default)]
    pub client_epoch: Option<String>,
    /// Accepted for compatibility with the seed's clients. The server always
    /// sends every model, so that the checksum can be verified; clients
    /// filter deprecated ones themselves (the SDK's `includeDeprecated`).
    #[serde(default)]
    pub include_deprecated: Option<bool>,
    #[serde(default)]
    pub force_full: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SyncType {
    /// The client is up to date.
    None,
    /// `events` brings the client to `version`.
    Incremental,
    /// `state` replaces the client's copy.
    Full,
}

/// Why a client was given the whole state rather than events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FullSyncReason {
    /// The client asked for it, or had nothing yet.
    Requested,
    /// The client's epoch is not the server's (or it sent none).
    EpochMismatch,
    /// The client's version is older than the oldest event kept.
    TooOld,
    /// The client claims a version the server never reached.
    FutureVersion,
    /// The missing events would be larger than the state itself.
    Smaller,
}

impl FullSyncReason {
    /// The wire name (`epoch_mismatch`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::EpochMismatch => "epoch_mismatch",
            Self::TooOld => "too_old",
            Self::FutureVersion => "future_version",
            Self::Smaller => "smaller",
        }
    }
}

/// The answer to `POST /sync`: `events` is empty unless incremental, `state`
/// is null unless full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncResponse {
    pub sync_type: SyncType,
    pub version: u64,
    pub epoch: String,
    pub events: Vec<SyncEvent>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub state: Option<SyncState>,
    /// Set when `sync_type` is `full`.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub reason: Option<FullSyncReason>,
    /// The server's checksum at `version`, to verify the result against.
    pub checksum: String,
}

/// The answer to `GET /version`: the polling fallback's cheap check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionInfo {
    pub version: u64,
    pub epoch: String,
    pub server_time: String,
    pub checksum: String,
}

/// Where the server's history stands, as far as planning a sync needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogWindow<'a> {
    pub epoch: &'a str,
    /// The server's current version.
    pub version: u64,
    /// The oldest client version the event log can still bring up to date:
    /// the log holds every event after it.
    pub oldest_resumable: u64,
}

/// How to bring one client up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPlan {
    UpToDate,
    /// Send the events after `since`, in order.
    Incremental {
        since: u64,
    },
    Full(FullSyncReason),
}

impl SyncPlan {
    pub fn sync_type(self) -> SyncType {
        match self {
            Self::UpToDate => SyncType::None,
            Self::Incremental { .. } => SyncType::Incremental,
            Self::Full(_) => SyncType::Full,
        }
    }
}

/// Decides full vs incremental from versions alone. The caller may still
/// turn an incremental plan into `Full(Smaller)` with [`prefer_full`] once it
/// knows the sizes.
pub fn plan_sync(
    client_version: u64,
    client_epoch: Option<&str>,
    force_full: bool,
    server: LogWindow<'_>,
) -> SyncPlan {
    if force_full || (client_version == 0 && client_epoch.is_none()) {
        return SyncPlan::Full(FullSyncReason::Requested);
    }
    if client_epoch != Some(server.epoch) {
        return SyncPlan::Full(FullSyncReason::EpochMismatch);
    }
    if client_version == server.version {
        return SyncPlan::UpToDate;
    }
    if client_version > server.version {
        return SyncPlan::Full(FullSyncReason::FutureVersion);
    }
    if client_version < server.oldest_resumable {
        return SyncPlan::Full(FullSyncReason::TooOld);
    }
    SyncPlan::Incremental {
        since: client_version,
    }
}

/// Whether sending the state is cheaper than sending the events.
pub fn prefer_full(events_bytes: usize, state_bytes: usize) -> bool {
    events_bytes > state_bytes
}
