import { useState } from "react";
import {
  ModelDeprecationWarning,
  ProviderUnavailableWarning,
  SyncStatusIndicator,
  useProviders,
  useProviderSync,
  useSyncStatus,
} from "provider-sync/react";
import {
  useModel,
  useModelAvailability,
  useProviderAvailability,
  useProviderSyncWithWebSocket,
} from "provider-sync/react-query";
import type { ProviderSyncInfo } from "provider-sync";

export function App() {
  const { status, isConnected, lastSyncTime, version, forceSync, isLoading, error, lastError } = useProviderSync();
  const { transport } = useSyncStatus();
  return (
    <>
      <header>
        <h1>Model picker</h1>
        <SyncStatusIndicator status={status} isConnected={isConnected} lastSyncTime={lastSyncTime}
          version={version} transport={transport} onSync={() => void forceSync().catch(() => undefined)} showDetails />
      </header>
      {isLoading ? <p>Loading the catalog…</p> : error ? <p role="alert">{error}</p> : null}
      {!error && lastError && <p className="psync-offline">Showing the last copy: {lastError}</p>}
      <main>
        <ProviderList />
        <ModelPicker />
        <DeprecatedModels />
      </main>
    </>
  );
}

function ProviderCard({ provider, onSelect }: { provider: ProviderSyncInfo; onSelect: (id: string) => void }) {
  const { data: availability } = useProviderAvailability(provider.status === "available" ? undefined : provider.id);
  return (
    <li data-provider-id={provider.id}>
      <span className="name">{provider.display_name}</span>
      <span className={`badge status badge-${provider.status}`}>{provider.status}</span>
      <br />
      <small>{provider.model_ids.length} models · {provider.provider_type}</small>
      <ProviderUnavailableWarning providerId={provider.id} providerName={provider.display_name} status={provider.status}
        message={provider.health.message} fallbackProviderId={availability?.fallback_provider_id}
        fallbackProviderName={availability?.fallback_provider_name} onSelectFallback={onSelect} />
    </li>
  );
}

function ProviderList() {
  const providers = useProviders();
  const [chosen, setChosen] = useState<string | null>(null);
  return (
    <section aria-labelledby="providers-title">
      <h2 id="providers-title">Providers {chosen && <small>(switched to {chosen})</small>}</h2>
      <ul className="providers">
        {providers.map((p) => <ProviderCard key={p.id} provider={p} onSelect={setChosen} />)}
      </ul>
    </section>
  );
}

function ModelDetails({ modelId, onSelect }: { modelId: string; onSelect: (id: string) => void }) {
  const model = useModel(modelId);
  const { data: availability } = useModelAvailability(modelId);
  if (!model) return <p>That model is gone.</p>;
  return (
    <div className="details" data-selected-model={model.id}>
      <h3>{model.name}</h3>
      <p>
        {model.context_window.toLocaleString()} tokens of context, {model.max_output_tokens.toLocaleString()} out
        {model.pricing && ` · $${model.pricing.input_per_million} in / $${model.pricing.output_per_million} out per 1M`}
        {availability && ` · ${availability.is_available ? "available" : "not available"}`}
      </p>
      {model.deprecation_status !== "active" && (
        <ModelDeprecationWarning modelId={model.id} modelName={model.name} deprecationDate={model.deprecation_date}
          sunsetDate={model.sunset_date} deprecationStatus={model.deprecation_status} replacementModelId={availability?.replacement_model_id ?? model.replacement_model_id}
          replacementModelName={availability?.replacement_model_name} onSelectReplacement={onSelect} />
      )}
    </div>
  );
}

function ModelPicker() {
  const { models } = useProviderSyncWithWebSocket();
  const [selected, setSelected] = useState<string>("");
  const current = selected || models.find((m) => m.deprecation_status === "active")?.id || "";
  return (
    <section aria-labelledby="picker-title">
      <h2 id="picker-title">Models <small>({models.length})</small></h2>
      <label>
        Model{" "}
        <select aria-label="Model" value={current} onChange={(e) => setSelected(e.target.value)}>
          {models.map((m) => (
            <option key={m.id} value={m.id} data-model-id={m.id}>
              {m.name}{m.deprecation_status === "active" ? "" : ` (${m.deprecation_status})`}
            </option>
          ))}
        </select>
      </label>
      {current && <ModelDetails modelId={current} onSelect={setSelected} />}
    </section>
  );
}

function DeprecatedModels() {
  const { models } = useProviderSync();
  const deprecated = models.filter((m) => m.deprecation_status !== "active");
  const names = new Map(models.map((m) => [m.id, m.name]));
  return (
    <section aria-labelledby="deprecated-title">
      <h2 id="deprecated-title">Deprecated models ({deprecated.length})</h2>
      {deprecated.map((m) => (
        <ModelDeprecationWarning key={m.id} modelId={m.id} modelName={m.name} deprecationDate={m.deprecation_date}
          sunsetDate={m.sunset_date} deprecationStatus={m.deprecation_status} replacementModelId={m.replacement_model_id}
          replacementModelName={m.replacement_model_id ? names.get(m.replacement_model_id) : undefined} />
      ))}
    </section>
  );
}
