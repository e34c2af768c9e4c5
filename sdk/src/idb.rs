//! IndexedDB, just enough for the cache: one database, one object store,
//! records keyed by source URL. The requests themselves are made by
//! `sdk/js/host.js` (a snippet the glue imports): each answers with a promise,
//! awaited here; handlers written in JavaScript cost the wasm nothing.

use js_sys::Promise;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen_futures::JsFuture;

use crate::transport::js_message;

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = idbOpen)]
    fn idb_open() -> Promise;
    #[wasm_bindgen(js_name = idbGet)]
    fn idb_get(handle: &JsValue, key: &str) -> Promise;
    #[wasm_bindgen(js_name = idbPut)]
    fn idb_put(handle: &JsValue, key: &str, value: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = idbDelete)]
    fn idb_delete(handle: &JsValue, key: &str) -> Promise;
    #[wasm_bindgen(js_name = idbClosed)]
    fn idb_closed(handle: &JsValue) -> bool;
    #[wasm_bindgen(js_name = idbClose)]
    fn idb_close(handle: &JsValue);
}

/// A promise's value, or its failure's message.
async fn settle(promise: Promise) -> Result<JsValue, String> {
    JsFuture::from(promise).await.map_err(|e| js_message(&e))
}

#[derive(Debug)]
pub(crate) struct Idb {
    /// The database and whether it was closed under us (see `is_closed`).
    handle: JsValue,
}

impl Idb {
    /// Opens the database; `Ok(None)` where the browser has no IndexedDB
    /// (some private modes): the SDK then keeps its state in memory only.
    pub(crate) async fn open() -> Result<Option<Self>, String> {
        let handle = settle(idb_open()).await?;
        // Not `then_some`: a value made and dropped would close nothing.
        if handle.is_null() {
            Ok(None)
        } else {
            Ok(Some(Self { handle }))
        }
    }

    /// Whether this connection was closed (another tab upgraded or deleted
    /// the database, or the browser closed it): a new one must be opened.
    pub(crate) fn is_closed(&self) -> bool {
        idb_closed(&self.handle)
    }

    pub(crate) async fn get(&self, key: &str) -> Result<JsValue, String> {
        settle(idb_get(&self.handle, key)).await
    }

    pub(crate) async fn put(&self, key: &str, value: &JsValue) -> Result<(), String> {
        settle(idb_put(&self.handle, key, value)).await.map(drop)
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), String> {
        settle(idb_delete(&self.handle, key)).await.map(drop)
    }
}

impl Drop for Idb {
    fn drop(&mut self) {
        idb_close(&self.handle);
    }
}
