"use client";

import { createContext, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { ProviderSyncService, createProviderSyncService, isLoaded } from "../index.js";
import type { ProviderSyncConfig, ProviderSyncEvent, SyncState } from "../index.js";

/** What the React layer needs of a service; a test may inject its own. */
export type ProviderSyncServiceLike = Pick<
  ProviderSyncService,
  | "initialize"
  | "getState"
  | "subscribe"
  | "onEvent"
  | "forceSync"
  | "destroy"
  | "apiBaseUrl"
  | "getModel"
  | "getModels"
  | "getProvider"
> &
  // Optional, so a stand-in for tests need not have them: the TanStack
  // hooks' availability requests go through `fetchJson` when it is there,
  // and their state key names `includeDeprecated`.
  Partial<Pick<ProviderSyncService, "fetchJson" | "includeDeprecated">>;

/** Services a provider let go of (destroyed): what they say from then on
 * (the last state a destroyed service announces) is no one's catalog. */
const retired = new WeakSet<ProviderSyncServiceLike>();

/** Whether a provider let go of this service. */
export function isRetired(service: ProviderSyncServiceLike): boolean {
  return retired.has(service);
}

function retire(service: ProviderSyncServiceLike | null): void {
  if (!service) return;
  retired.add(service);
  service.destroy();
}

interface ContextValue {
  /** Null while the wasm loads. */
  service: ProviderSyncServiceLike | null;
  /** The wasm or the config could not be loaded. */
  loadError: Error | null;
}

const ProviderSyncContext = createContext<ContextValue | null>(null);
ProviderSyncContext.displayName = "ProviderSyncContext";

export interface ProviderSyncProviderProps {
  /** Service options; a change of value (compared as JSON) makes a new service. */
  config?: ProviderSyncConfig | undefined;
  /** A service made elsewhere; the provider neither creates nor destroys it. */
  service?: ProviderSyncServiceLike | undefined;
  /** Called with every sync and connection event. */
  onSyncEvent?: ((event: ProviderSyncEvent) => void) | undefined;
  /**
   * The catalog the page already has, as the server's `GET /state` gave it
   * (fetched while rendering on the server). With the wasm loaded before
   * rendering (`loadSync(bytes)` on the server, `await load()` before
   * `hydrateRoot` in the browser), the first render already shows it, on
   * the server and when hydrating alike, and the service then catches up
   * from its version (no `GET /state`). Read once, when the service is made.
   */
  bootstrap?: SyncState | undefined;
  children?: ReactNode | undefined;
}

/** Services made while rendering on the server, one per state and config,
 * shared by the renders that show it. The oldest is let go as new states
 * come, and freed a minute later (a streaming render may still be reading
 * it): a service made there is never started, and would otherwise hold its
 * copy in wasm memory for good. */
const serverServices = new Map<string, ProviderSyncService>();
const SERVER_SERVICES = 4;
const FREE_AFTER_MS = 60_000;
/** Services let go and waiting to be freed. When more than FREE_WAITING
 * wait (states come fast: an admin script writing a version a request,
 * each page rendered with its own bootstrap), those let go at least
 * FREE_SOON_MS ago are freed at once rather than a minute later, so wasm
 * memory holds the copies of about ten seconds of states, not of a minute.
 * Never sooner: a streaming render (Suspense) may still be reading one. */
const freeWaiting: Array<{ service: ProviderSyncService; since: number; timer: ReturnType<typeof setTimeout> }> = [];
const FREE_WAITING = 8;
const FREE_SOON_MS = 10_000;

function freeLater(service: ProviderSyncService): void {
  const timer = setTimeout(() => {
    const at = freeWaiting.findIndex((waiting) => waiting.service === service);
    if (at >= 0) freeWaiting.splice(at, 1);
    service.free();
  }, FREE_AFTER_MS);
  (timer as unknown as { unref?: () => void }).unref?.(); // Node: the timer does not keep a server alive.
  const now = Date.now();
  freeWaiting.push({ service, since: now, timer });
  while (freeWaiting.length > FREE_WAITING && now - freeWaiting[0]!.since >= FREE_SOON_MS) {
    const oldest = freeWaiting.shift()!;
    clearTimeout(oldest.timer);
    oldest.service.free();
  }
}

/** `config` with a getToken that calls the latest one given (an inline
 * arrow is a new function each render). */
function withLatestToken(
  config: ProviderSyncConfig | undefined,
  latest: { current: ProviderSyncConfig | undefined },
): ProviderSyncConfig | undefined {
  if (!config?.getToken) return config;
  return { ...config, getToken: () => latest.current?.getToken?.() };
}

/** The service a render can have at once: with a bootstrap and the wasm
 * loaded. */
function immediate(
  config: ProviderSyncConfig | undefined,
  bootstrap: SyncState | undefined,
): { service: ProviderSyncService | null; error: Error | null } {
  if (!bootstrap || !isLoaded()) return { service: null, error: null };
  const onServer = typeof window === "undefined";
  const key = `${JSON.stringify(config ?? {})}|${bootstrap.metadata.epoch}|${bootstrap.metadata.version}`;
  const shared = onServer ? serverServices.get(key) : undefined;
  if (shared) return { service: shared, error: null };
  try {
    const service = new ProviderSyncService({ ...config, bootstrap });
    if (onServer) {
      serverServices.set(key, service);
      for (const [old, oldest] of serverServices) {
        if (serverServices.size <= SERVER_SERVICES) break;
        serverServices.delete(old);
        freeLater(oldest);
      }
    }
    return { service, error: null };
  } catch (error) {
    return { service: null, error: error instanceof Error ? error : new Error(String(error)) };
  }
}

/**
 * Makes a provider-sync service available to the hooks below it. Creates one
 * from `config` (and destroys it on unmount) unless `service` is given.
 *
 * ```tsx
 * <ProviderSyncProvider config={{ apiBaseUrl: "/api/provider-sync" }}>
 *   <App />
 * </ProviderSyncProvider>
 * ```
 */
export function ProviderSyncProvider({
  config,
  service: injected,
  onSyncEvent,
  bootstrap,
  children,
}: ProviderSyncProviderProps) {
  // The config as given (with its functions, such as getToken, which the
  // JSON key leaves out); a new service is made when the key changes.
  const latestConfig = useRef(config);
  latestConfig.current = config;
  const [first] = useState(() =>
    injected ? { service: null, error: null } : immediate(withLatestToken(config, latestConfig), bootstrap),
  );
  const [created, setCreated] = useState<ProviderSyncServiceLike | null>(first.service);
  const [loadError, setLoadError] = useState<Error | null>(first.error);
  // Whether there is a getToken counts too (JSON leaves functions out): a
  // config that gains one after a login makes a new service.
  const configKey = JSON.stringify({ ...config, getToken: Boolean(config?.getToken) });
  // The service made in the first render, for the first effect to adopt.
  const early = useRef<ProviderSyncServiceLike | null>(first.service);
  const bootstrapAtStart = useRef(bootstrap);
  const firstKey = useRef(configKey);

  useEffect(() => {
    if (injected) return;
    let cancelled = false;
    let made: ProviderSyncServiceLike | null = early.current;
    early.current = null;
    if (made) {
      setCreated(made);
      return () => {
        retire(made);
        setCreated(null);
      };
    }
    // The bootstrap is the catalog of the first config: a service for
    // another server or other credentials starts without it.
    const bootstrap = configKey === firstKey.current ? bootstrapAtStart.current : undefined;
    const options: ProviderSyncConfig = {
      ...withLatestToken(latestConfig.current, latestConfig),
      ...(bootstrap ? { bootstrap } : {}),
    };
    if (isLoaded()) {
      // Made at once (StrictMode's second run, a new config): no loading
      // state between two services.
      try {
        made = new ProviderSyncService(options);
        setCreated(made);
        setLoadError(null);
      } catch (error) {
        setLoadError(error instanceof Error ? error : new Error(String(error)));
      }
      return () => {
        retire(made);
        setCreated(null);
      };
    }
    createProviderSyncService(options).then(
      (service) => {
        if (cancelled) {
          retire(service);
          return;
        }
        made = service;
        setCreated(service);
        setLoadError(null);
      },
      (error: unknown) => {
        if (!cancelled) setLoadError(error instanceof Error ? error : new Error(String(error)));
      },
    );
    return () => {
      cancelled = true;
      retire(made);
      setCreated(null);
    };
  }, [injected, configKey]);

  const service = injected ?? created;

  useEffect(() => {
    // Failures show in the state (status "error"); the service keeps trying.
    service?.initialize().catch(() => undefined);
  }, [service]);

  const listener = useRef(onSyncEvent);
  listener.current = onSyncEvent;
  useEffect(() => {
    if (!service) return;
    return service.onEvent((event) => listener.current?.(event));
  }, [service]);

  // A new object only when a field changes: every consumer re-renders when
  // the context value's identity does.
  const value = useMemo(() => ({ service, loadError }), [service, loadError]);
  return <ProviderSyncContext.Provider value={value}>{children}</ProviderSyncContext.Provider>;
}

/** The context, or a clear error outside a `ProviderSyncProvider`. */
export function useProviderSyncContext(hook: string): ContextValue {
  const value = useContext(ProviderSyncContext);
  if (!value) {
    throw new Error(`${hook} must be used inside <ProviderSyncProvider>; wrap your app (or this component) in one.`);
  }
  return value;
}

/** The context, or null outside a `ProviderSyncProvider` (for components
 * that work either way). */
export function useOptionalProviderSyncContext(): ContextValue | null {
  return useContext(ProviderSyncContext);
}

/** The service itself (null while the wasm loads). */
export function useProviderSyncService(): ProviderSyncServiceLike | null {
  return useProviderSyncContext("useProviderSyncService").service;
}
