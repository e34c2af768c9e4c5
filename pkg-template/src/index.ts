// The package's main entry: the wasm client, plus `load()` to fetch and
// compile the wasm once. Bundlers (Vite, webpack 5, …) and plain
// `<script type="module">` pages both work: the wasm is found next to this
// file through `import.meta.url` (Vite's dev server: with the package in
// `optimizeDeps.exclude`, as the README says).
import init, {
  ProviderSyncService as Service,
  getProviderSyncService as getService,
  initSync,
  resetProviderSyncService as resetService,
  sunsetOutlook as outlook,
} from "./provider_sync_sdk.js";
import type { ProviderSyncConfig } from "./provider_sync_sdk.js";

export * from "./provider_sync_sdk.js";

/** Runs `call`; before the wasm is loaded that fails with the glue's own
 * "Cannot read properties of undefined (reading 'Sa')", which says
 * nothing: it is told what to do instead. */
function loadedFirst<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    if (!loaded && error instanceof TypeError) {
      throw new Error(
        "provider-sync: the wasm is not loaded yet: await load() (or call loadSync()) first, " +
          "or use createProviderSyncService()",
        { cause: error },
      );
    }
    throw error;
  }
}

// These named exports take precedence over the glue's in the `export *`
// above: the same class and functions, with `loadedFirst`'s error.
/** The client: `new ProviderSyncService(config)` once `load()` resolved. */
export const ProviderSyncService: typeof Service = new Proxy(Service, {
  construct: (target, args, newTarget) => loadedFirst(() => Reflect.construct(target, args, newTarget)),
});
export type ProviderSyncService = Service;
export const getProviderSyncService: typeof getService = (config) => {
  const service = loadedFirst(() => getService(config));
  // The shared service keeps the config it was made with: a later call
  // with another one gets that service, said once in the console. Its
  // plain values are compared, in any order; functions (`getToken`: an
  // inline one is a new function at each render) and objects (`bootstrap`,
  // a whole state, not written out at every call) are not.
  const text = config == null ? undefined : plainValues(config);
  if (service !== sharedService) {
    // Made by this call (the first, or after the last one was destroyed).
    sharedService = service;
    sharedConfig = text;
    toldOfConfig = false;
  } else if (text !== undefined && sharedConfig !== undefined && text !== sharedConfig && !toldOfConfig) {
    toldOfConfig = true;
    console.warn(
      "provider-sync: getProviderSyncService() was given another config than the shared service was made with " +
        `(${sharedConfig}); the shared service keeps its own: call resetProviderSyncService() first to make it again, ` +
        "or use new ProviderSyncService(config) for a service of its own",
    );
  }
  return service;
};
export const resetProviderSyncService: typeof resetService = () => {
  loadedFirst(resetService);
  sharedService = undefined;
};
// A config's plain values as text, in the order of their names.
function plainValues(config: object): string {
  return Object.entries(config)
    .filter(([, value]) => value !== undefined && typeof value !== "function" && (value === null || typeof value !== "object"))
    .map(([name, value]) => `${name}=${JSON.stringify(value)}`)
    .sort()
    .join(", ");
}
// The shared service as last given, its config's plain values (`undefined`:
// made without one), and whether a call with another was told of.
let sharedService: Service | undefined;
let sharedConfig: string | undefined;
let toldOfConfig = false;
export const sunsetOutlook: typeof outlook = (...args) => loadedFirst(() => outlook(...args));
// Both a value and a type each; these named exports take precedence over the
// type-only names of the same spelling in the `export *` above.
export { DeprecationStatus, ModelDeprecationStatus, ProviderStatus, SyncEventType, SyncStatus } from "./enums.js";

let loading: Promise<void> | undefined;
let loaded = false;
const whenLoaded = new Set<() => void>();

/** Whether the wasm is loaded (`load()` resolved, or `loadSync()` ran). */
export function isLoaded(): boolean {
  return loaded;
}

/** Calls `listener` once the wasm is loaded (soon, if it is already);
 * returns the unsubscribe. */
export function onLoaded(listener: () => void): () => void {
  if (loaded) {
    queueMicrotask(listener);
    return () => undefined;
  }
  whenLoaded.add(listener);
  return () => whenLoaded.delete(listener);
}

function markLoaded(): void {
  loaded = true;
  const listeners = [...whenLoaded];
  whenLoaded.clear();
  for (const listener of listeners) {
    // One listener's failure neither stops the others nor the load.
    try {
      listener();
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}

/**
 * Loads the wasm from its bytes at once, where they are at hand: a server
 * rendering React (`loadSync(readFileSync(require.resolve(
 * "provider-sync/provider_sync_sdk_bg.wasm")))`), a worker, a test.
 */
export function loadSync(wasm: BufferSource | WebAssembly.Module): void {
  if (loaded) return;
  initSync({ module: wasm });
  markLoaded();
  loading ??= Promise.resolve();
}

/**
 * Loads the wasm module; safe to call many times (it loads once). Pass a URL
 * or a `Response` to load the `.wasm` from somewhere else.
 */
export function load(wasm?: string | URL | Response | BufferSource): Promise<void> {
  loading ??= init(wasm === undefined ? undefined : { module_or_path: wasm }).then(
    () => markLoaded(),
    (error: unknown) => {
      // A failed download may succeed later: let the next call try again.
      loading = undefined;
      throw error;
    },
  );
  return loading;
}

/** Loads the wasm if needed, then creates a service. */
export async function createProviderSyncService(
  config?: ProviderSyncConfig,
): Promise<ProviderSyncService> {
  await load();
  return new ProviderSyncService(config);
}

/** Loads the wasm if needed, then returns the page's shared service. */
export async function loadProviderSyncService(
  config?: ProviderSyncConfig,
): Promise<ProviderSyncService> {
  await load();
  return getProviderSyncService(config);
}
