"use client";

import type { ProviderSyncInfo } from "../index.js";
import { useProviderSyncContext } from "./context.js";
import { sameEntity, sameList, useSelected } from "./store.js";

export interface UseProvidersOptions {
  /** Only providers that are enabled. */
  enabledOnly?: boolean | undefined;
}

const sameProviders = sameList<ProviderSyncInfo>(sameEntity);

/** The providers; keeps its identity until one of them changes. */
export function useProviders({ enabledOnly = false }: UseProvidersOptions = {}): ProviderSyncInfo[] {
  const { service } = useProviderSyncContext("useProviders");
  return useSelected(
    service,
    String(enabledOnly),
    (state) => (enabledOnly ? state.providers.filter((p) => p.enabled) : state.providers),
    sameProviders,
  );
}
