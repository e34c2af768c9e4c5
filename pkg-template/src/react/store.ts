"use client";

import { useCallback, useRef, useSyncExternalStore } from "react";
import type { ModelSpecification, ProviderSyncClientState, ProviderSyncInfo } from "../index.js";
import type { ProviderSyncServiceLike } from "./context.js";

/** The state before any service exists (also the server-rendering snapshot). */
export const EMPTY_STATE: ProviderSyncClientState = Object.freeze({
  status: "syncing",
  isConnected: false,
  transport: "offline",
  version: 0,
  epoch: null,
  checksum: null,
  lastSyncTime: null,
  error: null,
  providers: [],
  models: [],
  activeProviderId: null,
  defaultProviderId: null,
  fromCache: false,
}) as ProviderSyncClientState;

const noSubscription = () => () => undefined;
const serverSnapshot = () => EMPTY_STATE;

/** The service's state; re-renders only when the service publishes a new one. */
export function useSyncSnapshot(service: ProviderSyncServiceLike | null): ProviderSyncClientState {
  const subscribe = useCallback(
    (notify: () => void) => (service ? service.subscribe(() => notify()) : noSubscription()),
    [service],
  );
  const getSnapshot = useCallback(() => (service ? service.getState() : EMPTY_STATE), [service]);
  return useSyncExternalStore(subscribe, getSnapshot, serverSnapshot);
}

/**
 * A value derived from the state that keeps its identity while `isEqual`
 * says it is unchanged, so components using it skip unrelated updates.
 * `key` names the selection's arguments; a new key recomputes.
 */
export function useSelected<T>(
  service: ProviderSyncServiceLike | null,
  key: string,
  select: (state: ProviderSyncClientState) => T,
  isEqual: (a: T, b: T) => boolean,
): T {
  const last = useRef<{ state: ProviderSyncClientState; key: string; value: T } | null>(null);
  // Revisions restart with a new history (epoch): the cached selection is
  // only compared within one.
  const subscribe = useCallback(
    (notify: () => void) => (service ? service.subscribe(() => notify()) : noSubscription()),
    [service],
  );
  const pick = (state: ProviderSyncClientState): T => {
    const previous = last.current;
    if (previous && previous.state === state && previous.key === key) return previous.value;
    const value = select(state);
    if (previous && previous.key === key && previous.state.epoch === state.epoch && isEqual(previous.value, value)) {
      last.current = { state, key, value: previous.value };
      return previous.value;
    }
    last.current = { state, key, value };
    return value;
  };
  return useSyncExternalStore(
    subscribe,
    () => pick(service ? service.getState() : EMPTY_STATE),
    () => pick(EMPTY_STATE),
  );
}

/** Providers are unchanged while ids, revisions and model lists are. */
export function sameProvider(a: ProviderSyncInfo | undefined, b: ProviderSyncInfo | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return a.id === b.id && a.revision === b.revision && a.model_ids.join("\u0000") === b.model_ids.join("\u0000");
}

/** Models are unchanged while ids and revisions are. */
export function sameModel(a: ModelSpecification | undefined, b: ModelSpecification | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return a.id === b.id && a.revision === b.revision;
}

export function sameList<T>(same: (a: T, b: T) => boolean) {
  return (a: readonly T[], b: readonly T[]) => a.length === b.length && a.every((item, i) => same(item, b[i]!));
}
