// @vitest-environment node
import { describe, expect, it } from "vitest";
import {
  DeprecationStatus,
  ModelDeprecationStatus,
  ProviderStatus,
  SyncEventType,
  SyncStatus,
} from "provider-sync";

describe("the seed's enums at run time", () => {
  it("are frozen objects of the protocol's strings", () => {
    expect(SyncStatus).toEqual({
      SYNCED: "synced",
      SYNCING: "syncing",
      STALE: "stale",
      ERROR: "error",
      DISCONNECTED: "disconnected",
    });
    expect(SyncEventType.MODEL_DEPRECATED).toBe("model_deprecated");
    expect(SyncEventType.FULL_SYNC).toBe("full_sync");
    expect(SyncEventType.PROVIDER_STATUS_CHANGED).toBe("provider_status_changed");
    expect(SyncEventType.INCREMENTAL_UPDATE).toBe("incremental_update");
    expect(Object.keys(SyncEventType)).toHaveLength(15);
    expect(DeprecationStatus).toEqual({ ACTIVE: "active", DEPRECATED: "deprecated", SUNSET: "sunset" });
    expect(ProviderStatus).toEqual({
      AVAILABLE: "available",
      DEGRADED: "degraded",
      UNAVAILABLE: "unavailable",
      MAINTENANCE: "maintenance",
      UNKNOWN: "unknown",
    });
    for (const names of [SyncStatus, SyncEventType, DeprecationStatus, ProviderStatus]) {
      expect(Object.isFrozen(names)).toBe(true);
    }
  });

  it("name ModelDeprecationStatus as the seed does, the same object as DeprecationStatus", () => {
    expect(ModelDeprecationStatus).toBe(DeprecationStatus);
    expect(ModelDeprecationStatus.DEPRECATED).toBe("deprecated");
  });
});
