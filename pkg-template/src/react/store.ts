"use client";

import { useCallback, useRef, useSyncExternalStore } from "react";
import type { ProviderSyncClientState } from "../index.js";
import { INITIAL_STATE } from "../initial-state.js";
import type { ProviderSyncServiceLike } from "./context.js";

/** The state before any service exists (also the server-rendering snapshot
 * without a `bootstrap`): the SDK's initial state, generated into the
 * package when it is built, so it is never restated here. */
export const EMPTY_STATE: ProviderSyncClientState = INITIAL_STATE;

const noSubscription = () => () => undefined;

/** The service's state; re-renders only when the service publishes a new one. */
export function useSyncSnapshot(service: ProviderSyncServiceLike | null): ProviderSyncClientState {
  const subscribe = useCallback(
    (notify: () => void) => (service ? service.subscribe(() => notify()) : noSubscription()),
    [service],
  );
  const getSnapshot = useCallback(() => (service ? service.getState() : EMPTY_STATE), [service]);
  // On the server and while hydrating too: a service made from a bootstrap
  // already holds the catalog, so both render it alike.
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
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
  const snapshot = () => pick(service ? service.getState() : EMPTY_STATE);
  return useSyncExternalStore(subscribe, snapshot, snapshot);
}

/**
 * Entities are unchanged while they are the same object: the service hands
 * out the same frozen object until a change touches the entity (its content
 * decides, not a revision that can repeat), so identity is the whole rule.
 */
export function sameEntity<T>(a: T, b: T): boolean {
  return Object.is(a, b);
}

export function sameList<T>(same: (a: T, b: T) => boolean) {
  return (a: readonly T[], b: readonly T[]) => a.length === b.length && a.every((item, i) => same(item, b[i]!));
}
