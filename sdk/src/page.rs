//! The page's visibility, the browser's online state and the page going into
//! (and out of) the back/forward cache, watched by `sdk/js/host.js` (a
//! snippet the glue imports) while the service runs; the handlers are
//! removed when the watcher is dropped.

use js_sys::Function;
use wasm_bindgen::prelude::wasm_bindgen;

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
}

impl std::fmt::Debug for PageWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageWatch")
    }
}

impl PageWatch {
    /// `on(what, flag)`: [`VISIBILITY`] (whether visible), [`ONLINE`]
    /// (true back online, false gone offline),
    /// [`PAGE`] (false on `pagehide`, true on a `pageshow` that follows one:
    /// a page back from the back/forward cache). `None` where there is no
    /// page.
    pub(crate) fn new(on: &Function) -> Option<Self> {
        Some(Self {
            stop: watch_page(on)?,
        })
    }
}

impl Drop for PageWatch {
    fn drop(&mut self) {
        let _ = self.stop.call0(&wasm_bindgen::JsValue::NULL);
    }
}
