//! Sync events: what the server sends when the catalog changes, and the
//! control frames (heartbeat, resync) that share their envelope.

use serde::{Deserialize, Serialize};

use crate::model::{ModelSpecification, ProviderHealth, ProviderStatus, ProviderSyncInfo};
use crate::state::SyncState;

/// One event. On the wire: `{ "id", "version", "timestamp", "type", "data" }`.
///
/// A change event's `version` is the version its change created; a control
/// event (full sync, heartbeat, resync, error) carries the current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "tsify",
    derive(tsify::Tsify),
    // The derived `interface … extends EventPayload` is not valid TypeScript
    // (a union cannot be extended); an intersection says the same thing.
    tsify(type = "{ id: string; version: number; timestamp: string } & EventPayload")
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncEvent {
    pub id: String,
    pub version: u64,
    /// RFC 3339.
    pub timestamp: String,
    #[serde(flatten)]
    pub payload: EventPayload,
}

/// The event's `type` and its `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum EventPayload {
    /// The whole state; replaces whatever the client had.
    FullSync(SyncState),
    ProviderAdded(ProviderSyncInfo),
    /// The provider as it is now.
    ProviderUpdated(ProviderSyncInfo),
    /// Removes the provider and every model it served.
    ProviderRemoved(ProviderRemoved),
    ProviderStatusChanged(ProviderStatusChanged),
    ModelAdded(ModelSpecification),
    /// The model as it is now.
    ModelUpdated(ModelSpecification),
    ModelRemoved(ModelRemoved),
    /// The model as it is now, with its deprecation fields set.
    ModelDeprecated(ModelSpecification),
    ActiveProviderChanged(ActiveProviderChanged),
    /// First frame of a WebSocket session.
    Hello(Hello),
    /// Proof of life that also says where the server stands, so a client can
    /// tell "nothing changed" from "I missed something".
    Heartbeat(Heartbeat),
    /// The server could not keep this client's stream whole (it fell behind);
    /// the client must repair with `POST /sync`.
    ResyncRequired(ResyncRequired),
    Error(ErrorData),
}

/// The `type` of an event without its data, for filters and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SyncEventType {
    FullSync,
    /// The seed design's name, kept so that code written against it
    /// compiles: no event of this protocol carries it (a batch of changes
    /// arrives as the change events themselves, each with its version). A
    /// frame of this type is handled as one of an unknown type: a client
    /// whose copy it would move past takes a full state.
    IncrementalUpdate,
    ProviderAdded,
    ProviderUpdated,
    ProviderRemoved,
    ProviderStatusChanged,
    ModelAdded,
    ModelUpdated,
    ModelRemoved,
    ModelDeprecated,
    ActiveProviderChanged,
    Hello,
    Heartbeat,
    ResyncRequired,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderRemoved {
    pub provider_id: String,
    /// The models removed with it.
    pub model_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderStatusChanged {
    pub provider_id: String,
    pub previous_status: ProviderStatus,
    pub status: ProviderStatus,
    pub health: ProviderHealth,
    /// The provider's revision after the change.
    pub revision: u64,
    /// Made by the server's health probes rather than by an operator: the
    /// admin API's `If-Match` still accepts the revision the provider had
    /// before it. Absent (false) otherwise, so clients of an older release
    /// read the same event.
    #[serde(default, skip_serializing_if = "crate::model::is_false")]
    #[cfg_attr(feature = "tsify", tsify(optional))]
    pub automatic: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelRemoved {
    pub model_id: String,
    pub provider_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActiveProviderChanged {
    pub active_provider_id: Option<String>,
    pub default_provider_id: Option<String>,
}

/// What a WebSocket client is told first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hello {
    /// `crate::PROTOCOL_VERSION` of the server.
    pub protocol_version: u32,
    pub epoch: String,
    pub version: u64,
    /// How the server will bring this client up to date next.
    pub sync_type: crate::sync::SyncType,
    /// The server sends a heartbeat this often, and closes a connection it has
    /// heard nothing from for `client_timeout_ms` (at its next heartbeat:
    /// within one heartbeat period after that).
    pub heartbeat_interval_ms: u64,
    pub client_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Heartbeat {
    pub epoch: String,
    pub version: u64,
    pub checksum: String,
    pub server_time: String,
    /// False when the server has lost its store: its version may be behind
    /// what other instances have. Absent (true) otherwise.
    #[serde(default = "reachable", skip_serializing_if = "is_reachable")]
    #[cfg_attr(feature = "tsify", tsify(optional))]
    pub store_reachable: bool,
}

fn reachable() -> bool {
    true
}

fn is_reachable(value: &bool) -> bool {
    *value
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResyncRequired {
    /// Machine-readable: `lagged`, ….
    pub reason: String,
    /// Events this client did not get.
    pub missed: u64,
}

/// The `error.code`/`error.message` pair, as in every HTTP error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorData {
    pub code: String,
    pub message: String,
    /// The field a validation error is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl EventPayload {
    pub fn event_type(&self) -> SyncEventType {
        match self {
            Self::FullSync(_) => SyncEventType::FullSync,
            Self::ProviderAdded(_) => SyncEventType::ProviderAdded,
            Self::ProviderUpdated(_) => SyncEventType::ProviderUpdated,
            Self::ProviderRemoved(_) => SyncEventType::ProviderRemoved,
            Self::ProviderStatusChanged(_) => SyncEventType::ProviderStatusChanged,
            Self::ModelAdded(_) => SyncEventType::ModelAdded,
            Self::ModelUpdated(_) => SyncEventType::ModelUpdated,
            Self::ModelRemoved(_) => SyncEventType::ModelRemoved,
            Self::ModelDeprecated(_) => SyncEventType::ModelDeprecated,
            Self::ActiveProviderChanged(_) => SyncEventType::ActiveProviderChanged,
            Self::Hello(_) => SyncEventType::Hello,
            Self::Heartbeat(_) => SyncEventType::Heartbeat,
            Self::ResyncRequired(_) => SyncEventType::ResyncRequired,
            Self::Error(_) => SyncEventType::Error,
        }
    }

    /// Whether this event is a committed change (it has a version of its own
    /// and belongs in the event log).
    pub fn is_change(&self) -> bool {
        !matches!(
            self,
            Self::FullSync(_)
                | Self::Hello(_)
                | Self::Heartbeat(_)
                | Self::ResyncRequired(_)
                | Self::Error(_)
        )
    }
}

impl SyncEvent {
    pub fn event_type(&self) -> SyncEventType {
        self.payload.event_type()
    }
}

/// `SyncEvent` as serde writes it (`payload` flattened: `type` and `data`
/// after the envelope's fields), for the wasm client's table-driven writer;
/// the tests hold the two to the same text.
#[cfg(feature = "wire")]
impl provider_sync_wire::Write for SyncEvent {
    fn write(&self, out: &mut provider_sync_wire::Writer) {
        use EventPayload as P;
        out.raw("{\"id\":");
        self.id.write(out);
        out.raw(",\"version\":");
        self.version.write(out);
        out.raw(",\"timestamp\":");
        self.timestamp.write(out);
        out.raw(",\"type\":");
        self.event_type().write(out);
        out.raw(",\"data\":");
        match &self.payload {
            P::FullSync(data) => data.write(out),
            P::ProviderAdded(data) | P::ProviderUpdated(data) => data.write(out),
            P::ProviderRemoved(data) => data.write(out),
            P::ProviderStatusChanged(data) => data.write(out),
            P::ModelAdded(data) | P::ModelUpdated(data) | P::ModelDeprecated(data) => {
                data.write(out)
            }
            P::ModelRemoved(data) => data.write(out),
            P::ActiveProviderChanged(data) => data.write(out),
            P::Hello(data) => data.write(out),
            P::Heartbeat(data) => data.write(out),
            P::ResyncRequired(data) => data.write(out),
            P::Error(data) => data.write(out),
        }
        out.raw("}");
    }
}
