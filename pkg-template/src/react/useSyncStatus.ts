"use client";

import { useMemo } from "react";
import type { SyncStatus, Transport } from "../index.js";
import { useProviderSyncContext } from "./context.js";
import { useSelected } from "./store.js";

export interface SyncStatusValue {
  status: SyncStatus;
  /** `status === "synced"`: the copy is confirmed current. */
  isSynced: boolean;
  /** `status === "syncing"`: the first answer is on its way. */
  isSyncing: boolean;
  /** `status === "stale"`: a copy from the cache or `bootstrap`, shown
   * before the server confirmed it. A copy that was synced and then lost
   * its link is `disconnected` (and `isStale` false): for a "may be out of
   * date" notice, test `!isSynced` (or `!isConnected`). */
  isStale: boolean;
  /** `status === "error"`: no copy could be had, or the last attempt failed. */
  hasError: boolean;
  /** Whether the server is reachable now (a socket open, or the last poll
   * answered). */
  isConnected: boolean;
  transport: Transport;
  version: number;
  lastSyncTime: number | null;
}

const sameStatus = (a: SyncStatusValue, b: SyncStatusValue) =>
  a.status === b.status &&
  a.isConnected === b.isConnected &&
  a.transport === b.transport &&
  a.version === b.version &&
  a.lastSyncTime === b.lastSyncTime;

/** Where the sync stands, without the catalog: status `error` when the
 * wasm or the config could not be loaded, as `useProviderSync` says. */
export function useSyncStatus(): SyncStatusValue {
  const { service, loadError } = useProviderSyncContext("useSyncStatus");
  const selected = useSelected(
    service,
    "",
    (state) => ({
      status: state.status,
      isSynced: state.status === "synced",
      isSyncing: state.status === "syncing",
      isStale: state.status === "stale",
      hasError: state.status === "error",
      isConnected: state.isConnected,
      transport: state.transport,
      version: state.version,
      lastSyncTime: state.lastSyncTime,
    }),
    sameStatus,
  );
  // A service given after a config that failed is the one that counts.
  const failed = loadError !== null && service === null;
  return useMemo(
    () =>
      failed
        ? { ...selected, status: "error", isSynced: false, isSyncing: false, isStale: false, hasError: true }
        : selected,
    [selected, failed],
  );
}
