// Both examples in Debian's Chromium (playwright-core), against a real
// provider-sync-server run by the testbed. The pages are served by the
// testbed's control service, so they still load while the server is stopped.
//
// Needs: target/debug/provider-sync-testbed, target/demo-site (the plain
// page with the package), examples/react-tanstack/dist. scripts/test-e2e.sh
// builds them and runs this file.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { launchChromium, root, startTestbed } from "./testbed.mjs";

const output = join(root, "test-output/e2e");
mkdirSync(output, { recursive: true });
const TOKEN = "testbed-token";
/** What "shows within a second" allows, from the write's answer. */
const LIVE_MS = 1000;

async function admin(bed, method, path, body) {
  const response = await fetch(`${bed.server}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(response.ok, `${method} ${path}: HTTP ${response.status} ${await response.text()}`);
}

async function control(bed, action) {
  const response = await fetch(`${bed.control}/${action}`, { method: "POST" });
  const body = await response.json();
  assert.equal(body.ok, true, `${action}: ${JSON.stringify(body)}`);
}

const examples = [
  { name: "plain-html", dir: join(root, "target/demo-site") },
  { name: "react-tanstack", dir: join(root, "examples/react-tanstack/dist") },
];

for (const example of examples) {
  describe(example.name, () => {
    let bed, browser, page;
    const status = () => page.getByRole("status").first();
    const url = () => `${bed.control}/index.html?api=${encodeURIComponent(bed.server)}`;

    before(async () => {
      bed = await startTestbed(["--catalog", join(root, "examples/catalog.toml"), "--static-dir", example.dir]);
      browser = await launchChromium();
      page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      page.on("pageerror", (error) => console.error(`[${example.name}] page error:`, error.message));
      await page.goto(url());
    });

    afterEach(async (t) => {
      // What the page showed when a test failed.
      if (t.passed === false || t.error) {
        await page?.screenshot({ path: join(output, `${example.name}-FAILED-${t.name.replace(/\W+/g, "-")}.png`), fullPage: true });
      }
    });

    after(async () => {
      await browser?.close();
      bed?.child.kill("SIGTERM");
    });

    test("the catalog renders", async () => {
      await status().filter({ hasText: "Synced" }).waitFor({ timeout: 10_000 });
      for (const id of ["openai", "anthropic", "google", "mistral"]) {
        await page.locator(`[data-provider-id="${id}"]`).waitFor();
      }
      assert.ok((await page.locator("[data-model-id]").count()) >= 30, "the models are listed");
      await page.screenshot({ path: join(output, `${example.name}.png`), fullPage: true });
    });

    test("admin writes show within a second, without a reload", async () => {
      const id = `e2e-${example.name}-${Date.now()}`;
      await admin(bed, "POST", "/models", { id, name: `E2E ${example.name}`, provider_id: "openai", context_window: 32000 });
      await page.locator(`[data-model-id="${id}"]`).first().waitFor({ state: "attached", timeout: LIVE_MS });

      await admin(bed, "POST", `/models/${id}/deprecate`, {
        deprecation_date: "2026-11-01", sunset_date: "2026-12-10", replacement_model_id: "gpt-4.1",
      });
      await page.locator(`.psync-deprecation[data-model-id="${id}"]`).waitFor({ timeout: LIVE_MS });

      await admin(bed, "PUT", "/providers/mistral/status", { status: "unavailable", message: "e2e outage" });
      await page.locator('[data-provider-id="mistral"] .status', { hasText: "unavailable" }).waitFor({ timeout: LIVE_MS });
      await page.locator('[data-provider-id="mistral"] [role="alert"]').waitFor({ timeout: LIVE_MS });
      await page.screenshot({ path: join(output, `${example.name}-after-writes.png`), fullPage: true });
      await admin(bed, "PUT", "/providers/mistral/status", { status: "available" });
    });

    test("a stopped server shows, and a restarted one recovers without a reload", async () => {
      await control(bed, "stop");
      await status().filter({ hasText: /Disconnected|polling|Sync error/ }).waitFor({ timeout: 10_000 });
      await page.screenshot({ path: join(output, `${example.name}-disconnected.png`) });
      await control(bed, "start");
      await admin(bed, "PATCH", "/providers/xai", { display_name: "xAI (renamed while away)" });
      await page.getByText("xAI (renamed while away)").first().waitFor({ timeout: 15_000 });
      await status().filter({ hasText: "Synced" }).waitFor({ timeout: 15_000 });
    });

    test("a reload with the server down shows the cached catalog as stale", async () => {
      await control(bed, "stop");
      await page.reload();
      await status().filter({ hasText: "Showing cached data" }).waitFor({ timeout: 10_000 });
      await page.locator('[data-provider-id="openai"]').waitFor();
      assert.ok((await page.locator("[data-model-id]").count()) >= 30, "the cached models are listed");
      await page.screenshot({ path: join(output, `${example.name}-stale.png`), fullPage: true });
      await control(bed, "start");
      await status().filter({ hasText: "Synced" }).waitFor({ timeout: 15_000 });
    });
  });
}
