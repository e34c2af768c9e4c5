//! The plain objects JavaScript passes in (the config, a model filter) and
//! the status a leading tab sends, read by `fieldsOf` in `sdk/js/host.js`:
//! it checks each field's type (throwing an `Error` that names the first
//! field of the wrong type), and gives the values in the order of its list,
//! `undefined` where not set (`null` too, but in a model filter, where it is
//! a value of the wrong type), a choice as its position among its names,
//! then the first property no field names (warned of in a config, refused
//! in a filter). The checks and their messages are written once, there.

use js_sys::Array;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = fieldsOf, catch)]
    fn fields_of(value: &JsValue, which: u32) -> Result<Array, JsValue>;
}

/// Which of `fieldsOf`'s lists a value is read by.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Of {
    /// `ProviderSyncConfig`'s options: `apiBaseUrl`, `wsUrl`,
    /// `enableWebSocket`, `pollingInterval`, `maxReconnectAttempts`,
    /// `reconnectBaseDelay`, `reconnectMaxDelay`, `heartbeatInterval`,
    /// `syncTimeout`, `includeDeprecated`, `enableCache`, `cacheTtl`,
    /// `logLevel` (silent, error, warn, info, debug), `bootstrap` (any
    /// value), `shareConnection`; `headers`, `getToken` and `credentials`
    /// are known too.
    Config = 0,
    /// A model filter's fields: `deprecated`, `excludeDeprecated`,
    /// `providerId`, `provider_id`, `capability` (streaming, vision,
    /// function_calling, json_mode, reasoning), `search`.
    Filter = 1,
    /// What a leading tab says of itself: `status` (synced, syncing, stale,
    /// error, disconnected), `transport` (websocket, polling, offline),
    /// `isConnected`, `lastError`, `lastSyncTime`, `fromCache`.
    Mirror = 2,
}

/// The values of an object's fields, in the order [`Of`] lists them, then
/// the first property that is none of them.
#[derive(Debug)]
pub(crate) struct Fields(Array);

impl Fields {
    /// Reads `value`; the `Error` thrown names the first field of the wrong
    /// type (or says the value is no plain object).
    pub(crate) fn read(value: &JsValue, of: Of) -> Result<Self, JsValue> {
        fields_of(value, of as u32).map(Self)
    }

    #[inline(never)]
    pub(crate) fn string(&self, at: u32) -> Option<String> {
        self.0.get(at).as_string()
    }

    #[inline(never)]
    pub(crate) fn boolean(&self, at: u32) -> Option<bool> {
        self.0.get(at).as_bool()
    }

    /// A number, a whole number's too, or a choice's position.
    #[inline(never)]
    pub(crate) fn number(&self, at: u32) -> Option<f64> {
        self.0.get(at).as_f64()
    }

    /// A field's value as given (a config's `bootstrap`).
    pub(crate) fn value(&self, at: u32) -> JsValue {
        self.0.get(at)
    }

    /// The first property that is no field of the list, nor known to it.
    pub(crate) fn unknown(&self) -> Option<String> {
        self.0.get(self.0.length() - 1).as_string()
    }
}
