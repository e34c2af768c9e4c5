// Run-time names for the protocol's string unions, as the seed design's
// enums spell them (`SyncStatus.SYNCED`, `SyncEventType.MODEL_DEPRECATED`,
// `ModelDeprecationStatus.DEPRECATED`). The unions themselves come from Rust
// (tsify); each object is checked against its union at compile time, so a
// variant added in Rust fails this build until it is named here.
import type {
  DeprecationStatus as DeprecationStatusUnion,
  ProviderStatus as ProviderStatusUnion,
  SyncEventType as SyncEventTypeUnion,
  SyncStatus as SyncStatusUnion,
} from "./provider_sync_sdk.js";

/**
 * Compiles only when `Missing` is never; the error names the union member
 * left out. The `…Complete` aliases below exist only for this check.
 */
type NoneMissing<Missing extends never> = Missing;
type ValueOf<T> = T[keyof T];

/** Where the client's copy stands. */
export type SyncStatus = SyncStatusUnion;
export const SyncStatus = Object.freeze({
  SYNCED: "synced",
  SYNCING: "syncing",
  STALE: "stale",
  ERROR: "error",
  DISCONNECTED: "disconnected",
} as const satisfies Record<string, SyncStatusUnion>);
type SyncStatusComplete = NoneMissing<Exclude<SyncStatusUnion, ValueOf<typeof SyncStatus>>>;

/** The `type` of a server event. (The seed's `INCREMENTAL_UPDATE` is kept
 * as a name, but no event carries it: changes arrive as the events below.) */
export type SyncEventType = SyncEventTypeUnion;
export const SyncEventType = Object.freeze({
  FULL_SYNC: "full_sync",
  INCREMENTAL_UPDATE: "incremental_update",
  PROVIDER_ADDED: "provider_added",
  PROVIDER_UPDATED: "provider_updated",
  PROVIDER_REMOVED: "provider_removed",
  PROVIDER_STATUS_CHANGED: "provider_status_changed",
  MODEL_ADDED: "model_added",
  MODEL_UPDATED: "model_updated",
  MODEL_REMOVED: "model_removed",
  MODEL_DEPRECATED: "model_deprecated",
  ACTIVE_PROVIDER_CHANGED: "active_provider_changed",
  HELLO: "hello",
  HEARTBEAT: "heartbeat",
  RESYNC_REQUIRED: "resync_required",
  ERROR: "error",
} as const satisfies Record<string, SyncEventTypeUnion>);
type SyncEventTypeComplete = NoneMissing<Exclude<SyncEventTypeUnion, ValueOf<typeof SyncEventType>>>;

/** Where a model stands in its provider's retirement schedule. */
export type DeprecationStatus = DeprecationStatusUnion;
export const DeprecationStatus = Object.freeze({
  ACTIVE: "active",
  DEPRECATED: "deprecated",
  SUNSET: "sunset",
} as const satisfies Record<string, DeprecationStatusUnion>);
type DeprecationStatusComplete = NoneMissing<Exclude<DeprecationStatusUnion, ValueOf<typeof DeprecationStatus>>>;

/** The seed design's name for `DeprecationStatus` (the same object). */
export type ModelDeprecationStatus = DeprecationStatusUnion;
export const ModelDeprecationStatus = DeprecationStatus;

/** Whether a provider can take requests right now. */
export type ProviderStatus = ProviderStatusUnion;
export const ProviderStatus = Object.freeze({
  AVAILABLE: "available",
  DEGRADED: "degraded",
  UNAVAILABLE: "unavailable",
  MAINTENANCE: "maintenance",
  UNKNOWN: "unknown",
} as const satisfies Record<string, ProviderStatusUnion>);
type ProviderStatusComplete = NoneMissing<Exclude<ProviderStatusUnion, ValueOf<typeof ProviderStatus>>>;
