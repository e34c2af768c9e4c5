//! What a WebSocket client may send. The server's frames are `SyncEvent`s.

use serde::{Deserialize, Serialize};

/// A client frame: JSON text such as `{"type":"heartbeat"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Proof of life; the server answers with a `heartbeat` event, which
    /// lets the client check its version against the server's at once.
    Heartbeat {
        /// The version the client holds.
        #[serde(default)]
        version: Option<u64>,
    },
}
