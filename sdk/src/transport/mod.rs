//! Talking to the server from the browser: fetch with a deadline, and the
//! WebSocket; and moving values between Rust and JavaScript.

pub(crate) mod http;
pub(crate) mod websocket;

use wasm_bindgen::{JsCast, JsValue};

use crate::error::SdkError;
use crate::json;

/// Rust → JS the way the wire does it (`None` is `null`, structs and maps
/// are plain objects): written as JSON text and read by the browser's
/// `JSON.parse`, one call for the whole value.
pub(crate) fn to_js<T: json::Write + ?Sized>(value: &T) -> JsValue {
    js_sys::JSON::parse(&json::write(value)).unwrap_or(JsValue::NULL)
}

/// JSON text → Rust, naming what was being read.
pub(crate) fn from_text<T: json::Read>(text: &str, what: &'static str) -> Result<T, SdkError> {
    json::read(text).map_err(|e| SdkError::Decode {
        what,
        message: e.message().to_owned(),
    })
}

/// A JS value (plain data, such as a stored record) → Rust, through
/// `JSON.stringify`.
pub(crate) fn from_js<T: json::Read>(value: &JsValue, what: &'static str) -> Result<T, SdkError> {
    let text = js_sys::JSON::stringify(value)
        .map_err(|e| SdkError::Decode {
            what,
            message: js_message(&e),
        })?
        .as_string()
        .unwrap_or_default();
    from_text(&text, what)
}

/// The message of a thrown JS value.
pub(crate) fn js_message(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "an unknown JavaScript error".to_owned())
}
