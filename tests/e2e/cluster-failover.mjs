// The wasm SDK in Chromium on the demo page, served by two provider-sync
// instances on one PostgreSQL behind nginx (scripts/cluster-demo.sh starts
// them and runs this file with CLUSTER_DEMO_CHECK=1): the instance holding
// the page's WebSocket is killed (SIGKILL), a write lands on the other, and
// the page converges to that instance's state through the balancer.
import assert from "node:assert/strict";
import { test } from "node:test";
import { launchChromium } from "./testbed.mjs";

const lb = process.env.CLUSTER_LB;
const instances = JSON.parse(process.env.CLUSTER_INSTANCES ?? "[]");
const token = process.env.PROVIDER_SYNC_ADMIN_TOKEN;
const api = (port) => `http://127.0.0.1:${port}/api/provider-sync`;

async function connections(port) {
  const text = await (await fetch(`${api(port)}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("provider_sync_ws_connections "));
  return Number(line?.split(" ")[1] ?? 0);
}

test("the SDK behind a balancer converges after the instance it follows is killed", async () => {
  assert.ok(lb && instances.length === 2, "run by scripts/cluster-demo.sh");
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    page.on("pageerror", (error) => console.error("[cluster] page error:", error.message));
    await page.goto(`${lb}/`);
    await page.getByRole("status").first().filter({ hasText: "Synced" }).waitFor({ timeout: 20_000 });
    // "Synced" can come from the first POST /sync, before the socket is
    // open: wait (up to 10 s) for it to be.
    let open = [];
    for (let tries = 0; tries < 100; tries++) {
      open = await Promise.all(instances.map((i) => connections(i.port)));
      if (open.some((n) => n >= 1)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(open.filter((n) => n >= 1).length, 1, `exactly one instance holds the page's socket: ${open}`);
    const victim = open.findIndex((n) => n >= 1);
    const survivor = instances[1 - victim];
    process.kill(instances[victim].pid, "SIGKILL");

    const response = await fetch(`${api(survivor.port)}/admin/providers`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ id: "after-failover", name: "After failover" }),
    });
    assert.equal(response.status, 201);
    await page.getByText("After failover").first().waitFor({ timeout: 30_000 });

    // The page's copy is the survivor's, checksum and all.
    const truth = await (await fetch(`${api(survivor.port)}/version`)).json();
    await page.waitForFunction(
      (version) => window.providerSync?.getState().version >= version,
      truth.version,
      { timeout: 10_000 },
    );
    const state = await page.evaluate(() => {
      const s = window.providerSync.getState();
      return { version: s.version, epoch: s.epoch, providers: s.providers.length };
    });
    const full = await (await fetch(`${api(survivor.port)}/state`)).json();
    assert.equal(state.version, truth.version);
    assert.equal(state.epoch, truth.epoch);
    assert.equal(state.providers, full.providers.length);
    assert.equal(await connections(survivor.port) >= 1, true, "the page reconnected to the survivor");
  } finally {
    await browser.close();
  }
});
