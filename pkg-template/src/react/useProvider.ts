"use client";

import type { ProviderSyncInfo } from "../index.js";
import { useProviderSyncContext } from "./context.js";
import { sameEntity, useSelected } from "./store.js";

/** One provider, or undefined; re-renders only when that provider changes. */
export function useProvider(id: string | undefined): ProviderSyncInfo | undefined {
  const { service } = useProviderSyncContext("useProvider");
  return useSelected(service, id ?? "", () => (id && service ? service.getProvider(id) : undefined), sameEntity);
}
