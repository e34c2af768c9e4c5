"use client";

import { useQuery, useQueryClient, type UseQueryResult } from "@tanstack/react-query";
import { useEffect, useRef } from "react";
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
import { useProviderSyncService, type ProviderSyncServiceLike } from "../react/index.js";
import { sameModel, sameProvider } from "../react/store.js";
import { retainLiveInvalidation } from "./invalidation.js";
import { providerSyncKeys } from "./keys.js";

/** Keeps the state query's data equal to the service's state, from the
 * moment it mounts (not only from the next change). */
function useStateIntoCache(service: ProviderSyncServiceLike | null) {
  const client = useQueryClient();
  useEffect(() => {
    if (!service) return;
    const key = providerSyncKeys.state(service.apiBaseUrl);
    const current = service.getState();
    if (current.epoch !== null) client.setQueryData(key, current);
    return service.subscribe((state) => client.setQueryData(key, state));
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

/** The sync state through TanStack Query (key `providerSyncKeys.state()`). */
export function useSyncState(): UseQueryResult<ProviderSyncClientState> {
  const service = useProviderSyncService();
  useStateIntoCache(service);
  return useQuery({
    queryKey: providerSyncKeys.state(service?.apiBaseUrl ?? ""),
    queryFn: async () => {
      await service!.initialize();
      return service!.getState();
    },
    enabled: service !== null,
    staleTime: Infinity,
    // The service's own objects: no structural sharing needed.
    structuralSharing: false,
  });
}

type StateQuery = UseQueryResult<ProviderSyncClientState>;

/**
 * `value`, or the previous one while `same` says it is unchanged within one
 * history (`epoch`), so the entity keeps its identity across unrelated
 * updates as in `provider-sync/react`.
 */
function useKept<T>(
  epoch: string | null | undefined,
  key: string,
  value: T,
  same: (a: T, b: T) => boolean,
): T {
  const last = useRef<{ epoch: string | null | undefined; key: string; value: T } | null>(null);
  const previous = last.current;
  if (previous && previous.key === key && previous.epoch === epoch && same(previous.value, value)) return previous.value;
  last.current = { epoch, key, value };
  return value;
}

/**
 * One provider from the synced state, or undefined: the same shape as
 * `useProvider` from `provider-sync/react` (`useSyncState()` tells loading
 * and errors).
 */
export function useProvider(id: string | undefined): ProviderSyncInfo | undefined {
  const { data } = useSyncState();
  return useKept(data?.epoch, id ?? "", data?.providers.find((p) => p.id === id), sameProvider);
}

/**
 * One model from the synced state (deprecated ones too), or undefined: the
 * same shape as `useModel` from `provider-sync/react`.
 */
export function useModel(id: string | undefined): ModelSpecification | undefined {
  const { data } = useSyncState();
  const service = useProviderSyncService();
  const model = data?.models.find((m) => m.id === id) ?? (id && service && data ? service.getModel(id) : undefined);
  return useKept(data?.epoch, id ?? "", model, sameModel);
}

export interface UseModelsFromStateOptions {
  providerId?: string;
  excludeDeprecated?: boolean;
}

/** Models from the synced state, filtered. */
export function useModelsFromState({
  providerId,
  excludeDeprecated = false,
}: UseModelsFromStateOptions = {}): StateQuery & { models: ModelSpecification[] } {
  const query = useSyncState();
  const models = (query.data?.models ?? []).filter(
    (m) =>
      (providerId === undefined || m.provider_id === providerId) &&
      (!excludeDeprecated || m.deprecation_status === "active"),
  );
  return { ...query, models };
}

export interface UseSyncWebSocketOptions {
  /** Every sync and connection event. */
  onEvent?: (event: ProviderSyncEvent) => void;
}

/**
 * Follows the service's live events: calls `onEvent`, keeps the state query
 * current and invalidates exactly the availability queries an event affects
 * (the availability hooks wire that too; the wiring is one per QueryClient).
 */
export function useSyncWebSocket({ onEvent }: UseSyncWebSocketOptions = {}): {
  isConnected: boolean;
  transport: Transport;
} {
  const service = useProviderSyncService();
  useStateIntoCache(service);
  useLiveInvalidation(service, onEvent);
  const { data } = useSyncState();
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
  const service = useProviderSyncService();
  const { isConnected } = useSyncWebSocket(options);
  const query = useSyncState();
  return {
    ...query,
    providers: query.data?.providers ?? [],
    models: query.data?.models ?? [],
    syncStatus: query.data?.status ?? "syncing",
    isConnected,
    forceSync: () => (service ? service.forceSync() : Promise.reject(new Error("provider-sync is still loading"))),
  };
}

/** `signal` is TanStack's: the request stops when the query is cancelled. */
async function fetchJson<T>(url: string, signal: AbortSignal): Promise<T> {
  const response = await fetch(url, { signal });
  if (!response.ok) {
    const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
    throw new Error(body?.error?.message ?? `HTTP ${response.status} from ${url}`);
  }
  return (await response.json()) as T;
}

/** `GET /models/{id}/availability`, refreshed when the model or its provider changes. */
export function useModelAvailability(id: string | undefined): UseQueryResult<ModelAvailability> {
  const service = useProviderSyncService();
  useLiveInvalidation(service);
  return useQuery({
    queryKey: providerSyncKeys.modelAvailability(service?.apiBaseUrl ?? "", id ?? ""),
    queryFn: ({ signal }) =>
      fetchJson<ModelAvailability>(`${service!.apiBaseUrl}/models/${encodeURIComponent(id!)}/availability`, signal),
    enabled: service !== null && !!id,
  });
}

/** `GET /providers/{id}/availability`, refreshed when the provider changes. */
export function useProviderAvailability(id: string | undefined): UseQueryResult<ProviderAvailability> {
  const service = useProviderSyncService();
  useLiveInvalidation(service);
  return useQuery({
    queryKey: providerSyncKeys.providerAvailability(service?.apiBaseUrl ?? "", id ?? ""),
    queryFn: ({ signal }) =>
      fetchJson<ProviderAvailability>(`${service!.apiBaseUrl}/providers/${encodeURIComponent(id!)}/availability`, signal),
    enabled: service !== null && !!id,
  });
}
