//! JavaScript callbacks, kept in JavaScript (`sdk/js/host.js`): each
//! subscription is its own entry, delivery works on a copy of the list (so
//! a listener may subscribe, unsubscribe or call back into the service,
//! and one removed by an earlier listener of the same round is skipped),
//! and a listener that throws is reported on the console while the others
//! still run.

use js_sys::Function;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = listenersNew)]
    fn listeners_new() -> JsValue;
    /// Adds `listener` to list `kind`: the function that takes it out.
    fn listen(lists: &JsValue, kind: u32, listener: &Function) -> Function;
    fn listening(lists: &JsValue, kind: u32) -> bool;
    #[wasm_bindgen(js_name = callListeners)]
    fn call_listeners(lists: &JsValue, kind: u32, value: &JsValue);
    #[wasm_bindgen(js_name = listenersClear)]
    fn listeners_clear(lists: &JsValue);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `subscribe`: the state changed.
    State,
    /// `onEvent`: a sync or connection event.
    Event,
}

#[derive(Debug)]
pub(crate) struct Listeners(JsValue);

impl Default for Listeners {
    fn default() -> Self {
        Self(listeners_new())
    }
}

impl Listeners {
    /// Adds `listener`: the function that takes it out (any number of
    /// times; after `clear`, a no-op).
    pub(crate) fn add(&self, kind: Kind, listener: &Function) -> Function {
        listen(&self.0, kind as u32, listener)
    }

    pub(crate) fn clear(&self) {
        listeners_clear(&self.0);
    }

    pub(crate) fn is_empty(&self, kind: Kind) -> bool {
        !listening(&self.0, kind as u32)
    }

    pub(crate) fn call(&self, kind: Kind, argument: &JsValue) {
        call_listeners(&self.0, kind as u32, argument);
    }
}
