import { act, render, renderHook, screen } from "@testing-library/react";
import { memo, StrictMode, type ReactNode } from "react";
import { describe, expect, it } from "vitest";
import {
  ProviderSyncProvider,
  useModel,
  useModels,
  useProvider,
  useProviders,
  useProviderSync,
  useProviderSyncService,
  useSyncStatus,
} from "provider-sync/react";
import { FakeService, model, provider } from "./fake-service";

function wrapperFor(service: FakeService) {
  return ({ children }: { children: ReactNode }) => (
    <ProviderSyncProvider service={service}>{children}</ProviderSyncProvider>
  );
}

function catalog() {
  return new FakeService({
    providers: [provider("openai"), provider("anthropic", { enabled: false })],
    models: [
      model("gpt-4o", "openai", { supports_vision: true }),
      model("gpt-3.5", "openai", { deprecation_status: "deprecated" }),
      model("claude", "anthropic"),
    ],
    activeProviderId: "openai",
  });
}

describe("hooks outside the provider", () => {
  it("throw an error that says what to do", () => {
    for (const hook of [useProviderSync, useProviders, useModels, useSyncStatus, () => useProvider("x")]) {
      expect(() => renderHook(hook)).toThrow(/inside <ProviderSyncProvider>/);
    }
  });
});

describe("useProviderSync", () => {
  it("gives the catalog and where the sync stands", async () => {
    const service = catalog();
    const { result } = renderHook(useProviderSync, { wrapper: wrapperFor(service) });
    expect(result.current.isLoading).toBe(false);
    expect(result.current.providers.map((p) => p.id)).toEqual(["openai", "anthropic"]);
    expect(result.current.activeProvider?.id).toBe("openai");
    expect(result.current.lastSyncTime).toEqual(new Date(1_700_000_000_000));
    await act(() => result.current.forceSync());
    expect(service.synced).toBe(1);
    expect(service.initialized).toBe(1);
  });

  it("passes on why the link is down without calling cached data an error", () => {
    const service = catalog();
    const { result } = renderHook(useProviderSync, { wrapper: wrapperFor(service) });
    act(() => service.update({ status: "stale", error: null, lastError: "POST /sync answered HTTP 500" }));
    expect(result.current.status).toBe("stale");
    expect(result.current.error).toBeNull();
    expect(result.current.lastError).toBe("POST /sync answered HTTP 500");
    expect(result.current.providers.map((p) => p.id)).toEqual(["openai", "anthropic"]);
  });

  it("is loading until there is data", () => {
    const service = new FakeService({ epoch: null, status: "syncing", version: 0 });
    const { result } = renderHook(useProviderSync, { wrapper: wrapperFor(service) });
    expect(result.current.isLoading).toBe(true);
    act(() => service.update({ epoch: "e1", status: "synced", providers: [provider("p")] }));
    expect(result.current.isLoading).toBe(false);
    expect(result.current.providers).toHaveLength(1);
  });
});

describe("selector hooks", () => {
  it("filter as asked", () => {
    const service = catalog();
    const wrapper = wrapperFor(service);
    expect(renderHook(() => useProviders({ enabledOnly: true }), { wrapper }).result.current.map((p) => p.id)).toEqual(["openai"]);
    const ids = (options: Parameters<typeof useModels>[0]) =>
      renderHook(() => useModels(options), { wrapper }).result.current.map((m) => m.id);
    expect(ids({ providerId: "openai" })).toEqual(["gpt-4o", "gpt-3.5"]);
    expect(ids({ providerId: "openai", excludeDeprecated: true })).toEqual(["gpt-4o"]);
    expect(ids({ capability: "vision" })).toEqual(["gpt-4o"]);
  });

  it("re-render only when their part changes", () => {
    const service = catalog();
    const renders = { providers: 0, models: 0, one: 0, status: 0 };
    function Probe() {
      useProviders();
      renders.providers += 1;
      return null;
    }
    function ModelsProbe() {
      useModels({ providerId: "anthropic" });
      renders.models += 1;
      return null;
    }
    function OneProbe() {
      useProvider("anthropic");
      renders.one += 1;
      return null;
    }
    function StatusProbe() {
      useSyncStatus();
      renders.status += 1;
      return null;
    }
    render(
      <ProviderSyncProvider service={service}>
        <Probe />
        <ModelsProbe />
        <OneProbe />
        <StatusProbe />
      </ProviderSyncProvider>,
    );
    const initial = { ...renders };

    // An OpenAI model changes: a new state and a new object for that model
    // (the service keeps every other entity the same object), but nothing
    // the provider hooks or the anthropic model list select.
    act(() =>
      service.update({
        models: service.state.models.map((m) => (m.id === "gpt-4o" ? { ...m, name: "GPT-4o!", revision: 2 } : m)),
      }),
    );
    expect(renders.providers).toBe(initial.providers);
    expect(renders.models).toBe(initial.models);
    expect(renders.one).toBe(initial.one);
    expect(renders.status).toBe(initial.status + 1); // the version moved

    // OpenAI's status changes: the provider list re-renders, anthropic's does not.
    act(() =>
      service.update({
        providers: service.state.providers.map((p) => (p.id === "openai" ? { ...p, status: "degraded", revision: 2 } : p)),
      }),
    );
    expect(renders.providers).toBe(initial.providers + 1);
    expect(renders.one).toBe(initial.one);
  });

  it("keep their result's identity between unrelated updates", () => {
    const service = catalog();
    const { result } = renderHook(() => useModels({ providerId: "openai" }), { wrapper: wrapperFor(service) });
    const first = result.current;
    act(() => service.update({ providers: [...service.state.providers] }));
    expect(result.current).toBe(first);
  });

  // What getModel finds (models the state leaves out included) is the
  // wasm's, tested in browsers (sdk/tests/browser.rs); here: the hook asks
  // the service, not the state, and asks again when the state changes.
  it("useModel asks the service's getModel, and again after a change", () => {
    const service = catalog();
    let hidden = model("old", "openai", { deprecation_status: "deprecated" });
    const asked: string[] = [];
    service.getModel = (id: string) => {
      asked.push(id);
      return id === "old" ? hidden : undefined;
    };
    const { result } = renderHook(() => useModel("old"), { wrapper: wrapperFor(service) });
    expect(result.current?.deprecation_status).toBe("deprecated");
    expect(asked).toContain("old");
    hidden = model("old", "openai", { deprecation_status: "sunset" });
    act(() => service.update({ version: 2 }));
    expect(result.current?.deprecation_status).toBe("sunset");
  });
});

describe("the provider", () => {
  it("is StrictMode-safe: one initialize effect result, one event subscription, no destroy of an injected service", () => {
    const service = catalog();
    const seen: string[] = [];
    const { unmount } = render(
      <StrictMode>
        <ProviderSyncProvider service={service} onSyncEvent={(e) => seen.push(e.type)}>
          <span>child</span>
        </ProviderSyncProvider>
      </StrictMode>,
    );
    expect(screen.getByText("child")).toBeTruthy();
    expect(service.eventListeners.size).toBe(1);
    act(() => service.emit({ type: "connected", transport: "websocket" }));
    expect(seen).toEqual(["connected"]);
    unmount();
    expect(service.eventListeners.size).toBe(0);
    expect(service.stateListeners.size).toBe(0);
    expect(service.destroyed).toBe(0);
  });

  it("does not re-render context consumers when its parent re-renders with the same props", () => {
    const service = catalog();
    let renders = 0;
    const Consumer = memo(function Consumer() {
      useProviderSyncService();
      renders += 1;
      return null;
    });
    function Parent({ label }: { label: string }) {
      return (
        <ProviderSyncProvider service={service}>
          <span>{label}</span>
          <Consumer />
        </ProviderSyncProvider>
      );
    }
    const { rerender } = render(<Parent label="first" />);
    expect(renders).toBe(1);
    rerender(<Parent label="second" />);
    expect(screen.getByText("second")).toBeTruthy();
    expect(renders).toBe(1);
  });

  it("uses the latest onSyncEvent without resubscribing", () => {
    const service = catalog();
    const calls: string[] = [];
    const { rerender } = render(<ProviderSyncProvider service={service} onSyncEvent={() => calls.push("first")} />);
    rerender(<ProviderSyncProvider service={service} onSyncEvent={() => calls.push("second")} />);
    act(() => service.emit({ type: "resynced", reason: "gap" }));
    expect(calls).toEqual(["second"]);
    expect(service.eventListeners.size).toBe(1);
  });
});
