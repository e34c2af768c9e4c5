// What the SDK asks of the browser, in JavaScript: each part is called by
// the Rust module named in its heading. The glue imports this one file (a
// wasm-bindgen snippet; scripts/build-pkg.sh bundles it into the glue);
// handlers written here cost the wasm nothing. One file rather than one per
// part: the test runner's server fails now and then on several module
// requests at once.

const message = (e) =>
  e instanceof Error ? e.message : typeof e === "string" ? e : "an unknown JavaScript error";

// ---- URLs and the console (sdk/src/driver.rs)
// `url` resolved against the page (or a worker's location; elsewhere
// against http://localhost/), a socket's with a ws(s) scheme where it was
// http(s). Throws an Error naming the config's `field` if it is not an
// http(s) URL (a socket's: ws(s)), or has a fragment, or (not a socket's) a
// query: paths are added to it (the socket's query is added to its own),
// and loses its trailing slashes.
export function resolveUrl(url, socket, field) {
  let resolved;
  try {
    resolved = new URL(url, globalThis.location?.href ?? "http://localhost/");
  } catch {}
  if (resolved && socket && /^https?:$/.test(resolved.protocol)) {
    resolved.protocol = resolved.protocol === "https:" ? "wss:" : "ws:";
  }
  // Credentials in the URL: fetch refuses them at every request (and each
  // error would show the password), so the config refuses them at once.
  if (
    resolved &&
    (socket ? /^wss?:$/ : /^https?:$/).test(resolved.protocol) &&
    !(socket ? /#/ : /[?#]/).test(resolved.href) &&
    !resolved.username &&
    !resolved.password
  ) {
    // The API's base without its trailing slashes (paths are added to it).
    return socket ? resolved.href : resolved.href.replace(/\/+$/, "");
  }
  throw new Error(
    `${FIELDS[0][0]}${field} "${url}" is not ${
      socket ? "a ws(s) or http(s) URL without a fragment" : "an http(s) URL without a query, fragment"
    } or credentials`,
  );
}
// The console, by level: 1 error, 2 warn, 3 info, 4 debug (as `LogLevel`).
export const log = (level, text) =>
  console[["error", "warn", "info", "debug"][level - 1] ?? "debug"](text);

// ---- the config's options, a model filter's fields, a leading tab's status (sdk/src/fields.rs)
// Each list: what its errors start with, then its fields, name and kind in
// turn ("s" a string, "u" a URL: a string, not set when blank, "e" one
// that may not be blank, "b" a boolean, "n" a number, "c" a whole number from
// 0 to 2^32 - 1, "v" any value, checked by the SDK, "l" one of the names of
// the next choice, given as its position), the other properties it knows,
// whether null is a value (of the wrong type) rather than "not set", and
// its choices. The order of the fields is the SDK's (sdk/src/fields.rs).
const choice = (names) => [
  names,
  `must be ${names.map((name) => `"${name}"`).join(", ").replace(/, ([^,]*)$/, " or $1")}`,
];
const FIELDS = [
  // 0: the config; the credentials' options are read by `credentialsOf`.
  [
    "invalid ProviderSyncService config: ",
    "apiBaseUrl e wsUrl u enableWebSocket b pollingInterval n maxReconnectAttempts c reconnectBaseDelay n reconnectMaxDelay n heartbeatInterval n syncTimeout n includeDeprecated b enableCache b cacheTtl n logLevel l bootstrap v shareConnection b",
    "headers getToken credentials",
    false,
    choice(["silent", "error", "warn", "info", "debug"]),
  ],
  // 1: a model filter. A null field is refused: `{ providerId:
  // selectedOrNull }` would otherwise match every model.
  [
    "invalid model filter: ",
    "deprecated b excludeDeprecated b providerId s provider_id s capability l search s",
    "",
    true,
    choice(["streaming", "vision", "function_calling", "json_mode", "reasoning"]),
  ],
  // 2: the `getState()` fields a leading tab sends.
  [
    "",
    "status l transport l isConnected b lastError s lastSyncTime n fromCache b",
    "",
    false,
    choice(["synced", "syncing", "stale", "error", "disconnected"]),
    choice(["websocket", "polling", "offline"]),
  ],
];
const TYPES = { s: "string", u: "string", e: "string", b: "boolean", n: "number" };
// Blank: only what Rust's `char::is_whitespace` takes for white space.
const BLANK = /^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;
// The fields of `value` as list `which` of `FIELDS` has them (undefined where
// not set, a choice as its position), then the first own property that is
// none of them nor known (a misspelt option is warned of, a misspelt filter
// field refused, rather than ignored). A property whose getter throws is
// not set. Throws an Error naming the first field of the wrong type.
export function fieldsOf(value, which) {
  const [prefix, spec, known, strict, ...choices] = FIELDS[which];
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${prefix}the value must be a plain object`);
  }
  const words = spec.split(" "),
    names = words.filter((_, at) => at % 2 === 0);
  let chosen = 0;
  const values = names.map((name, at) => {
    const kind = words[2 * at + 1],
      [list, must = `must be ${kind === "c" ? "a whole number, 0 or more" : `a ${TYPES[kind]}`}`] =
        kind === "l" ? choices[chosen++] : [];
    let given;
    try {
      given = value[name];
    } catch {}
    if (given === undefined || (given === null && !strict)) return undefined;
    const found = list ? list.indexOf(given) : 0;
    if (
      found < 0 ||
      (kind === "c"
        ? !(Number.isInteger(given) && given >= 0 && given <= 4294967295)
        : !list && kind !== "v" && typeof given !== TYPES[kind])
    ) {
      throw new Error(`${prefix}${name} ${must}`);
    }
    if ((kind === "u" || kind === "e") && BLANK.test(given)) {
      if (kind === "u") return undefined;
      throw new Error(`${prefix}${name} must not be empty`);
    }
    return list ? found : given;
  });
  const all = new Set([...names, ...(known ? known.split(" ") : [])]);
  let unknown;
  try {
    unknown = Object.keys(value).find((key) => !all.has(key));
  } catch {}
  values.push(unknown);
  return values;
}

// ---- listeners (sdk/src/listeners.rs)
// A service's `subscribe` (0) and `onEvent` (1) listeners. Each
// subscription is its own entry (the same function twice is called twice);
// a round goes over a copy, skipping entries taken out during it.
export const listenersNew = () => [new Set(), new Set()];
export function listen(lists, kind, listener) {
  const entry = [listener];
  lists[kind].add(entry);
  return () => void lists[kind].delete(entry);
}
export const listening = (lists, kind) => lists[kind].size > 0;
export function callListeners(lists, kind, value) {
  for (const entry of [...lists[kind]]) {
    if (!lists[kind].has(entry)) continue;
    try {
      entry[0].call(null, value);
    } catch (error) {
      console.error("provider-sync: a listener threw; the others still run:", error);
    }
  }
}
export const listenersClear = (lists) => lists.forEach((list) => list.clear());

// ---- promises handed to the page (sdk/src/driver.rs)
// Each pending promise is kept as the function that settles it: with no
// message it resolves, with one it rejects with an Error of it. Waiting
// `initialize()` (0) and `forceSync()` (1) promises are settled together.
const pending = (list) =>
  new Promise((resolve, reject) =>
    list.push((message) => (message === undefined ? resolve() : reject(new Error(message)))),
  );
export const waitersNew = () => [[], []];
export const waitFor = (waiters, kind) => pending(waiters[kind]);
export const settleAll = (waiters, kind, message) =>
  waiters[kind].splice(0).forEach((settle) => settle(message));
// One promise and the function that settles it: [promise, settle].
export function deferred() {
  const list = [];
  return [pending(list), list[0]];
}

// ---- getState()'s objects (sdk/src/driver.rs)
// The frozen objects of the entities of one of getState()'s lists (or of
// the models it leaves out), by id, and the list made last (the page gets
// copies of it). The driver decides which entities a list holds, in what
// order, and which changed; an entity keeps its object while its revision
// (and a provider's `model_ids`) is what it was.
export const objectsNew = () => ({ byId: new Map(), list: [], plan: null });
// Frozen through: an entity's nested objects and lists (`pricing`,
// `health`, `capabilities`, `model_ids`) too, so that no page can change
// what every other reader of the state is handed. What is frozen already
// is left as it is.
export function freezeDeep(value) {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key in value) freezeDeep(value[key]);
  }
  return value;
}
export const objectsEmpty = (o) => o.byId.size === 0;
export const objectsForget = (o, id) => void o.byId.delete(id);
export const objectsLists = (o, id, listed) => !!o.byId.get(id)?.model_ids?.includes(listed);
export const objectsGet = (o, id) => o.byId.get(id);
export const objectsList = (o) => o.list;
export function objectsKept(o, id, revision) {
  const kept = o.byId.get(id);
  return kept?.revision === revision ? kept : undefined;
}
export const objectsKeep = (o, id, object) => void o.byId.set(id, object);
// Whether id `a` sorts before `b` as the driver sorts them (by code point,
// as Rust compares strings; UTF-16 units sort surrogates below U+E000).
function sortsBefore(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === a.length || i === b.length) return a.length < b.length;
  const rank = (unit) => (unit >= 0xd800 && unit < 0xe000 ? unit + 0x2000 : unit >= 0xe000 ? unit - 0x800 : unit);
  return rank(a.charCodeAt(i)) < rank(b.charCodeAt(i));
}
// Where `id` is or goes in the list (kept in the driver's order).
function placeOf(list, id) {
  let [low, high] = [0, list.length];
  while (low < high) {
    const mid = (low + high) >> 1;
    if (sortsBefore(list[mid].id, id)) low = mid + 1;
    else high = mid;
  }
  return low;
}
// `entries`: JSON text of `[id, revision, listed ids or null]` for each
// shown entity to place, `[id]` for one not shown, in the driver's order;
// or none when none is kept (every entity, in order, needs its object). A
// walk makes the list anew from them; otherwise they are the entities named
// since the last list, each put in its place or taken out. Answers which
// entries need a new object, for `objectsFill`.
export function objectsPlan(o, walk, entries) {
  const list = entries == null ? null : JSON.parse(entries);
  const need = [];
  list?.forEach(([id, revision, listed], at) => {
    const kept = o.byId.get(id);
    const was = kept?.model_ids;
    const same =
      kept?.revision === revision &&
      (!listed || (was.length === listed.length && listed.every((x, i) => x === was[i])));
    if (revision !== undefined && !same) need.push(at);
  });
  o.plan = [walk, list, need];
  return Uint32Array.from(need);
}
// `made`: JSON text of the new objects, in the order `objectsPlan` asked
// for them; `fallbacks`: [index, field, text] in turn, a value shown in
// place of one this release does not know. Answers a frozen copy of the
// list.
export function objectsFill(o, made, fallbacks) {
  const [walk, list, need] = o.plan;
  o.plan = null;
  const objects = JSON.parse(made);
  for (let i = 0; i < fallbacks.length; i += 3) objects[fallbacks[i]][fallbacks[i + 1]] = fallbacks[i + 2];
  objects.forEach(freezeDeep);
  const fresh = new Map(need.map((at, i) => [at, objects[i]]));
  if (list === null) {
    o.list = objects;
  } else if (walk) {
    o.list = list.map(([id], at) => fresh.get(at) ?? o.byId.get(id));
  } else {
    // The list stays in order as each is put in or taken out.
    list.forEach(([id, revision], at) => {
      const place = placeOf(o.list, id);
      const here = o.list[place]?.id === id;
      if (revision === undefined) {
        if (here) o.list.splice(place, 1);
        o.byId.delete(id);
        return;
      }
      const object = fresh.get(at) ?? o.byId.get(id);
      if (here) o.list[place] = object;
      else o.list.splice(place, 0, object);
      o.byId.set(id, object);
    });
  }
  if (walk) {
    o.byId = new Map();
    for (const object of o.list) o.byId.set(object.id, object);
  } else if (list?.length === 0 && o.shown) {
    // Nothing changed in it (a new snapshot for another field, such as a
    // leading tab's sync time): the same array, so that what compares it
    // does not take it for new.
    return o.shown;
  }
  return (o.shown = Object.freeze(o.list.slice()));
}

// ---- answers and events (sdk/src/driver.rs)
// The driver has one handler for all it hears, `on(from, what, value)`,
// held by a hook it turns off when it goes (what comes later finds no one).
// `from`: 0 a promise handed to `track` fulfilled and 1 rejected (`what` is
// the number it was handed with), 2 a timer, 3 the page, 4 the WebSocket,
// 5 the tabs (`what` and `value` as those parts below say).
// A destroyed service's hook is marked (`hookDestroyed`): what it then asks
// for (a token) is refused, what it waits on still comes.
export const hookNew = (on) => ({ on, destroyed: false });
export const hookOff = (hook) => void (hook.on = null);
export const hookDestroyed = (hook) => void (hook.destroyed = true);
// The function a part below calls, `(what, value)`, for the hook as `from`.
export const hookFor = (hook, from) => (what, value) => hook.on?.(from, what, value);
export const track = (hook, which, promise) =>
  void Promise.resolve(promise).then(
    (value) => hook.on?.(0, which, value),
    (error) => hook.on?.(1, which, error),
  );
// `which` fulfilled once what runs now is done (a microtask).
export const soon = (hook, which) => queueMicrotask(() => hook.on?.(0, which, undefined));

// ---- the IndexedDB cache (sdk/src/driver.rs)
// One database, one object store, records keyed by source URL. Each service
// has its own connection in a holder (`cacheNew`), opened when first used
// and again after another tab's upgrade (or deletion) of the database or the
// browser closed it: this connection is closed then, so it never blocks
// that. Each function answers [outcome, ...]: 0 no IndexedDB here (some
// private modes), 1 it would not open (the message), 2 the request failed
// (the message), 3 done (with what was read).
const DATABASE = "provider-sync";
const STORE = "states";

const settle = (request) =>
  new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => {
      const error = request.error;
      reject(error ? `${error.name}: ${error.message}` : "IndexedDB request failed");
    };
  });

// `opening`: the open under way, which every request waits for (two opens
// at once would leave one connection open for good, blocking other tabs'
// upgrades); `gone`: the service went (a connection opened after that is
// closed at once).
export const cacheNew = () => ({ db: null, opening: null, gone: false });

function closeDb(holder) {
  const db = holder.db;
  holder.db = null;
  if (db) {
    db.onversionchange = db.onclose = null;
    db.close();
  }
}

export function cacheClose(holder) {
  holder.gone = true;
  closeDb(holder);
}

// The holder's database, opened if need be; null where there is none (or
// the service went).
function opened(holder) {
  if (holder.db || holder.gone) return Promise.resolve(holder.db);
  holder.opening ??= open(holder).finally(() => (holder.opening = null));
  return holder.opening;
}

// No version: whatever version the database has (another release or tab
// may have upgraded it); a new one is created at 1.
async function open(holder) {
  let factory;
  try {
    factory = globalThis.window?.indexedDB;
  } catch {
    return null;
  }
  if (!factory) return null;
  const request = factory.open(DATABASE);
  request.onupgradeneeded = () => {
    const db = request.result;
    if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE);
  };
  const db = await settle(request);
  if (holder.gone) {
    db.close();
    return null;
  }
  db.onversionchange = db.onclose = () => closeDb(holder);
  holder.db = db;
  return db;
}

// Runs `use(database)`: [0] without one, [1, message] when it would not
// open, [2, message] when `use` failed, else [3, what it gave].
// Once the service went, as without a database: its connection was closed
// under the request, which is not a failure to report.
async function withCache(holder, use) {
  let db;
  try {
    db = await opened(holder);
  } catch (e) {
    return holder.gone ? [0] : [1, message(e)];
  }
  if (!db || holder.gone) return [0];
  try {
    return [3, await use((mode) => db.transaction(STORE, mode).objectStore(STORE))];
  } catch (e) {
    return holder.gone ? [0] : [2, message(e)];
  }
}

// The record under `key` (undefined if none), and the time under
// `confirmedKey` (undefined if none or unreadable).
// Both read in one transaction, asked at once.
export const cacheLoad = (holder, key, confirmedKey) =>
  withCache(holder, (store) => {
    const read = store("readonly");
    return Promise.all([settle(read.get(key)), settle(read.get(confirmedKey)).catch(() => undefined)]);
  });
export const cachePut = (holder, key, value) => withCache(holder, (store) => settle(store("readwrite").put(value, key)));
// Deletes `first`, then `second` if given.
export const cacheDelete = (holder, first, second) =>
  withCache(holder, async (store) => {
    await settle(store("readwrite").delete(first));
    if (second !== undefined) await settle(store("readwrite").delete(second));
  });

// ---- credentials (sdk/src/auth.rs)
// The config's `headers` (an object of strings), `getToken` (a function)
// and `credentials` (`fetch`'s mode), checked in that order: an object of
// them; throws an Error naming the first that is wrong.
const MODES = ["omit", "same-origin", "include"];
export function credentialsOf(config) {
  // A property whose getter throws counts as not set.
  const given = (name) => {
    try {
      return typeof config === "object" && config !== null ? config[name] ?? undefined : undefined;
    } catch {
      return undefined;
    }
  };
  const headers = given("headers");
  let entries = null;
  try {
    entries =
      headers === undefined ? [] : headers instanceof Object && !Array.isArray(headers) ? Object.entries(headers) : null;
    // Names and values `fetch` would refuse at the first request.
    if (entries?.every(([, value]) => typeof value === "string") && typeof Headers === "function") new Headers(entries);
  } catch {
    entries = null;
  }
  const refuse = (field, must) => {
    throw new Error(`${FIELDS[0][0]}${field} ${must}`);
  };
  if (!entries || entries.some(([, value]) => typeof value !== "string")) {
    refuse("headers", "must be an object of header names and string values");
  }
  const getToken = given("getToken");
  if (getToken !== undefined && typeof getToken !== "function") refuse("getToken", "must be a function");
  const mode = given("credentials");
  if (mode !== undefined && !MODES.includes(mode)) refuse("credentials", choice(MODES)[1]);
  return { headers: entries, getToken, mode };
}
// What whose copy this is comes from (sdk/src/auth.rs digests it): each
// header's name (ASCII lower case) and value, then the token's, a line
// each; "" without either.
// "!" (kept apart) for a page with getToken that has no token yet: whose
// copy it will be cannot be said (a page signed out now may sign in).
export const identityText = (creds, token) =>
  creds.getToken !== undefined && !token ? "!" : [...creds.headers, ...(token === undefined ? [] : [["authorization", `Bearer ${token}`]])]
    .map(([name, value]) => `${name.replace(/[A-Z]+/g, (upper) => upper.toLowerCase())}\n${value}\n`)
    .join("");
// The token for the next request or connection, asked once what runs now
// is done: getToken()'s (awaited if it is a promise or any thenable, for at
// most `ms`), else a bearer token in the configured Authorization;
// undefined for none. Rejects with [4, message] when getToken fails (or
// gives neither a string nor null), [5] when the service was destroyed (or
// let go of) before the token was asked or while it was: a request is never
// sent without the token the app meant to give, nor for a service gone.
const gone = (hook) => hook.destroyed || !hook.on;
export async function tokenOf(hook, creds, ms) {
  await null;
  if (gone(hook)) throw [5];
  if (!creds.getToken) {
    const [, value] = creds.headers.find(([name, value]) => /^authorization$/i.test(name) && /^bearer /i.test(value)) ?? [];
    return value?.slice(7);
  }
  let token;
  try {
    token = await within(creds.getToken.call(null), ms);
  } catch (e) {
    throw [4, message(e)];
  }
  if (gone(hook)) throw [5];
  if (typeof token === "string") return token || undefined;
  if (token == null) return undefined;
  throw [4, "it gave neither a string nor null"];
}

// ---- fetch (sdk/src/transport/http.rs)
// `fetch` with a deadline (an AbortController fired by a timer), for
// sdk/src/transport/http.rs, with the credentials (`credentialsOf`) and
// the token (`tokenOf`) first. Resolves with the answer's text; rejects
// with [kind, detail, retryAfterMs]: kind 0 network (detail: the message),
// 1 timeout, 2 HTTP status (detail: the status; `Retry-After` in ms, if
// any, on 429/503 and the like), 3 the body could not be read (detail: the
// message), or as `tokenOf` (4, 5).

// `Retry-After` in ms: delta-seconds or an HTTP date.
function retryAfter(response) {
  const value = response.headers.get("retry-after");
  if (value === null) return undefined;
  const seconds = Number(value.trim());
  if (!Number.isNaN(seconds)) return Math.max(seconds, 0) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(at - Date.now(), 0);
}

// The token, if there is one, goes in `Authorization` (over a configured
// one). `fresh`: past the HTTP cache, whose copy of the last answer was
// refused (a conditional request would bring it back as a 304).
export async function fetchText(hook, creds, method, url, body, timeoutMs, fresh, signal) {
  const token = await tokenOf(hook, creds, timeoutMs);
  if (typeof window === "undefined") throw [0, "no window: the SDK runs in a browser page"];
  const controller = new AbortController();
  // A page's signal (of any realm) stops it too; its listener goes with the
  // request.
  const stop = () => controller.abort();
  const watched = typeof signal?.addEventListener === "function";
  if (watched) {
    if (signal.aborted) throw [0, "aborted"];
    signal.addEventListener("abort", stop, { once: true });
  }
  let request;
  try {
    const init = { method, signal: controller.signal };
    if (fresh) init.cache = "reload";
    if (creds.mode) init.credentials = creds.mode;
    if (body !== undefined || creds.headers.length > 0 || token !== undefined) {
      const sent = new Headers();
      for (const [name, value] of creds.headers) sent.set(name, value);
      if (token !== undefined) sent.set("authorization", `Bearer ${token}`);
      if (body !== undefined) {
        init.body = body;
        sent.set("content-type", "application/json");
      }
      init.headers = sent;
    }
    request = new Request(url, init);
  } catch (e) {
    throw [0, message(e)];
  }
  const deadline = setTimeout(() => controller.abort(), longest(timeoutMs));
  try {
    let response;
    try {
      response = await fetch(request);
    } catch (e) {
      throw e?.name === "AbortError" ? [1] : [0, message(e)];
    }
    if (!response.ok) throw [2, response.status, retryAfter(response)];
    try {
      return await response.text();
    } catch (e) {
      throw [3, message(e)];
    }
  } finally {
    clearTimeout(deadline);
    if (watched) signal.removeEventListener("abort", stop);
  }
}

// `fetchJson(path, signal)` for the page (sdk/src/service.rs): a GET as the
// service's own requests go; the answer's JSON, or an Error that says what
// failed (`status`: the HTTP status, when the server refused).
export async function getJson(hook, creds, base, path, timeoutMs, signal) {
  // Under apiBaseUrl only: no `.` or `..` segment in the path (`%2e` too,
  // and tabs and line breaks, which URLs drop, as URLs read them).
  const route = path.split(/[?#]/)[0].replace(/[\t\n\r]/g, "");
  if (route.split(/[/\\]/).some((s) => /^(\.|%2e){1,2}$/i.test(s))) {
    throw new TypeError(`fetchJson: ${path} is not a path under apiBaseUrl`);
  }
  const url = base + (path.startsWith("/") ? "" : "/") + path;
  let text;
  try {
    text = await fetchText(hook, creds, "GET", url, undefined, timeoutMs, false, signal);
  } catch (failure) {
    // Stopped by the page: its reason (an AbortError), as fetch rejects.
    if (signal?.aborted) throw signal.reason ?? new DOMException("aborted", "AbortError");
    const [kind, detail] = Array.isArray(failure) ? failure : [0, message(failure)];
    const error = new Error(
      kind === 1 ? `GET ${url}: no answer in ${timeoutMs} ms`
      : kind === 2 ? `GET ${url}: HTTP ${detail}`
      : kind === 4 ? `getToken() failed: ${detail}`
      : kind === 5 ? "the service was destroyed"
      : `GET ${url} failed: ${detail}`,
    );
    if (kind === 2) error.status = detail;
    throw error;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`GET ${url}: the answer is not JSON`);
  }
}

// ---- the WebSocket (sdk/src/transport/websocket.rs)
// The WebSocket, for sdk/src/transport/websocket.rs: `on(kind, text)` hears
// 0 opened, 1 a text frame (the frame), 2 closed (the reason, as a
// message). Closing it (`socketClose`) removes the handlers first.
export function socketOpen(url, on) {
  const ws = new WebSocket(url);
  ws.onopen = () => on(0, "");
  // A binary frame is none the SDK can read: it is passed on as empty text
  // (unreadable, so the server is asked what it may have said).
  ws.onmessage = (event) => on(1, typeof event.data === "string" ? event.data : "");
  ws.onclose = (event) =>
    on(2, `closed with code ${event.code}${event.reason ? `: ${event.reason}` : ""}`);
  return ws;
}

export const socketSend = (ws, text) => {
  // A send on a socket that is closing is dropped; its close event follows.
  try {
    ws.send(text);
  } catch {}
};

export function socketClose(ws) {
  ws.onopen = ws.onmessage = ws.onclose = null;
  try {
    ws.close(1000, "client closed");
  } catch {}
}

export const socketUrl = (ws) => ws.url;

// ---- the page (sdk/src/page.rs)
// The page's visibility, the browser's online state and the page going into
// (and out of) the back/forward cache, for sdk/src/page.rs: `on(what,
// flag)` hears 0 a visibility change (whether visible), 1 back online
// (true) or gone offline (false),
// 2 `pagehide` (false) and a `pageshow` that follows one (true: back from
// the back/forward cache). Answers the function that stops watching, or
// null where there is no page.
export const pageVisible = () => typeof document === "undefined" || !document.hidden;

export function watchPage(on) {
  if (typeof window === "undefined" || typeof document === "undefined") return null;
  let hidden = false;
  const handlers = [
    [document, "visibilitychange", () => on(0, pageVisible())],
    [window, "online", () => on(1, true)],
    [window, "offline", () => on(1, false)],
    [window, "pagehide", () => ((hidden = true), on(2, false))],
    [window, "pageshow", () => hidden && ((hidden = false), on(2, true))],
  ];
  for (const [target, name, handler] of handlers) target.addEventListener(name, handler);
  return () => {
    for (const [target, name, handler] of handlers) target.removeEventListener(name, handler);
  };
}

// ---- the tabs sharing a connection (sdk/src/tabs.rs)
// The tabs of one origin that share a connection, for sdk/src/tabs.rs: a
// BroadcastChannel for their messages and a Web Lock to elect the leader.
// `on(what, text)` hears 0 a message from another tab (its text), 1 this
// tab got the lock (it leads until it leaves) and 2 the lock was refused
// (it is to connect by itself). Answers the tab's handle, or
// null where the browser lacks Web Locks or BroadcastChannel (each tab then
// connects by itself).
export function joinTabs(name, on) {
  const locks = globalThis.navigator?.locks;
  if (typeof locks?.request !== "function" || typeof BroadcastChannel === "undefined") return null;
  let channel;
  try {
    // Throws where storage is refused (Firefox's strict cookie settings in
    // an embedded frame): each tab then connects by itself.
    channel = new BroadcastChannel(name);
  } catch {
    return null;
  }
  const abort = new AbortController();
  // Resolves the promise the lock is held by: releases it.
  let release;
  const tab = { channel, abort, alive: true, leading: false, release: () => release?.() };
  channel.onmessage = (event) => {
    if (typeof event.data === "string") on(0, event.data);
  };
  // The lock manager may call this after the tab left: it is then handed
  // back at once.
  let granted;
  try {
    granted = locks.request(name, { signal: abort.signal }, () => {
      if (!tab.alive) return undefined;
      const held = new Promise((resolve) => (release = resolve));
      tab.leading = true;
      on(1, "");
      return held;
    });
  } catch {
    channel.close();
    return null;
  }
  // Withdrawn requests reject (AbortError): expected. A request refused
  // otherwise while the tab is still there (an opaque origin, say) would
  // leave it following no one: it connects by itself instead.
  granted.catch(() => {
    if (tab.alive && !tab.leading) on(2, "");
  });
  return tab;
}

export const tabsLeading = (tab) => tab.leading;
export const tabsSend = (tab, text) => {
  try {
    tab.channel.postMessage(text);
  } catch {}
};

// Leaves: closes the channel and releases the lock (or gives up waiting for
// it: a request whose callback has not run yet is let go when the page
// goes; until then its callback finds the tab gone).
export function leaveTabs(tab) {
  tab.channel.onmessage = null;
  tab.channel.close();
  tab.alive = false;
  tab.abort.abort();
  tab.leading = false;
  tab.release();
}


// ---- timers (sdk/src/driver.rs; `within` for `tokenOf`)
// `on(which)` after `ms` (at most setTimeout's own limit); the handle
// cancels it.
const longest = (ms) => Math.min(Math.max(ms, 0), 2 ** 31 - 1);
export const timerSet = (on, ms, which) => setTimeout(on, longest(ms), which);
export const timerClear = (handle) => clearTimeout(handle);
// `value` (a promise or any thenable, or a value) if it settles within `ms`,
// else a rejection: "no answer in time".
const within = (value, ms) =>
  Promise.race([value, new Promise((_, reject) => setTimeout(reject, longest(ms), "no answer in time"))]);
