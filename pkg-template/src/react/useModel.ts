"use client";

import type { ModelSpecification } from "../index.js";
import { useProviderSyncContext } from "./context.js";
import { sameEntity, useSelected } from "./store.js";

/**
 * One model, or undefined; re-renders only when that model changes. Finds
 * deprecated models too, whatever `includeDeprecated` says.
 */
export function useModel(id: string | undefined): ModelSpecification | undefined {
  const { service } = useProviderSyncContext("useModel");
  return useSelected(
    service,
    id ?? "",
    () => (id && service ? service.getModel(id) : undefined),
    sameEntity,
  );
}
