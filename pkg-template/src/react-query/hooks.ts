"use client";

import { useQuery, useQueryClient, type QueryClient, type UseQueryResult } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo, useRef } from "react";
import type {
  ModelAvailability,
  ModelSpecification,
  ProviderAvailability,
  ProviderSyncClientState,
  ProviderSyncEvent,
  ProviderSyncInfo,
  SyncStatus,
  Transport,
} from "../index.js";
import { isRetired, useProviderSyncContext, type ProviderSyncServiceLike } from "../react/context.js";
import { retainLiveInvalidation } from "./invalidation.js";
import { providerSyncKeys } from "./keys.js";

/** The state query's key for this service (none yet: the empty server's). */
function stateKey(service: ProviderSyncServiceLike | null) {
  return providerSyncKeys.state(service?.apiBaseUrl ?? "", service?.includeDeprecated ?? false);
}

/** Which service each state the query holds came from. */
const owners = new WeakMap<ProviderSyncClientState, ProviderSyncServiceLike>();

function owned(state: ProviderSyncClientState, service: ProviderSyncServiceLike): ProviderSyncClientState {
  owners.set(state, service);
  return state;
}

/** The services whose state hooks are mounted under each QueryClient, with
 * how many. */
const inUse = new WeakMap<QueryClient, Map<ProviderSyncServiceLike, number>>();

/** Keeps the state query's data equal to the service's state, from the
 * moment it mounts (not only from the next change). */
function useStateIntoCache(service: ProviderSyncServiceLike | null) {
  const client = useQueryClient();
  useEffect(() => {
    if (!service) return;
    let used = inUse.get(client);
    if (!used) {
      used = new Map();
      inUse.set(client, used);
    }
    const key = stateKey(service);
    // Only a state with a catalog is the query's data: until the first one
    // the query is pending, and failed if the service's first fetch fails
    // (`isPending`, `isError`), as TanStack's own queries are. What a
    // service says once its provider let go of it is no one's catalog.
    const take = (state: ProviderSyncClientState) => {
      if (state.epoch !== null && !isRetired(service)) client.setQueryData(key, owned(state, service));
    };
    const now = service.getState();
    const held = client.getQueryData<ProviderSyncClientState>(key);
    const from = held && owners.get(held);
    // Another provider under this client with a service of the same key
    // and a catalog (two providers of one server): its catalog stays.
    const sibling = [...used.keys()].find(
      (other) =>
        other !== service &&
        !isRetired(other) &&
        other.getState().epoch !== null &&
        JSON.stringify(stateKey(other)) === JSON.stringify(key),
    );
    if (now.epoch === null && from && from !== service && sibling && (isRetired(from) || !used.has(from))) {
      client.setQueryData(key, owned(sibling.getState(), sibling));
    } else if (now.epoch === null && from && from !== service && (isRetired(from) || !used.has(from))) {
      // A new service without a catalog yet, where the query holds the
      // catalog of one no state hook under this client uses any longer (a
      // provider let go of it: a remount, a new config; or a provider was
      // given another: a `service` prop swapped, perhaps through services
      // of other servers since): that catalog is not its data. Pending again, then
      // its own first fetch (this runs after the query's options became
      // this service's: `useQuery` comes first in `useSyncStateOf`).
      // `resetQueries` would restore the query's first data, which was the
      // old service's.
      client.getQueryCache().find({ queryKey: key, exact: true })?.setState({
        data: undefined,
        dataUpdatedAt: 0,
        status: "pending",
        error: null,
        errorUpdatedAt: 0,
        fetchFailureCount: 0,
        fetchFailureReason: null,
        isInvalidated: false,
      });
      void client.refetchQueries({ queryKey: key, exact: true });
    }
    take(now);
    used.set(service, (used.get(service) ?? 0) + 1);
    const unsubscribe = service.subscribe(take);
    const counted = used;
    return () => {
      unsubscribe();
      const left = (counted.get(service) ?? 1) - 1;
      if (left > 0) counted.set(service, left);
      else counted.delete(service);
    };
  }, [service, client]);
}

/**
 * Invalidates the availability answers each live event affects. The wiring
 * is shared by every hook on the same client and service (see
 * `retainLiveInvalidation`); `onEvent` is this hook's own listener.
 */
function useLiveInvalidation(service: ProviderSyncServiceLike | null, onEvent?: (event: ProviderSyncEvent) => void) {
  const client = useQueryClient();
  useEffect(() => {
    if (!service) return;
    return retainLiveInvalidation(client, service);
  }, [service, client]);
  const listener = useRef(onEvent);
  listener.current = onEvent;
  const listening = onEvent !== undefined;
  useEffect(() => {
    if (!service || !listening) return;
    return service.onEvent((event) => listener.current?.(event));
  }, [service, listening]);
}

/** The service, null while the wasm loads; `failed`: why there is none
 * (the wasm or the config could not be loaded), which a query without a
 * service fails with rather than stay pending for good. */
function useService(hook: string): { service: ProviderSyncServiceLike | null; failed: Error | null } {
  const { service, loadError } = useProviderSyncContext(hook);
  return { service, failed: service ? null : loadError };
}

/** The sync state through TanStack Query (key `providerSyncKeys.state()`). */
export function useSyncState(): UseQueryResult<ProviderSyncClientState> {
  return useSyncStateOf("useSyncState");
}

function useSyncStateOf(hook: string): UseQueryResult<ProviderSyncClientState> {
  const { service, failed } = useService(hook);
  const query = useQuery({
    queryKey: stateKey(service),
    queryFn: async () => {
      if (!service) throw failed;
      await service.initialize();
      return owned(service.getState(), service);
    },
    enabled: service !== null || failed !== null,
    // A catalog the service already holds (a `bootstrap` while rendering on
    // the server and hydrating, a copy synced before this hook mounted) is
    // the data from the first render: no loading flash.
    initialData: () => {
      const state = service?.getState();
      return service && state && state.epoch !== null ? owned(state, service) : undefined;
    },
    staleTime: Infinity,
    // The service retries by itself; its first failure is the query's.
    retry: false,
    // The service's own objects: no structural sharing needed.
    structuralSharing: false,
  });
  // After `useQuery`: its effects (the query's options) run first.
  useStateIntoCache(service);
  return query;
}

type StateQuery = UseQueryResult<ProviderSyncClientState>;

/**
 * One provider from the synced state, or undefined: the same shape as
 * `useProvider` from `provider-sync/react` (`useSyncState()` tells loading
 * and errors). The service keeps an unchanged entity the same object.
 */
export function useProvider(id: string | undefined): ProviderSyncInfo | undefined {
  const { data } = useSyncStateOf("useProvider");
  return data?.providers.find((p) => p.id === id);
}

/**
 * One model from the synced state (deprecated ones too), or undefined: the
 * same shape as `useModel` from `provider-sync/react`.
 */
export function useModel(id: string | undefined): ModelSpecification | undefined {
  const { data } = useSyncStateOf("useModel");
  const { service } = useService("useModel");
  return data?.models.find((m) => m.id === id) ?? (id && service && data ? service.getModel(id) : undefined);
}

const NO_MODELS: ModelSpecification[] = [];
const NO_PROVIDERS: ProviderSyncInfo[] = [];

export interface UseModelsFromStateOptions {
  providerId?: string | undefined;
  excludeDeprecated?: boolean | undefined;
}

/** Models from the synced state, filtered. */
export function useModelsFromState({
  providerId,
  excludeDeprecated = false,
}: UseModelsFromStateOptions = {}): StateQuery & { models: ModelSpecification[] } {
  const query = useSyncStateOf("useModelsFromState");
  const { service } = useService("useModelsFromState");
  // Filtered by the service (the rule of the server's GET /models), from
  // the state the query holds; the same array while that state and the
  // filter are (a new one each render made an effect that depends on it
  // run at every render).
  const data = query.data;
  const models = useMemo(
    () => (data && service ? service.getModels({ providerId, excludeDeprecated }) : NO_MODELS),
    [data, service, providerId, excludeDeprecated],
  );
  return { ...query, models };
}

export interface UseSyncWebSocketOptions {
  /** Every sync and connection event. */
  onEvent?: ((event: ProviderSyncEvent) => void) | undefined;
}

/**
 * Follows the service's live events: calls `onEvent`, keeps the state query
 * current and invalidates exactly the availability queries an event affects
 * (the availability hooks wire that too; the wiring is one per QueryClient).
 */
export function useSyncWebSocket(options: UseSyncWebSocketOptions = {}): {
  isConnected: boolean;
  transport: Transport;
} {
  return useSyncWebSocketOf("useSyncWebSocket", options);
}

function useSyncWebSocketOf(
  hook: string,
  { onEvent }: UseSyncWebSocketOptions,
): { isConnected: boolean; transport: Transport } {
  const { service } = useService(hook);
  useLiveInvalidation(service, onEvent);
  const { data } = useSyncStateOf(hook);
  return { isConnected: data?.isConnected ?? false, transport: data?.transport ?? "offline" };
}

/** The catalog with live updates: `useSyncState` plus `useSyncWebSocket`. */
export function useProviderSyncWithWebSocket(options: UseSyncWebSocketOptions = {}): StateQuery & {
  providers: ProviderSyncInfo[];
  models: ModelSpecification[];
  /** The sync's status (`status` is the query's own). */
  syncStatus: SyncStatus;
  isConnected: boolean;
  forceSync: () => Promise<void>;
} {
  const hook = "useProviderSyncWithWebSocket";
  const { service } = useService(hook);
  const { isConnected } = useSyncWebSocketOf(hook, options);
  const query = useSyncStateOf(hook);
  // The same function while the service is (for effects that depend on it).
  const forceSync = useCallback(
    () => (service ? service.forceSync() : Promise.reject(new Error("provider-sync is still loading"))),
    [service],
  );
  return {
    ...query,
    providers: query.data?.providers ?? NO_PROVIDERS,
    models: query.data?.models ?? NO_MODELS,
    // Without a catalog yet: pending while the first fetch runs, `error`
    // once it failed (it said "syncing" through a whole outage).
    syncStatus: query.data?.status ?? (query.isError ? "error" : "syncing"),
    isConnected,
    forceSync,
  };
}

/**
 * A GET under the service's `apiBaseUrl` as the service sends its own
 * requests (`fetchJson`: its headers, `getToken`'s token, its credentials
 * mode). `signal` is TanStack's: the request stops when the query is
 * cancelled. A service without `fetchJson` (an injected stand-in) gets a
 * plain `fetch`.
 */
async function fetchJson<T>(service: ProviderSyncServiceLike, path: string, signal: AbortSignal): Promise<T> {
  if (service.fetchJson) return (await service.fetchJson(path, signal)) as T;
  const url = service.apiBaseUrl + path;
  const response = await fetch(url, { signal });
  if (!response.ok) {
    const error = new Error(`GET ${url}: HTTP ${response.status}`) as Error & { status?: number };
    error.status = response.status;
    throw error;
  }
  return (await response.json()) as T;
}

/** TanStack's three retries, but none for an answer the server refused
 * (404 for a model deleted meanwhile, 401): asking again changes nothing. */
function retryUnlessRefused(failures: number, error: Error): boolean {
  const status = (error as { status?: unknown } | null)?.status;
  return !(typeof status === "number" && status >= 400 && status < 500 && status !== 408 && status !== 429) && failures < 3;
}

/** `GET /models/{id}/availability`, refreshed when the model or its provider changes. */
export function useModelAvailability(id: string | undefined): UseQueryResult<ModelAvailability> {
  const { service, failed } = useService("useModelAvailability");
  const query = useQuery({
    queryKey: providerSyncKeys.modelAvailability(service?.apiBaseUrl ?? "", id ?? ""),
    queryFn: ({ signal }) =>
      service
        ? fetchJson<ModelAvailability>(service, `/models/${encodeURIComponent(id!)}/availability`, signal)
        : Promise.reject(failed),
    enabled: (service !== null || failed !== null) && !!id,
    // No service: asking again gives the same error.
    retry: (failures, error) => service !== null && retryUnlessRefused(failures, error),
  });
  // After `useQuery`: a new service's first invalidation (it got through
  // already) refetches with this service's request, not the last one's.
  useLiveInvalidation(service);
  return query;
}

/** `GET /providers/{id}/availability`, refreshed when the provider changes. */
export function useProviderAvailability(id: string | undefined): UseQueryResult<ProviderAvailability> {
  const { service, failed } = useService("useProviderAvailability");
  const query = useQuery({
    queryKey: providerSyncKeys.providerAvailability(service?.apiBaseUrl ?? "", id ?? ""),
    queryFn: ({ signal }) =>
      service
        ? fetchJson<ProviderAvailability>(service, `/providers/${encodeURIComponent(id!)}/availability`, signal)
        : Promise.reject(failed),
    enabled: (service !== null || failed !== null) && !!id,
    // No service: asking again gives the same error.
    retry: (failures, error) => service !== null && retryUnlessRefused(failures, error),
  });
  // After `useQuery`: a new service's first invalidation (it got through
  // already) refetches with this service's request, not the last one's.
  useLiveInvalidation(service);
  return query;
}
