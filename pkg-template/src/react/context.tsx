"use client";

import { createContext, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { createProviderSyncService } from "../index.js";
import type { ProviderSyncConfig, ProviderSyncEvent, ProviderSyncService } from "../index.js";

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
>;

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
  config?: ProviderSyncConfig;
  /** A service made elsewhere; the provider neither creates nor destroys it. */
  service?: ProviderSyncServiceLike;
  /** Called with every sync and connection event. */
  onSyncEvent?: (event: ProviderSyncEvent) => void;
  children?: ReactNode;
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
export function ProviderSyncProvider({ config, service: injected, onSyncEvent, children }: ProviderSyncProviderProps) {
  const [created, setCreated] = useState<ProviderSyncServiceLike | null>(null);
  const [loadError, setLoadError] = useState<Error | null>(null);
  const configKey = JSON.stringify(config ?? {});

  useEffect(() => {
    if (injected) return;
    let cancelled = false;
    let made: ProviderSyncServiceLike | null = null;
    createProviderSyncService(JSON.parse(configKey) as ProviderSyncConfig).then(
      (service) => {
        if (cancelled) {
          service.destroy();
          return;
        }
        made = service;
        setCreated(service);
      },
      (error: unknown) => {
        if (!cancelled) setLoadError(error instanceof Error ? error : new Error(String(error)));
      },
    );
    return () => {
      cancelled = true;
      made?.destroy();
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

/** The service itself (null while the wasm loads). */
export function useProviderSyncService(): ProviderSyncServiceLike | null {
  return useProviderSyncContext("useProviderSyncService").service;
}
