// Every hook tells a config the service refuses as an error, as
// `useProviderSync` does, with the real wasm: the TanStack hooks stayed
// pending for good and `useSyncStatus` said "syncing".
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { renderHook, waitFor } from "@testing-library/react";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { ReactNode } from "react";
import { beforeAll, describe, expect, it } from "vitest";
import { loadSync, type ProviderSyncConfig } from "provider-sync";
import { ProviderSyncProvider, useProviderSync, useSyncStatus } from "provider-sync/react";
import {
  useModelAvailability,
  useProviderAvailability,
  useProviderSyncWithWebSocket,
  useSyncState,
} from "provider-sync/react-query";

beforeAll(() => loadSync(readFileSync(resolve("../pkg/provider_sync_sdk_bg.wasm"))));

const refused = /invalid ProviderSyncService config: pollingInterval/;

function wrapperFor(config: ProviderSyncConfig) {
  const client = new QueryClient();
  return ({ children }: { children: ReactNode }) => (
    <QueryClientProvider client={client}>
      <ProviderSyncProvider config={config}>{children}</ProviderSyncProvider>
    </QueryClientProvider>
  );
}

describe("a config the service refuses", () => {
  it("is an error in every hook", async () => {
    const wrapper = wrapperFor({
      apiBaseUrl: "http://127.0.0.1:9/api/provider-sync",
      pollingInterval: "soon" as never,
      enableCache: false,
    });
    const { result } = renderHook(
      () => ({
        sync: useProviderSync(),
        status: useSyncStatus(),
        state: useSyncState(),
        live: useProviderSyncWithWebSocket(),
        model: useModelAvailability("gpt-4o"),
        provider: useProviderAvailability("openai"),
      }),
      { wrapper },
    );
    await waitFor(() => expect(result.current.sync.status).toBe("error"));
    expect(result.current.sync.error).toMatch(refused);
    expect(result.current.status).toMatchObject({ status: "error", hasError: true, isSyncing: false });
    await waitFor(() => expect(result.current.state.isError).toBe(true));
    expect(result.current.state.error?.message).toMatch(refused);
    expect(result.current.live.syncStatus).toBe("error");
    await waitFor(() => expect(result.current.model.isError && result.current.provider.isError).toBe(true));
    expect(result.current.model.error?.message).toMatch(refused);
    expect(result.current.provider.error?.message).toMatch(refused);
  });

  it("is no error once a service is given instead", async () => {
    const client = new QueryClient();
    const config = { apiBaseUrl: "http://127.0.0.1:9/api/provider-sync", pollingInterval: "soon" as never, enableCache: false };
    const { FakeService } = await import("./fake-service");
    const service = new FakeService({ providers: [], models: [] });
    let given: InstanceType<typeof FakeService> | undefined;
    const wrapper = ({ children }: { children: ReactNode }) => (
      <QueryClientProvider client={client}>
        <ProviderSyncProvider config={config} service={given}>{children}</ProviderSyncProvider>
      </QueryClientProvider>
    );
    const { result, rerender } = renderHook(() => ({ sync: useProviderSync(), status: useSyncStatus() }), { wrapper });
    await waitFor(() => expect(result.current.sync.status).toBe("error"));
    given = service;
    rerender();
    await waitFor(() => expect(result.current.status.hasError).toBe(false));
    expect(result.current.sync.error).toBe(null);
  });

  it("a hook outside the provider names itself", () => {
    const client = new QueryClient();
    const wrapper = ({ children }: { children: ReactNode }) => (
      <QueryClientProvider client={client}>{children}</QueryClientProvider>
    );
    expect(() => renderHook(() => useSyncState(), { wrapper })).toThrow(/^useSyncState must be used inside/);
    expect(() => renderHook(() => useModelAvailability("m"), { wrapper })).toThrow(
      /^useModelAvailability must be used inside/,
    );
  });
});
