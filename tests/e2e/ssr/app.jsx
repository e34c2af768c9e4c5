// The page both sides render: the server (renderToString, from the
// bootstrap state) and the browser (hydrateRoot, the same bootstrap).
import { useEffect } from "react";
import { ProviderSyncProvider, SyncStatusIndicator, useModels, useProviderSync } from "provider-sync/react";

function Catalog() {
  const { status, providers, version } = useProviderSync();
  const vision = useModels({ capability: "vision" });
  useEffect(() => {
    window.__hydrated = true;
  }, []);
  return (
    <main>
      <SyncStatusIndicator status={status} version={version} showDetails />
      <ul id="providers">
        {providers.map((p) => (
          <li key={p.id} data-provider-id={p.id}>
            {p.display_name} ({p.status})
          </li>
        ))}
      </ul>
      <p id="vision">{vision.length} vision models</p>
    </main>
  );
}

export function App({ config, bootstrap }) {
  return (
    <ProviderSyncProvider config={config} bootstrap={bootstrap}>
      <Catalog />
    </ProviderSyncProvider>
  );
}
