//! `ProviderSyncConfig`: what a page passes to the service, with the seed's
//! defaults, checked field by field.

use serde::{Deserialize, Serialize};
use tsify::Tsify;

use crate::backoff::Backoff;
use crate::error::SdkError;

/// How much the service logs to the console.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Tsify,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Silent,
    Error,
    #[default]
    Warn,
    Info,
    Debug,
}

/// Options for `new ProviderSyncService(config)`; every field is optional.
///
/// ```ts
/// const sync = new ProviderSyncService({
///   apiBaseUrl: "/api/provider-sync",
///   pollingInterval: 30_000,
///   logLevel: "info",
/// });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Tsify)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderSyncConfig {
    /// Base URL of the REST API; relative URLs resolve against the page.
    /// Default `/api/provider-sync`.
    #[tsify(optional, type = "string | undefined")]
    pub api_base_url: Option<String>,
    /// WebSocket URL; default `apiBaseUrl` + `/ws` with a ws/wss scheme.
    #[tsify(optional, type = "string | undefined")]
    pub ws_url: Option<String>,
    /// Use the WebSocket (default true); false polls only.
    #[tsify(optional, type = "boolean | undefined")]
    pub enable_web_socket: Option<bool>,
    /// Milliseconds between `GET /version` checks when polling (default 30000).
    #[tsify(optional, type = "number | undefined")]
    pub polling_interval: Option<f64>,
    /// Failed WebSocket attempts before falling back to polling (default 5).
    #[tsify(optional, type = "number | undefined")]
    pub max_reconnect_attempts: Option<u32>,
    /// First reconnect delay ceiling in ms (default 1000).
    #[tsify(optional, type = "number | undefined")]
    pub reconnect_base_delay: Option<f64>,
    /// Largest reconnect delay in ms (default 30000).
    #[tsify(optional, type = "number | undefined")]
    pub reconnect_max_delay: Option<f64>,
    /// Client heartbeat period in ms (default 25000). A heartbeat the server
    /// leaves unanswered for one period (at least 2 s) means the link is
    /// dead, so a dead link is noticed within about two periods.
    #[tsify(optional, type = "number | undefined")]
    pub heartbeat_interval: Option<f64>,
    /// Requests taking longer (ms) are aborted (default 10000).
    #[tsify(optional, type = "number | undefined")]
    pub sync_timeout: Option<f64>,
    /// Include deprecated and sunset models in `getModels()` (default false).
    #[tsify(optional, type = "boolean | undefined")]
    pub include_deprecated: Option<bool>,
    /// Keep the state in IndexedDB and start from it (default true).
    #[tsify(optional, type = "boolean | undefined")]
    pub enable_cache: Option<bool>,
    /// How old (ms) a cached state may be to be used at start (default 300000).
    #[tsify(optional, type = "number | undefined")]
    pub cache_ttl: Option<f64>,
    /// Console logging (default `warn`).
    #[tsify(optional, type = "LogLevel | undefined")]
    pub log_level: Option<LogLevel>,
    /// Share one connection among the tabs of this origin that sync from
    /// the same server (default true): one tab (elected with Web Locks)
    /// holds the WebSocket or the poller and writes the cache; the others
    /// follow it over a BroadcastChannel. False: this service connects by
    /// itself.
    #[tsify(optional, type = "boolean | undefined")]
    pub share_connection: Option<bool>,
    /// A state the page already has, as the server's `GET /state` gave it
    /// (for example fetched while rendering on the server): the service
    /// shows it at once, before `initialize()`, and then catches up from its
    /// version with `POST /sync` (no `GET /state`, no IndexedDB read).
    #[tsify(optional, type = "SyncState | undefined")]
    #[serde(default)]
    pub bootstrap: Option<provider_sync_protocol::SyncState>,
}

/// The configuration with defaults applied and checked. URLs are as given;
/// the browser layer resolves them against the page.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub api_base_url: String,
    pub ws_url: Option<String>,
    pub enable_websocket: bool,
    pub polling_interval: f64,
    pub max_reconnect_attempts: u32,
    pub backoff: Backoff,
    pub heartbeat_interval: f64,
    pub sync_timeout: f64,
    pub include_deprecated: bool,
    pub enable_cache: bool,
    pub cache_ttl: f64,
    pub log_level: LogLevel,
    pub share_connection: bool,
}

fn positive(field: &'static str, value: Option<f64>, default: f64) -> Result<f64, SdkError> {
    match value {
        None => Ok(default),
        Some(v) if v.is_finite() && v > 0.0 => Ok(v),
        // The value is not echoed: formatting floats would grow the wasm.
        Some(_) => Err(SdkError::Config {
            field,
            message: "must be a positive number of milliseconds",
        }),
    }
}

/// A config's `bootstrap`: a catalog state, as `GET /state` gives it, whose
/// checksum matches its content.
#[cfg(target_arch = "wasm32")]
fn bootstrap_of(
    value: wasm_bindgen::JsValue,
) -> Result<Option<provider_sync_protocol::SyncState>, wasm_bindgen::JsValue> {
    if value.is_undefined() {
        return Ok(None);
    }
    crate::transport::from_js(&value, "bootstrap")
        .ok()
        .filter(|state: &provider_sync_protocol::SyncState| {
            provider_sync_protocol::state_checksum(state).to_hex() == state.metadata.checksum
        })
        .map(Some)
        .ok_or_else(|| {
            wasm_bindgen::JsError::new(
                "invalid ProviderSyncService config: bootstrap must be GET /state's answer, unchanged",
            )
            .into()
        })
}

impl ProviderSyncConfig {
    /// Reads the object a page passed, field by field (`fieldsOf` in
    /// `sdk/js/host.js` checks each field's type and throws an `Error`
    /// naming the first of the wrong type). Also gives the first property
    /// that is no option (misspelt), to warn of.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn from_js(
        value: &wasm_bindgen::JsValue,
    ) -> Result<(Self, Option<String>), wasm_bindgen::JsValue> {
        use crate::fields::{Fields, Of};
        use LogLevel::*;
        let fields = Fields::read(value, Of::Config)?;
        let config = Self {
            api_base_url: fields.string(0),
            ws_url: fields.string(1),
            enable_web_socket: fields.boolean(2),
            polling_interval: fields.number(3),
            max_reconnect_attempts: fields.number(4).map(|n| n as u32),
            reconnect_base_delay: fields.number(5),
            reconnect_max_delay: fields.number(6),
            heartbeat_interval: fields.number(7),
            sync_timeout: fields.number(8),
            include_deprecated: fields.boolean(9),
            enable_cache: fields.boolean(10),
            cache_ttl: fields.number(11),
            log_level: fields
                .number(12)
                .map(|at| [Silent, Error, Warn, Info, Debug][at as usize]),
            bootstrap: bootstrap_of(fields.value(13))?,
            share_connection: fields.boolean(14),
        };
        Ok((config, fields.unknown()))
    }

    pub fn settings(&self) -> Result<Settings, SdkError> {
        let api_base_url = self
            .api_base_url
            .clone()
            .unwrap_or_else(|| "/api/provider-sync".into());
        let base_ms = positive("reconnectBaseDelay", self.reconnect_base_delay, 1000.0)?;
        let max_ms = positive("reconnectMaxDelay", self.reconnect_max_delay, 30_000.0)?;
        if max_ms < base_ms {
            return Err(SdkError::Config {
                field: "reconnectMaxDelay",
                // The value is not echoed: formatting floats would grow the wasm.
                message: "must not be below reconnectBaseDelay",
            });
        }
        Ok(Settings {
            api_base_url,
            ws_url: self.ws_url.clone(),
            enable_websocket: self.enable_web_socket.unwrap_or(true),
            polling_interval: positive("pollingInterval", self.polling_interval, 30_000.0)?,
            max_reconnect_attempts: self.max_reconnect_attempts.unwrap_or(5),
            backoff: Backoff { base_ms, max_ms },
            heartbeat_interval: positive("heartbeatInterval", self.heartbeat_interval, 25_000.0)?,
            sync_timeout: positive("syncTimeout", self.sync_timeout, 10_000.0)?,
            include_deprecated: self.include_deprecated.unwrap_or(false),
            enable_cache: self.enable_cache.unwrap_or(true),
            cache_ttl: positive("cacheTtl", self.cache_ttl, 300_000.0)?,
            log_level: self.log_level.unwrap_or_default(),
            share_connection: self.share_connection.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds() {
        let s = ProviderSyncConfig::default().settings().unwrap();
        assert_eq!(s.api_base_url, "/api/provider-sync");
        assert!(s.enable_websocket && s.enable_cache && !s.include_deprecated);
        assert_eq!(
            (
                s.polling_interval,
                s.max_reconnect_attempts,
                s.heartbeat_interval,
                s.sync_timeout,
                s.cache_ttl
            ),
            (30_000.0, 5, 25_000.0, 10_000.0, 300_000.0)
        );
        assert_eq!(
            s.backoff,
            Backoff {
                base_ms: 1000.0,
                max_ms: 30_000.0
            }
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let bad = [
            ProviderSyncConfig {
                polling_interval: Some(0.0),
                ..Default::default()
            },
            ProviderSyncConfig {
                sync_timeout: Some(f64::NAN),
                ..Default::default()
            },
            ProviderSyncConfig {
                reconnect_base_delay: Some(5000.0),
                reconnect_max_delay: Some(10.0),
                ..Default::default()
            },
        ];
        let fields: Vec<String> = bad
            .iter()
            .map(|c| match c.settings() {
                Err(SdkError::Config { field, .. }) => field.to_owned(),
                other => panic!("expected a config error, got {other:?}"),
            })
            .collect();
        assert_eq!(
            fields,
            ["pollingInterval", "syncTimeout", "reconnectMaxDelay"]
        );
    }

    #[test]
    fn a_fixed_delay_and_a_socket_url_are_allowed() {
        // A blank URL is refused (apiBaseUrl) or not set (wsUrl) as the
        // config is read, by `fieldsOf` (the browser suite checks both).
        let s = ProviderSyncConfig {
            reconnect_base_delay: Some(5000.0),
            reconnect_max_delay: Some(5000.0),
            ..Default::default()
        }
        .settings()
        .unwrap();
        assert_eq!(s.backoff.max_ms, 5000.0);
        let s = ProviderSyncConfig {
            ws_url: Some("wss://sync.example/ws".into()),
            ..Default::default()
        }
        .settings()
        .unwrap();
        assert_eq!(s.ws_url.as_deref(), Some("wss://sync.example/ws"));
    }
}
