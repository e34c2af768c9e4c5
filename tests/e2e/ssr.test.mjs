// Server-side rendering with a bootstrap state, hydrated in Debian's
// Chromium: the server's HTML already lists the catalog, hydration finds
// nothing to change (no mismatch, no warning), the service catches up with
// POST /sync and never asks for GET /state, and live changes still arrive.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, test } from "node:test";
import { launchChromium, root, startTestbed } from "./testbed.mjs";

const site = join(root, "target/ssr-site");
const pkg = join(root, "pkg");
// esbuild and React come from the package template's dev dependencies.
const fromTemplate = createRequire(join(root, "pkg-template/package.json"));
const esbuild = fromTemplate("esbuild");

async function bundle(entry, outfile, platform) {
  await esbuild.build({
    entryPoints: [join(root, "tests/e2e/ssr", entry)],
    outfile,
    bundle: true,
    format: "esm",
    platform,
    jsx: "automatic",
    // The development build: it reports hydration mismatches in detail.
    define: { "process.env.NODE_ENV": '"development"' },
    alias: { "provider-sync": join(pkg, "index.js"), "provider-sync/react": join(pkg, "react/index.js") },
    nodePaths: [join(root, "pkg-template/node_modules")],
    logLevel: "error",
    // React's server build is CommonJS and requires Node's modules.
    banner:
      platform === "node"
        ? { js: 'import { createRequire } from "node:module"; const require = createRequire(import.meta.url);' }
        : {},
  });
}

let bed, browser;

before(async () => {
  rmSync(site, { recursive: true, force: true });
  mkdirSync(site, { recursive: true });
  await bundle("client.jsx", join(site, "client.js"), "browser");
  await bundle("server.jsx", join(site, "server.mjs"), "node");
  // The glue finds the wasm next to the script that loads it.
  copyFileSync(join(pkg, "provider_sync_sdk_bg.wasm"), join(site, "provider_sync_sdk_bg.wasm"));
  bed = await startTestbed(["--catalog", join(root, "examples/catalog.toml"), "--static-dir", site]);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  bed?.child.kill("SIGTERM");
});

test("a server-rendered catalog hydrates without a mismatch or a GET /state", async () => {
  const bootstrap = await (await fetch(`${bed.server}/state`)).json();
  const config = { apiBaseUrl: bed.server, logLevel: "silent" };
  const { render } = await import(pathToFileURL(join(site, "server.mjs")).href);
  const markup = render(join(site, "provider_sync_sdk_bg.wasm"), config, bootstrap);
  for (const provider of bootstrap.providers) {
    assert.ok(markup.includes(`data-provider-id="${provider.id}"`), `the server's HTML lists ${provider.id}`);
  }
  const data = JSON.stringify({ config, bootstrap }).replace(/</g, "\\u003c");
  writeFileSync(
    join(site, "index.html"),
    `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>SSR</title></head><body>` +
      `<div id="root">${markup}</div>` +
      `<script id="bootstrap" type="application/json">${data}</script>` +
      `<script type="module" src="client.js"></script></body></html>`,
  );

  const page = await browser.newPage();
  const requests = [];
  const problems = [];
  page.on("request", (request) => requests.push(`${request.method()} ${new URL(request.url()).pathname}`));
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));
  await page.goto(`${bed.control}/index.html`);
  await page.waitForFunction(() => window.__hydrated === true, null, { timeout: 10_000 });
  await page.locator(".psync-status--synced").waitFor({ timeout: 10_000 });

  assert.deepEqual(await page.evaluate(() => window.__recoverable), [], "no recoverable (hydration) error");
  assert.deepEqual(problems, [], "no console error or warning");
  const api = new URL(bed.server).pathname;
  assert.ok(!requests.includes(`GET ${api}/state`), `no GET /state: ${requests.join(", ")}`);
  assert.ok(requests.includes(`POST ${api}/sync`), `caught up with POST /sync: ${requests.join(", ")}`);
  assert.equal(await page.locator("[data-provider-id]").count(), bootstrap.providers.length);

  // Live after hydration.
  const response = await fetch(`${bed.server}/admin/providers/mistral/status`, {
    method: "PUT",
    headers: { authorization: "Bearer testbed-admin-token-of-32-bytes-or-more", "content-type": "application/json" },
    body: JSON.stringify({ status: "degraded", message: "ssr e2e" }),
  });
  assert.ok(response.ok);
  await page.locator('[data-provider-id="mistral"]', { hasText: "degraded" }).waitFor({ timeout: 5_000 });
  await page.close();
});

// Rendering many distinct states (an admin script writing a version a
// request, each page rendered with the one it fetched) holds the copies of
// about ten seconds of states in wasm memory, not of a minute: services let
// go are freed once more than eight wait and they were let go ten seconds
// ago (never sooner: a streaming render may still read one). Each batch of
// 60 grew wasm memory by its copies, kept for a minute.
test("server renders of many distinct states do not grow wasm memory for long", { timeout: 60_000 }, async () => {
  const config = { apiBaseUrl: bed.server, logLevel: "silent" };
  const wasm = join(site, "provider_sync_sdk_bg.wasm");
  const { render, wasmMemoryBytes } = await import(pathToFileURL(join(site, "server.mjs")).href);
  const states = [];
  for (let i = 0; i < 120; i++) {
    const response = await fetch(`${bed.server}/admin/providers/openai`, {
      method: "PATCH",
      headers: { authorization: "Bearer testbed-admin-token-of-32-bytes-or-more", "content-type": "application/json" },
      body: JSON.stringify({ display_name: `OpenAI ${i % 10}` }),
    });
    assert.ok(response.ok, `write ${i}: ${response.status}`);
    states.push(await (await fetch(`${bed.server}/state`)).json());
  }
  for (const state of states.slice(0, 60)) render(wasm, config, state);
  const first = wasmMemoryBytes(wasm);
  await new Promise((resolve) => setTimeout(resolve, 10_500));
  // The first batch's services are past their ten seconds: the second's
  // take their place, in the memory they leave.
  for (const state of states.slice(60)) render(wasm, config, state);
  const grown = wasmMemoryBytes(wasm) - first;
  assert.ok(grown <= 256 * 1024, `60 more distinct states, ten seconds later, grew wasm memory by ${grown} B`);
});
