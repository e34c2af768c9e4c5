//! `ProviderSyncService`, the JavaScript class, and the singleton of the seed
//! (`getProviderSyncService`). Only argument checking and conversion live
//! here; the work is the driver's.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise};
use provider_sync_protocol::{ModelCapability, ModelFilter, ModelSpecification};
use tsify::Ts;
use wasm_bindgen::prelude::*;

use crate::config::{LogLevel, ProviderSyncConfig};
use crate::driver::Driver;
use crate::fields::{Fields, Of};
use crate::listeners::Kind;
use crate::transport::to_js;
use crate::view::{SunsetOutlook, effective_filter, model_fallback};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** What `onEvent` listeners receive: every applied `SyncEvent`, and the
 * connection events (`connected`, `disconnected`, `fallback_to_polling`,
 * `resynced`, `sync_error`, `cache_error`). */
export type ProviderSyncEvent = SyncEvent | ConnectionEvent;

/** Credentials, for apps behind a login (merged into the config's type). */
export interface ProviderSyncConfig {
  /** Sent with every request (an API key, a tenant, …). */
  headers?: Record<string, string> | undefined;
  /** Called before each request and connection: its token is sent as
   * `Authorization: Bearer <token>`, and on the WebSocket (which cannot
   * carry headers) as the `access_token` query parameter. Without it, a
   * bearer token in `headers.Authorization` goes there. */
  getToken?: (() => string | null | undefined | Promise<string | null | undefined>) | undefined;
  /** `fetch`'s credentials mode: `"omit"`, `"same-origin"` (the browser's
   * default) or `"include"` (cookies to another origin). */
  credentials?: "omit" | "same-origin" | "include" | undefined;
}

/** What `getModels()` takes: the fields of `useModels()`. Every field
 * narrows the result (`deprecated: true` with `excludeDeprecated`: none). Deprecated models are left out unless the config has
 * `includeDeprecated` or the query asks for them (`deprecated: true`). */
export interface ModelQuery {
  providerId?: string | undefined;
  capability?: ModelCapability | undefined;
  /** Leave out deprecated and sunset models. */
  excludeDeprecated?: boolean | undefined;
  /** true: only deprecated or sunset models; false: only active ones. */
  deprecated?: boolean | undefined;
  /** Text in the model's id or name, ignoring ASCII case. */
  search?: string | undefined;
  /** The snake_case name of `providerId`, still accepted. */
  provider_id?: string | undefined;
}
"#;

/// Keeps a copy of the provider/model catalog in step with the server.
///
/// ```ts
/// const sync = new ProviderSyncService({ apiBaseUrl: "/api/provider-sync" });
/// await sync.initialize();
/// const stop = sync.subscribe((state) => render(state.providers, state.models));
/// ```
#[wasm_bindgen]
#[derive(Debug, Clone)]
pub struct ProviderSyncService {
    driver: Rc<Driver>,
}

/// The config, and the first property of it that is no option.
fn config_of(
    config: Option<Ts<ProviderSyncConfig>>,
) -> Result<(ProviderSyncConfig, Option<String>), JsValue> {
    match config {
        None => Ok((ProviderSyncConfig::default(), None)),
        Some(ts) => ProviderSyncConfig::from_js(&ts.js_value()),
    }
}

/// The filter a query asks for; `None` for one whose fields contradict each
/// other (`deprecated: true` with `excludeDeprecated`), which matches no
/// model (every field narrows the result).
fn filter_of(filter: &JsValue) -> Result<Option<ModelFilter>, JsValue> {
    use ModelCapability::*;
    let invalid = |field: &str, message: &str| {
        JsValue::from(JsError::new(&crate::json::concat(&[
            "invalid model filter: ",
            field,
            " ",
            message,
        ])))
    };
    let fields = Fields::read(filter, Of::Filter)?;
    let deprecated = fields.boolean(0);
    let exclude = fields.boolean(1) == Some(true);
    let filter = ModelFilter {
        // Both names at once must agree (the second was ignored).
        provider_id: match (fields.string(2), fields.string(3)) {
            (Some(id), Some(other)) if id != other => {
                return Err(invalid(
                    "provider_id",
                    "names another provider than providerId",
                ));
            }
            (id, other) => id.or(other),
        },
        capability: fields
            .number(4)
            .map(|at| [Streaming, Vision, FunctionCalling, JsonMode, Reasoning][at as usize]),
        deprecated: deprecated.or(exclude.then_some(false)),
        search: fields.string(5),
    };
    match fields.unknown() {
        Some(name) => Err(invalid(
            &name,
            "is no filter field (providerId, capability, excludeDeprecated, deprecated, search)",
        )),
        None => Ok((!(exclude && deprecated == Some(true))).then_some(filter)),
    }
}

/// A model `getState()` leaves out, as JavaScript sees it.
fn present(model: &ModelSpecification) -> JsValue {
    let object = to_js(model);
    if let Some((field, shown)) = model_fallback(model) {
        crate::driver::set(&object, field, shown);
    }
    crate::driver::freeze_deep(&object);
    object
}

#[wasm_bindgen]
impl ProviderSyncService {
    /// Checks the config (throws an `Error` naming a bad field) and resolves
    /// its URLs against the page. Nothing is fetched until `initialize()`.
    #[wasm_bindgen(constructor)]
    pub fn new(config: Option<Ts<ProviderSyncConfig>>) -> Result<ProviderSyncService, JsValue> {
        let auth = crate::auth::Auth::read(&config.as_ref().map(Ts::js_value).unwrap_or_default())?;
        let (config, unknown) = config_of(config)?;
        let driver = Driver::new(config.settings()?, auth)?;
        if let Some(name) = unknown {
            driver.log(
                LogLevel::Warn,
                &crate::json::concat(&["ignored the config's \"", &name, "\": no such option"]),
            );
        }
        if let Some(state) = config.bootstrap {
            driver.bootstrap(state);
        }
        Ok(Self { driver })
    }

    /// Starts syncing. Resolves once data is available: at once from a fresh
    /// IndexedDB copy (status `stale` until confirmed), else after the first
    /// fetch. Rejects if that fetch fails with nothing cached (the service
    /// keeps retrying). Calling it again is harmless.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn initialize(&self) -> Promise {
        self.driver.initialize()
    }

    /// The REST base URL in use, resolved against the page (for requests the
    /// service does not make itself, such as the availability endpoints).
    // A string made by the glue from the driver's (not a `String` returned:
    // its pointer and length come back through a shim of their own).
    #[wasm_bindgen(getter, js_name = apiBaseUrl, unchecked_return_type = "string")]
    pub fn api_base_url(&self) -> JsValue {
        JsValue::from_str(self.driver.api_base_url())
    }

    /// GETs `path` under `apiBaseUrl` (`"/models/gpt-4o/availability"`) as
    /// the service's own requests go: with its `headers`, `getToken`'s token
    /// and `credentials` mode, within its request time limit; `signal`
    /// stops it. Resolves with the answer's JSON; rejects with an `Error`
    /// (with the HTTP status as `status` when the server refused). The
    /// TanStack Query hooks' availability requests go through it.
    #[wasm_bindgen(js_name = fetchJson, unchecked_return_type = "Promise<unknown>")]
    pub fn fetch_json(
        &self,
        // Not `&str`: the glue would turn a number into an empty path (a GET
        // of `apiBaseUrl` itself).
        #[wasm_bindgen(unchecked_param_type = "string")] path: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "AbortSignal | null")] signal: Option<
            JsValue,
        >,
    ) -> Promise {
        match path.as_string() {
            Some(path) => self
                .driver
                .get_json(&path, &signal.unwrap_or(JsValue::UNDEFINED)),
            None => Promise::reject(
                &js_sys::TypeError::new("fetchJson: the path must be a string").into(),
            ),
        }
    }

    /// Whether the state lists deprecated and sunset models (the config's
    /// `includeDeprecated`): two services of one server differ in their
    /// state by it (the TanStack Query hooks' state key names it).
    #[wasm_bindgen(getter, js_name = includeDeprecated)]
    pub fn include_deprecated(&self) -> bool {
        self.driver
            .with_core(|core| core.settings().include_deprecated)
    }

    /// The WebSocket URL in use, resolved against the page (a relative
    /// `wsUrl` or the default made from `apiBaseUrl`, with a ws/wss scheme).
    #[wasm_bindgen(getter, js_name = wsUrl, unchecked_return_type = "string")]
    pub fn ws_url(&self) -> JsValue {
        JsValue::from_str(self.driver.ws_url())
    }

    /// The current state; the same object until something changes.
    #[wasm_bindgen(js_name = getState, unchecked_return_type = "ProviderSyncClientState")]
    pub fn get_state(&self) -> JsValue {
        self.driver.snapshot()
    }

    /// The providers: the objects of `getState()` (same identity), in a new
    /// array.
    #[wasm_bindgen(js_name = getProviders, unchecked_return_type = "ProviderSyncInfo[]")]
    pub fn get_providers(&self) -> js_sys::Array {
        self.driver.snapshot_list(false).slice(0, u32::MAX)
    }

    /// Models matching `query` (the fields of `useModels()`; snake_case
    /// `provider_id` still accepted); deprecated ones only with
    /// `includeDeprecated` or `deprecated: true`. The objects are those of
    /// `getState()` where it has them.
    #[wasm_bindgen(js_name = getModels, unchecked_return_type = "ModelSpecification[]")]
    pub fn get_models(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "ModelQuery | null")] query: Option<JsValue>,
    ) -> Result<js_sys::Array, JsValue> {
        let query = match query.filter(|q| !q.is_undefined() && !q.is_null()) {
            Some(query) => match filter_of(&query)? {
                Some(filter) => Some(filter),
                None => return Ok(js_sys::Array::new()),
            },
            None => None,
        };
        let shown = self.driver.snapshot_list(true);
        Ok(self.driver.with_core(|core| {
            let include = core.settings().include_deprecated;
            let (base, query) = (
                effective_filter(None, include),
                effective_filter(query, include),
            );
            let found = js_sys::Array::new();
            let Some(state) = core.state() else {
                return found;
            };
            let mut at = 0;
            for model in &state.all_models {
                let in_state = base.matches(model);
                if query.matches(model) {
                    found.push(&if in_state {
                        shown.get(at)
                    } else {
                        self.driver
                            .left_out_object(&state.metadata.epoch, model, || present(model))
                    });
                }
                at += usize::from(in_state) as u32;
            }
            found
        }))
    }

    /// One provider, as `getState()` has it; `undefined` for an id that is
    /// not a string (none has one).
    #[wasm_bindgen(js_name = getProvider, unchecked_return_type = "ProviderSyncInfo | undefined")]
    pub fn get_provider(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> JsValue {
        let Some(id) = id.as_string() else {
            return JsValue::UNDEFINED;
        };
        self.driver
            .entity_object(false, &id)
            .unwrap_or(JsValue::UNDEFINED)
    }

    /// One model, deprecated ones too; as `getState()` has it if it does;
    /// `undefined` for an id that is not a string.
    #[wasm_bindgen(js_name = getModel, unchecked_return_type = "ModelSpecification | undefined")]
    pub fn get_model(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> JsValue {
        let Some(id) = id.as_string() else {
            return JsValue::UNDEFINED;
        };
        let id = id.as_str();
        self.driver.entity_object(true, id).unwrap_or_else(|| {
            self.driver.with_core(|core| {
                let Some((state, model)) = core.state().and_then(|s| Some((s, s.model(id)?)))
                else {
                    return JsValue::UNDEFINED;
                };
                self.driver
                    .left_out_object(&state.metadata.epoch, model, || present(model))
            })
        })
    }

    /// Syncs now; resolves when the copy is up to date, rejects if the
    /// server cannot be reached.
    #[wasm_bindgen(js_name = forceSync, unchecked_return_type = "Promise<void>")]
    pub fn force_sync(&self) -> Promise {
        self.driver.force_sync()
    }

    /// Calls `listener` with the new state after every change; returns the
    /// function that unsubscribes it.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(state: ProviderSyncClientState) => void")]
        listener: Function,
    ) -> Result<JsValue, JsError> {
        self.listen(Kind::State, listener)
    }

    /// Calls `listener` with every applied sync event and every connection
    /// event; returns the function that unsubscribes it.
    #[wasm_bindgen(js_name = onEvent, unchecked_return_type = "() => void")]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: ProviderSyncEvent) => void")]
        listener: Function,
    ) -> Result<JsValue, JsError> {
        self.listen(Kind::Event, listener)
    }

    /// A listener that is no function is refused here (an error the glue
    /// throws once the call has let go of the service), not at each later
    /// call ("r[0].call is not a function" on the console).
    fn listen(&self, kind: Kind, listener: Function) -> Result<JsValue, JsError> {
        if !listener.is_function() {
            return Err(JsError::new("a listener must be a function"));
        }
        Ok(self.driver.listeners.add(kind, &listener).into())
    }

    /// Removes this server's copy from IndexedDB.
    #[wasm_bindgen(js_name = clearCache, unchecked_return_type = "Promise<void>")]
    pub fn clear_cache(&self) -> Promise {
        self.driver.clear_cache()
    }

    /// Closes the socket, cancels every timer and drops every listener,
    /// once each `subscribe` listener has heard the last state (`isConnected`
    /// false, status `disconnected`; the copy kept). Safe to call more than
    /// once.
    pub fn destroy(&self) {
        self.driver.destroy();
    }
}

/// How soon a model stops working: `{ urgency, daysUntilSunset }` for its
/// `sunsetDate` (`YYYY-MM-DD`) on the UTC day of `now` (ms, default
/// `Date.now()`). The server's rule: `critical` within 7 days, `high` within
/// 30, `medium` within 90, `low` beyond or without a date, `sunset` once
/// passed; `none` for an active model. `deprecationStatus` defaults to
/// `deprecated`. A date that is not `YYYY-MM-DD` or a `now` that is not a
/// number of ms is an error (it read as "no date": `low`).
#[wasm_bindgen(js_name = sunsetOutlook, unchecked_return_type = "SunsetOutlook")]
pub fn sunset_outlook(
    #[wasm_bindgen(unchecked_param_type = "string | null")] sunset_date: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "DeprecationStatus | null")]
    deprecation_status: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "number | null")] now: JsValue,
) -> Result<JsValue, JsError> {
    // Taken as JavaScript values and read here (not as `Option<String>`,
    // which the glue would copy in without looking at its type): a value
    // of the wrong type is refused, `null` and `undefined` are none.
    let given = |value: &JsValue| !value.is_undefined() && !value.is_null();
    let (date, status) = (sunset_date.as_string(), deprecation_status.as_string());
    let now = if given(&now) {
        now.as_f64()
    } else {
        Some(js_sys::Date::now())
    };
    match now {
        Some(now)
            if now.is_finite()
                && date.is_some() == given(&sunset_date)
                && status.is_some() == given(&deprecation_status)
                && date
                    .as_deref()
                    .is_none_or(|date| provider_sync_protocol::day_number(date).is_some()) =>
        {
            Ok(to_js(&SunsetOutlook::of(
                status.as_deref().unwrap_or("deprecated"),
                date.as_deref(),
                now,
            )))
        }
        _ => Err(JsError::new(
            "sunsetOutlook: sunsetDate must be a YYYY-MM-DD date or null, deprecationStatus a string or null, now a number of ms",
        )),
    }
}

thread_local! {
    /// The shared service, and the one JavaScript object that stands for it.
    static SHARED: RefCell<Option<(ProviderSyncService, JsValue)>> = const { RefCell::new(None) };
}

/// The shared service of the page: created with `config` on the first call,
/// the same one afterwards (a later `config` is ignored: the package's
/// entry says so once in the console, its functions aside), a new one once it
/// was destroyed. The same object each time (`===`), not a new wrapper of
/// the same service.
#[wasm_bindgen(js_name = getProviderSyncService, unchecked_return_type = "ProviderSyncService")]
pub fn get_provider_sync_service(
    config: Option<Ts<ProviderSyncConfig>>,
) -> Result<JsValue, JsValue> {
    shared(config).map(|(_, object)| object)
}

/// `getProviderSyncService`'s service, as Rust holds it.
pub fn shared_provider_sync_service(
    config: Option<Ts<ProviderSyncConfig>>,
) -> Result<ProviderSyncService, JsValue> {
    shared(config).map(|(service, _)| service)
}

fn shared(
    config: Option<Ts<ProviderSyncConfig>>,
) -> Result<(ProviderSyncService, JsValue), JsValue> {
    SHARED.with(|shared| {
        let mut shared = shared.borrow_mut();
        let service = match shared.take() {
            Some(held) if !held.0.driver.is_destroyed() => {
                // The page may have let go of the object (`free()`, or
                // `using`'s dispose): then a new one for the same service.
                let freed = js_sys::Reflect::get(&held.1, &"__wbg_ptr".into())
                    .is_ok_and(|pointer| pointer.as_f64() == Some(0.0));
                if !freed {
                    *shared = Some(held.clone());
                    return Ok(held);
                }
                held.0
            }
            _ => ProviderSyncService::new(config)?,
        };
        let held = (service.clone(), JsValue::from(service));
        *shared = Some(held.clone());
        Ok(held)
    })
}

/// Destroys the shared service, so the next `getProviderSyncService` makes a
/// new one (tests, sign-out, a change of server).
#[wasm_bindgen(js_name = resetProviderSyncService)]
pub fn reset_provider_sync_service() {
    if let Some((service, _)) = SHARED.with(|shared| shared.borrow_mut().take()) {
        service.destroy();
    }
}
