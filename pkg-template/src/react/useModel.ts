"use client";

import type { ModelSpecification } from "../index.js";
import { useProviderSyncContext } from "./context.js";
import { sameModel, useSelected } from "./store.js";

/**
 * One model, or undefined; re-renders only when that model changes. Finds
 * deprecated models too, whatever `includeDeprecated` says.
 */
export function useModel(id: string | undefined): ModelSpecification | undefined {
  const { service } = useProviderSyncContext("useModel");
  return useSelected(
    service,
    id ?? "",
    (state) => state.models.find((m) => m.id === id) ?? (id && service ? service.getModel(id) : undefined),
    sameModel,
  );
}
