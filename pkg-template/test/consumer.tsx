// Type-checked with `tsc --noEmit --strict` (never run): every public export
// of the package used the way an application would, against the built
// declarations in pkg/.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import {
  DeprecationStatus,
  ModelDeprecationStatus,
  ProviderStatus,
  ProviderSyncService,
  SyncEventType,
  SyncStatus,
  createProviderSyncService,
  getProviderSyncService,
  load,
  loadProviderSyncService,
  resetProviderSyncService,
  sunsetOutlook,
  type ConnectionEvent,
  type ModelAvailability,
  type ModelFilter,
  type ModelSpecification,
  type ProviderAvailability,
  type ProviderSyncClientState,
  type ProviderSyncConfig,
  type ProviderSyncEvent,
  type ProviderSyncInfo,
  type SyncEvent,
  type SyncState,
  type Transport,
} from "provider-sync";
import {
  EMPTY_STATE,
  ModelDeprecationWarning,
  ProviderSyncProvider,
  ProviderUnavailableWarning,
  SyncStatusIndicator,
  useModel,
  useModels,
  useProvider,
  useProviderSync,
  useProviders,
  useProviderSyncService,
  useSyncStatus,
  type ModelCapabilityName,
  type ProviderSyncServiceLike,
  type ProviderSyncValue,
  type SyncStatusValue,
} from "provider-sync/react";
import {
  keysAffectedBy,
  providerSyncKeys,
  useModel as useModelQuery,
  useModelAvailability,
  useModelsFromState,
  useProvider as useProviderQuery,
  useProviderAvailability,
  useProviderSyncWithWebSocket,
  useSyncState,
  useSyncWebSocket,
} from "provider-sync/react-query";

const config: ProviderSyncConfig = { apiBaseUrl: "/api/provider-sync", pollingInterval: 30_000, logLevel: "info" };
// Values that may be undefined, passed as they are (this file is checked
// with exactOptionalPropertyTypes): an environment variable, an optional token.
declare const fromEnvironment: string | undefined;
declare const maybeToken: (() => string) | undefined;
export const maybeConfig: ProviderSyncConfig = {
  apiBaseUrl: fromEnvironment,
  wsUrl: fromEnvironment,
  cacheTtl: undefined,
  bootstrap: undefined,
  headers: undefined,
  getToken: maybeToken,
  credentials: undefined,
};
const filter: ModelFilter = { provider_id: "openai", capability: "vision" };

export async function plain(): Promise<number> {
  await load();
  const service: ProviderSyncService = await createProviderSyncService(config);
  const shared: ProviderSyncService = await loadProviderSyncService();
  const same: ProviderSyncService = getProviderSyncService();
  const unsubscribe: () => void = service.subscribe((state: ProviderSyncClientState) => {
    const status: SyncStatus = state.status;
    const transport: Transport = state.transport;
    const time: number | null = state.lastSyncTime;
    void [status, transport, time];
  });
  service.onEvent((event: ProviderSyncEvent) => {
    if (event.type === "model_added") {
      const added: ModelSpecification = event.data;
      void added;
    } else if (event.type === "resynced") {
      const reason: string = event.reason;
      void reason;
    }
  });
  await service.initialize();
  await service.forceSync();
  const models: ModelSpecification[] = service.getModels(filter);
  // As the README calls them: no filter, a date alone; and a page's request.
  const every: ModelSpecification[] = service.getModels();
  const outlook = sunsetOutlook("2027-01-01");
  const availability = (await service.fetchJson("/models/gpt-4o/availability", new AbortController().signal)) as ModelAvailability;
  void [every, outlook, availability];
  const provider: ProviderSyncInfo | undefined = service.getProvider("openai");
  // Always sent, so not optional in the types: no `?? 0` needed.
  const health: { error_rate: number; failures: number } | undefined = provider && {
    error_rate: provider.health.error_rate,
    failures: provider.health.consecutive_failures,
  };
  void health;
  const url: string = service.apiBaseUrl;
  await service.clearCache();
  unsubscribe();
  service.destroy();
  shared.destroy();
  same.destroy();
  resetProviderSyncService();
  const wire: SyncEvent | ConnectionEvent | SyncState | ModelAvailability | ProviderAvailability | undefined = undefined;
  void [models, provider, url, wire];
  return EMPTY_STATE.version;
}

// The seed's enums: run-time names whose values are the protocol's literals,
// and types of the same names.
export function enums(state: ProviderSyncClientState, event: ProviderSyncEvent, model: ModelSpecification): boolean {
  const status: SyncStatus = SyncStatus.SYNCED;
  let later: SyncStatus = "synced";
  later = SyncStatus.DISCONNECTED;
  const synced: "synced" = SyncStatus.SYNCED;
  // @ts-expect-error -- a connection event's type is not a sync status
  const wrong: SyncStatus = "connected";
  // @ts-expect-error -- the object is frozen (readonly)
  SyncStatus.SYNCED = "syncing";
  if (event.type === SyncEventType.MODEL_DEPRECATED) {
    // Narrowed by the constant, as by the literal.
    const deprecated: ModelSpecification = event.data;
    void deprecated;
  }
  const eventType: SyncEventType = SyncEventType.PROVIDER_STATUS_CHANGED;
  const seedName: ModelDeprecationStatus = ModelDeprecationStatus.DEPRECATED;
  const wasmName: DeprecationStatus = seedName;
  const provider: ProviderStatus = ProviderStatus.UNAVAILABLE;
  void [status, later, synced, wrong, eventType, wasmName, provider];
  return (
    state.status === SyncStatus.SYNCED &&
    (model.deprecation_status === ModelDeprecationStatus.DEPRECATED ||
      model.deprecation_status === DeprecationStatus.SUNSET)
  );
}

function Hooks() {
  const value: ProviderSyncValue = useProviderSync();
  const providers: ProviderSyncInfo[] = useProviders({ enabledOnly: true });
  const capability: ModelCapabilityName = "json_mode";
  const models: ModelSpecification[] = useModels({ providerId: "openai", excludeDeprecated: true, capability });
  const status: SyncStatusValue = useSyncStatus();
  const one: ProviderSyncInfo | undefined = useProvider("openai");
  const model: ModelSpecification | undefined = useModel("gpt-4o");
  const service: ProviderSyncServiceLike | null = useProviderSyncService();
  void [providers, models, one, service];
  return (
    <>
      <SyncStatusIndicator status={value.status} isConnected={status.isConnected} lastSyncTime={value.lastSyncTime}
        version={value.version} transport={status.transport} onSync={() => void value.forceSync()} showDetails />
      {model && (
        <ModelDeprecationWarning modelId={model.id} modelName={model.name} deprecationDate={model.deprecation_date}
          sunsetDate={model.sunset_date} replacementModelId={model.replacement_model_id}
          onSelectReplacement={(id: string) => console.log(id)} />
      )}
      {value.activeProvider && (
        <ProviderUnavailableWarning providerId={value.activeProvider.id} providerName={value.activeProvider.display_name}
          status={value.activeProvider.status} onSelectFallback={(id: string) => console.log(id)} />
      )}
    </>
  );
}

function QueryHooks() {
  const state = useSyncState();
  // The same shape as the provider-sync/react hooks of the same names.
  const provider: ProviderSyncInfo | undefined = useProviderQuery("openai");
  const model: ModelSpecification | undefined = useModelQuery("gpt-4o");
  const { models } = useModelsFromState({ providerId: "openai", excludeDeprecated: true });
  const { isConnected } = useSyncWebSocket({ onEvent: (e: ProviderSyncEvent) => console.log(e.type) });
  const all = useProviderSyncWithWebSocket();
  const availability: ModelAvailability | undefined = useModelAvailability("gpt-4o").data;
  const providerAvailability: ProviderAvailability | undefined = useProviderAvailability("openai").data;
  const keys = [providerSyncKeys.state("/api"), providerSyncKeys.modelAvailability("/api", "m"), providerSyncKeys.all];
  void [state.data?.version, provider, model, models, isConnected, all.forceSync, availability, providerAvailability, keys, keysAffectedBy];
  // The README's ModelInfo: values that may be undefined passed as they are
  // (this file is checked with exactOptionalPropertyTypes).
  return model ? (
    <ModelDeprecationWarning modelId={model.id} modelName={model.name}
      deprecationDate={model.deprecation_date} sunsetDate={model.sunset_date}
      deprecationStatus={model.deprecation_status}
      replacementModelId={availability?.replacement_model_id}
      replacementModelName={availability?.replacement_model_name} />
  ) : null;
}

export function App() {
  return (
    <QueryClientProvider client={new QueryClient()}>
      <ProviderSyncProvider config={config} onSyncEvent={(e: ProviderSyncEvent) => console.log(e)}>
        <Hooks />
        <QueryHooks />
      </ProviderSyncProvider>
    </QueryClientProvider>
  );
}
