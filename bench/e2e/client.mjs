// The SDK in headless Chromium on a 50 × 2,000 catalog:
// - cold start from the network: initialize() until the first data;
// - cold start from the IndexedDB cache: the same, with a cached copy;
// - apply + snapshot: from a WebSocket frame's arrival to the `subscribe`
//   callback with the new state (parse, apply, checksum, JS snapshot).
// Usage: node client.mjs SITE_DIR CATALOG [WRITES] [MODEL_ID]  (run by
// scripts/bench.sh; MODEL_ID is the model whose price the writes change)
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { launchChromium, root, startTestbed } from "../../tests/e2e/testbed.mjs";

const [site, catalog] = process.argv.slice(2);
const writes = Number(process.argv[4] ?? 50);
const model = process.argv[5] ?? "model-00042";

writeFileSync(join(site, "bench.html"), "<!doctype html><title>bench</title>");
const bed = await startTestbed([
  "--catalog", catalog, "--static-dir", site, "--heartbeat-ms", "25000",
], "release");
const urls = { server: bed.server, control: bed.control };
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(`${urls.control}/bench.html`);
  const result = await page.evaluate(async ({ api, writes, model }) => {
    // Note when each WebSocket frame arrives, before the SDK sees it.
    let arrived = 0;
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        this.addEventListener("message", () => { arrived = performance.now(); });
      }
    };
    const sdk = await import("/provider-sync/index.js");
    await sdk.load();
    const config = { apiBaseUrl: api, includeDeprecated: true, logLevel: "silent" };
    const first = new sdk.ProviderSyncService(config);
    await first.clearCache();
    let t = performance.now();
    await first.initialize();
    const network = performance.now() - t;
    const models = first.getState().models.length;
    await new Promise((r) => setTimeout(r, 1500)); // the cache write
    first.destroy();

    const second = new sdk.ProviderSyncService(config);
    t = performance.now();
    await second.initialize();
    const cache = performance.now() - t;
    const fromCache = second.getState().fromCache;
    while (second.getState().transport !== "websocket") await new Promise((r) => setTimeout(r, 50));

    const applies = [];
    for (let i = 0; i < writes; i++) {
      const seen = new Promise((resolve) => {
        const stop = second.subscribe((state) => {
          if (state.version > before) { stop(); resolve(performance.now() - arrived); }
        });
      });
      const before = second.getState().version;
      await fetch(`${api}/admin/models/${encodeURIComponent(model)}`, {
        method: "PATCH",
        headers: { authorization: "Bearer testbed-admin-token-of-32-bytes-or-more", "content-type": "application/json" },
        body: JSON.stringify({ pricing: { input_per_million: 100 + i, output_per_million: 1 } }),
      });
      applies.push(await seen);
    }
    second.destroy();
    return { network, cache, fromCache, models, applies };
  }, { api: urls.server, writes, model });
  const sorted = result.applies.sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  console.log(`catalog in the browser: ${result.models} models\n`);
  console.log("| measure | ms |\n| --- | ---: |");
  console.log(`| initialize() to first data, from the network | ${result.network.toFixed(1)} |`);
  console.log(`| initialize() to first data, from the IndexedDB cache (fromCache: ${result.fromCache}) | ${result.cache.toFixed(1)} |`);
  console.log(`| frame arrival to subscribe callback (apply + snapshot), p50 of ${sorted.length} | ${at(0.5).toFixed(2)} |`);
  console.log(`| the same, p99 | ${at(0.99).toFixed(2)} |`);
} finally {
  await browser.close();
  bed.child.kill("SIGTERM");
}
