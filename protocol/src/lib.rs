//! The provider-sync wire protocol: the types a server and its clients
//! exchange, and the pure logic both sides must agree on. No I/O, no clocks:
//! time comes in as arguments.
//!
//! # Layout
//!
//! - `model`: providers and models, the catalog's entities.
//! - `state`: `SyncState`, the whole catalog, and its metadata.
//! - `event`: `SyncEvent` and its payloads, the unit of change.
//! - `apply`: applying events to a state (both sides use it).
//! - `checksum`: an order-independent content checksum, kept up to date by `apply`.
//! - `sync`: `POST /sync` and `GET /version` bodies, and the full-vs-incremental decision.
//! - `availability`: provider/model availability, fallback and sunset urgency.
//! - `query`: the model filter shared by `GET /models` and the SDK.
//! - `admin`: request bodies of the admin API.
//! - `ws`: what a WebSocket client sends.

#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

mod admin;
mod apply;
mod availability;
mod checksum;
mod event;
mod model;
mod query;
mod state;
mod sync;
mod ws;

pub use admin::{
    DeprecateModel, ErrorBody, ModelPatch, NewModel, NewProvider, ProviderPatch, SetActiveProvider,
    StatusUpdate,
};
pub use apply::{Applied, ApplyError, apply_event, apply_events};
pub use availability::{
    ModelAvailability, ProviderAvailability, SunsetUrgency, day_number, day_number_of,
    model_availability, parse_date, provider_availability, suggest_fallback, sunset_outlook,
    sunset_urgency,
};
pub use checksum::{Checksum, model_digest, provider_digest, state_checksum};
pub use event::{
    ActiveProviderChanged, ErrorData, EventPayload, Heartbeat, Hello, ModelRemoved,
    ProviderRemoved, ProviderStatusChanged, ResyncRequired, SyncEvent, SyncEventType,
};
pub use model::{
    DeprecationStatus, ModelCapability, ModelPricing, ModelSpecification, ProviderHealth,
    ProviderStatus, ProviderSyncInfo,
};
pub use query::{ModelFilter, ModelPage};
pub use state::{SyncMetadata, SyncState};
pub use sync::{
    FullSyncReason, LogWindow, SyncPlan, SyncRequest, SyncResponse, SyncType, VersionInfo,
    plan_sync, prefer_full,
};
pub use time::Date;
pub use ws::ClientMessage;

/// Bumped when a change to the wire format or the checksum would make an old
/// peer misread a new one.
pub const PROTOCOL_VERSION: u32 = 1;
