// The provider's own service (no `service` prop) under StrictMode: React runs
// its effects twice, so the provider must destroy the first service it made,
// keep exactly one alive, and destroy that one on unmount. The wasm service
// is replaced by a counting stand-in (the real one is tested in browsers).
import { act, render, screen } from "@testing-library/react";
import { StrictMode } from "react";
import { describe, expect, it, vi } from "vitest";
import { ProviderSyncProvider, useProviderSync } from "provider-sync/react";
import type { FakeService } from "./fake-service";

const made = vi.hoisted(() => [] as FakeService[]);

vi.mock("provider-sync", async (importOriginal) => {
  const actual = await importOriginal<Record<string, unknown>>();
  const { FakeService, provider } = await import("./fake-service");
  class Counting extends FakeService {
    readonly config: unknown;
    constructor(config: unknown) {
      super({ providers: [provider("openai")] });
      this.config = config;
      made.push(this);
    }
  }
  return {
    ...actual,
    isLoaded: () => true,
    ProviderSyncService: Counting,
    createProviderSyncService: async (config: unknown) => new Counting(config),
  };
});

function Status() {
  const { providers, status } = useProviderSync();
  return <span>{`${status}:${providers.map((p) => p.id).join(",")}`}</span>;
}

describe("the provider's own service under StrictMode", () => {
  it("is made twice, the first destroyed, one left running and destroyed on unmount", async () => {
    made.length = 0;
    const { unmount } = render(
      <StrictMode>
        <ProviderSyncProvider config={{ apiBaseUrl: "http://127.0.0.1:9/api/provider-sync" }}>
          <Status />
        </ProviderSyncProvider>
      </StrictMode>,
    );
    await act(async () => {});
    // StrictMode mounted, unmounted and mounted again: two services, the
    // first destroyed, the second alive and initialized.
    expect(made.length).toBe(2);
    expect(made[0].destroyed).toBe(1);
    expect(made[1].destroyed).toBe(0);
    expect(made[1].initialized).toBeGreaterThan(0);
    expect(made[1].stateListeners.size).toBe(1);
    expect(made[0].stateListeners.size).toBe(0);
    expect(screen.getByText("synced:openai")).toBeTruthy();
    // The config reached the service as given.
    expect((made[1] as FakeService & { config: { apiBaseUrl: string } }).config.apiBaseUrl).toBe(
      "http://127.0.0.1:9/api/provider-sync",
    );
    unmount();
    expect(made[1].destroyed).toBe(1);
    expect(made.every((s) => s.stateListeners.size === 0 && s.eventListeners.size === 0)).toBe(true);
  });
});
