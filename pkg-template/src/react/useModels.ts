"use client";

import type { ModelCapability, ModelSpecification } from "../index.js";
import { useProviderSyncContext } from "./context.js";
import { sameEntity, sameList, useSelected } from "./store.js";

/** The capabilities a model filter names (`ModelCapability` of the wasm). */
export type ModelCapabilityName = ModelCapability;

export interface UseModelsOptions {
  providerId?: string | undefined;
  /** Leave out deprecated and sunset models. */
  excludeDeprecated?: boolean | undefined;
  capability?: ModelCapabilityName | undefined;
}

const sameModels = sameList<ModelSpecification>(sameEntity);
const none: ModelSpecification[] = [];

/**
 * Models matching the options, filtered by the service (`getModels`, the
 * same rule as the server's `GET /models`); keeps its identity until a
 * matching model changes. (Deprecated models are in the state only with
 * `includeDeprecated`.)
 */
export function useModels({ providerId, excludeDeprecated = false, capability }: UseModelsOptions = {}): ModelSpecification[] {
  const { service } = useProviderSyncContext("useModels");
  return useSelected(
    service,
    `${providerId ?? ""}|${excludeDeprecated}|${capability ?? ""}`,
    () => (service ? service.getModels({ providerId, excludeDeprecated, capability }) : none),
    sameModels,
  );
}
