//! IndexedDB, just enough for the cache: one database, one object store,
//! records keyed by source URL. Every request is awaited as a future whose
//! handlers it owns.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbOpenDbRequest, IdbRequest, IdbTransactionMode};

use crate::transport::js_message;

const DATABASE: &str = "provider-sync";
const STORE: &str = "states";

type Handler = Closure<dyn FnMut()>;

/// Awaits an `IdbRequest`: its result, or its error as text.
async fn settle(request: &IdbRequest) -> Result<JsValue, String> {
    let mut handlers: Option<(Handler, Handler)> = None;
    let promise = Promise::new(&mut |resolve, reject| {
        let ok_request = request.clone();
        let on_success = Closure::<dyn FnMut()>::new(move || {
            let result = ok_request.result().unwrap_or(JsValue::UNDEFINED);
            let _ = resolve.call1(&JsValue::NULL, &result);
        });
        let err_request = request.clone();
        let on_error = Closure::<dyn FnMut()>::new(move || {
            let error = match err_request.error() {
                Ok(Some(e)) => JsValue::from_str(&format!("{}: {}", e.name(), e.message())),
                _ => JsValue::from_str("IndexedDB request failed"),
            };
            let _ = reject.call1(&JsValue::NULL, &error);
        });
        request.set_onsuccess(Some(on_success.as_ref().unchecked_ref()));
        request.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        handlers = Some((on_success, on_error));
    });
    let outcome = JsFuture::from(promise).await;
    request.set_onsuccess(None);
    request.set_onerror(None);
    drop(handlers);
    outcome.map_err(|e| js_message(&e))
}

#[derive(Debug)]
pub(crate) struct Idb {
    db: IdbDatabase,
    /// Closes this connection when another tab upgrades (or deletes) the
    /// database, so it never blocks that; the browser may also close it
    /// (storage cleared). Either way the handle is done: set here.
    closed: Rc<Cell<bool>>,
    _on_version_change: Handler,
    _on_close: Handler,
}

impl Idb {
    /// Opens the database; `Ok(None)` where the browser has no IndexedDB
    /// (some private modes): the SDK then keeps its state in memory only.
    pub(crate) async fn open() -> Result<Option<Self>, String> {
        let Some(window) = web_sys::window() else {
            return Ok(None);
        };
        let factory = match window.indexed_db() {
            Ok(Some(factory)) => factory,
            _ => return Ok(None),
        };
        // No version: whatever version the database has (another release, or
        // another tab, may have upgraded it); a new one is created at 1.
        let request: IdbOpenDbRequest = factory.open(DATABASE).map_err(|e| js_message(&e))?;
        let upgrading = request.clone();
        let on_upgrade = Closure::<dyn FnMut()>::new(move || {
            if let Ok(result) = upgrading.result()
                && let Ok(db) = result.dyn_into::<IdbDatabase>()
                && !db.object_store_names().contains(STORE)
            {
                let _ = db.create_object_store(STORE);
            }
        });
        request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
        let opened = settle(&request).await;
        request.set_onupgradeneeded(None);
        drop(on_upgrade);
        let db = opened?
            .dyn_into::<IdbDatabase>()
            .map_err(|_| "not a database".to_owned())?;
        let closed = Rc::new(Cell::new(false));
        let (closing, flag) = (db.clone(), closed.clone());
        let on_version_change = Closure::<dyn FnMut()>::new(move || {
            flag.set(true);
            closing.close();
        });
        db.set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));
        let flag = closed.clone();
        let on_close = Closure::<dyn FnMut()>::new(move || flag.set(true));
        db.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Some(Self {
            db,
            closed,
            _on_version_change: on_version_change,
            _on_close: on_close,
        }))
    }

    /// Whether this connection was closed (an upgrade elsewhere, or the
    /// browser): a new one must be opened.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    fn store(&self, mode: IdbTransactionMode) -> Result<web_sys::IdbObjectStore, String> {
        self.db
            .transaction_with_str_and_mode(STORE, mode)
            .and_then(|tx| tx.object_store(STORE))
            .map_err(|e| js_message(&e))
    }

    pub(crate) async fn get(&self, key: &str) -> Result<JsValue, String> {
        let request = self
            .store(IdbTransactionMode::Readonly)?
            .get(&JsValue::from_str(key))
            .map_err(|e| js_message(&e))?;
        settle(&request).await
    }

    pub(crate) async fn put(&self, key: &str, value: &JsValue) -> Result<(), String> {
        let request = self
            .store(IdbTransactionMode::Readwrite)?
            .put_with_key(value, &JsValue::from_str(key))
            .map_err(|e| js_message(&e))?;
        settle(&request).await.map(drop)
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), String> {
        let request = self
            .store(IdbTransactionMode::Readwrite)?
            .delete(&JsValue::from_str(key))
            .map_err(|e| js_message(&e))?;
        settle(&request).await.map(drop)
    }
}

impl Drop for Idb {
    fn drop(&mut self) {
        self.db.set_onversionchange(None);
        self.db.set_onclose(None);
        self.db.close();
    }
}
