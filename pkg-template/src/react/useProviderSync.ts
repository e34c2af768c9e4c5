"use client";

import { useCallback, useMemo } from "react";
import type {
  ModelSpecification,
  ProviderSyncInfo,
  SyncStatus,
  Transport,
} from "../index.js";
import { useProviderSyncContext } from "./context.js";
import { useSyncSnapshot } from "./store.js";

export interface ProviderSyncValue {
  status: SyncStatus;
  isConnected: boolean;
  /** No data yet (neither cached nor fetched). */
  isLoading: boolean;
  /** Why there is nothing to show (status `error`), or why the wasm could
   * not load; null while data is shown, even if not confirmed current. */
  error: string | null;
  /** Why the last attempt to reach the server failed, until one succeeds:
   * set also while cached data is shown (status `stale`). */
  lastError: string | null;
  providers: ProviderSyncInfo[];
  /** Deprecated models only with `includeDeprecated` in the config. */
  models: ModelSpecification[];
  activeProvider: ProviderSyncInfo | null;
  version: number;
  lastSyncTime: Date | null;
  transport: Transport;
  /** The data came from the IndexedDB cache and is not confirmed yet. */
  fromCache: boolean;
  /** Syncs now; resolves when up to date. */
  forceSync: () => Promise<void>;
}

/**
 * Everything at once: the catalog and where the sync stands. Re-renders on
 * every change; the selector hooks (`useProviders`, `useModels`, …)
 * re-render only when their part changes.
 */
export function useProviderSync(): ProviderSyncValue {
  const { service, loadError: failed } = useProviderSyncContext("useProviderSync");
  // A service given after a config that failed is the one that counts.
  const loadError = service ? null : failed;
  const state = useSyncSnapshot(service);
  const forceSync = useCallback(
    () => (service ? service.forceSync() : Promise.reject(new Error("provider-sync is still loading"))),
    [service],
  );
  return useMemo(
    () => ({
      status: loadError ? "error" : state.status,
      isConnected: state.isConnected,
      isLoading: state.epoch === null && !loadError && state.status !== "error",
      error: loadError ? loadError.message : state.error,
      lastError: loadError ? loadError.message : state.lastError,
      providers: state.providers,
      models: state.models,
      activeProvider: state.providers.find((p) => p.id === state.activeProviderId) ?? null,
      version: state.version,
      lastSyncTime: state.lastSyncTime === null ? null : new Date(state.lastSyncTime),
      transport: state.transport,
      fromCache: state.fromCache,
      forceSync,
    }),
    [state, loadError, forceSync],
  );
}
