// A stand-in for the wasm service, for unit tests of the React layer only
// (the service itself is tested in a real browser against a real server).
import type {
  ModelQuery,
  ModelSpecification,
  ProviderSyncClientState,
  ProviderSyncEvent,
  ProviderSyncInfo,
} from "provider-sync";
import type { ProviderSyncServiceLike } from "provider-sync/react";

export function provider(id: string, extra: Partial<ProviderSyncInfo> = {}): ProviderSyncInfo {
  return {
    id,
    name: id,
    display_name: id.toUpperCase(),
    provider_type: "openai",
    base_url: null,
    health_url: null,
    enabled: true,
    priority: 0,
    status: "available",
    health: { last_check: null, latency_ms: null, error_rate: 0, consecutive_failures: 0, message: null },
    fallback_provider_id: null,
    capabilities: [],
    model_ids: [],
    revision: 1,
    ...extra,
  };
}

export function model(id: string, providerId: string, extra: Partial<ModelSpecification> = {}): ModelSpecification {
  return {
    id,
    name: id.toUpperCase(),
    provider_id: providerId,
    context_window: 8192,
    max_input_tokens: 8192,
    max_output_tokens: 4096,
    supports_streaming: true,
    supports_vision: false,
    supports_function_calling: false,
    supports_json_mode: false,
    pricing: null,
    deprecation_status: "active",
    deprecation_date: null,
    sunset_date: null,
    replacement_model_id: null,
    revision: 1,
    ...extra,
  };
}

export class FakeService implements ProviderSyncServiceLike {
  state: ProviderSyncClientState;
  stateListeners = new Set<(s: ProviderSyncClientState) => void>();
  eventListeners = new Set<(e: ProviderSyncEvent) => void>();
  initialized = 0;
  destroyed = 0;
  synced = 0;
  readonly apiBaseUrl = "http://test.invalid/api/provider-sync";
  includeDeprecated?: boolean;

  constructor(state: Partial<ProviderSyncClientState> = {}) {
    this.state = {
      status: "synced",
      isConnected: true,
      transport: "websocket",
      version: 1,
      epoch: "e1",
      checksum: "c",
      lastSyncTime: 1_700_000_000_000,
      error: null,
      lastError: null,
      providers: [],
      models: [],
      activeProviderId: null,
      defaultProviderId: null,
      fromCache: false,
      ...state,
    };
  }

  initialize() {
    this.initialized += 1;
    return Promise.resolve();
  }
  getState() {
    return this.state;
  }
  getModel(id: string) {
    return this.state.models.find((m) => m.id === id);
  }
  getProvider(id: string) {
    return this.state.providers.find((p) => p.id === id);
  }
  /** The test's stand-in for the wasm's filter: by provider, capability and
   * deprecation only, enough for the hooks' tests. */
  getModels(query: ModelQuery = {}) {
    return this.state.models.filter(
      (m) =>
        (query.providerId === undefined || m.provider_id === query.providerId) &&
        (!query.excludeDeprecated || m.deprecation_status === "active") &&
        (query.capability === undefined || (query.capability === "vision" ? m.supports_vision : true)),
    );
  }
  subscribe(listener: (s: ProviderSyncClientState) => void) {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }
  onEvent(listener: (e: ProviderSyncEvent) => void) {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }
  forceSync() {
    this.synced += 1;
    return Promise.resolve();
  }
  destroy() {
    this.destroyed += 1;
  }

  /** Publishes a new state object, as the service does after a change. */
  update(change: Partial<ProviderSyncClientState>) {
    this.state = { ...this.state, ...change, version: this.state.version + 1 };
    for (const listener of [...this.stateListeners]) listener(this.state);
  }

  emit(event: ProviderSyncEvent) {
    for (const listener of [...this.eventListeners]) listener(event);
  }
}
