//! Talking to the server from the browser: fetch with a deadline, and the
//! WebSocket.

pub(crate) mod http;
pub(crate) mod websocket;

use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::SdkError;

/// Rust → JS the way the wire does it: `None` becomes `null`, and maps
/// (which is how serde writes a struct with a flattened field, such as
/// `SyncEvent`) become plain objects rather than `Map`s.
pub(crate) fn to_js<T: Serialize>(value: &T) -> Result<JsValue, serde_wasm_bindgen::Error> {
    value.serialize(
        &serde_wasm_bindgen::Serializer::new()
            .serialize_missing_as_null(true)
            .serialize_maps_as_objects(true),
    )
}

/// JS (already parsed JSON) → Rust, naming what was being read.
pub(crate) fn from_js<T: serde::de::DeserializeOwned>(
    value: JsValue,
    what: &'static str,
) -> Result<T, SdkError> {
    serde_wasm_bindgen::from_value(value).map_err(|e| SdkError::Decode {
        what,
        message: e.to_string(),
    })
}

/// The message of a thrown JS value.
pub(crate) fn js_message(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "an unknown JavaScript error".to_owned())
}
