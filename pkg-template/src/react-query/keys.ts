/**
 * The server as the service names it (`service.apiBaseUrl`): the URL
 * resolved against the page, without a trailing slash. So
 * `providerSyncKeys.state("/api/provider-sync")` is the key the hooks use
 * for a service configured with that `apiBaseUrl`.
 */
function server(apiBaseUrl: string): string {
  if (apiBaseUrl === "") return apiBaseUrl;
  try {
    const base = (globalThis as { location?: { href?: string } }).location?.href ?? "http://localhost/";
    // Resolved, then its trailing slashes trimmed, as the SDK does.
    return new URL(apiBaseUrl, base).href.replace(/\/+$/, "");
  } catch {
    return apiBaseUrl;
  }
}

/**
 * The TanStack Query keys this package uses, for your own invalidations.
 * Every key names the server (`apiBaseUrl`, as configured or as
 * `service.apiBaseUrl` gives it: both name the same key), so services of
 * two servers never share cached answers.
 */
export const providerSyncKeys = {
  all: ["provider-sync"] as const,
  server: (apiBaseUrl: string) => ["provider-sync", server(apiBaseUrl)] as const,
  /** A service with `includeDeprecated` has a state of its own (its models
   * list the deprecated ones): its key says so after the plain one's parts,
   * so invalidating the plain key reaches both. */
  state: (apiBaseUrl: string, includeDeprecated = false) =>
    includeDeprecated
      ? (["provider-sync", server(apiBaseUrl), "state", "include-deprecated"] as const)
      : (["provider-sync", server(apiBaseUrl), "state"] as const),
  modelAvailability: (apiBaseUrl: string, modelId: string) =>
    ["provider-sync", server(apiBaseUrl), "model-availability", modelId] as const,
  providerAvailability: (apiBaseUrl: string, providerId: string) =>
    ["provider-sync", server(apiBaseUrl), "provider-availability", providerId] as const,
};
