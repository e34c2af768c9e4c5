"use client";

// provider-sync/react-query: TanStack Query hooks over the service
// (`@tanstack/react-query` is an optional peer dependency; import this entry
// only where it is installed). Use inside a <ProviderSyncProvider> and a
// <QueryClientProvider>.
export {
  useSyncState,
  useProvider,
  useModel,
  useModelsFromState,
  useSyncWebSocket,
  useProviderSyncWithWebSocket,
  useModelAvailability,
  useProviderAvailability,
  type UseModelsFromStateOptions,
  type UseSyncWebSocketOptions,
} from "./hooks.js";
export { providerSyncKeys } from "./keys.js";
export { keysAffectedBy, type Affected } from "./invalidation.js";
