// The plain page in Debian's Firefox ESR (selenium-webdriver through
// geckodriver: Playwright drives only its own Firefox), against a real
// provider-sync-server run by the testbed: the scenario e2e.test.mjs runs in
// Chromium. Everything is on 127.0.0.1, and Firefox may reach nothing else.
//
// Needs: the debug testbed binary, target/demo-site (the plain page with the
// package), firefox-esr and geckodriver (scripts/setup.sh).
// scripts/test-e2e.sh builds them and runs this file.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { admin, control, launchFirefox, root, startTestbed } from "./testbed.mjs";

const output = join(root, "test-output/e2e");
mkdirSync(output, { recursive: true });
/** What "shows within a second" allows, from the write's answer. */
const LIVE_MS = 1000;



describe("plain-html in Firefox", () => {
  let bed, driver;
  const url = () => `${bed.control}/index.html?api=${encodeURIComponent(bed.server)}`;

  /** Waits until the page shows what `find` looks for: it runs in the page
   * with `args` and returns true once there (the locators of the Chromium
   * suite, written as DOM queries). */
  async function until(what, timeout, find, ...args) {
    await driver.wait(() => driver.executeScript(find, ...args).catch(() => false), timeout,
      `timed out after ${timeout} ms waiting for ${what}`, 50);
  }
  const shown = (element) => element !== null && element.getClientRects().length > 0;
  /** The first element with role=status contains `pattern` (a RegExp source). */
  const status = (pattern, timeout) => until(`the status /${pattern}/`, timeout, (source) => {
    const element = document.querySelector('[role="status"]');
    return element !== null && new RegExp(source).test(element.textContent);
  }, pattern);
  /** `selector` matches an element (containing `text`, if given) that is shown. */
  const visible = (selector, timeout, text = "") => until(`${selector} ${text}`.trim(), timeout,
    `const shown = ${shown}; return [...document.querySelectorAll(arguments[0])]
      .some((e) => e.textContent.includes(arguments[1]) && shown(e));`, selector, text);
  const count = (selector) => driver.executeScript("return document.querySelectorAll(arguments[0]).length;", selector);
  async function screenshot(name) {
    writeFileSync(join(output, `${name}.png`), await driver.takeFullPageScreenshot(), "base64");
  }

  before(async () => {
    bed = await startTestbed(["--catalog", join(root, "examples/catalog.toml"),
      "--static-dir", join(root, "target/demo-site")]);
    driver = await launchFirefox();
    await driver.get(url());
  });

  afterEach(async (t) => {
    // What the page showed when a test failed.
    if (t.passed === false || t.error) {
      await screenshot(`firefox-plain-html-FAILED-${t.name.replace(/\W+/g, "-")}`).catch(() => {});
    }
  });

  after(async () => {
    await driver?.quit();
    bed?.child.kill("SIGTERM");
  });

  test("the catalog renders", async () => {
    await status("Synced", 10_000);
    for (const id of ["openai", "anthropic", "google", "mistral"]) {
      await visible(`[data-provider-id="${id}"]`, 5_000);
    }
    assert.ok((await count("[data-model-id]")) >= 30, "the models are listed");
    await screenshot("firefox-plain-html");
  });

  test("admin writes show within a second, without a reload", async () => {
    const id = `e2e-firefox-${Date.now()}`;
    await admin(bed, "POST", "/models", { id, name: "E2E Firefox", provider_id: "openai", context_window: 32000 });
    await until(`model ${id}`, LIVE_MS, (id) => document.querySelector(`[data-model-id="${id}"]`) !== null, id);

    await admin(bed, "POST", `/models/${id}/deprecate`, {
      deprecation_date: "2026-11-01", sunset_date: "2026-12-10", replacement_model_id: "gpt-4.1",
    });
    await visible(`.psync-deprecation[data-model-id="${id}"]`, LIVE_MS);

    await admin(bed, "PUT", "/providers/mistral/status", { status: "unavailable", message: "e2e outage" });
    await visible('[data-provider-id="mistral"] .status', LIVE_MS, "unavailable");
    await visible('[data-provider-id="mistral"] [role="alert"]', LIVE_MS);
    await screenshot("firefox-plain-html-after-writes");
    await admin(bed, "PUT", "/providers/mistral/status", { status: "available" });
  });

  test("a stopped server shows, and a restarted one recovers without a reload", async () => {
    await control(bed, "stop");
    await status("Disconnected|polling|Sync error", 10_000);
    await screenshot("firefox-plain-html-disconnected");
    await control(bed, "start");
    await admin(bed, "PATCH", "/providers/xai", { display_name: "xAI (renamed while away)" });
    await until("the renamed provider", 15_000, () => document.body.innerText.includes("xAI (renamed while away)"));
    await status("Synced", 15_000);
  });

  test("a reload with the server down shows the cached catalog as stale", async () => {
    await control(bed, "stop");
    await driver.navigate().refresh();
    await status("Showing cached data", 10_000);
    await visible('[data-provider-id="openai"]', 5_000);
    assert.ok((await count("[data-model-id]")) >= 30, "the cached models are listed");
    await screenshot("firefox-plain-html-stale");
    await control(bed, "start");
    await status("Synced", 15_000);
  });
});
