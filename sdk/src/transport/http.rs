//! `fetch` with a deadline and errors that say what failed, including
//! `Retry-After` on 429/503. The request itself is made by `sdk/js/host.js`
//! (a snippet the glue imports): the request's bindings and the deadline's
//! timer cost the wasm nothing.

use js_sys::{Array, Promise};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::SdkError;

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    /// Sends a request with the credentials (`crate::auth::Auth::js`) and,
    /// first, the token (`tokenOf`): the promise of the answer's text
    /// (JSON, read by the caller), rejected with what [`failure_of`] reads.
    /// `hook`: the driver's, which says whether the service was destroyed.
    /// `fresh`: past the browser's HTTP cache (`cache: "reload"`).
    #[wasm_bindgen(js_name = fetchText)]
    pub(crate) fn fetch_text(
        hook: &JsValue,
        credentials: &JsValue,
        method: &str,
        url: &str,
        body: Option<&str>,
        timeout_ms: f64,
        fresh: bool,
    ) -> Promise;

    /// `fetchJson` for the page: a GET of `path` under `base` as
    /// `fetchText` sends it, `signal` also stopping it; the answer's JSON,
    /// or an `Error` (`status` set for an HTTP status).
    #[wasm_bindgen(js_name = getJson)]
    pub(crate) fn get_json(
        hook: &JsValue,
        credentials: &JsValue,
        base: &str,
        path: &str,
        timeout_ms: f64,
        signal: &JsValue,
    ) -> Promise;
}

/// The error a rejection of `fetchText` stands for (see `sdk/js/host.js`).
pub(crate) fn failure_of(what: &'static str, timeout_ms: f64, failure: &JsValue) -> SdkError {
    let Some(failure) = failure.dyn_ref::<Array>() else {
        return SdkError::Network {
            what,
            message: super::js_message(failure),
        };
    };
    let detail = failure.get(1);
    let message = || detail.as_string().unwrap_or_default();
    match failure.get(0).as_f64() {
        Some(1.0) => SdkError::Timeout {
            what,
            ms: timeout_ms as u32,
        },
        Some(2.0) => SdkError::Http {
            what,
            status: detail.as_f64().unwrap_or_default() as u16,
            retry_after_ms: failure.get(2).as_f64(),
        },
        Some(3.0) => SdkError::Decode {
            what,
            message: message(),
        },
        // The token for it (`tokenOf`): getToken failed, or the service
        // was destroyed before it was asked.
        Some(4.0) => SdkError::Network {
            what: "getToken()",
            message: message(),
        },
        Some(5.0) => SdkError::Destroyed,
        _ => SdkError::Network {
            what,
            message: message(),
        },
    }
}
