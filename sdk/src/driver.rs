//! Carries out the state machine's commands in the browser: fetches, the
//! socket, timers, the IndexedDB cache, listeners, and the promises of
//! `initialize()` and `forceSync()`.
//!
//! Inputs go through one queue: an input that arrives while another is being
//! handled (a listener calling `forceSync()`, say) waits its turn, so the
//! machine is never borrowed twice and listeners run with nothing borrowed.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use js_sys::{Array, Function};
use provider_sync_protocol::{EventPayload, ModelSpecification, SyncRequest, SyncState};
use wasm_bindgen::prelude::{Closure, wasm_bindgen};
use wasm_bindgen::{JsCast, JsValue};

use crate::auth::{APART, Auth, token_of};
use crate::cache::{CacheRecord, Freshness, confirmed_key, known_current, record_text, usable};
use crate::config::{LogLevel, Settings};
use crate::error::{DESTROYED, SdkError, decimal};
use crate::idb::{Outcome, cache_close, cache_delete, cache_load, cache_new, cache_put};
use crate::listeners::{Kind, Listeners};
use crate::machine::{
    ALL_TIMERS, ConnectionEvent, Core, Input, Mirror, Notice, Request, RequestKind, Timer,
};
use crate::page::{self, PageWatch};
use crate::tabs::{self, Tabs};
use crate::transport::http::{failure_of, fetch_text, get_json};
use crate::transport::websocket::{self, Socket};
use crate::transport::{from_js, from_text, to_js};
use crate::view::{
    ProviderSyncClientState, effective_filter, fallbacks, model_fallback, provider_fallback,
    removed, touched,
};
use crate::wire::{WireEvent, WireResponse};

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    /// `on(which)` after `ms`; the handle cancels it.
    #[wasm_bindgen(js_name = timerSet)]
    fn timer_set(on: &Function, ms: f64, which: u32) -> f64;
    #[wasm_bindgen(js_name = timerClear)]
    fn timer_clear(handle: f64);
    /// A hook for `on(from, what, value)`, until turned off.
    #[wasm_bindgen(js_name = hookNew)]
    fn hook_new(on: &Function) -> JsValue;
    #[wasm_bindgen(js_name = hookOff)]
    fn hook_off(hook: &JsValue);
    /// Marks the hook's service destroyed: a token is no longer asked for.
    #[wasm_bindgen(js_name = hookDestroyed)]
    fn hook_destroyed(hook: &JsValue);
    /// The function `(what, value)` that the hook hears as `from`.
    #[wasm_bindgen(js_name = hookFor)]
    fn hook_for(hook: &JsValue, from: u32) -> Function;
    /// The hook hears `which` when `promise` settles.
    fn track(hook: &JsValue, which: u32, promise: &js_sys::Promise);
    /// The hook hears `which` once what runs now is done (a microtask).
    fn soon(hook: &JsValue, which: u32);
    /// `url` resolved against the page (a socket's with a ws(s) scheme);
    /// throws an `Error` naming the config's `field` if it is not a URL the
    /// service can use.
    #[wasm_bindgen(js_name = resolveUrl, catch)]
    fn resolve_url(url: &str, socket: bool, field: &str) -> Result<String, JsValue>;
    /// Writes `text` to the console at `level` (`LogLevel as u32`).
    fn log(level: u32, text: &str);
    /// The lists of promises waiting for [`READY`] and [`SYNCED`].
    #[wasm_bindgen(js_name = waitersNew)]
    fn waiters_new() -> JsValue;
    /// A promise waiting in list `kind`.
    #[wasm_bindgen(js_name = waitFor)]
    fn wait_for(waiters: &JsValue, kind: u32) -> js_sys::Promise;
    /// Settles every promise waiting in list `kind`: resolved, or rejected
    /// with an `Error` of `message`.
    #[wasm_bindgen(js_name = settleAll)]
    fn settle_all(waiters: &JsValue, kind: u32, message: Option<&str>);
    /// A promise and the function that settles it (as `settle_all` does).
    fn deferred() -> Array;
}

/// The promises of `initialize()` and of `forceSync()`.
const READY: u32 = 0;
const SYNCED: u32 = 1;

/// Where what the driver's one handler hears comes from (`sdk/js/host.js`):
/// a promise handed to `track` settled (fulfilled or rejected), a timer,
/// the page, the WebSocket, the tabs.
const FULFILLED: u32 = 0;
const REJECTED: u32 = 1;
const TIMER: u32 = 2;
const PAGE: u32 = 3;
const SOCKET: u32 = 4;
const TABS: u32 = 5;

/// The timer, beside the machine's, that ends the wait for the cache at
/// start.
const CACHE_WAIT: u32 = ALL_TIMERS.len() as u32;

/// A cached copy, and how fresh it is.
/// A sound cached copy, how it may be used, and when it was last known
/// current.
type Cached = (SyncState, Freshness, f64);

/// What the driver does once a promise it handed to JavaScript settles (or,
/// for `Later`, once what runs now is done).
#[derive(Debug)]
// A few are kept at a time (`steps`); boxing the input would cost an
// allocation per step to save a few hundred bytes of their slots.
#[allow(clippy::large_enum_variant)]
enum Step {
    Later(Input),
    /// `initialize()`'s start: whose copy this is, then the cache.
    Begin,
    /// The token for a socket's opening, in its turn, with `query` on the
    /// socket's URL.
    SocketToken {
        turn: u32,
        query: Vec<String>,
    },
    /// The token, to work out whose copy this is; then what was waiting.
    Identity(Identified),
    /// A request's answer.
    Answer {
        kind: RequestKind,
        what: &'static str,
        timeout: f64,
    },
    /// The cache read at start, under this key.
    Loaded(String),
    /// The copy saved (one of `save_cache`'s writes).
    Saved,
    /// A confirmation stored.
    Stored,
    /// `clearCache()`'s deletes.
    Cleared(Clearing),
}

/// A `clearCache()` under way: what settles its promise, and the driver,
/// kept until then (a page may let go of the service first).
struct Clearing {
    settle: Function,
    _driver: Rc<Driver>,
}

impl std::fmt::Debug for Clearing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clearing")
    }
}

/// What waits for the copy's identity.
#[derive(Debug)]
enum Identified {
    /// Reading the cache at start.
    Load,
    /// `clearCache()`.
    Clear(Clearing),
}

/// Absolute URLs of the server, resolved against the page.
#[derive(Debug, Clone)]
pub(crate) struct Urls {
    pub(crate) api: String,
    pub(crate) ws: String,
}

impl Urls {
    pub(crate) fn resolve(settings: &Settings) -> Result<Self, JsValue> {
        // A relative URL (the seed's own `/api/provider-sync/ws`) resolves to
        // the page's http(s) scheme: the socket wants ws(s).
        let api = resolve_url(&settings.api_base_url, false, "apiBaseUrl")?;
        // From the URL as resolved (the parser drops what it trims, such
        // as spaces around it, which the raw text would carry into the
        // socket's path as %20).
        let ws = match &settings.ws_url {
            Some(url) => resolve_url(url, true, "wsUrl")?,
            None => resolve_url(&crate::json::concat(&[&api, "/ws"]), true, "apiBaseUrl")?,
        };
        Ok(Self { api, ws })
    }
}

/// Where the leading tab stands, from the `getState()` fields it sent.
fn mirror_of(text: &str) -> Option<Mirror> {
    use crate::fields::{Fields, Of};
    use crate::machine::{SyncStatus as S, Transport as T};
    let fields = Fields::read(&js_sys::JSON::parse(text).ok()?, Of::Mirror).ok()?;
    Some(Mirror {
        status: [S::Synced, S::Syncing, S::Stale, S::Error, S::Disconnected]
            [fields.number(0)? as usize],
        transport: [T::Websocket, T::Polling, T::Offline][fields.number(1)? as usize],
        connected: fields.boolean(2).unwrap_or(false),
        last_error: fields.string(3),
        last_sync_time: fields.number(4),
        from_cache: fields.boolean(5).unwrap_or(false),
    })
}

/// Sets `object[field] = text` (an object just made from JSON: cannot fail).
pub(crate) fn set(object: &JsValue, field: &str, text: &str) {
    let _ = js_sys::Reflect::set(object, &field.into(), &text.into());
}

/// How many entities events may name before the next list is made by a
/// walk rather than patched.
const MOST_NAMED: usize = 256;

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = objectsNew)]
    fn objects_new() -> JsValue;
    /// Whether it holds no object.
    #[wasm_bindgen(js_name = objectsEmpty)]
    fn objects_empty(objects: &JsValue) -> bool;
    /// Lets go of entity `id`'s object (the list made last keeps it until
    /// the next is made).
    #[wasm_bindgen(js_name = objectsForget)]
    fn objects_forget(objects: &JsValue, id: &str);
    /// Whether entity `id`'s object lists `listed` in its `model_ids`.
    #[wasm_bindgen(js_name = objectsLists)]
    fn objects_lists(objects: &JsValue, id: &str, listed: &str) -> bool;
    #[wasm_bindgen(js_name = objectsGet)]
    fn objects_get(objects: &JsValue, id: &str) -> Option<JsValue>;
    /// Entity `id`'s object if it is of `revision`.
    #[wasm_bindgen(js_name = objectsKept)]
    fn objects_kept(objects: &JsValue, id: &str, revision: f64) -> Option<JsValue>;
    #[wasm_bindgen(js_name = objectsKeep)]
    fn objects_keep(objects: &JsValue, id: &str, object: &JsValue);
    /// The list made last (the one kept, not a copy).
    #[wasm_bindgen(js_name = objectsList)]
    fn objects_list(objects: &JsValue) -> Array;
    /// Which of `entries` need a new object (see `sdk/js/host.js`).
    #[wasm_bindgen(js_name = objectsPlan)]
    fn objects_plan(objects: &JsValue, walk: bool, entries: Option<&str>) -> Vec<u32>;
    /// Places the new objects (`made`, JSON text, with their `fallbacks`):
    /// a frozen copy of the list made.
    #[wasm_bindgen(js_name = objectsFill)]
    fn objects_fill(objects: &JsValue, made: &str, fallbacks: &Array) -> Array;
    /// Freezes an object and everything in it (what is frozen already is
    /// left as it is).
    #[wasm_bindgen(js_name = freezeDeep)]
    pub(crate) fn freeze_deep(value: &JsValue);
}

/// JS objects of entities, kept across snapshots by `sdk/js/host.js`: an
/// entity no change has touched is handed out as the same (frozen) object,
/// so a snapshot converts only what changed (all of it in one
/// `JSON.parse`), and JS code can compare entities by identity. An entity
/// keeps its object while its revision and the ids it lists (a provider's
/// `model_ids`) are what they were. An object is let go when an event
/// removes its entity or a full state replaces the state (the machine's
/// `Replaced`), so a revision that repeats (an entity created again, or a
/// store copied back from a backup without a new epoch) never brings back
/// an old object. A new epoch empties it.
///
/// The last list is kept too (the page gets frozen copies of it): while every
/// change since is an event that names the entities it touched
/// ([`JsObjects::note`]), those entries are made anew, added or taken out
/// and the rest stays, so an event costs the entities it names, not the
/// whole list (the walk of LiteLLM's 3,345 models was about 0.5 ms an
/// event in Chromium). Which entities a list holds, in what order, and
/// which of them were named is decided here; the objects and the list are
/// JavaScript's.
#[derive(Debug)]
struct JsObjects {
    objects: JsValue,
    epoch: String,
    /// The filter's key of the last list made, if one is kept.
    list: Option<bool>,
    /// The version of the last event noted since that list, and the ids
    /// of the entities those events named.
    noted: u64,
    named: Vec<String>,
}

impl Default for JsObjects {
    fn default() -> Self {
        Self {
            objects: objects_new(),
            epoch: String::new(),
            list: None,
            noted: 0,
            named: Vec::new(),
        }
    }
}

impl JsObjects {
    /// Lets go of the objects of these entities (a list kept holds them
    /// until its next patch takes their entries out, or makes them anew).
    fn forget<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) {
        for id in ids {
            objects_forget(&self.objects, id);
        }
    }

    /// Whether the last list's entity `id`, not named by an event since,
    /// lists `listed` (so a provider's `model_ids` held that model before
    /// the event being noted).
    fn lists(&self, id: &str, listed: &str) -> bool {
        self.list.is_some()
            && !self.named.iter().any(|named| named == id)
            && objects_lists(&self.objects, id, listed)
    }

    /// An event of `version` changed the state, touching the entities
    /// `ids` (`None`: it may have touched any). The next list is patched
    /// only if every version since the last list was noted.
    fn note<'a>(&mut self, version: u64, ids: Option<impl IntoIterator<Item = &'a str>>) {
        match ids {
            // Past a few hundred, walking the list is as cheap (and a page
            // that never takes a snapshot keeps no growing list of names).
            Some(ids)
                if self.list.is_some()
                    && version == self.noted + 1
                    && self.named.len() < MOST_NAMED =>
            {
                self.noted = version;
                self.named.extend(ids.into_iter().map(str::to_owned));
            }
            _ => {
                self.list = None;
                self.named.clear();
            }
        }
    }

    /// Empties it for `epoch`, unless it is of that epoch already.
    fn of_epoch(&mut self, epoch: &str) {
        if self.epoch != epoch {
            *self = Self {
                epoch: epoch.to_owned(),
                ..Self::default()
            };
        }
    }

    /// The object kept for entity `id` at `revision` (made by `make` if there
    /// is none, or it is of another revision or epoch).
    fn kept(
        &mut self,
        epoch: &str,
        id: &str,
        revision: u64,
        make: impl FnOnce() -> JsValue,
    ) -> JsValue {
        self.of_epoch(epoch);
        objects_kept(&self.objects, id, revision as f64).unwrap_or_else(|| {
            let object = make();
            objects_keep(&self.objects, id, &object);
            object
        })
    }

    /// The object made for `id` in the last snapshot.
    fn get(&self, id: &str) -> Option<JsValue> {
        objects_get(&self.objects, id)
    }

    /// The last list made (empty if none is kept).
    fn made(&self) -> Array {
        if self.list.is_some() {
            objects_list(&self.objects)
        } else {
            Array::new()
        }
    }

    /// The list of the entities `list` shows, at the state's `version`,
    /// with `key` the filter's own.
    fn array(
        &mut self,
        epoch: &str,
        version: u64,
        key: bool,
        list: &dyn Entities,
    ) -> js_sys::Array {
        self.of_epoch(epoch);
        let mut named = std::mem::take(&mut self.named);
        let walk = self.list != Some(key) || self.noted != version;
        // Nothing kept to reuse: every entity needs its object, and the
        // entries need not be written.
        let fresh = walk && objects_empty(&self.objects);
        // Each entry: [id, revision, listed ids or null] of a shown entity,
        // or [id] of one not shown; and the position in the state of each
        // shown one.
        let mut entries = crate::json::Writer::default();
        let mut ats = Vec::new();
        let mut entry = |id: &str, at: Option<usize>| {
            if !fresh {
                entries.raw(if ats.is_empty() { "[[" } else { ",[" });
                entries.string(id);
                if let Some(at) = at {
                    let (_, revision, listed) = list.entry(at);
                    entries.raw(",");
                    entries.unsigned(revision);
                    entries.raw(",");
                    crate::json::Write::write(&listed, &mut entries);
                }
                entries.raw("]");
            }
            ats.push(at);
        };
        if walk {
            for at in (0..list.len()).filter(|&at| list.shows(at)) {
                entry(list.entry(at).0, Some(at));
            }
        } else {
            named.sort_unstable();
            named.dedup();
            for id in &named {
                entry(id, list.find(id));
            }
        }
        let need: Vec<u32> = if fresh {
            objects_plan(&self.objects, true, None);
            (0..ats.len() as u32).collect()
        } else {
            entries.raw(if ats.is_empty() { "[]" } else { "]" });
            objects_plan(&self.objects, walk, Some(&entries.finish()))
        };
        let ats: Vec<usize> = need.iter().filter_map(|&i| ats[i as usize]).collect();
        let (made, fallbacks) = objects(list, &ats);
        self.list = Some(key);
        self.noted = version;
        named.clear();
        self.named = named;
        objects_fill(&self.objects, &made, &fallbacks)
    }
}

/// An entity's id, revision and listed ids (a provider's `model_ids`).
type Entry<'a> = (&'a String, u64, Option<&'a [String]>);

/// One of `getState()`'s lists as the state holds it, for [`JsObjects`]
/// (through a trait object: one copy of its code serves both lists).
trait Entities {
    /// How many entities the state holds, shown or not.
    fn len(&self) -> usize;
    /// Whether the entity at `at` is shown.
    fn shows(&self, at: usize) -> bool;
    /// The position of entity `id`, if the state holds it and it is shown.
    fn find(&self, id: &str) -> Option<usize>;
    /// The id, revision and listed ids (a provider's `model_ids`) of the
    /// entity at `at`.
    fn entry(&self, at: usize) -> Entry<'_>;
    /// Writes the entity at `at` as JSON.
    fn write(&self, at: usize, out: &mut crate::json::Writer);
    /// The fallback the entity at `at` shows (a field and its text).
    fn fallback(&self, at: usize) -> Option<(&'static str, &'static str)>;
}

/// The entities of `list` at `ats` as JSON text, and the fallbacks they
/// show: `[index, field, text]` in turn. (Not a method of [`Entities`]:
/// one copy of its code serves both lists.)
fn objects(list: &dyn Entities, ats: &[usize]) -> (String, Array) {
    let mut out = crate::json::Writer::default();
    let fallbacks = Array::new();
    out.raw("[");
    for (index, &at) in ats.iter().enumerate() {
        if index > 0 {
            out.raw(",");
        }
        list.write(at, &mut out);
        if let Some((field, text)) = list.fallback(at) {
            fallbacks.push(&(index as u32).into());
            fallbacks.push(&field.into());
            fallbacks.push(&text.into());
        }
    }
    out.raw("]");
    (out.finish(), fallbacks)
}

/// The entities of a list of the state (sorted by id), those `shown` keeps.
struct Listed<'a, T> {
    items: &'a [T],
    shown: &'a dyn Fn(&T) -> bool,
    entry: fn(&T) -> Entry<'_>,
    fallback: fn(&T) -> Option<(&'static str, &'static str)>,
}

impl<T: crate::json::Write> Entities for Listed<'_, T> {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn shows(&self, at: usize) -> bool {
        (self.shown)(&self.items[at])
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.items
            .binary_search_by(|item| (self.entry)(item).0.as_str().cmp(id))
            .ok()
            .filter(|&at| (self.shown)(&self.items[at]))
    }

    fn entry(&self, at: usize) -> Entry<'_> {
        (self.entry)(&self.items[at])
    }

    fn write(&self, at: usize, out: &mut crate::json::Writer) {
        crate::json::Write::write(&self.items[at], out);
    }

    fn fallback(&self, at: usize) -> Option<(&'static str, &'static str)> {
        (self.fallback)(&self.items[at])
    }
}

#[derive(Debug)]
pub(crate) struct Driver {
    core: RefCell<Core>,
    urls: Urls,
    auth: Auth,
    /// Whose copy this is ([`Auth::identity`]), worked out once before the
    /// cache is read or tabs are joined, from the credentials then (the
    /// first token): its cache entry and shared connection are its own.
    /// `None` until then; [`APART`] when the token could not be had.
    identity: RefCell<Option<String>>,
    /// Bumped when a socket is opened or closed: an opening that waited for
    /// a token is dropped if it was overtaken meanwhile.
    socket_turn: Cell<u32>,
    queue: RefCell<VecDeque<Input>>,
    dispatching: Cell<bool>,
    /// The page was told (once) that it has no IndexedDB.
    no_database_told: Cell<bool>,
    /// Whether a database that would not open was reported since it last
    /// opened (it is tried again at each use: a refusal may pass).
    not_open_told: Cell<bool>,
    socket: RefCell<Option<Socket>>,
    /// Pending timers' handles: by `Timer as usize`, then [`CACHE_WAIT`].
    timers: RefCell<[Option<f64>; ALL_TIMERS.len() + 1]>,
    /// What every timer calls, with its index in `timers` (the hook's).
    on_timer: Function,
    /// Until the machine is started: what starts it (whichever comes
    /// first, the cache or the end of its wait, takes it).
    starting: Cell<bool>,
    /// The holder of this service's IndexedDB connection (`sdk/js/host.js`).
    cache: JsValue,
    /// What to do as each promise handed to JavaScript settles, by the
    /// number it was handed with (a free slot is reused).
    steps: RefCell<Vec<Option<Step>>>,
    /// The driver's one handler of all it hears: [`Driver::heard`] (kept
    /// for `hook`). A `Fn`, not a `FnMut`: one source may be heard while
    /// another's handler runs (a listener dispatching a page event, say),
    /// which wasm-bindgen refuses for a `FnMut`; `dispatch` queues what
    /// comes in meanwhile.
    _on_heard: Closure<dyn Fn(u32, u32, JsValue)>,
    /// `_on_heard` as JavaScript holds it, turned off when the driver goes.
    hook: JsValue,
    saving: Cell<bool>,
    save_again: Cell<bool>,
    /// When a confirmation was last written (`Date.now()`).
    confirmation_written: Cell<f64>,
    page: RefCell<Option<PageWatch>>,
    /// The tabs sharing one connection, when this service shares.
    tabs: RefCell<Option<Tabs>>,
    /// As a leader: the epoch and version followers were last brought to
    /// (by the whole state or by events), and the last status told.
    shared: RefCell<(String, u64)>,
    told: RefCell<String>,
    /// Whether another tab has spoken on the channel since this one
    /// joined. Every tab says `h` when it starts to follow, and the tabs
    /// there before it hear that; a tab that has heard no one is alone, and
    /// as the leader tells no one (a `postMessage` per event and per status
    /// change, about 0.1 ms each on LiteLLM's catalog) until someone comes.
    company: Cell<bool>,
    pub(crate) listeners: Listeners,
    snapshot: RefCell<Option<JsValue>>,
    /// The JSON of `snapshot`'s fields but its lists: a change of state
    /// that changes none of them (a retry failing as the one before) keeps
    /// the object and calls no listener. The lists cannot change without
    /// them: the version and checksum are among them.
    shown: RefCell<String>,
    /// The same JSON, as the `subscribe` listeners were last told it.
    announced: RefCell<String>,
    models_js: RefCell<JsObjects>,
    providers_js: RefCell<JsObjects>,
    /// Models `getState()` leaves out (deprecated ones, without
    /// `includeDeprecated`), as `getModel`/`getModels` hand them out.
    left_out_js: RefCell<JsObjects>,
    started: Cell<bool>,
    ready: Cell<bool>,
    /// The promises of `initialize()` and `forceSync()` not settled yet
    /// (`sdk/js/host.js`).
    waiters: JsValue,
}

/// How long `initialize()` waits for the IndexedDB cache before going to
/// the network without it.
const CACHE_WAIT_MS: f64 = 3000.0;

fn now() -> f64 {
    js_sys::Date::now()
}

impl Driver {
    pub(crate) fn new(settings: Settings, auth: Auth) -> Result<Rc<Self>, JsValue> {
        let urls = Urls::resolve(&settings)?;
        Ok(Rc::new_cyclic(|me| Self::with(settings, urls, auth, me)))
    }

    fn with(settings: Settings, urls: Urls, auth: Auth, me: &Weak<Driver>) -> Self {
        let on_heard: Closure<dyn Fn(u32, u32, JsValue)> = {
            let me = me.clone();
            Closure::new(move |from, what, value| {
                if let Some(driver) = me.upgrade() {
                    driver.heard(from, what, value);
                }
            })
        };
        let hook = hook_new(on_heard.as_ref().unchecked_ref());
        Self {
            core: RefCell::new(Core::new(settings)),
            urls,
            auth,
            identity: RefCell::default(),
            socket_turn: Cell::new(0),
            queue: RefCell::default(),
            dispatching: Cell::new(false),
            no_database_told: Cell::new(false),
            not_open_told: Cell::new(false),
            socket: RefCell::default(),
            timers: RefCell::default(),
            on_timer: hook_for(&hook, TIMER),
            starting: Cell::new(false),
            cache: cache_new(),
            steps: RefCell::default(),
            hook,
            _on_heard: on_heard,
            saving: Cell::new(false),
            save_again: Cell::new(false),
            confirmation_written: Cell::new(0.0),
            page: RefCell::default(),
            tabs: RefCell::default(),
            shared: RefCell::default(),
            told: RefCell::default(),
            company: Cell::new(false),
            listeners: Listeners::default(),
            snapshot: RefCell::default(),
            shown: RefCell::default(),
            announced: RefCell::default(),
            models_js: RefCell::default(),
            providers_js: RefCell::default(),
            left_out_js: RefCell::default(),
            started: Cell::new(false),
            ready: Cell::new(false),
            waiters: waiters_new(),
        }
    }

    pub(crate) fn is_destroyed(&self) -> bool {
        self.core.borrow().is_destroyed()
    }

    pub(crate) fn api_base_url(&self) -> &str {
        &self.urls.api
    }

    pub(crate) fn ws_url(&self) -> &str {
        &self.urls.ws
    }

    /// A GET the page asks for (`fetchJson`), with this service's
    /// credentials and request time limit.
    pub(crate) fn get_json(&self, path: &str, signal: &JsValue) -> js_sys::Promise {
        let timeout = self.core.borrow().settings().sync_timeout;
        get_json(
            &self.hook,
            self.auth.js(),
            &self.urls.api,
            path,
            timeout,
            signal,
        )
    }

    pub(crate) fn log(&self, level: LogLevel, message: &str) {
        if level > self.core.borrow().settings().log_level || level == LogLevel::Silent {
            return;
        }
        log(
            level as u32,
            &crate::json::concat(&["provider-sync: ", message]),
        );
    }

    /// Feeds one input to the machine and carries out what it says.
    /// Not inlined: it is called from every event handler.
    #[inline(never)]
    pub(crate) fn dispatch(&self, input: Input) {
        self.queue.borrow_mut().push_back(input);
        if self.dispatching.replace(true) {
            return;
        }
        loop {
            let Some(input) = self.queue.borrow_mut().pop_front() else {
                break;
            };
            let commands = self
                .core
                .borrow_mut()
                .handle(input, now(), js_sys::Math::random());
            // The state is already where all of these events lead, and a
            // listener of the first may take a snapshot of it: no object of
            // an entity a later one removes may be handed out again.
            for command in &commands {
                if let crate::machine::Command::Notify(Notice::Event(event)) = command {
                    self.forget_removed(event);
                }
            }
            for command in commands {
                self.execute(command);
            }
        }
        self.dispatching.set(false);
    }

    fn later(&self, input: Input) {
        self.later_step(Step::Later(input));
    }

    /// Does `step` once what runs now is done.
    fn later_step(&self, step: Step) {
        soon(&self.hook, self.step(step));
    }

    /// Keeps `step` for when its promise settles: its number.
    fn step(&self, step: Step) -> u32 {
        let mut steps = self.steps.borrow_mut();
        let at = steps.iter().position(Option::is_none).unwrap_or_else(|| {
            steps.push(None);
            steps.len() - 1
        });
        steps[at] = Some(step);
        at as u32
    }

    /// Does `step` once `promise` settles.
    fn wait(&self, promise: &js_sys::Promise, step: Step) {
        track(&self.hook, self.step(step), promise);
    }

    /// What the driver's one handler hears (see [`FULFILLED`] and the rest).
    fn heard(&self, from: u32, what: u32, value: JsValue) {
        let text = || value.as_string().unwrap_or_default();
        match from {
            FULFILLED | REJECTED => self.answered(what, from == FULFILLED, value),
            TIMER => self.timer_fired(what),
            PAGE => self.page_event(what, value.is_truthy()),
            SOCKET => self.socket_event(what, text()),
            TABS => self.tabs_event(what, text()),
            _ => {}
        }
    }

    /// A promise handed to JavaScript settled: its step goes on.
    fn answered(&self, which: u32, fulfilled: bool, value: JsValue) {
        let step = self
            .steps
            .borrow_mut()
            .get_mut(which as usize)
            .and_then(Option::take);
        match step {
            None => {}
            Some(Step::Later(input)) => self.dispatch(input),
            Some(Step::Begin) => self.identify(Identified::Load),
            Some(Step::SocketToken { turn, query }) => {
                self.socket_token(turn, query, token_in(fulfilled, &value));
            }
            Some(Step::Identity(then)) => {
                // A token that cannot be had now (or none from `getToken`)
                // says nothing of whose copy this will be: the page is kept
                // to itself ([`APART`]). It counted as none, and shared the
                // cache and the connection of pages without credentials: one
                // signed out then read, through this page's connection once
                // its token came, the catalog of a token it never had (a
                // black-box check; the review found the same of none).
                let identity = match token_in(fulfilled, &value) {
                    Ok(token) => self.auth.identity(token.as_deref()),
                    Err(_) => APART.into(),
                };
                *self.identity.borrow_mut() = Some(identity);
                self.identified(then);
            }
            Some(Step::Answer {
                kind,
                what,
                timeout,
            }) => {
                let input = if fulfilled {
                    read_answer(kind, what, &value.as_string().unwrap_or_default())
                } else {
                    Err(failure_of(what, timeout, &value))
                };
                self.dispatch(input.unwrap_or_else(|error| Input::RequestFailed {
                    request: kind,
                    error,
                }));
            }
            Some(Step::Loaded(key)) => {
                let cached = self.loaded(&key, Outcome::of(fulfilled, &value));
                self.begin(cached);
            }
            Some(Step::Saved) => {
                self.stored(Outcome::of(fulfilled, &value));
                self.saved();
            }
            Some(Step::Stored) => self.stored(Outcome::of(fulfilled, &value)),
            Some(Step::Cleared(clearing)) => {
                // Without a database (or one that would not open, reported)
                // there is nothing to clear.
                let _ = match Outcome::of(fulfilled, &value) {
                    Outcome::Failed(message) => {
                        clearing.settle.call1(&JsValue::NULL, &message.into())
                    }
                    outcome => {
                        self.opened(outcome);
                        clearing.settle.call0(&JsValue::NULL)
                    }
                };
            }
        }
    }

    fn execute(&self, command: crate::machine::Command) {
        use crate::machine::Command::*;
        match command {
            Fetch(request) => self.fetch(request),
            OpenSocket { since, epoch } => self.open_socket(since, &epoch),
            CloseSocket => {
                self.socket_turn.set(self.socket_turn.get().wrapping_add(1));
                drop(self.socket.borrow_mut().take());
            }
            AskLeader { state } => {
                if let Some(tabs) = self.tabs.borrow().as_ref() {
                    tabs.send(if state { "h" } else { "f" }, "");
                }
            }
            SendHeartbeat { version } => {
                if let Some(socket) = self.socket.borrow().as_ref() {
                    socket.send(&crate::json::concat(&[
                        "{\"type\":\"heartbeat\",\"version\":",
                        &decimal(version),
                        "}",
                    ]));
                }
            }
            SetTimer { timer, after_ms } => self.set_timer(timer as u32, after_ms),
            ClearTimer(timer) => self.clear_timer(timer as u32),
            SaveCache => self.save_cache(),
            Confirmed => self.confirm_cache(),
            Notify(notice) => self.notify(notice),
        }
    }

    /// Sets timer `which` (replacing a pending one cancels it).
    fn set_timer(&self, which: u32, after_ms: f64) {
        self.clear_timer(which);
        let handle = timer_set(&self.on_timer, after_ms, which);
        self.timers.borrow_mut()[which as usize] = Some(handle);
    }

    fn clear_timer(&self, which: u32) {
        if let Some(handle) = self.timers.borrow_mut()[which as usize].take() {
            timer_clear(handle);
        }
    }

    fn clear_timers(&self) {
        for handle in self.timers.take().into_iter().flatten() {
            timer_clear(handle);
        }
    }

    fn timer_fired(&self, which: u32) {
        self.timers.borrow_mut()[which as usize] = None;
        if which == CACHE_WAIT {
            if self.starting.replace(false) {
                log(
                    LogLevel::Warn as u32,
                    "provider-sync: IndexedDB did not answer in time; starting from the network",
                );
                self.start(None);
            }
        } else if let Some(&timer) = ALL_TIMERS.get(which as usize) {
            self.dispatch(Input::TimerFired(timer));
        }
    }

    fn fetch(&self, request: Request) {
        let timeout = self.core.borrow().settings().sync_timeout;
        let fresh = matches!(request, Request::State { fresh: true });
        let (kind, what, method, path, body) = match request {
            Request::State { .. } => (RequestKind::State, "GET /state", "GET", "/state", None),
            Request::Sync {
                version,
                epoch,
                force_full,
            } => {
                let body = SyncRequest {
                    client_version: version,
                    client_epoch: Some(epoch),
                    include_deprecated: None,
                    force_full: force_full.then_some(true),
                };
                let body = Some(crate::json::write(&body));
                (RequestKind::Sync, "POST /sync", "POST", "/sync", body)
            }
            Request::Version => (
                RequestKind::Version,
                "GET /version",
                "GET",
                "/version",
                None,
            ),
        };
        let url = crate::json::concat(&[&self.urls.api, path]);
        let answer = fetch_text(
            &self.hook,
            self.auth.js(),
            method,
            &url,
            body.as_deref(),
            timeout,
            fresh,
        );
        self.wait(
            &answer,
            Step::Answer {
                kind,
                what,
                timeout,
            },
        );
    }

    /// Asks for the token (`tokenOf`: once what runs now is done, so the
    /// commands of the batch that asked are carried out first, and a
    /// `destroy()` among them refuses it; never waiting longer than
    /// `syncTimeout`), then goes on with `step`.
    fn with_token(&self, step: Step) {
        let timeout = self.core.borrow().settings().sync_timeout;
        self.wait(&token_of(&self.hook, self.auth.js(), timeout), step);
    }

    /// A socket's opening, once its token is known: unless closed or opened
    /// again meanwhile.
    fn socket_token(
        &self,
        turn: u32,
        mut query: Vec<String>,
        token: Result<Option<String>, SdkError>,
    ) {
        match token {
            // The socket cannot carry headers: the token goes in the URL.
            Ok(Some(token)) => {
                let token = String::from(js_sys::encode_uri_component(&token));
                query.push(crate::json::concat(&["access_token=", &token]));
            }
            Ok(None) => {}
            // Unless closed or opened again while the token was asked.
            Err(error) if self.socket_turn.get() == turn => {
                return self.dispatch(Input::SocketClosed {
                    reason: error.message(),
                });
            }
            Err(_) => return,
        }
        // Closed or opened again while the token was fetched.
        if self.socket_turn.get() != turn || self.is_destroyed() {
            return;
        }
        let mut url = self.urls.ws.clone();
        for part in &query {
            // A byte compared in turn (`contains` brings `memchr`).
            url.push(if url.bytes().any(|b| b == b'?') {
                '&'
            } else {
                '?'
            });
            url.push_str(part);
        }
        self.connect(&url);
    }

    /// Works out whose copy this is, once (see `identity`), then goes on
    /// with `then`.
    fn identify(&self, then: Identified) {
        if self.identity.borrow().is_some() {
            self.identified(then);
        } else {
            self.with_token(Step::Identity(then));
        }
    }

    /// Whether this page keeps its copy to itself: neither cached nor shared
    /// with other tabs ([`APART`]).
    fn apart(&self) -> bool {
        self.identity.borrow().as_deref() == Some(APART)
    }

    fn identified(&self, then: Identified) {
        let key = self.cache_key();
        match then {
            // Bootstrapped: what the page has is newer than any cache.
            Identified::Load
                if self.core.borrow().state().is_some()
                    || !self.core.borrow().settings().enable_cache
                    || self.apart()
                    || self.is_destroyed() =>
            {
                self.begin(None);
            }
            Identified::Load => {
                let read = cache_load(&self.cache, &key, &confirmed_key(&key));
                self.wait(&read, Step::Loaded(key));
            }
            Identified::Clear(clearing) if self.is_destroyed() => {
                let _ = clearing.settle.call0(&JsValue::NULL);
            }
            Identified::Clear(clearing) => {
                // A write the last burst scheduled, or one queued behind
                // a write in progress, would put it back.
                if self.core.borrow_mut().drop_pending_save() {
                    self.clear_timer(Timer::Save as u32);
                }
                self.save_again.set(false);
                let deleted = cache_delete(&self.cache, &confirmed_key(&key), Some(key));
                self.wait(&deleted, Step::Cleared(clearing));
            }
        }
    }

    /// The cache entry of this copy: by server, and by credentials.
    fn cache_key(&self) -> String {
        match self.identity.borrow().as_deref() {
            None | Some("") => self.urls.api.clone(),
            Some(identity) => crate::json::concat(&[&self.urls.api, "#", identity]),
        }
    }

    fn open_socket(&self, since: u64, epoch: &str) {
        let turn = self.socket_turn.get().wrapping_add(1);
        self.socket_turn.set(turn);
        let mut query = Vec::new();
        if !epoch.is_empty() {
            let encoded = String::from(js_sys::encode_uri_component(epoch));
            query.push(crate::json::concat(&[
                "since=",
                &decimal(since),
                "&epoch=",
                &encoded,
            ]));
        }
        self.with_token(Step::SocketToken { turn, query });
    }

    /// What the socket says ([`websocket::OPENED`], …), with its text.
    fn socket_event(&self, what: u32, text: String) {
        match what {
            websocket::OPENED => {
                self.log(LogLevel::Info, "WebSocket connected");
                self.dispatch(Input::SocketOpened);
            }
            websocket::FRAME => match from_text::<WireEvent>(&text, "a WebSocket frame") {
                Ok(WireEvent::Known(event)) => self.dispatch(Input::SocketEvent(event)),
                Ok(WireEvent::Unknown { kind, version }) => {
                    self.log(
                        LogLevel::Debug,
                        &crate::json::concat(&["unknown frame type ", &kind]),
                    );
                    self.dispatch(Input::SocketUnknown { kind, version });
                }
                Err(error) => {
                    self.log(
                        LogLevel::Warn,
                        &crate::json::concat(&["unreadable: ", &error.message()]),
                    );
                    self.dispatch(Input::SocketUnreadable);
                }
            },
            websocket::CLOSED => {
                self.socket.borrow_mut().take();
                self.log(LogLevel::Info, &crate::json::concat(&["WebSocket ", &text]));
                self.dispatch(Input::SocketClosed { reason: text });
            }
            _ => {}
        }
    }

    fn connect(&self, url: &str) {
        let socket = Socket::open(url, &hook_for(&self.hook, SOCKET));
        match socket {
            Ok(socket) => *self.socket.borrow_mut() = Some(socket),
            Err(error) => self.later(Input::SocketClosed {
                reason: error.message(),
            }),
        }
    }

    /// Drops the objects of the entities `event` removes: if they are
    /// created again (from revision 1), they get new ones.
    fn forget_removed(&self, event: &provider_sync_protocol::SyncEvent) {
        let (provider, models, model) = removed(event);
        self.providers_js.borrow_mut().forget(provider);
        let ids = models.iter().map(String::as_str).chain(model);
        self.models_js.borrow_mut().forget(ids.clone());
        self.left_out_js.borrow_mut().forget(ids);
    }

    fn notify(&self, notice: Notice) {
        self.share(&notice);
        match notice {
            Notice::Event(event) => {
                // A listener calling getState() sees the state with this event.
                // (What it removes was forgotten when the machine's commands
                // came: `dispatch`.)
                self.snapshot.borrow_mut().take();
                let (mut in_providers, in_models) = touched(&event.payload);
                if let EventPayload::ModelAdded(m)
                | EventPayload::ModelUpdated(m)
                | EventPayload::ModelDeprecated(m) = &event.payload
                    && self.providers_js.borrow().lists(&m.provider_id, &m.id)
                {
                    // Already its provider's: no provider's `model_ids` moved.
                    in_providers = Some(None);
                }
                self.providers_js
                    .borrow_mut()
                    .note(event.version, in_providers);
                self.models_js.borrow_mut().note(event.version, in_models);
                if !self.listeners.is_empty(Kind::Event) {
                    let value = to_js(&*event);
                    let shown = fallbacks(&event.payload);
                    if !shown.is_empty() {
                        let data = js_sys::Reflect::get(&value, &"data".into()).unwrap_or_default();
                        for (field, text) in shown {
                            set(&data, field, text);
                        }
                    }
                    self.listeners.call(Kind::Event, &value);
                }
            }
            Notice::Replaced => {
                self.snapshot.borrow_mut().take();
                *self.providers_js.borrow_mut() = JsObjects::default();
                *self.models_js.borrow_mut() = JsObjects::default();
                *self.left_out_js.borrow_mut() = JsObjects::default();
            }
            Notice::Connection(event) => {
                let (level, message) = match &event {
                    ConnectionEvent::Connected { transport } => (
                        LogLevel::Info,
                        if *transport == crate::machine::Transport::Polling {
                            "polling works".to_owned()
                        } else {
                            "connected over WebSocket".to_owned()
                        },
                    ),
                    ConnectionEvent::Disconnected { reason } => (
                        LogLevel::Warn,
                        crate::json::concat(&["disconnected: ", reason]),
                    ),
                    ConnectionEvent::FallbackToPolling { attempts } => (
                        LogLevel::Warn,
                        crate::json::concat(&[
                            "WebSocket failed ",
                            &decimal((*attempts).into()),
                            " times: polling GET /version until it is back",
                        ]),
                    ),
                    ConnectionEvent::Resynced { reason } => (
                        LogLevel::Info,
                        crate::json::concat(&["resynced (", reason, ")"]),
                    ),
                    ConnectionEvent::SyncError { message } => (LogLevel::Warn, message.clone()),
                    ConnectionEvent::CacheError { message } => (LogLevel::Warn, message.clone()),
                };
                self.log(level, &message);
                self.listeners.call(Kind::Event, &to_js(&event));
            }
            Notice::StateChanged => {
                let now =
                    crate::json::write(&ProviderSyncClientState::scalars(&self.core.borrow()));
                // Nothing shown changed since the listeners were last told
                // (a retry failing as the one before): no call, the same
                // object.
                if *self.announced.borrow() == now
                    && *self.shown.borrow() == now
                    && self.snapshot.borrow().is_some()
                {
                    return;
                }
                // One made meanwhile (by a `getState()` in an `onEvent`
                // listener, say) is kept if it shows this.
                if *self.shown.borrow() != now {
                    self.snapshot.borrow_mut().take();
                }
                *self.announced.borrow_mut() = now;
                if !self.listeners.is_empty(Kind::State) {
                    let snapshot = self.snapshot();
                    self.listeners.call(Kind::State, &snapshot);
                }
            }
            Notice::Ready => {
                self.ready.set(true);
                settle_all(&self.waiters, READY, None);
            }
            Notice::Failed(message) => settle_all(&self.waiters, READY, Some(&message)),
            Notice::SyncSettled(result) => {
                settle_all(&self.waiters, SYNCED, result.err().as_deref());
            }
            Notice::ForceAbandoned(message) => {
                settle_all(&self.waiters, SYNCED, Some(&message));
            }
        }
    }

    /// As the leading tab: tells the others what changed.
    fn share(&self, notice: &Notice) {
        let tabs = self.tabs.borrow();
        let Some(tabs) = tabs.as_ref().filter(|t| t.leading() && self.company.get()) else {
            return;
        };
        use crate::json::write as text;
        match notice {
            Notice::Event(event) => {
                tabs.send("e", &text(&**event));
                self.shared.borrow_mut().1 = event.version;
            }
            Notice::Connection(event) => tabs.send("c", &text(event)),
            Notice::Replaced => *self.shared.borrow_mut() = Default::default(),
            // `r` alone: done; `R` and the error's text: failed.
            Notice::SyncSettled(Ok(())) => tabs.send("r", ""),
            Notice::SyncSettled(Err(message)) => tabs.send("R", message),
            // Not a failure of the follower's forceSync(): it asks the next
            // leader.
            Notice::ForceAbandoned(_) => tabs.send("g", ""),
            // A leader being destroyed hands over: its own last state
            // (nothing connected) is not the others'.
            Notice::StateChanged if !self.core.borrow().is_destroyed() => {
                self.tell_state(tabs, false)
            }
            _ => {}
        }
    }

    /// Tells followers the whole state if they may lack it (or `always`),
    /// and where this copy stands if that changed.
    fn tell_state(&self, tabs: &Tabs, always: bool) {
        let core = self.core.borrow();
        if let Some(state) = core.state() {
            let at = (state.metadata.epoch.clone(), state.metadata.version);
            if always || *self.shared.borrow() != at {
                tabs.send("s", &crate::json::write(state));
                *self.shared.borrow_mut() = at;
            }
        }
        // The leader's getState() fields, less the lists: followers read
        // theirs (status, transport, …) from it.
        let mirror = crate::json::write(&ProviderSyncClientState::scalars(&core));
        if always || *self.told.borrow() != mirror {
            tabs.send("m", &mirror);
            *self.told.borrow_mut() = mirror;
        }
    }

    /// What another tab sent.
    fn on_tab_message(&self, text: &str) {
        let (kind, body) = (
            text.get(..1).unwrap_or_default(),
            text.get(1..).unwrap_or_default(),
        );
        self.company.set(true);
        let leading = self.tabs.borrow().as_ref().is_some_and(Tabs::leading);
        if leading {
            match kind {
                "h" => {
                    if let Some(tabs) = self.tabs.borrow().as_ref() {
                        self.tell_state(tabs, true);
                    }
                }
                "f" => self.dispatch(Input::ForceSync),
                _ => {}
            }
            return;
        }
        let input = match kind {
            "s" => from_text(body, "a tab message").map(Input::LeaderState),
            "e" => match from_text::<WireEvent>(body, "a tab message") {
                Ok(WireEvent::Known(event)) => Ok(Input::LeaderEvent(event)),
                // The leader fetches what it cannot read; its state follows.
                Ok(WireEvent::Unknown { .. }) => return,
                Err(error) => Err(error),
            },
            "m" => match mirror_of(body) {
                Some(mirror) => Ok(Input::LeaderMirror(mirror)),
                None => return,
            },
            "r" => Ok(Input::LeaderSettled(Ok(()))),
            "R" => Ok(Input::LeaderSettled(Err(body.to_owned()))),
            "g" | "n" => Ok(Input::LeaderGone),
            "c" => {
                // Handed on as the leader wrote it: reading it into a
                // ConnectionEvent (an internally tagged enum) would bring
                // serde's buffering into the wasm.
                if let Ok(event) = js_sys::JSON::parse(body) {
                    self.listeners.call(Kind::Event, &event);
                }
                // Written by this SDK's writer: the type comes first.
                let kind = |name: &str| {
                    body.starts_with(&crate::json::concat(&["{\"type\":\"", name, "\""]))
                };
                if kind("resynced") {
                    Ok(Input::LeaderResynced)
                } else if kind("connected") || kind("disconnected") {
                    Ok(Input::LeaderLink(kind("connected")))
                } else {
                    return;
                }
            }
            _ => return,
        };
        match input {
            Ok(input) => self.dispatch(input),
            Err(error) => self.log(
                LogLevel::Warn,
                &crate::json::concat(&["ignored: ", &error.message()]),
            ),
        }
    }

    /// Joins the tabs sharing this server's connection, as a follower until
    /// the lock comes; `false` where the browser cannot share (or sharing is
    /// off).
    fn join_tabs(&self) -> bool {
        // Only with whose copy this is known: tabs share with the same
        // credentials only.
        if !self.core.borrow().settings().share_connection
            || self.identity.borrow().is_none()
            || self.apart()
        {
            return false;
        }
        let tabs = Tabs::join(
            &crate::json::concat(&["provider-sync ", &self.cache_key()]),
            &hook_for(&self.hook, TABS),
        );
        let joined = tabs.is_some();
        self.company.set(false);
        *self.tabs.borrow_mut() = tabs;
        joined
    }

    /// What the tabs say ([`tabs::MESSAGE`], …), with its text.
    fn tabs_event(&self, what: u32, text: String) {
        match what {
            tabs::MESSAGE => self.on_tab_message(&text),
            tabs::LEAD => {
                *self.told.borrow_mut() = String::new();
                *self.shared.borrow_mut() = Default::default();
                // A new leader: a follower's forceSync() asked of the last
                // one (which may have crashed, or gone before it read the
                // request) is asked again of this one.
                if let Some(tabs) = self.tabs.borrow().as_ref() {
                    tabs.send("n", "");
                }
                self.dispatch(Input::Lead);
            }
            // As where there are no Web Locks: this tab leaves the others
            // and connects by itself.
            tabs::REFUSED => {
                self.tabs.borrow_mut().take();
                self.dispatch(Input::Lead);
            }
            _ => {}
        }
    }

    /// What the page says ([`page::VISIBILITY`], …), with its flag.
    fn page_event(&self, what: u32, flag: bool) {
        match what {
            // Shared, a hidden tab may hold the connection for tabs in
            // view: only a tab alone pauses when hidden.
            page::VISIBILITY if flag || self.tabs.borrow().is_none() => {
                self.dispatch(Input::Visibility { visible: flag });
            }
            page::ONLINE if flag => self.dispatch(Input::Online),
            page::ONLINE => self.dispatch(Input::Offline),
            page::PAGE if flag => self.page_shown(),
            page::PAGE => self.page_hidden(),
            _ => {}
        }
    }

    /// `pagehide`: let another tab take the connection (or, alone, close
    /// it), so that the page may enter the back/forward cache. The network
    /// work stops (and what is pending is written) before the lock goes.
    fn page_hidden(&self) {
        self.dispatch(Input::Follow {
            cached: None,
            expired: None,
        });
        self.tabs.borrow_mut().take();
    }

    /// `pageshow` after a `pagehide`: join again (or, alone, reconnect).
    fn page_shown(&self) {
        if self.core.borrow().is_destroyed() || self.tabs.borrow().is_some() {
            return;
        }
        let following = self.core.borrow().is_following();
        self.dispatch(if following && self.join_tabs() {
            // Back among the tabs: the leader's state brings it up to date.
            Input::Follow {
                cached: None,
                expired: None,
            }
        } else {
            Input::Lead
        });
    }

    /// `getState()`: the same object until something changes.
    pub(crate) fn snapshot(&self) -> JsValue {
        if let Some(value) = self.snapshot.borrow().as_ref() {
            return value.clone();
        }
        let core = self.core.borrow();
        let shown = crate::json::write(&ProviderSyncClientState::scalars(&core));
        let value = js_sys::JSON::parse(&shown).unwrap_or(JsValue::NULL);
        *self.shown.borrow_mut() = shown;
        if let Some(state) = core.state() {
            let filter = effective_filter(None, core.settings().include_deprecated);
            let (epoch, version) = (&state.metadata.epoch, state.metadata.version);
            let models = self.models_js.borrow_mut().array(
                epoch,
                version,
                core.settings().include_deprecated,
                &Listed {
                    items: &state.all_models,
                    shown: &|m| filter.matches(m),
                    entry: |m| (&m.id, m.revision, None),
                    fallback: model_fallback,
                },
            );
            let providers = self.providers_js.borrow_mut().array(
                epoch,
                version,
                true,
                &Listed {
                    items: &state.providers,
                    shown: &|_| true,
                    entry: |p| (&p.id, p.revision, Some(&p.model_ids)),
                    fallback: provider_fallback,
                },
            );
            let _ = js_sys::Reflect::set(&value, &"models".into(), &models);
            let _ = js_sys::Reflect::set(&value, &"providers".into(), &providers);
        }
        freeze_deep(&value);
        *self.snapshot.borrow_mut() = Some(value.clone());
        value
    }

    /// The current snapshot's list of models (or providers) as made (the
    /// list kept, not the page's frozen copy). Empty before any data.
    pub(crate) fn snapshot_list(&self, models: bool) -> js_sys::Array {
        self.snapshot();
        self.objects_of(models).borrow().made()
    }

    /// The current snapshot's object of a model (or provider), if it holds
    /// that entity.
    pub(crate) fn entity_object(&self, model: bool, id: &str) -> Option<JsValue> {
        self.snapshot();
        self.objects_of(model).borrow().get(id)
    }

    /// The objects of `getState()`'s models, or of its providers.
    fn objects_of(&self, models: bool) -> &RefCell<JsObjects> {
        if models {
            &self.models_js
        } else {
            &self.providers_js
        }
    }

    /// The object of a model `getState()` leaves out: the same one while
    /// the model is unchanged.
    pub(crate) fn left_out_object(
        &self,
        epoch: &str,
        model: &ModelSpecification,
        make: impl FnOnce() -> JsValue,
    ) -> JsValue {
        self.left_out_js
            .borrow_mut()
            .kept(epoch, &model.id, model.revision, make)
    }

    pub(crate) fn with_core<T>(&self, f: impl FnOnce(&Core) -> T) -> T {
        f(&self.core.borrow())
    }

    fn cache_error(&self, message: String) {
        self.notify(Notice::Connection(ConnectionEvent::CacheError { message }));
    }

    /// A cache request's outcome once the database was there: `None`
    /// (reported) when there is none here or it would not open.
    /// Nothing once destroyed (the connection was closed then).
    fn opened(&self, outcome: Outcome) -> Option<Outcome> {
        if self.is_destroyed() {
            return None;
        }
        match outcome {
            Outcome::NoDatabase => {
                // Said once, as the package's README promises: a
                // `cache_error` event (and its warning on the console).
                if !self.no_database_told.replace(true) {
                    self.cache_error(
                        "no IndexedDB here: keeping the state in memory only".to_owned(),
                    );
                }
                None
            }
            // Said once until it opens: storage the browser refuses
            // (blocked cookies, a frame of another site) told at every
            // write was a warning a change, for the page's lifetime.
            Outcome::WouldNotOpen(message) => {
                if !self.not_open_told.replace(true) {
                    self.cache_error(crate::json::concat(&["cannot open IndexedDB: ", &message]));
                }
                None
            }
            outcome => {
                self.not_open_told.set(false);
                Some(outcome)
            }
        }
    }

    /// The cached copy for this server, read under `key`; one that is
    /// damaged or of another schema is discarded.
    fn loaded(&self, key: &str, outcome: Outcome) -> Option<Cached> {
        let found = match self.opened(outcome)? {
            Outcome::Done(found) => Array::from(&found),
            Outcome::Failed(message) => {
                self.cache_error(crate::json::concat(&["cannot read the cache: ", &message]));
                return None;
            }
            _ => return None,
        };
        let raw = found.get(0);
        if raw.is_undefined() || raw.is_null() {
            return None;
        }
        // Saved as JSON text; a release before kept the record as an object.
        let record = match raw.as_string() {
            Some(text) => from_text::<CacheRecord>(&text, "the cached record"),
            None => from_js::<CacheRecord>(&raw, "the cached record"),
        };
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                self.cache_error(crate::json::concat(&[
                    "discarded an unreadable cached record: ",
                    &error.message(),
                ]));
                // Before any later write of the same key (IndexedDB keeps
                // the order of writes to one store).
                let _ = cache_delete(&self.cache, key, None);
                return None;
            }
        };
        let confirmed_at = found.get(1).as_f64();
        let ttl = self.core.borrow().settings().cache_ttl;
        match usable(&record, &self.urls.api, confirmed_at, now(), ttl) {
            Ok(freshness) => {
                let known = known_current(&record, confirmed_at);
                Some((record.state, freshness, known))
            }
            Err(why) => {
                self.cache_error(crate::json::concat(&[
                    "discarded a cached record: ",
                    why.describe(),
                ]));
                let _ = cache_delete(&self.cache, key, None);
                None
            }
        }
    }

    /// Saves the current copy; bursts of changes coalesce into one write at a
    /// time.
    fn save_cache(&self) {
        if !self.core.borrow().settings().enable_cache {
            return;
        }
        if self.saving.replace(true) {
            self.save_again.set(true);
            return;
        }
        self.save_next();
    }

    fn save_next(&self) {
        if self.is_destroyed() {
            self.saving.set(false);
            return;
        }
        self.save_again.set(false);
        // As JSON text: one string for IndexedDB to copy, where an object
        // (3,345 models of LiteLLM's catalog) was first made by `JSON.parse`
        // and then cloned field by field by `put()`.
        let text = self
            .core
            .borrow()
            .state()
            .map(|state| record_text(&self.urls.api, now(), state));
        let written =
            text.and_then(|text| self.store(&self.cache_key(), &JsValue::from_str(&text)));
        match written {
            Some(written) => self.wait(&written, Step::Saved),
            None => self.saved(),
        }
    }

    /// One write of `save_cache` is done: the next, if changes came since.
    fn saved(&self) {
        if !self.save_again.get() || self.is_destroyed() {
            self.saving.set(false);
        } else {
            self.save_next();
        }
    }

    /// Records that the copy was confirmed current, at most every tenth of
    /// `cacheTtl` and once a minute (a number under its own key: the state
    /// is not written again): the age a later start reads is off by a tenth
    /// of the time to live at most.
    fn confirm_cache(&self) {
        let at = now();
        let (enabled, every) = {
            let core = self.core.borrow();
            let settings = core.settings();
            (
                settings.enable_cache,
                (settings.cache_ttl / 10.0).min(60_000.0),
            )
        };
        if !enabled || at - self.confirmation_written.get() < every {
            return;
        }
        self.confirmation_written.set(at);
        let key = confirmed_key(&self.cache_key());
        if let Some(written) = self.store(&key, &JsValue::from_f64(at)) {
            self.wait(&written, Step::Stored);
        }
    }

    /// Writes one entry of the cache: the write, whose outcome `stored`
    /// reports. None before whose copy this is is known (the key would not
    /// say), nor for a page kept apart ([`APART`]), nor once destroyed.
    fn store(&self, key: &str, value: &JsValue) -> Option<js_sys::Promise> {
        if self.identity.borrow().is_none() || self.apart() || self.is_destroyed() {
            return None;
        }
        Some(cache_put(&self.cache, key, value))
    }

    fn stored(&self, outcome: Outcome) {
        if let Some(Outcome::Failed(message)) = self.opened(outcome) {
            self.cache_error(crate::json::concat(&["cannot save the cache: ", &message]));
        }
    }

    /// `clearCache()`: removes this server's copy from IndexedDB.
    pub(crate) fn clear_cache(self: &Rc<Self>) -> js_sys::Promise {
        let promise = deferred();
        self.identify(Identified::Clear(Clearing {
            settle: promise.get(1).unchecked_into(),
            _driver: self.clone(),
        }));
        promise.get(0).unchecked_into()
    }

    /// Starts from a state the page already has (`bootstrap`).
    pub(crate) fn bootstrap(&self, state: SyncState) {
        self.core.borrow_mut().bootstrap(state);
        self.ready.set(true);
    }

    /// `initialize()`: resolves once data is there (cache or network).
    pub(crate) fn initialize(&self) -> js_sys::Promise {
        let promise = wait_for(&self.waiters, READY);
        // Nothing else waits then: those waiting before were settled when
        // it was destroyed, or when the data came.
        if self.core.borrow().is_destroyed() {
            settle_all(&self.waiters, READY, Some(DESTROYED));
            return promise;
        }
        if self.ready.get() {
            settle_all(&self.waiters, READY, None);
        }
        if self.started.replace(true) {
            return promise;
        }
        *self.page.borrow_mut() = PageWatch::new(&hook_for(&self.hook, PAGE));
        // Start from the cache, but never wait on IndexedDB for long: an open
        // that hangs (blocked, or a browser bug) must not stop the service.
        // The first of the two to come takes `starting`.
        self.starting.set(true);
        self.set_timer(CACHE_WAIT, CACHE_WAIT_MS);
        // Once `initialize()` has returned: whose copy this is first (the
        // cache entry and the tabs to join depend on it), then the cache.
        self.later_step(Step::Begin);
        promise
    }

    /// Starts the machine from the cache read (or from nothing).
    fn start(&self, cached: Option<Cached>) {
        if self.core.borrow().is_destroyed() {
            return;
        }
        let (fresh, expired) = match cached {
            Some((state, freshness, known)) => {
                self.core.borrow_mut().set_cached_known_at(known);
                match freshness {
                    Freshness::Fresh => (Some(state), None),
                    Freshness::Expired => (None, Some(state)),
                }
            }
            None => (None, None),
        };
        self.dispatch(if self.join_tabs() {
            Input::Follow {
                cached: fresh,
                expired,
            }
        } else if let Some(state) = expired {
            Input::StartExpired(state)
        } else {
            Input::Start { cached: fresh }
        });
        if !crate::page::visible() && self.tabs.borrow().is_none() {
            self.dispatch(Input::Visibility { visible: false });
        }
    }

    /// The cache was read (or there was none to read): the machine starts,
    /// unless the wait for it gave up first.
    fn begin(&self, cached: Option<Cached>) {
        self.clear_timer(CACHE_WAIT);
        if self.starting.replace(false) {
            self.start(cached);
        }
    }

    pub(crate) fn force_sync(&self) -> js_sys::Promise {
        let promise = wait_for(&self.waiters, SYNCED);
        self.dispatch(Input::ForceSync);
        promise
    }

    pub(crate) fn destroy(&self) {
        hook_destroyed(&self.hook);
        self.dispatch(Input::Destroy);
        self.tabs.borrow_mut().take();
        self.page.borrow_mut().take();
        self.socket.borrow_mut().take();
        cache_close(&self.cache);
        self.clear_timers();
        self.starting.set(false);
        self.listeners.clear();
        settle_all(&self.waiters, READY, Some(DESTROYED));
        settle_all(&self.waiters, SYNCED, Some(DESTROYED));
    }
}

impl Drop for Driver {
    /// A timer left pending, or a promise not settled yet, would call a
    /// handler dropped with this.
    fn drop(&mut self) {
        self.clear_timers();
        hook_off(&self.hook);
        cache_close(&self.cache);
    }
}

/// A request's answer as the machine's input.
fn read_answer(kind: RequestKind, what: &'static str, text: &str) -> Result<Input, SdkError> {
    match kind {
        RequestKind::State => from_text(text, what).map(Input::StateLoaded),
        RequestKind::Sync => {
            from_text::<WireResponse>(text, what).map(|response| match response.into_parts() {
                (response, None) => Input::Synced(response),
                (response, Some(kind)) => Input::SyncedUnknown { response, kind },
            })
        }
        RequestKind::Version => from_text(text, what).map(Input::VersionSeen),
    }
}

/// The token `tokenOf` settled with (or why there is none).
fn token_in(fulfilled: bool, value: &JsValue) -> Result<Option<String>, SdkError> {
    if fulfilled {
        Ok(value.as_string())
    } else {
        Err(failure_of("getToken()", 0.0, value))
    }
}
