import type { QueryClient } from "@tanstack/react-query";
import type { ProviderSyncEvent } from "../index.js";
import type { ProviderSyncServiceLike } from "../react/index.js";
import { providerSyncKeys } from "./keys.js";

/**
 * The query keys an event makes stale: a model's availability when the
 * model changes; a provider's availability, and the availability of each of
 * its models, when the provider changes. Everything on an epoch change or a
 * resync (the client cannot tell what changed).
 */
export function keysAffectedBy(
  event: ProviderSyncEvent,
  service: ProviderSyncServiceLike,
): readonly (readonly unknown[])[] | "all" | [] {
  switch (event.type) {
    case "model_added":
    case "model_updated":
    case "model_deprecated":
      return [providerSyncKeys.modelAvailability(event.data.id)];
    case "model_removed":
      return [providerSyncKeys.modelAvailability(event.data.model_id)];
    case "provider_added":
    case "provider_updated":
      return providerKeys(event.data.id, service);
    case "provider_status_changed":
      return providerKeys(event.data.provider_id, service);
    case "provider_removed":
      return [
        providerSyncKeys.providerAvailability(event.data.provider_id),
        ...event.data.model_ids.map((id) => providerSyncKeys.modelAvailability(id)),
      ];
    case "resynced":
    case "full_sync":
      return "all";
    default:
      return [];
  }
}

function providerKeys(providerId: string, service: ProviderSyncServiceLike) {
  const models = service.getState().models.filter((m) => m.provider_id === providerId);
  return [
    providerSyncKeys.providerAvailability(providerId),
    ...models.map((m) => providerSyncKeys.modelAvailability(m.id)),
  ];
}

export function invalidateFor(event: ProviderSyncEvent, service: ProviderSyncServiceLike, client: QueryClient) {
  const keys = keysAffectedBy(event, service);
  if (keys === "all") {
    void client.invalidateQueries({
      predicate: (query) =>
        query.queryKey[0] === "provider-sync" && query.queryKey[1] !== "state",
    });
    return;
  }
  for (const queryKey of keys) {
    void client.invalidateQueries({ queryKey, exact: true });
  }
}
