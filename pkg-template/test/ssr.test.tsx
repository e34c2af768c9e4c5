// @vitest-environment node
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { renderToString } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { isLoaded, loadSync, type SyncState } from "provider-sync";
import { ProviderSyncProvider, SyncStatusIndicator, useModels, useProviderSync } from "provider-sync/react";
import { FakeService, provider } from "./fake-service";

// The server's GET /state for examples/catalog.toml.
const bootstrap = JSON.parse(readFileSync(resolve("test/fixtures/state.json"), "utf8")) as SyncState;

function Status() {
  const { status, providers } = useProviderSync();
  const vision = useModels({ capability: "vision" });
  return (
    <>
      <SyncStatusIndicator status={status} />
      <span>{providers.length} providers</span>
      <span>{vision.length} vision models</span>
    </>
  );
}

describe("server rendering", () => {
  it("renders an injected service's state without touching window", () => {
    expect(typeof window).toBe("undefined");
    const service = new FakeService({ providers: [provider("p")] });
    const html = renderToString(
      <ProviderSyncProvider service={service}>
        <Status />
      </ProviderSyncProvider>,
    );
    expect(html).toContain("1<!-- --> providers");
  });

  it("renders the empty state while the wasm is not loaded", () => {
    expect(isLoaded()).toBe(false);
    const html = renderToString(
      <ProviderSyncProvider config={{ apiBaseUrl: "http://127.0.0.1:9/api" }} bootstrap={bootstrap}>
        <Status />
      </ProviderSyncProvider>,
    );
    expect(html).toContain("Syncing");
    expect(html).toContain("0<!-- --> providers");
  });

  it("renders the bootstrap catalog once the wasm is loaded", () => {
    loadSync(readFileSync(resolve("../pkg/provider_sync_sdk_bg.wasm")));
    const render = () =>
      renderToString(
        <ProviderSyncProvider config={{ apiBaseUrl: "http://127.0.0.1:9/api" }} bootstrap={bootstrap}>
          <Status />
        </ProviderSyncProvider>,
      );
    const html = render();
    expect(html).toContain(`${bootstrap.providers.length}<!-- --> providers`);
    // Filtered by the wasm, as in the browser.
    const vision = bootstrap.all_models.filter((m) => m.supports_vision && m.deprecation_status === "active").length;
    expect(vision).toBeGreaterThan(0);
    expect(html).toContain(`${vision}<!-- --> vision models`);
    // Not confirmed by the server yet.
    expect(html).toContain("psync-status--stale");
    // The same again (a second request with the same state).
    expect(render()).toBe(html);
  });
});
