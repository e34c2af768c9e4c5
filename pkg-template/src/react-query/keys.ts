/**
 * The TanStack Query keys this package uses, for your own invalidations.
 * Every key names the server (`apiBaseUrl`), so two services never share
 * cached answers.
 */
export const providerSyncKeys = {
  all: ["provider-sync"] as const,
  server: (apiBaseUrl: string) => ["provider-sync", apiBaseUrl] as const,
  state: (apiBaseUrl: string) => ["provider-sync", apiBaseUrl, "state"] as const,
  modelAvailability: (apiBaseUrl: string, modelId: string) =>
    ["provider-sync", apiBaseUrl, "model-availability", modelId] as const,
  providerAvailability: (apiBaseUrl: string, providerId: string) =>
    ["provider-sync", apiBaseUrl, "provider-availability", providerId] as const,
};
