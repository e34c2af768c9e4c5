/** The TanStack Query keys this package uses, for your own invalidations. */
export const providerSyncKeys = {
  all: ["provider-sync"] as const,
  state: () => ["provider-sync", "state"] as const,
  modelAvailability: (modelId: string) => ["provider-sync", "model-availability", modelId] as const,
  providerAvailability: (providerId: string) => ["provider-sync", "provider-availability", providerId] as const,
};
