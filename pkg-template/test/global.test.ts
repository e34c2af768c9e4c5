// The classic-script global (pkg/provider-sync.global.js) run as a page
// would, with the real wasm. Only its module loading is routed: vitest's
// sandbox has no native `import()` for eval'd code, so the script's
// `import(url)` goes through the test's own import of the same file.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";

const pkg = pathToFileURL(resolve("../pkg") + "/");

afterEach(() => {
  vi.unstubAllGlobals();
  document.querySelector("base")?.remove();
  delete (window as { ProviderSync?: unknown }).ProviderSync;
});

describe("the script-tag global", () => {
  it("exposes the seed's enums on ProviderSync once ready", async () => {
    // The script finds index.js (and the wasm) next to itself.
    const base = document.createElement("base");
    base.href = pkg.href;
    document.head.append(base);
    vi.stubGlobal("fetch", (url: string | URL) => {
      expect(String(url)).toMatch(/\/provider_sync_sdk_bg\.wasm$/);
      const wasm = readFileSync(new URL("provider_sync_sdk_bg.wasm", pkg));
      return Promise.resolve(new Response(wasm, { headers: { "Content-Type": "application/wasm" } }));
    });
    const script = readFileSync(new URL("provider-sync.global.js", pkg), "utf8");
    expect(script).toContain("import(");
    new Function("importModule", script.replace("import(", "importModule("))((url: string) => {
      expect(url).toBe(new URL("index.js", pkg).href);
      return import("provider-sync");
    });

    const global = (window as unknown as { ProviderSync: Record<string, any> }).ProviderSync;
    await global.ready;
    expect(global.SyncStatus.SYNCED).toBe("synced");
    expect(global.SyncEventType.MODEL_DEPRECATED).toBe("model_deprecated");
    expect(global.ModelDeprecationStatus.DEPRECATED).toBe("deprecated");
    expect(global.DeprecationStatus).toBe(global.ModelDeprecationStatus);
    expect(global.ProviderStatus.UNAVAILABLE).toBe("unavailable");
    expect(typeof global.ProviderSyncService).toBe("function");
  });
});
