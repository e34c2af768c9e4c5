// The SDK in headless Chromium on a 50 × 2,000 catalog:
// - cold start from the network: initialize() until the first data;
// - cold start from the IndexedDB cache: the same, with a cached copy;
// - apply + snapshot: from a WebSocket frame's arrival to the `subscribe`
//   callback with the new state (parse, apply, checksum, JS snapshot);
// - the JS heap after load (after a forced GC, less the page's with the
//   package loaded and no service), through the DevTools protocol;
// - IndexedDB writes over the change bursts: how many the SDK made, the
//   main-thread time inside `put()` (the structured clone of the record),
//   and from `put()` to the transaction's `complete`.
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
  const cdp = await page.context().newCDPSession(page);
  const heap = async () => {
    await cdp.send("HeapProfiler.collectGarbage");
    return (await cdp.send("Runtime.getHeapUsage")).usedSize;
  };
  const loaded = await page.evaluate(async ({ api }) => {
    // Note when each WebSocket frame arrives, before the SDK sees it.
    window.__arrived = 0;
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        this.addEventListener("message", () => { window.__arrived = performance.now(); });
      }
    };
    // Time every IndexedDB put: inside the call, and until its transaction
    // completes.
    window.__puts = [];
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function (...args) {
      const start = performance.now();
      const request = put.apply(this, args);
      const entry = { sync: performance.now() - start, done: null };
      window.__puts.push(entry);
      this.transaction.addEventListener("complete", () => { entry.done = performance.now() - start; });
      return request;
    };
    window.__sdk = await import("/provider-sync/index.js");
    await window.__sdk.load();
    return true;
  }, { api: urls.server });
  const heapEmpty = loaded && await heap();
  const result = await page.evaluate(async ({ api }) => {
    const sdk = window.__sdk;
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
    window.__second = second;
    return { network, cache, fromCache, models };
  }, { api: urls.server });
  const heapLoaded = await heap();
  const changes = await page.evaluate(async ({ api, writes, model }) => {
    const second = window.__second;
    window.__puts.length = 0;
    const applies = [];
    for (let i = 0; i < writes; i++) {
      const seen = new Promise((resolve) => {
        const stop = second.subscribe((state) => {
          if (state.version > before) { stop(); resolve(performance.now() - window.__arrived); }
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
    // The last burst's save, and its transaction.
    await new Promise((r) => setTimeout(r, 2500));
    second.destroy();
    return { applies, puts: window.__puts.filter((p) => p.done !== null) };
  }, { api: urls.server, writes, model });
  Object.assign(result, changes);
  const sorted = result.applies.sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  console.log(`catalog in the browser: ${result.models} models\n`);
  console.log("| measure | value |\n| --- | ---: |");
  console.log(`| initialize() to first data, from the network, ms | ${result.network.toFixed(1)} |`);
  console.log(`| initialize() to first data, from the IndexedDB cache (fromCache: ${result.fromCache}), ms | ${result.cache.toFixed(1)} |`);
  console.log(`| frame arrival to subscribe callback (apply + snapshot), p50 of ${sorted.length}, ms | ${at(0.5).toFixed(2)} |`);
  console.log(`| the same, p99, ms | ${at(0.99).toFixed(2)} |`);
  const median = (values) => {
    const s = [...values].sort((a, b) => a - b);
    return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
  };
  const puts = result.puts;
  console.log(`| IndexedDB writes over the ${writes} changes (count) | ${puts.length} |`);
  console.log(`| IndexedDB write: main thread inside put(), median, ms | ${median(puts.map((p) => p.sync)).toFixed(2)} |`);
  console.log(`| IndexedDB write: put() to transaction complete, median, ms | ${median(puts.map((p) => p.done)).toFixed(1)} |`);
  console.log(`| JS heap after load (after GC, less the page with the package loaded), MiB | ${((heapLoaded - heapEmpty) / 1048576).toFixed(1)} |`);
  console.log(`| JS heap after load, whole page, MiB | ${(heapLoaded / 1048576).toFixed(1)} |`);
} finally {
  await browser.close();
  bed.child.kill("SIGTERM");
}
