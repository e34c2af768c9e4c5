// The TanStack Query hooks across the provider's own services (no `service`
// prop): a new service on a config change or a remount, two providers under
// one QueryClient. The wasm service is replaced by a stand-in whose every
// instance the test plans (the real one is tested in browsers); found by a
// black-box check of the package (2026-12-02).
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, render, waitFor } from "@testing-library/react";
import type { ReactNode } from "react";
import { describe, expect, it, vi } from "vitest";
import type { ProviderSyncConfig } from "provider-sync";
import { ProviderSyncProvider, useProviderSync } from "provider-sync/react";
import {
  useModelAvailability,
  useProviderSyncWithWebSocket,
  useSyncState,
  useSyncWebSocket,
} from "provider-sync/react-query";
import { FakeService, model, provider } from "./fake-service";

const plan = vi.hoisted(() => ({
  make: (_config: Record<string, unknown>): unknown => {
    throw new Error("no service planned");
  },
  made: [] as unknown[],
}));

vi.mock("provider-sync", async (importOriginal) => {
  const actual = await importOriginal<Record<string, unknown>>();
  // `new` on a function that returns an object gives that object.
  function Planned(config: Record<string, unknown>) {
    const service = plan.make(config);
    plan.made.push(service);
    return service;
  }
  return {
    ...actual,
    isLoaded: () => true,
    ProviderSyncService: Planned,
    createProviderSyncService: async (config: Record<string, unknown>) => plan.make(config),
  };
});

/** A service as the real one behaves when destroyed: it announces its last
 * state (disconnected) to its listeners. */
function service(state: ConstructorParameters<typeof FakeService>[0], extra: Record<string, unknown> = {}) {
  const made = new FakeService(state);
  made.destroy = () => {
    made.destroyed += 1;
    made.update({ status: "disconnected", isConnected: false, transport: "offline" });
  };
  return Object.assign(made, extra);
}

function refused(status: number) {
  return Promise.reject(Object.assign(new Error(`GET …: HTTP ${status}`), { status }));
}

function tree(client: QueryClient, config: ProviderSyncConfig, children: ReactNode) {
  return (
    <QueryClientProvider client={client}>
      <ProviderSyncProvider config={config}>{children}</ProviderSyncProvider>
    </QueryClientProvider>
  );
}

/** A tree whose provider is given `given` (its `service` prop). */
function givenTree(client: QueryClient, given: FakeService, children: ReactNode) {
  return (
    <QueryClientProvider client={client}>
      <ProviderSyncProvider service={given}>{children}</ProviderSyncProvider>
    </QueryClientProvider>
  );
}

/** A service without a catalog whose first fetch fails (its server down). */
function failingFirstFetch() {
  const failing = service({ status: "syncing", isConnected: false, epoch: null, version: 0 });
  failing.initialize = () => Promise.reject(new Error("GET /state failed"));
  return failing;
}

/** A service the server refuses (no token yet), asking with `fetchJson`. */
function refusedService(fetchJson: () => Promise<unknown>) {
  return service(
    { status: "error", isConnected: false, transport: "offline", epoch: null, version: 0 },
    { fetchJson },
  );
}

describe("the TanStack hooks across the provider's services", () => {
  it("a new service without a catalog does not show the last one's, which it let go of", async () => {
    const seen: { query: ReturnType<typeof useSyncState>; status: string }[] = [];
    function Probe() {
      const query = useSyncState();
      const { status } = useProviderSync();
      seen.push({ query, status });
      return null;
    }
    plan.make = () => service({ providers: [provider("openai")], models: [model("gpt-4o", "openai")] });
    const client = new QueryClient();
    const config = { apiBaseUrl: "http://test.invalid/api/provider-sync", pollingInterval: 1000 };
    const { rerender } = render(tree(client, config, <Probe />));
    await waitFor(() => expect(seen.at(-1)!.query.data?.models).toHaveLength(1));
    // The server is gone and the new service has nothing cached: its first
    // fetch fails.
    plan.make = () => {
      const next = failingFirstFetch();
      return next;
    };
    rerender(tree(client, { ...config, pollingInterval: 2000 }, <Probe />));
    await waitFor(() => expect(seen.at(-1)!.query.isError).toBe(true));
    const last = seen.at(-1)!;
    expect(last.query.data).toBeUndefined();
    expect(last.status).not.toBe("synced");
  });

  it("a swapped service prop without a catalog does not show the last one's", async () => {
    // Found in a review (2026-12-02): the reset covered only services the
    // provider made; a page's own service swapped for another (after a
    // login) kept showing the old one's catalog while the new one failed.
    const seen: ReturnType<typeof useSyncState>[] = [];
    function Probe() {
      seen.push(useSyncState());
      return null;
    }
    const given = (service: FakeService) => givenTree(client, service, <Probe />);
    const client = new QueryClient();
    const first = service({ providers: [provider("openai")], models: [model("gpt-4o", "openai")] });
    // Another part of the page keeps the first service, under a client of
    // its own (from the review: the page-wide count of holders kept the
    // old catalog here).
    render(
      givenTree(new QueryClient(), first, null),
    );
    const { rerender } = render(given(first));
    await waitFor(() => expect(seen.at(-1)!.data?.models).toHaveLength(1));
    const next = failingFirstFetch();
    rerender(given(next));
    await waitFor(() => expect(seen.at(-1)!.isError).toBe(true));
    expect(seen.at(-1)!.data).toBeUndefined();
    // The page's service, not the provider's: left alive.
    expect(first.destroyed).toBe(0);

  });

  it("a service prop swapped through another server's and back does not show the first one's catalog", async () => {
    // A black-box check (2026-12-04): the first service, let go of two
    // swaps ago (and destroyed by the page), showed its older catalog as the
    // data (`success`) while the new one's first fetch failed.
    const seen: ReturnType<typeof useSyncState>[] = [];
    function Probe() {
      seen.push(useSyncState());
      return null;
    }
    const client = new QueryClient();
    const given = (service: FakeService) => givenTree(client, service, <Probe />);
    const first = service({ providers: [provider("openai")], models: [model("gpt-4o", "openai")] });
    const { rerender } = render(given(first));
    await waitFor(() => expect(seen.at(-1)!.data?.models).toHaveLength(1));
    const other = service({}, { apiBaseUrl: "http://other.invalid/api/provider-sync" });
    rerender(given(other));
    await waitFor(() => expect(seen.at(-1)!.data?.models).toHaveLength(0));
    first.destroy();
    const back = failingFirstFetch();
    rerender(given(back));
    await waitFor(() => expect(seen.at(-1)!.isError).toBe(true));
    expect(seen.at(-1)!.data).toBeUndefined();
  });

  it("a provider whose service prop is swapped leaves another provider's catalog of the same key", async () => {
    // From a review (2026-12-04): the swap reset the shared query, and the
    // other provider, synced all along, showed pending, then an error.
    const seen: Record<string, ReturnType<typeof useSyncState>> = {};
    const shownByA: (number | undefined)[] = [];
    function Probe({ name }: { name: string }) {
      seen[name] = useSyncState();
      if (name === "a") shownByA.push(seen[name].data?.models.length);
      return null;
    }
    const client = new QueryClient();
    const both = (a: FakeService, b: FakeService) => (
      <QueryClientProvider client={client}>
        <ProviderSyncProvider service={a}>
          <Probe name="a" />
        </ProviderSyncProvider>
        <ProviderSyncProvider service={b}>
          <Probe name="b" />
        </ProviderSyncProvider>
      </QueryClientProvider>
    );
    const a = service({ providers: [provider("openai")], models: [model("gpt-4o", "openai")] });
    const b = service({ providers: [provider("openai")], models: [model("gpt-4o", "openai")] });
    const { rerender } = render(both(a, b));
    await waitFor(() => expect(seen.a?.data?.models).toHaveLength(1));
    const next = failingFirstFetch();
    const from = shownByA.length;
    rerender(both(a, next));
    await new Promise((ok) => setTimeout(ok, 50));
    expect(seen.a!.isError).toBe(false);
    // Not even for one render without its catalog.
    expect(shownByA.slice(from)).not.toContain(undefined);
    expect(seen.a!.data?.models).toHaveLength(1);
  });

  it("two providers of one server with and without includeDeprecated each show their own state", async () => {
    const made: FakeService[] = [];
    plan.make = (config) => {
      const all = config.includeDeprecated === true;
      const models = [model("gpt-4o", "openai")];
      if (all) models.push(model("gpt-3", "openai", { deprecation_status: "deprecated" }));
      const next = service({ providers: [provider("openai")], models }, { includeDeprecated: all });
      made.push(next);
      return next;
    };
    const shown: Record<string, number> = {};
    function Count({ name }: { name: string }) {
      shown[name] = useProviderSyncWithWebSocket().models.length;
      return null;
    }
    const client = new QueryClient();
    const api = "http://test.invalid/api/provider-sync";
    render(
      <>
        {tree(client, { apiBaseUrl: api }, <Count name="plain" />)}
        {tree(client, { apiBaseUrl: api, includeDeprecated: true }, <Count name="all" />)}
      </>,
    );
    await waitFor(() => expect(shown).toEqual({ plain: 1, all: 2 }));
    // An admin write reaches both; whichever announces last.
    const [plain, all] = [made.find((s) => !s.includeDeprecated)!, made.find((s) => s.includeDeprecated)!];
    act(() => all.update({}));
    act(() => plain.update({}));
    await waitFor(() => expect(shown).toEqual({ plain: 1, all: 2 }));
    act(() => all.update({}));
    await waitFor(() => expect(shown).toEqual({ plain: 1, all: 2 }));
  });

  it("availability answers that failed are asked again once a service gets through", async () => {
    const api = "http://test.invalid/api/provider-sync";
    let answer = () => refused(401);
    // Behind a login, no token yet: refused, and not retried.
    plan.make = () => refusedService(() => answer());
    const seen: ReturnType<typeof useModelAvailability>[] = [];
    function Probe() {
      seen.push(useModelAvailability("gpt-4o"));
      return null;
    }
    const client = new QueryClient();
    const { rerender } = render(tree(client, { apiBaseUrl: api }, <Probe />));
    await waitFor(() => expect(seen.at(-1)!.isError).toBe(true));
    // After the login: a config with getToken makes a new service, which
    // gets through.
    plan.make = () =>
      service({}, { fetchJson: () => Promise.resolve({ model_id: "gpt-4o", is_available: true }) });
    rerender(tree(client, { apiBaseUrl: api, getToken: () => "t" }, <Probe />));
    await waitFor(() => expect(seen.at(-1)!.data?.model_id).toBe("gpt-4o"));

    // A sibling wires the new service first (its effects run before the
    // availability hook's, which give the query the new service's
    // request): the failed answer is asked again with the new service's
    // request, not the old one's (found in a review, 2026-12-02).
    answer = () => refused(401);
    plan.make = () => refusedService(() => answer());
    const later: ReturnType<typeof useModelAvailability>[] = [];
    function Sibling() {
      useSyncWebSocket();
      return null;
    }
    function Asker() {
      later.push(useModelAvailability("gpt-4o"));
      return null;
    }
    const fourth = new QueryClient();
    const both = (config: ProviderSyncConfig) =>
      tree(
        fourth,
        config,
        <>
          <Sibling />
          <Asker />
        </>,
      );
    const view = render(both({ apiBaseUrl: api, pollingInterval: 3000 }));
    await waitFor(() => expect(later.at(-1)!.isError).toBe(true));
    plan.make = () =>
      service({}, { fetchJson: () => Promise.resolve({ model_id: "gpt-4o", is_available: true }) });
    view.rerender(both({ apiBaseUrl: api, pollingInterval: 3000, getToken: () => "t" }));
    await waitFor(() => expect(later.at(-1)!.data?.model_id).toBe("gpt-4o"));
    view.unmount();

    // The same service, the server down and then back: `connected`.
    const other = new QueryClient();
    const down = service({ status: "disconnected", isConnected: false }, { fetchJson: () => answer() });
    plan.make = () => down;
    const after: ReturnType<typeof useModelAvailability>[] = [];
    function Other() {
      after.push(useModelAvailability("gpt-4o"));
      return null;
    }
    render(tree(other, { apiBaseUrl: api, pollingInterval: 5000 }, <Other />));
    await waitFor(() => expect(after.at(-1)!.isError).toBe(true));
    answer = () => Promise.resolve({ model_id: "gpt-4o", is_available: true });
    act(() => down.emit({ type: "connected", transport: "websocket" }));
    await waitFor(() => expect(after.at(-1)!.data?.model_id).toBe("gpt-4o"));

    // An answer refused for good (404: an unknown model) is not asked again.
    const third = new QueryClient();
    let asked = 0;
    const up = service({}, {
      fetchJson: () => {
        asked += 1;
        return refused(404);
      },
    });
    plan.make = () => up;
    const gone: ReturnType<typeof useModelAvailability>[] = [];
    function Gone() {
      gone.push(useModelAvailability("no-such-model"));
      return null;
    }
    render(tree(third, { apiBaseUrl: api, pollingInterval: 7000 }, <Gone />));
    await waitFor(() => expect(gone.at(-1)!.isError).toBe(true));
    const before = asked;
    act(() => up.emit({ type: "connected", transport: "websocket" }));
    await new Promise((ok) => setTimeout(ok, 50));
    expect(asked).toBe(before);
  });
});
