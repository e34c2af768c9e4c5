//! The WebSocket, opened by `sdk/js/host.js` (a snippet the glue imports)
//! with one handler for all it hears; when the value is dropped the
//! handler is removed and the socket closed.

use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::error::SdkError;

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = socketOpen, catch)]
    fn socket_open(url: &str, on: &js_sys::Function) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = socketSend)]
    fn socket_send(ws: &JsValue, text: &str);
    #[wasm_bindgen(js_name = socketClose)]
    fn socket_close(ws: &JsValue);
    #[wasm_bindgen(js_name = socketUrl)]
    fn socket_url(ws: &JsValue) -> String;
}

/// What a socket's handler hears, with its text: opened (no text), a text
/// frame (the frame), closed (why, as a message).
pub(crate) const OPENED: u32 = 0;
pub(crate) const FRAME: u32 = 1;
pub(crate) const CLOSED: u32 = 2;

pub(crate) struct Socket {
    ws: JsValue,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("url", &socket_url(&self.ws))
            .finish()
    }
}

impl Socket {
    /// Opens a socket to `url`; `on(what, text)` hears it ([`OPENED`],
    /// [`FRAME`], [`CLOSED`]).
    pub(crate) fn open(url: &str, on: &js_sys::Function) -> Result<Self, SdkError> {
        let ws = socket_open(url, on).map_err(|e| SdkError::Network {
            what: "WebSocket",
            message: super::js_message(&e),
        })?;
        Ok(Self { ws })
    }

    /// Sends a text frame; dropped on a socket that is closing (its close
    /// follows).
    pub(crate) fn send(&self, text: &str) {
        socket_send(&self.ws, text);
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        socket_close(&self.ws);
    }
}
