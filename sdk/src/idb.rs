//! The IndexedDB cache: one database, one object store, records keyed by
//! source URL. The requests are made by `sdk/js/host.js` (a snippet the glue
//! imports), which keeps each service's connection in a holder, opens it
//! when first used and again after another tab's upgrade (or the browser)
//! closed it; each answers a promise of an [`Outcome`].

use js_sys::{Array, Promise};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use crate::transport::js_message;

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    /// A holder for one service's connection, not opened yet.
    #[wasm_bindgen(js_name = cacheNew)]
    pub(crate) fn cache_new() -> JsValue;
    #[wasm_bindgen(js_name = cacheClose)]
    pub(crate) fn cache_close(holder: &JsValue);
    /// The record under `key` and the time under `confirmed_key`:
    /// [`Outcome::Done`] with `[record, confirmedAt]` (each undefined if
    /// none).
    #[wasm_bindgen(js_name = cacheLoad)]
    pub(crate) fn cache_load(holder: &JsValue, key: &str, confirmed_key: &str) -> Promise;
    #[wasm_bindgen(js_name = cachePut)]
    pub(crate) fn cache_put(holder: &JsValue, key: &str, value: &JsValue) -> Promise;
    /// Deletes `first`, then `second` if given.
    #[wasm_bindgen(js_name = cacheDelete)]
    pub(crate) fn cache_delete(holder: &JsValue, first: &str, second: Option<String>) -> Promise;
}

/// What a cache request came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The browser has no IndexedDB (some private modes): the SDK keeps its
    /// state in memory only.
    NoDatabase,
    /// The database would not open: why.
    WouldNotOpen(String),
    /// The request failed: why.
    Failed(String),
    /// Done, with what was read.
    Done(JsValue),
}

impl Outcome {
    /// From a request's settled promise (see `sdk/js/host.js`).
    pub(crate) fn of(fulfilled: bool, value: &JsValue) -> Self {
        let Some(answer) = value.dyn_ref::<Array>().filter(|_| fulfilled) else {
            return Self::Failed(js_message(value));
        };
        let text = || answer.get(1).as_string().unwrap_or_default();
        match answer.get(0).as_f64() {
            Some(0.0) => Self::NoDatabase,
            Some(1.0) => Self::WouldNotOpen(text()),
            Some(2.0) => Self::Failed(text()),
            _ => Self::Done(answer.get(1)),
        }
    }
}
