// Both examples in Debian's Chromium (playwright-core), against a real
// provider-sync-server run by the testbed. The pages are served by the
// testbed's control service, so they still load while the server is stopped.
//
// Needs: the debug testbed binary (under CARGO_TARGET_DIR, else target/),
// target/demo-site (the plain page with the package),
// examples/react-tanstack/dist. scripts/test-e2e.sh builds them and runs
// this file.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { admin, control, launchChromium, root, startTestbed } from "./testbed.mjs";

const output = join(root, "test-output/e2e");
mkdirSync(output, { recursive: true });
/** What "shows within a second" allows, from the write's answer. */
const LIVE_MS = 1000;



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

    // The browser's `offline` event tests the link at once: a silent link
    // was otherwise shown as synced for two heartbeat periods (25 s each
    // by default), over changes it missed (a black-box check, 2026-12-07).
    test("going offline shows within seconds, and coming back online catches up", async () => {
      await status().filter({ hasText: "Synced" }).waitFor({ timeout: 10_000 });
      const context = page.context();
      await context.setOffline(true);
      try {
        await status().filter({ hasText: /Disconnected|polling|Sync error/ }).waitFor({ timeout: 15_000 });
        await admin(bed, "PATCH", "/providers/xai", { display_name: "xAI (renamed while offline)" });
      } finally {
        await context.setOffline(false);
      }
      await page.getByText("xAI (renamed while offline)").first().waitFor({ timeout: 15_000 });
      await status().filter({ hasText: "Synced" }).waitFor({ timeout: 15_000 });
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

// LiteLLM's `model_prices_and_context_window.json` format, generated: 60
// providers of 25 chat models each (1,500), plus a few with the odd ids of
// the real catalog (`openrouter/~anthropic/...`, `bedrock/*/1-month-commitment/...`).
function largeLitellmCatalog() {
  const entries = {};
  const entry = (provider, extra = {}) => ({
    litellm_provider: provider, mode: "chat", max_input_tokens: 128000, max_output_tokens: 8192,
    input_cost_per_token: 2.5e-06, output_cost_per_token: 1e-05, ...extra,
  });
  for (let p = 1; p <= 60; p++) {
    for (let m = 1; m <= 25; m++) entries[`provider-${p}/model-${m}`] = entry(`provider-${p}`);
  }
  // The one a search finds: "~vendor/needle" is in no other id.
  entries["provider-7/~vendor/needle-opus-latest"] = entry("provider-7", {
    supports_reasoning: true, cache_read_input_token_cost: 2.5e-07,
  });
  // "needle" (without the "~vendor/") finds these too.
  entries["provider-12/*/1-month-commitment/vendor.needle-text-v14"] = entry("provider-12");
  entries["provider-12/needle-legacy"] = entry("provider-12", { deprecation_date: "2025-01-31" });
  return entries;
}

describe("plain-html with a large catalog", () => {
  let bed, browser, page;
  const catalog = largeLitellmCatalog();
  const total = Object.keys(catalog).length;
  const showing = (shown, of = total) => `Showing ${shown.toLocaleString("en-US")} of ${of.toLocaleString("en-US")} models`;
  const rows = () => page.locator("#models tr[data-model-id]");
  const count = () => page.locator("#model-count");

  before(async () => {
    assert.ok(total >= 1500);
    const path = join(output, "large-catalog.json"); // .json: LiteLLM's format
    writeFileSync(path, JSON.stringify(catalog));
    bed = await startTestbed(["--catalog", path, "--static-dir", join(root, "target/demo-site")]);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.on("pageerror", (error) => console.error("[plain-html large] page error:", error.message));
    await page.goto(`${bed.control}/index.html?api=${encodeURIComponent(bed.server)}`);
  });

  afterEach(async (t) => {
    if (t.passed === false || t.error) {
      await page?.screenshot({ path: join(output, `plain-html-large-FAILED-${t.name.replace(/\W+/g, "-")}.png`), fullPage: true });
    }
  });

  after(async () => {
    await browser?.close();
    bed?.child.kill("SIGTERM");
  });

  test("search and the provider filter find one model among 1,500", async () => {
    await page.getByRole("status").first().filter({ hasText: "Synced" }).waitFor({ timeout: 15_000 });
    // At most 200 rows, and a note that there are more.
    await count().filter({ hasText: showing(200) }).waitFor({ timeout: 10_000 });
    assert.equal(await rows().count(), 200);
    await page.locator("#models-more", { hasText: "Refine the search to see the rest" }).waitFor();
    // Every provider is in the filter, with its model count.
    assert.equal(await page.locator("#provider-filter option").count(), 61);
    await page.locator("#provider-filter option", { hasText: "Provider 7 (26)" }).waitFor({ state: "attached" });

    // Exactly one model, whatever the case of the search.
    await page.getByLabel("Search models").fill("~VENDOR/Needle");
    await count().filter({ hasText: showing(1) }).waitFor({ timeout: 2_000 });
    const needle = page.locator('#models tr[data-model-id="provider-7/~vendor/needle-opus-latest"]');
    await needle.waitFor();
    assert.equal(await rows().count(), 1);
    assert.ok(await page.locator("#models-more").isHidden(), "no more-rows note for one match");
    await needle.locator(".badge-reasoning", { hasText: "reasoning" }).waitFor();
    await needle.getByText("$2.50 / $10.00").waitFor();
    await needle.getByText("cached in $0.25").waitFor();

    // A broader search; the deprecated match shows once asked for.
    await page.locator("#search").fill("needle");
    await count().filter({ hasText: showing(2) }).waitFor({ timeout: 2_000 });
    await page.locator("#show-deprecated").check();
    await count().filter({ hasText: showing(3) }).waitFor({ timeout: 2_000 });
    await page.locator('#models tr[data-model-id="provider-12/needle-legacy"] .psync-deprecation').waitFor();
    await page.locator("#show-deprecated").uncheck();

    // The provider filter narrows the table to that provider's models.
    await page.locator("#provider-filter").selectOption("provider-12");
    await count().filter({ hasText: showing(1) }).waitFor({ timeout: 2_000 });
    await page.locator('#models tr[data-model-id="provider-12/*/1-month-commitment/vendor.needle-text-v14"]').waitFor();
    await page.locator("#search").fill("");
    await count().filter({ hasText: showing(26) }).waitFor({ timeout: 2_000 });
    const ids = await rows().evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-model-id")));
    assert.equal(ids.length, 26);
    assert.ok(ids.every((id) => id.startsWith("provider-12/")), ids.join(", "));
    assert.ok(await page.locator("#models-more").isHidden());
    await page.screenshot({ path: join(output, "plain-html-large.png"), fullPage: true });
  });

  test("a live change re-renders without losing the search", async () => {
    await page.locator("#provider-filter").selectOption("");
    await page.locator("#search").fill("~vendor/needle");
    await count().filter({ hasText: showing(1) }).waitFor({ timeout: 2_000 });
    const id = "provider-7/~vendor/needle-live";
    await admin(bed, "POST", "/models", { id, name: id, provider_id: "provider-7", context_window: 32000 });
    await page.locator(`#models tr[data-model-id="${id}"]`).waitFor({ timeout: LIVE_MS });
    await count().filter({ hasText: showing(2, total + 1) }).waitFor({ timeout: LIVE_MS });
    assert.equal(await page.locator("#search").inputValue(), "~vendor/needle");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "search", "the search box keeps the focus");
  });
});
