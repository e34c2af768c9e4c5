import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { ProviderSyncProvider } from "provider-sync/react";
import "provider-sync/styles.css";
import "./app.css";
import { App } from "./App";

// ?api=URL points the app at a server elsewhere (the end-to-end tests do).
const apiBaseUrl = new URLSearchParams(location.search).get("api") ?? "/api/provider-sync";
const queryClient = new QueryClient();

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <ProviderSyncProvider
        config={{ apiBaseUrl, includeDeprecated: true, reconnectMaxDelay: 5000, logLevel: "info" }}
        onSyncEvent={(event) => console.debug("provider-sync event", event.type)}
      >
        <App />
      </ProviderSyncProvider>
    </QueryClientProvider>
  </StrictMode>,
);
