// End-to-end latency: an admin write, made from a page that uses the SDK
// (examples/plain-html in headless Chromium), until the change is in the
// SDK's state (`subscribe` fires with the new version). Both ends on the
// page's clock. Prints p50 / p99 / max over N writes (default 200).
//
// Usage: node latency.mjs SITE_DIR [WRITES]  (run by scripts/bench.sh)
import { join } from "node:path";
import { launchChromium, root, startTestbed } from "../../tests/e2e/testbed.mjs";

const site = process.argv[2];
const writes = Number(process.argv[3] ?? 200);

const bed = await startTestbed([
  "--catalog", join(root, "examples/catalog.toml"), "--static-dir", site,
], "release");
const urls = { server: bed.server, control: bed.control };
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(`${urls.control}/index.html?api=${encodeURIComponent(urls.server)}`);
  await page.waitForFunction(() => window.providerSync?.getState().transport === "websocket", null, { timeout: 15000 });
  const samples = await page.evaluate(async ({ api, writes }) => {
    const sync = window.providerSync;
    const times = [];
    for (let i = 0; i < writes; i++) {
      const started = performance.now();
      const seen = new Promise((resolve) => {
        const stop = sync.subscribe((state) => {
          const model = state.models.find((m) => m.id === "gpt-4o");
          if (model && model.pricing.input_per_million === 1000 + i) {
            stop();
            resolve(performance.now());
          }
        });
      });
      const response = await fetch(`${api}/admin/models/gpt-4o`, {
        method: "PATCH",
        headers: { authorization: "Bearer testbed-admin-token-of-32-bytes-or-more", "content-type": "application/json" },
        body: JSON.stringify({ pricing: { input_per_million: 1000 + i, output_per_million: 1 } }),
      });
      if (!response.ok) throw new Error(`write ${i}: HTTP ${response.status}`);
      times.push((await seen) - started);
      await new Promise((r) => setTimeout(r, 20));
    }
    return times;
  }, { api: urls.server, writes });
  samples.sort((a, b) => a - b);
  const at = (q) => samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)];
  console.log("| writes | p50 ms | p99 ms | max ms |\n| ---: | ---: | ---: | ---: |");
  console.log(`| ${samples.length} | ${at(0.5).toFixed(1)} | ${at(0.99).toFixed(1)} | ${samples.at(-1).toFixed(1)} |`);
} finally {
  await browser.close();
  bed.child.kill("SIGTERM");
}
