//! JavaScript callbacks. Delivery works on a copy of the list, so a listener
//! may subscribe, unsubscribe or call back into the service; a listener that
//! throws is reported on the console and the others still run.

use std::cell::{Cell, RefCell};

use js_sys::Function;
use wasm_bindgen::JsValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `subscribe`: the state changed.
    State,
    /// `onEvent`: a sync or connection event.
    Event,
}

#[derive(Debug, Default)]
pub(crate) struct Listeners {
    next_id: Cell<u32>,
    list: RefCell<Vec<(u32, Kind, Function)>>,
}

impl Listeners {
    pub(crate) fn add(&self, kind: Kind, listener: Function) -> u32 {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        self.list.borrow_mut().push((id, kind, listener));
        id
    }

    pub(crate) fn remove(&self, id: u32) {
        self.list.borrow_mut().retain(|(i, _, _)| *i != id);
    }

    pub(crate) fn clear(&self) {
        self.list.borrow_mut().clear();
    }

    pub(crate) fn is_empty(&self, kind: Kind) -> bool {
        !self.list.borrow().iter().any(|(_, k, _)| *k == kind)
    }

    pub(crate) fn call(&self, kind: Kind, argument: &JsValue) {
        let targets: Vec<(u32, Function)> = self
            .list
            .borrow()
            .iter()
            .filter(|(_, k, _)| *k == kind)
            .map(|(id, _, f)| (*id, f.clone()))
            .collect();
        for (id, listener) in targets {
            // Skip one removed by an earlier listener in this round.
            if !self.list.borrow().iter().any(|(i, _, _)| *i == id) {
                continue;
            }
            if let Err(thrown) = listener.call1(&JsValue::NULL, argument) {
                crate::driver::log(
                    crate::config::LogLevel::Error as u32,
                    "provider-sync: a listener threw; the others still run:",
                    &thrown,
                );
            }
        }
    }
}
