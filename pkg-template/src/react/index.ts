"use client";

// provider-sync/react: a provider, hooks and components over the wasm
// service. No sync logic lives here; it reads the service's state.
export {
  ProviderSyncProvider,
  useProviderSyncService,
  type ProviderSyncProviderProps,
  type ProviderSyncServiceLike,
} from "./context.js";
export { useProviderSync, type ProviderSyncValue } from "./useProviderSync.js";
export { useProviders, type UseProvidersOptions } from "./useProviders.js";
export { useModels, type UseModelsOptions, type ModelCapabilityName } from "./useModels.js";
export { useSyncStatus, type SyncStatusValue } from "./useSyncStatus.js";
export { useProvider } from "./useProvider.js";
export { useModel } from "./useModel.js";
export { EMPTY_STATE } from "./store.js";
export { SyncStatusIndicator, type SyncStatusIndicatorProps } from "./components/SyncStatusIndicator.js";
export {
  ModelDeprecationWarning,
  type ModelDeprecationWarningProps,
} from "./components/ModelDeprecationWarning.js";
export {
  ProviderUnavailableWarning,
  type ProviderUnavailableWarningProps,
} from "./components/ProviderUnavailableWarning.js";
