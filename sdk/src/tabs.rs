//! One connection per browser: the tabs of one origin that sync from one
//! server elect a leader with the Web Locks API (`navigator.locks`); the
//! leader holds the WebSocket (or the poller) and writes the cache, and tells
//! the others over a `BroadcastChannel` what it has: its state, each event,
//! where it stands, the connection events. When the leader's tab closes (or
//! crashes, or goes into the back/forward cache), the browser gives the lock
//! to the next tab waiting for it, which catches up from its own copy.
//!
//! Messages are text: a letter, then JSON where there is a payload.
//!
//! | from | letter | payload |
//! | --- | --- | --- |
//! | leader | `s` | the whole state |
//! | leader | `e` | one applied change event |
//! | leader | `m` | where it stands ([`crate::machine::Mirror`]) |
//! | leader | `c` | a connection event |
//! | leader | `r` | a `forceSync()` settled |
//! | leader | `R` | a `forceSync()` failed: the error's text |
//! | leader | `g` | it let go with a `forceSync()` unfinished: ask the next |
//! | follower | `h` | "send me your state" |
//! | follower | `f` | "sync now" (its `forceSync()`) |

use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = joinTabs)]
    fn join_tabs(name: &str, on: &js_sys::Function) -> JsValue;
    #[wasm_bindgen(js_name = tabsLeading)]
    fn tabs_leading(tab: &JsValue) -> bool;
    #[wasm_bindgen(js_name = tabsSend)]
    fn tabs_send(tab: &JsValue, text: &str);
    #[wasm_bindgen(js_name = leaveTabs)]
    fn leave_tabs(tab: &JsValue);
}

/// What a tab's handler hears, with its text: a message from another tab,
/// and this tab getting the lock (it leads until it leaves).
pub(crate) const MESSAGE: u32 = 0;
pub(crate) const LEAD: u32 = 1;
/// The lock was refused (not withdrawn): no tab would lead this one.
pub(crate) const REFUSED: u32 = 2;

/// This tab's place among the tabs sharing a connection (its channel and
/// lock request live in `sdk/js/host.js`).
pub(crate) struct Tabs {
    tab: JsValue,
}

impl std::fmt::Debug for Tabs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tabs")
            .field("leading", &self.leading())
            .finish()
    }
}

impl Tabs {
    /// Joins the tabs sharing `name`: `on(what, text)` hears [`MESSAGE`]s
    /// from other tabs and [`LEAD`] when this tab gets the lock. `None`
    /// where the browser lacks Web Locks or BroadcastChannel (each tab then
    /// connects by itself).
    pub(crate) fn join(name: &str, on: &js_sys::Function) -> Option<Self> {
        let tab = join_tabs(name, on);
        // Not `then_some`: a value made and dropped would leave a tab that
        // never joined.
        if tab.is_null() {
            None
        } else {
            Some(Self { tab })
        }
    }

    pub(crate) fn leading(&self) -> bool {
        tabs_leading(&self.tab)
    }

    /// Sends a message: its letter, then its payload.
    pub(crate) fn send(&self, letter: &str, payload: &str) {
        tabs_send(&self.tab, &crate::json::concat(&[letter, payload]));
    }
}

impl Drop for Tabs {
    /// Leaves: closes the channel and releases the lock (or gives up
    /// waiting for it).
    fn drop(&mut self) {
        leave_tabs(&self.tab);
    }
}
