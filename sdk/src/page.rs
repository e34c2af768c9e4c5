//! The page's visibility, the browser's online state and the page going into
//! (and out of) the back/forward cache, watched while the service runs; the
//! handlers are removed when the watcher is dropped.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;

pub(crate) struct PageWatch {
    on_visibility: Closure<dyn FnMut()>,
    on_online: Closure<dyn FnMut()>,
    on_hide: Closure<dyn FnMut()>,
    on_show: Closure<dyn FnMut()>,
}

const PAGE_EVENTS: [&str; 2] = ["pagehide", "pageshow"];

impl std::fmt::Debug for PageWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageWatch")
    }
}

/// Whether the page is visible now.
pub(crate) fn visible() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_none_or(|d| !d.hidden())
}

impl PageWatch {
    /// `on_page(false)` on `pagehide`, `on_page(true)` on a `pageshow` that
    /// follows one (a page back from the back/forward cache).
    pub(crate) fn new(
        mut on_visibility: impl FnMut(bool) + 'static,
        on_online: impl FnMut() + 'static,
        on_page: impl FnMut(bool) + 'static,
    ) -> Option<Self> {
        let window = web_sys::window()?;
        let document = window.document()?;
        let on_visibility = Closure::<dyn FnMut()>::new(move || on_visibility(visible()));
        let on_online = Closure::<dyn FnMut()>::new(on_online);
        document
            .add_event_listener_with_callback(
                "visibilitychange",
                on_visibility.as_ref().unchecked_ref(),
            )
            .ok()?;
        window
            .add_event_listener_with_callback("online", on_online.as_ref().unchecked_ref())
            .ok()?;
        let on_page = std::rc::Rc::new(std::cell::RefCell::new(on_page));
        let hidden = std::rc::Rc::new(std::cell::Cell::new(false));
        let (page, gone) = (on_page.clone(), hidden.clone());
        let on_hide = Closure::<dyn FnMut()>::new(move || {
            gone.set(true);
            (page.borrow_mut())(false);
        });
        let on_show = Closure::<dyn FnMut()>::new(move || {
            if hidden.replace(false) {
                (on_page.borrow_mut())(true);
            }
        });
        for (name, handler) in PAGE_EVENTS.iter().zip([&on_hide, &on_show]) {
            window
                .add_event_listener_with_callback(name, handler.as_ref().unchecked_ref())
                .ok()?;
        }
        Some(Self {
            on_visibility,
            on_online,
            on_hide,
            on_show,
        })
    }
}

impl Drop for PageWatch {
    fn drop(&mut self) {
        if let Some(window) = web_sys::window() {
            if let Some(document) = window.document() {
                let _ = document.remove_event_listener_with_callback(
                    "visibilitychange",
                    self.on_visibility.as_ref().unchecked_ref(),
                );
            }
            let _ = window.remove_event_listener_with_callback(
                "online",
                self.on_online.as_ref().unchecked_ref(),
            );
            for (name, handler) in PAGE_EVENTS.iter().zip([&self.on_hide, &self.on_show]) {
                let _ = window
                    .remove_event_listener_with_callback(name, handler.as_ref().unchecked_ref());
            }
        }
    }
}
