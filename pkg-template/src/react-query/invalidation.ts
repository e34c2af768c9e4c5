import type { Query, QueryClient } from "@tanstack/react-query";
import type { ModelAvailability, ProviderSyncEvent } from "../index.js";
import type { ProviderSyncServiceLike } from "../react/index.js";

/** Which cached availability answers an event makes stale. */
export interface Affected {
  /** Model availability answers, by model id. */
  models: string[];
  /** Provider availability answers, by provider id; `"all"` for every one. */
  providers: string[] | "all";
  /** Model answers naming this model as their replacement. */
  replacementOf?: string | undefined;
  /** Everything (the client cannot tell what changed). */
  everything?: boolean | undefined;
  /** The answers that failed (the service got through: asking again may
   * succeed where they could not reach the server or were refused). */
  failed?: boolean | undefined;
}

/**
 * A model event: that model's availability, and the answers that name it as
 * a replacement. A provider event: every provider's availability (fallback
 * suggestions depend on the others) and that provider's models' (deprecated
 * ones included). A resync or full state: everything. The link up
 * (`connected`): the answers that failed.
 */
export function keysAffectedBy(event: ProviderSyncEvent, service: ProviderSyncServiceLike): Affected {
  const modelsOf = (providerId: string) =>
    service.getState().providers.find((p) => p.id === providerId)?.model_ids ?? [];
  switch (event.type) {
    case "model_added":
    case "model_updated":
    case "model_deprecated":
      return { models: [event.data.id], providers: [], replacementOf: event.data.id };
    case "model_removed":
      return { models: [event.data.model_id], providers: [], replacementOf: event.data.model_id };
    case "provider_added":
    case "provider_updated":
      return { models: modelsOf(event.data.id), providers: "all" };
    case "provider_status_changed":
      return { models: modelsOf(event.data.provider_id), providers: "all" };
    case "provider_removed":
      return { models: event.data.model_ids, providers: "all" };
    case "resynced":
    case "full_sync":
      return { models: [], providers: [], everything: true };
    case "connected":
      return { models: [], providers: [], failed: true };
    default:
      return { models: [], providers: [] };
  }
}

/** Whether a failed answer may come out otherwise once the service gets
 * through: not one the server refused for good (a 404 for an unknown id, a
 * 422), as the hooks do not retry those either; a 401 or 403 may (a login
 * since), as may an answer that never came. */
function askAgain(error: unknown): boolean {
  const status = (error as { status?: unknown } | null)?.status;
  return !(typeof status === "number" && status >= 400 && status < 500 && ![401, 403, 408, 429].includes(status));
}

/** Invalidates exactly what `keysAffectedBy` names, for this service's server. */
export function invalidateFor(event: ProviderSyncEvent, service: ProviderSyncServiceLike, client: QueryClient) {
  const affected = keysAffectedBy(event, service);
  const server = service.apiBaseUrl;
  const models = new Set(affected.models);
  const predicate = (query: Query) => {
    const [root, base, kind, id] = query.queryKey as unknown[];
    if (root !== "provider-sync" || base !== server || kind === "state") return false;
    if (affected.everything) return true;
    if (affected.failed && query.state.status === "error") return askAgain(query.state.error);
    if (kind === "provider-availability") {
      return affected.providers === "all" || affected.providers.includes(id as string);
    }
    if (kind === "model-availability") {
      if (models.has(id as string)) return true;
      const data = query.state.data as ModelAvailability | undefined;
      return affected.replacementOf !== undefined && data?.replacement_model_id === affected.replacementOf;
    }
    return false;
  };
  void client.invalidateQueries({ predicate });
}

interface Wiring {
  /** Mounted hooks using this client with this service. */
  count: number;
  unsubscribe: () => void;
}

/** The live event subscriptions, per client and service. */
const wirings = new WeakMap<QueryClient, Map<ProviderSyncServiceLike, Wiring>>();

/**
 * Wires the service's events to `invalidateFor` on this client, once however
 * many hooks ask: one event invalidates each affected query once, so it is
 * fetched once. Returns the release; the last one unsubscribes.
 */
export function retainLiveInvalidation(client: QueryClient, service: ProviderSyncServiceLike): () => void {
  let services = wirings.get(client);
  if (!services) {
    services = new Map();
    wirings.set(client, services);
  }
  let wiring = services.get(service);
  if (!wiring) {
    wiring = { count: 0, unsubscribe: service.onEvent((event) => invalidateFor(event, service, client)) };
    services.set(service, wiring);
    // A service that is through already (one made after a login, taking
    // over from one the server refused) said `connected` before this. Once
    // this commit's effects have all run: a sibling's query may be given
    // this service's request by an effect that runs after this one, and
    // refetched before that, it would ask with the last service's.
    const made = wiring;
    queueMicrotask(() => {
      if (services.get(service) === made && service.getState().isConnected) {
        invalidateFor({ type: "connected", transport: service.getState().transport }, service, client);
      }
    });
  }
  wiring.count += 1;
  const held = wiring;
  const perClient = services;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    held.count -= 1;
    if (held.count === 0) {
      held.unsubscribe();
      perClient.delete(service);
    }
  };
}
