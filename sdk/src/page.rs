//! The page's visibility, the browser's online state and the page going into
//! (and out of) the back/forward cache, watched by `sdk/js/host.js` (a
//! snippet the glue imports) while the service runs; the handlers are
//! removed when the watcher is dropped.

use js_sys::Function;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::{Closure, wasm_bindgen};

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    /// Whether the page is visible now.
    #[wasm_bindgen(js_name = pageVisible)]
    pub(crate) fn visible() -> bool;
    #[wasm_bindgen(js_name = watchPage)]
    fn watch_page(on: &Function) -> Option<Function>;
}

/// What a watcher's handler hears, with its flag.
pub(crate) const VISIBILITY: u32 = 0;
pub(crate) const ONLINE: u32 = 1;
pub(crate) const PAGE: u32 = 2;

pub(crate) struct PageWatch {
    stop: Function,
    _on: Closure<dyn FnMut(u32, bool)>,
}

impl std::fmt::Debug for PageWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageWatch")
    }
}

impl PageWatch {
    /// `on(what, flag)`: [`VISIBILITY`] (whether visible), [`ONLINE`],
    /// [`PAGE`] (false on `pagehide`, true on a `pageshow` that follows one:
    /// a page back from the back/forward cache). `None` where there is no
    /// page.
    pub(crate) fn new(on: impl FnMut(u32, bool) + 'static) -> Option<Self> {
        let on = Closure::<dyn FnMut(u32, bool)>::new(on);
        let stop = watch_page(on.as_ref().unchecked_ref())?;
        Some(Self { stop, _on: on })
    }
}

impl Drop for PageWatch {
    fn drop(&mut self) {
        let _ = self.stop.call0(&wasm_bindgen::JsValue::NULL);
    }
}
