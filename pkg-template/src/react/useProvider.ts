"use client";

import type { ProviderSyncInfo } from "../index.js";
import { useProviderSyncContext } from "./context.js";
import { sameProvider, useSelected } from "./store.js";

/** One provider, or undefined; re-renders only when that provider changes. */
export function useProvider(id: string | undefined): ProviderSyncInfo | undefined {
  const { service } = useProviderSyncContext("useProvider");
  return useSelected(service, id ?? "", (state) => state.providers.find((p) => p.id === id), sameProvider);
}
