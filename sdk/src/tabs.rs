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
//! | follower | `h` | "send me your state" |
//! | follower | `f` | "sync now" (its `forceSync()`) |

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, MessageEvent};

/// This tab's place among the tabs sharing a connection.
pub(crate) struct Tabs {
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    /// Resolves the promise the lock is held by: releases it.
    release: Rc<RefCell<Option<Function>>>,
    /// Withdraws the lock request if it was not granted yet.
    abort: web_sys::AbortController,
    /// False once this tab left: a grant that comes late is handed back.
    alive: Rc<Cell<bool>>,
    leading: Rc<Cell<bool>>,
}

impl std::fmt::Debug for Tabs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tabs")
            .field("leading", &self.leading.get())
            .finish()
    }
}

/// `navigator.locks.request`, where the browser has it.
fn lock_request() -> Option<(JsValue, Function)> {
    let navigator = web_sys::window()?.navigator();
    let locks = Reflect::get(&navigator, &"locks".into()).ok()?;
    let request = Reflect::get(&locks, &"request".into()).ok()?;
    Some((locks, request.dyn_into().ok()?))
}

impl Tabs {
    /// Joins the tabs sharing `name`: `on_message` gets what other tabs
    /// send, `on_lead` runs when this tab gets the lock. `None` where the
    /// browser lacks Web Locks or BroadcastChannel (each tab then connects
    /// by itself).
    pub(crate) fn join(
        name: &str,
        mut on_message: impl FnMut(String) + 'static,
        mut on_lead: impl FnMut() + 'static,
    ) -> Option<Self> {
        let (locks, request) = lock_request()?;
        let has_channel = Reflect::has(&js_sys::global(), &"BroadcastChannel".into()).ok()?;
        if !has_channel {
            return None;
        }
        let channel = BroadcastChannel::new(name).ok()?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(text) = event.data().as_string() {
                on_message(text);
            }
        });
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let release = Rc::new(RefCell::new(None::<Function>));
        let leading = Rc::new(Cell::new(false));
        let alive = Rc::new(Cell::new(true));
        let (held, lead, live) = (release.clone(), leading.clone(), alive.clone());
        // Owned by JavaScript (the lock manager calls it, maybe after this
        // tab left): it checks `alive` instead of being dropped.
        let on_grant = Closure::<dyn FnMut(JsValue) -> Promise>::new(move |_lock: JsValue| {
            if !live.get() {
                return Promise::resolve(&JsValue::UNDEFINED);
            }
            // Held until this promise resolves (`release`), or the tab goes.
            let promise = Promise::new(&mut |resolve, _| {
                *held.borrow_mut() = Some(resolve);
            });
            lead.set(true);
            on_lead();
            promise
        })
        .into_js_value();
        let abort = web_sys::AbortController::new().ok()?;
        let options = js_sys::Object::new();
        Reflect::set(&options, &"signal".into(), &abort.signal()).ok()?;
        let granted = request
            .call3(&locks, &name.into(), &options, &on_grant)
            .ok()
            .and_then(|p| p.dyn_into::<Promise>().ok());
        let Some(granted) = granted else {
            channel.close();
            return None;
        };
        // Withdrawn requests reject (AbortError): expected, not reported.
        let ignore = Closure::<dyn FnMut(JsValue)>::new(|_| {});
        let _ = granted.catch(&ignore);
        ignore.forget();
        Some(Self {
            channel,
            _on_message: on_message,
            release,
            abort,
            alive,
            leading,
        })
    }

    pub(crate) fn leading(&self) -> bool {
        self.leading.get()
    }

    /// Sends a message: its letter, then its payload.
    pub(crate) fn send(&self, letter: &str, payload: &str) {
        let text = format!("{letter}{payload}");
        let _ = self.channel.post_message(&JsValue::from_str(&text));
    }
}

impl Drop for Tabs {
    /// Leaves: closes the channel and releases the lock (or gives up
    /// waiting for it: a request whose callback has not run yet is let go
    /// when the page goes; until then its callback finds the tab gone).
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
        self.alive.set(false);
        self.abort.abort();
        self.leading.set(false);
        if let Some(release) = self.release.borrow_mut().take() {
            let _ = release.call0(&JsValue::NULL);
        }
    }
}
