"use client";

import type { ModelSpecification } from "../index.js";
import { useProviderSyncContext } from "./context.js";
import { sameList, sameModel, useSelected } from "./store.js";

export type ModelCapabilityName = "streaming" | "vision" | "function_calling" | "json_mode" | "reasoning";

export interface UseModelsOptions {
  providerId?: string;
  /** Leave out deprecated and sunset models. */
  excludeDeprecated?: boolean;
  capability?: ModelCapabilityName;
}

const sameModels = sameList(sameModel);

function hasCapability(model: ModelSpecification, capability: ModelCapabilityName): boolean {
  switch (capability) {
    case "streaming":
      return model.supports_streaming;
    case "vision":
      return model.supports_vision;
    case "function_calling":
      return model.supports_function_calling;
    case "json_mode":
      return model.supports_json_mode;
    case "reasoning":
      // Absent on the wire when false (added after the first release).
      return model.supports_reasoning === true;
  }
}

/**
 * Models matching the options; keeps its identity until a matching model
 * changes. (Deprecated models are in the state only with `includeDeprecated`.)
 */
export function useModels({ providerId, excludeDeprecated = false, capability }: UseModelsOptions = {}): ModelSpecification[] {
  const { service } = useProviderSyncContext("useModels");
  return useSelected(
    service,
    `${providerId ?? ""}|${excludeDeprecated}|${capability ?? ""}`,
    (state) =>
      state.models.filter(
        (m) =>
          (providerId === undefined || m.provider_id === providerId) &&
          (!excludeDeprecated || m.deprecation_status === "active") &&
          (capability === undefined || hasCapability(m, capability)),
      ),
    sameModels,
  );
}
