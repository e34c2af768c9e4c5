// The seed's Basic Usage example, as written there (Spinner and Error are
// the app's own components), on the package's React layer with its default
// config: the API at /api/provider-sync on the page's origin.
import { createRoot } from "react-dom/client";
import { ProviderSyncProvider, useProviderSync } from "provider-sync/react";

const Spinner = () => <p id="spinner">Loading…</p>;
const Error = ({ message }) => <p role="alert">{message}</p>;

function App() {
  return (
    <ProviderSyncProvider>
      <YourApp />
    </ProviderSyncProvider>
  );
}

function YourApp() {
  return <ProviderList />;
}

function ProviderList() {
  const { providers, isLoading, error } = useProviderSync();

  if (isLoading) return <Spinner />;
  if (error) return <Error message={error} />;

  return (
    <ul>
      {providers.map(p => (
        <li key={p.id}>{p.display_name}</li>
      ))}
    </ul>
  );
}

createRoot(document.getElementById("root")).render(<App />);
