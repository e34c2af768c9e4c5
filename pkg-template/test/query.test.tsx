import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, renderHook, waitFor } from "@testing-library/react";
import type { ReactNode } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ProviderSyncProvider, useModel, useProvider } from "provider-sync/react";
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
  // Availability answers already cached, as if components had asked; claude
  // names gpt-4o as its replacement. Another server's answers too.
  const base = service.apiBaseUrl;
  for (const id of ["gpt-4o", "gpt-4.1", "claude"]) {
    client.setQueryData(providerSyncKeys.modelAvailability(base, id), {
      id,
      replacement_model_id: id === "claude" ? "gpt-4o" : null,
    });
  }
  for (const id of ["openai", "anthropic"]) client.setQueryData(providerSyncKeys.providerAvailability(base, id), { id });
  client.setQueryData(providerSyncKeys.modelAvailability("http://other.invalid", "gpt-4o"), { id: "gpt-4o" });
  return { service, client, wrapper };
}

function invalidated(client: QueryClient): string[] {
  return client
    .getQueryCache()
    .getAll()
    .filter((q) => q.state.isInvalidated)
    .map((q) => (q.queryKey[1] === "http://other.invalid" ? "other:" : "") + q.queryKey.slice(2).join(":"))
    .sort();
}

describe("query keys affected by events", () => {
  it("are exactly the entity's availability (and a provider's models')", () => {
    const { service, client, wrapper } = setup();
    renderHook(() => useSyncWebSocket(), { wrapper });

    act(() => service.emit({ id: "e", version: 2, timestamp: "t", type: "model_deprecated", data: model("gpt-4o", "openai") }));
    // The model, and the answer that names it as a replacement; not the other server's.
    expect(invalidated(client)).toEqual(["model-availability:claude", "model-availability:gpt-4o"]);

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
    // Its models (from model_ids, deprecated ones included) and every
    // provider's answer (fallback suggestions depend on the others).
    expect(invalidated(client)).toEqual([
      "model-availability:claude",
      "model-availability:gpt-4.1",
      "model-availability:gpt-4o",
      "provider-availability:anthropic",
      "provider-availability:openai",
    ]);
  });

  it("are everything (but the state) after a resync", () => {
    const service = new FakeService();
    expect(keysAffectedBy({ type: "resynced", reason: "epoch_changed" }, service).everything).toBe(true);
    // The link up: what failed is asked again (an answer refused before a
    // login, a request the outage failed).
    expect(keysAffectedBy({ type: "connected", transport: "websocket" }, service)).toEqual({
      models: [],
      providers: [],
      failed: true,
    });
  });
});

describe("state through TanStack Query", () => {
  it("follows the service", async () => {
    const { service, wrapper } = setup();
    const { result } = renderHook(
      () => ({ all: useProviderSyncWithWebSocket(), openai: useModelsFromState({ providerId: "openai" }), one: useProviderQuery("anthropic") }),
      { wrapper },
    );
    await waitFor(() => expect(result.current.all.providers).toHaveLength(2));
    expect(result.current.openai.models.map((m) => m.id)).toEqual(["gpt-4o", "gpt-4.1"]);
    expect(result.current.one?.id).toBe("anthropic");
    expect(result.current.all.isConnected).toBe(true);
    act(() => service.update({ providers: [...service.state.providers, provider("mistral")] }));
    // TanStack Query delivers cache updates on its own schedule.
    await waitFor(() => expect(result.current.all.providers.map((p) => p.id)).toContain("mistral"));
    await act(() => result.current.all.forceSync());
    expect(service.synced).toBe(1);
  });
});

describe("the sync status without a catalog", () => {
  it("is error once the first fetch failed, not syncing", async () => {
    class Unreachable extends FakeService {
      override initialize() {
        this.initialized += 1;
        return Promise.reject(new Error("the server cannot be reached"));
      }
    }
    const service = new Unreachable({ status: "error", epoch: null, isConnected: false, transport: "offline" });
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    const wrapper = ({ children }: { children: ReactNode }) => (
      <QueryClientProvider client={client}>
        <ProviderSyncProvider service={service}>{children}</ProviderSyncProvider>
      </QueryClientProvider>
    );
    const { result } = renderHook(() => useProviderSyncWithWebSocket(), { wrapper });
    expect(result.current.syncStatus).toBe("syncing");
    await waitFor(() => expect(result.current.isError).toBe(true));
    expect(result.current.syncStatus).toBe("error");
  });
});

describe("useProvider and useModel", () => {
  it("return the same entity object from ./react and ./react-query, kept while unchanged", async () => {
    const { service, wrapper } = setup();
    const { result } = renderHook(
      () => ({
        version: useSyncState().data?.version,
        provider: useProvider("openai"),
        providerQuery: useProviderQuery("openai"),
        model: useModel("gpt-4o"),
        modelQuery: useModelQuery("gpt-4o"),
        missing: useModelQuery("nope"),
      }),
      { wrapper },
    );
    await waitFor(() => expect(result.current.version).toBe(1));
    const openai = service.state.providers[0]!;
    const gpt4o = service.state.models[0]!;
    expect(result.current.provider).toBe(openai);
    expect(result.current.providerQuery).toBe(openai);
    expect(result.current.model).toBe(gpt4o);
    expect(result.current.modelQuery).toBe(gpt4o);
    expect(result.current.missing).toBeUndefined();

    // A new state in which neither changed (the service keeps unchanged
    // entities the same objects): both keep them.
    act(() => service.update({}));
    await waitFor(() => expect(result.current.version).toBe(2));
    expect(result.current.providerQuery).toBe(openai);
    expect(result.current.provider).toBe(openai);
    expect(result.current.modelQuery).toBe(gpt4o);
    expect(result.current.model).toBe(gpt4o);

    // The model changes: both give the new object.
    act(() =>
      service.update({
        models: service.state.models.map((m) => (m.id === "gpt-4o" ? { ...m, name: "GPT-4o!", revision: 2 } : m)),
      }),
    );
    await waitFor(() => expect(result.current.version).toBe(3));
    expect(result.current.modelQuery?.name).toBe("GPT-4o!");
    expect(result.current.modelQuery).toBe(result.current.model);
    expect(result.current.providerQuery).toBe(openai);
  });
});

describe("availability queries", () => {
  afterEach(() => vi.unstubAllGlobals());

  /** A server answering every availability request; counts them by path. */
  function stubFetch(base: string) {
    const calls = new Map<string, number>();
    vi.stubGlobal("fetch", (url: string) => {
      const path = url.slice(base.length);
      calls.set(path, (calls.get(path) ?? 0) + 1);
      const id = decodeURIComponent(path.split("/")[2]!);
      // claude's answer names gpt-4o as its replacement.
      const body = { id, replacement_model_id: id === "claude" ? "gpt-4o" : null };
      return Promise.resolve(new Response(JSON.stringify(body), { status: 200 }));
    });
    return calls;
  }

  it("refetch once per affected key per event, however many hooks are mounted", async () => {
    const service = new FakeService({
      providers: [provider("openai", { model_ids: ["gpt-4o", "gpt-4.1"] }), provider("anthropic", { model_ids: ["claude"] })],
      models: [model("gpt-4o", "openai"), model("gpt-4.1", "openai"), model("claude", "anthropic"), model("llama", "meta")],
    });
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    const wrapper = ({ children }: { children: ReactNode }) => (
      <QueryClientProvider client={client}>
        <ProviderSyncProvider service={service}>{children}</ProviderSyncProvider>
      </QueryClientProvider>
    );
    const calls = stubFetch(service.apiBaseUrl);
    const models = ["gpt-4o", "gpt-4.1", "claude", "llama"];
    const providers = ["openai", "anthropic"];
    const { unmount } = renderHook(
      () => {
        // 32 model hooks and 8 provider hooks over six keys, plus the socket hook.
        for (let i = 0; i < 32; i += 1) useModelAvailability(models[i % 4]);
        for (let i = 0; i < 8; i += 1) useProviderAvailability(providers[i % 2]);
        useSyncWebSocket();
      },
      { wrapper },
    );
    const counts = () => Object.fromEntries([...calls].sort(([a], [b]) => a.localeCompare(b)));
    const settled = () => waitFor(() => expect(client.isFetching()).toBe(0));
    await waitFor(() => expect(calls.size).toBe(6));
    await settled();
    expect(counts()).toEqual({
      "/models/claude/availability": 1,
      "/models/gpt-4.1/availability": 1,
      "/models/gpt-4o/availability": 1,
      "/models/llama/availability": 1,
      "/providers/anthropic/availability": 1,
      "/providers/openai/availability": 1,
    });
    // The provider's own listener and one for invalidation, not one per hook.
    expect(service.eventListeners.size).toBe(2);

    // gpt-4o is deprecated: its answer and claude's (which names it) again.
    act(() => service.emit({ id: "e", version: 2, timestamp: "t", type: "model_deprecated", data: model("gpt-4o", "openai") }));
    await waitFor(() => expect(calls.get("/models/claude/availability")).toBe(2));
    await settled();
    expect(counts()).toEqual({
      "/models/claude/availability": 2,
      "/models/gpt-4.1/availability": 1,
      "/models/gpt-4o/availability": 2,
      "/models/llama/availability": 1,
      "/providers/anthropic/availability": 1,
      "/providers/openai/availability": 1,
    });

    // anthropic's status changes: its model, and every provider's answer.
    act(() =>
      service.emit({
        id: "e",
        version: 3,
        timestamp: "t",
        type: "provider_status_changed",
        data: {
          provider_id: "anthropic",
          previous_status: "available",
          status: "degraded",
          health: { last_check: null, latency_ms: null, error_rate: 0.5, consecutive_failures: 1, message: null },
          revision: 2,
        },
      }),
    );
    await waitFor(() => expect(calls.get("/providers/openai/availability")).toBe(2));
    await settled();
    expect(counts()).toEqual({
      "/models/claude/availability": 3,
      "/models/gpt-4.1/availability": 1,
      "/models/gpt-4o/availability": 2,
      "/models/llama/availability": 1,
      "/providers/anthropic/availability": 2,
      "/providers/openai/availability": 2,
    });

    unmount();
    expect(service.eventListeners.size).toBe(0);
  });

  it("pass TanStack's abort signal to fetch, so unmounting cancels the request", async () => {
    const service = new FakeService();
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    const wrapper = ({ children }: { children: ReactNode }) => (
      <QueryClientProvider client={client}>
        <ProviderSyncProvider service={service}>{children}</ProviderSyncProvider>
      </QueryClientProvider>
    );
    const signals: (AbortSignal | null | undefined)[] = [];
    // A request that never answers, unless aborted.
    vi.stubGlobal("fetch", (_url: string, init?: RequestInit) => {
      signals.push(init?.signal);
      return new Promise((_resolve, reject) =>
        init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))),
      );
    });
    const { unmount } = renderHook(() => useModelAvailability("gpt-4o"), { wrapper });
    await waitFor(() => expect(signals).toHaveLength(1));
    const signal = signals[0];
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(signal!.aborted).toBe(false);
    unmount();
    expect(signal!.aborted).toBe(true);
  });
});

describe("what the black-box check of the package found (2026-12-01)", () => {
  afterEach(() => vi.unstubAllGlobals());

  function around(service: FakeService, client: QueryClient) {
    return ({ children }: { children: ReactNode }) => (
      <QueryClientProvider client={client}>
        <ProviderSyncProvider service={service}>{children}</ProviderSyncProvider>
      </QueryClientProvider>
    );
  }

  it("availability goes through the service's fetchJson, and an answer the server refused is not asked again", async () => {
    const service = new FakeService({ models: [model("gpt-4o", "openai")] });
    const asked: [string, AbortSignal | null | undefined][] = [];
    const plain = vi.fn();
    vi.stubGlobal("fetch", plain);
    Object.assign(service, {
      fetchJson: (path: string, signal?: AbortSignal | null) => {
        asked.push([path, signal]);
        if (path.includes("gone")) return Promise.reject(Object.assign(new Error("GET …: HTTP 404"), { status: 404 }));
        return Promise.resolve({ model_id: "gpt-4o", is_available: true });
      },
    });
    // TanStack's default: three retries, a second or more apart.
    const client = new QueryClient();
    const { result } = renderHook(() => ({ ok: useModelAvailability("gpt-4o"), gone: useModelAvailability("gone") }), {
      wrapper: around(service, client),
    });
    await waitFor(() => expect(result.current.ok.data?.model_id).toBe("gpt-4o"));
    await waitFor(() => expect(result.current.gone.isError).toBe(true));
    expect((result.current.gone.error as Error & { status?: number }).status).toBe(404);
    expect(asked.map(([path]) => path).sort()).toEqual(["/models/gone/availability", "/models/gpt-4o/availability"]);
    expect(asked.every(([, signal]) => signal instanceof AbortSignal)).toBe(true);
    expect(plain).not.toHaveBeenCalled();
  });

  it("keys name the server the same way configured or resolved", () => {
    const resolved = new URL("/api/provider-sync", location.href).href;
    expect(providerSyncKeys.state("/api/provider-sync")).toEqual(providerSyncKeys.state(resolved));
    expect(providerSyncKeys.state("/api/provider-sync/")).toEqual(providerSyncKeys.state(resolved));
    expect(providerSyncKeys.modelAvailability("/api/provider-sync", "m")).toEqual(
      providerSyncKeys.modelAvailability(resolved, "m"),
    );
    expect(providerSyncKeys.state("http://a.invalid/x")).not.toEqual(providerSyncKeys.state("http://b.invalid/x"));
    // "/" is the page's origin, as `service.apiBaseUrl` has it (the SDK
    // trims the slashes once the URL is resolved), from a page that is not
    // at the root.
    const page = location.href;
    history.pushState(null, "", "/app/page");
    try {
      expect(providerSyncKeys.state("/")[1]).toBe(location.origin);
    } finally {
      history.pushState(null, "", page);
    }
  });

  it("the state query is pending until there is a catalog and failed when the first fetch fails", async () => {
    const service = new FakeService({ status: "syncing", epoch: null, version: 0, providers: [], models: [] });
    const pending: ((e: Error) => void)[] = [];
    const fail = (e: Error) => pending.splice(0).forEach((reject) => reject(e));
    service.initialize = () => new Promise<void>((_, reject) => pending.push(reject));
    const client = new QueryClient();
    const { result } = renderHook(() => useSyncState(), { wrapper: around(service, client) });
    expect(result.current.isPending).toBe(true);
    // A state without a catalog (the service's error) is not the data.
    act(() => service.update({ status: "error", epoch: null }));
    expect(result.current.isPending).toBe(true);
    act(() => fail(new Error("GET /state failed")));
    await waitFor(() => expect(result.current.isError).toBe(true));
    // The service keeps retrying; once it has the catalog, so has the query.
    act(() => service.update({ status: "synced", epoch: "e1", providers: [provider("openai")] }));
    await waitFor(() => expect(result.current.isSuccess).toBe(true));
    expect(result.current.data?.providers).toHaveLength(1);
  });

  it("useModelsFromState's models and useProviderSyncWithWebSocket's forceSync keep their identity across renders (2026-12-02)", async () => {
    const service = new FakeService({ providers: [provider("openai")], models: [model("gpt-5", "openai")] });
    const client = new QueryClient();
    const { result, rerender } = renderHook(
      () => ({ filtered: useModelsFromState({ providerId: "openai" }), live: useProviderSyncWithWebSocket() }),
      { wrapper: around(service, client) },
    );
    const first = result.current;
    expect(first.filtered.models.map((m) => m.id)).toEqual(["gpt-5"]);
    rerender();
    // Effects that depend on them ran at every render.
    expect(result.current.filtered.models).toBe(first.filtered.models);
    expect(result.current.live.forceSync).toBe(first.live.forceSync);
    // A change gives new ones.
    act(() => service.update({ models: [model("gpt-5", "openai"), model("gpt-6", "openai")] }));
    await waitFor(() => expect(result.current.filtered.models.map((m) => m.id)).toEqual(["gpt-5", "gpt-6"]));
  });

  it("a catalog the service holds is the data of the first render", () => {
    const service = new FakeService({ providers: [provider("openai")], models: [model("gpt-5", "openai")] });
    const client = new QueryClient();
    const firsts: (string | undefined)[] = [];
    function First() {
      const model = useModelQuery("gpt-5");
      const { data, isPending } = useSyncState();
      if (firsts.length === 0) firsts.push(model?.id, String(isPending), String(data?.providers.length));
      return null;
    }
    renderHook(() => null, { wrapper: () => around(service, client)({ children: <First /> }) });
    expect(firsts).toEqual(["gpt-5", "false", "1"]);
  });
});
