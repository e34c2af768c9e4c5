import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, renderHook, waitFor } from "@testing-library/react";
import type { ReactNode } from "react";
import { describe, expect, it } from "vitest";
import { ProviderSyncProvider } from "provider-sync/react";
import {
  keysAffectedBy,
  providerSyncKeys,
  useModelsFromState,
  useProvider,
  useProviderSyncWithWebSocket,
  useSyncWebSocket,
} from "provider-sync/react-query";
import { FakeService, model, provider } from "./fake-service";

function setup() {
  const service = new FakeService({
    providers: [provider("openai", { model_ids: ["gpt-4o", "gpt-4.1"] }), provider("anthropic")],
    models: [model("gpt-4o", "openai"), model("gpt-4.1", "openai"), model("claude", "anthropic")],
  });
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const wrapper = ({ children }: { children: ReactNode }) => (
    <QueryClientProvider client={client}>
      <ProviderSyncProvider service={service}>{children}</ProviderSyncProvider>
    </QueryClientProvider>
  );
  // Availability answers already cached, as if components had asked.
  for (const id of ["gpt-4o", "gpt-4.1", "claude"]) client.setQueryData(providerSyncKeys.modelAvailability(id), { id });
  for (const id of ["openai", "anthropic"]) client.setQueryData(providerSyncKeys.providerAvailability(id), { id });
  return { service, client, wrapper };
}

function invalidated(client: QueryClient): string[] {
  return client
    .getQueryCache()
    .getAll()
    .filter((q) => q.state.isInvalidated)
    .map((q) => q.queryKey.slice(1).join(":"))
    .sort();
}

describe("query keys affected by events", () => {
  it("are exactly the entity's availability (and a provider's models')", () => {
    const { service, client, wrapper } = setup();
    renderHook(() => useSyncWebSocket(), { wrapper });

    act(() => service.emit({ id: "e", version: 2, timestamp: "t", type: "model_deprecated", data: model("gpt-4o", "openai") }));
    expect(invalidated(client)).toEqual(["model-availability:gpt-4o"]);

    act(() =>
      service.emit({
        id: "e",
        version: 3,
        timestamp: "t",
        type: "provider_status_changed",
        data: {
          provider_id: "openai",
          previous_status: "available",
          status: "unavailable",
          health: { last_check: null, latency_ms: null, error_rate: 1, consecutive_failures: 2, message: "down" },
          revision: 2,
        },
      }),
    );
    expect(invalidated(client)).toEqual([
      "model-availability:gpt-4.1",
      "model-availability:gpt-4o",
      "provider-availability:openai",
    ]);
  });

  it("are everything (but the state) after a resync", () => {
    const service = new FakeService();
    expect(keysAffectedBy({ type: "resynced", reason: "epoch_changed" }, service)).toBe("all");
    expect(keysAffectedBy({ type: "connected", transport: "websocket" }, service)).toEqual([]);
  });
});

describe("state through TanStack Query", () => {
  it("follows the service", async () => {
    const { service, wrapper } = setup();
    const { result } = renderHook(
      () => ({ all: useProviderSyncWithWebSocket(), openai: useModelsFromState({ providerId: "openai" }), one: useProvider("anthropic") }),
      { wrapper },
    );
    await waitFor(() => expect(result.current.all.providers).toHaveLength(2));
    expect(result.current.openai.models.map((m) => m.id)).toEqual(["gpt-4o", "gpt-4.1"]);
    expect(result.current.one.provider?.id).toBe("anthropic");
    expect(result.current.all.isConnected).toBe(true);
    act(() => service.update({ providers: [...service.state.providers, provider("mistral")] }));
    // TanStack Query delivers cache updates on its own schedule.
    await waitFor(() => expect(result.current.all.providers.map((p) => p.id)).toContain("mistral"));
    await act(() => result.current.all.forceSync());
    expect(service.synced).toBe(1);
  });
});
