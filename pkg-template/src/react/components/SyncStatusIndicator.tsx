"use client";

import type { SyncStatus, Transport } from "../../index.js";
import { useOptionalProviderSyncContext } from "../context.js";
import { useSyncSnapshot } from "../store.js";

export interface SyncStatusIndicatorProps {
  status?: SyncStatus | undefined;
  isConnected?: boolean | undefined;
  lastSyncTime?: Date | number | null | undefined;
  version?: number | undefined;
  transport?: Transport | undefined;
  /** Shows a "Sync now" button that calls it (`forceSync` fits: a failure
   * it rejects with is the status's to show, not an unhandled rejection). */
  onSync?: (() => void | PromiseLike<unknown>) | undefined;
  /** Version, transport and last sync time under the status. */
  showDetails?: boolean | undefined;
  className?: string | undefined;
}

const LABELS: Record<SyncStatus, string> = {
  synced: "Synced",
  syncing: "Syncing…",
  stale: "Showing cached data",
  error: "Sync error",
  disconnected: "Disconnected",
};

function describeTime(time: Date | number): string {
  const date = typeof time === "number" ? new Date(time) : time;
  return date.toLocaleTimeString();
}

/** The sync status as a badge, announced politely to screen readers. */
export function SyncStatusIndicator({
  status,
  isConnected,
  lastSyncTime,
  version,
  transport,
  onSync,
  showDetails = false,
  className,
}: SyncStatusIndicatorProps) {
  // Without a `status`, inside a provider: the provider's own (it said
  // "Synced" for a catalog that failed to load). Outside one, as before:
  // from `isConnected` alone; with neither, nothing is known, and it said
  // "Synced": a mistake in the page, refused as the hooks refuse it.
  const context = useOptionalProviderSyncContext();
  if (!context && status === undefined && isConnected === undefined) {
    throw new Error(
      "SyncStatusIndicator must be used inside <ProviderSyncProvider>, or given `status` or `isConnected`.",
    );
  }
  const own = status === undefined ? context : null;
  const live = useSyncSnapshot(own?.service ?? null);
  if (own) {
    status = own.loadError && !own.service ? "error" : live.status;
    isConnected ??= live.isConnected;
    transport ??= live.transport;
    // The details too (they said "Synced · Last sync never").
    if (lastSyncTime === undefined) lastSyncTime = live.lastSyncTime;
    if (version === undefined && live.epoch !== null) version = live.version;
  }
  const shown: SyncStatus = status ?? (isConnected === false ? "disconnected" : "synced");
  const label =
    shown === "synced" && transport === "polling" ? "Synced (polling)" : LABELS[shown];
  return (
    <div className={["psync-status", `psync-status--${shown}`, className].filter(Boolean).join(" ")}>
      <span role="status" aria-live="polite" className="psync-status__label">
        <span className="psync-status__dot" aria-hidden="true" />
        {label}
        {isConnected === false && shown !== "disconnected" ? " · offline" : ""}
      </span>
      {showDetails && (
        <dl className="psync-status__details">
          {version !== undefined && (
            <>
              <dt>Version</dt>
              <dd>{version}</dd>
            </>
          )}
          {transport && (
            <>
              <dt>Transport</dt>
              <dd>{transport}</dd>
            </>
          )}
          <dt>Last sync</dt>
          <dd>{lastSyncTime ? describeTime(lastSyncTime) : "never"}</dd>
        </dl>
      )}
      {onSync && (
        <button type="button" className="psync-status__sync" onClick={() => void Promise.resolve(onSync()).catch(() => {})}>
          Sync now
        </button>
      )}
    </div>
  );
}
