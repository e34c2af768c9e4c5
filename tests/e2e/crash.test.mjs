// A client resumes across a crash of the server: the server binary is
// killed with SIGKILL under a page whose SDK is synced over its WebSocket,
// started again on the same port and store, and given a write while the
// page cannot reach it (offline); back online, the page must get that write
// as an event on the resumed stream — no `resynced` (no refetch of the
// whole state) — and end equal to GET /state. The chaos suite does many
// kills but accepts a full resync after them; this test does not.
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ServerProcess, TOKEN, staticSite } from "./chaos.mjs";
import { eventually, launchChromium, pageSite, root } from "./testbed.mjs";

/** What the chaos page's service shows: status, version, checksum,
 * transport and whether it is connected (undefined before it exists). */
function pageState(page) {
  return page.evaluate(() => {
    const s = window.__sync && window.__sync.getState();
    return s && { status: s.status, version: s.version, checksum: s.checksum, transport: s.transport, isConnected: s.isConnected };
  });
}

/** A server of its own (the sample catalog in a temporary directory; `options`
 * for ServerProcess beside retention and queue), the chaos page's site and
 * Chromium, handed to `body`; all of it stopped and removed afterwards. */
async function withBed(name, options, body) {
  const dir = mkdtempSync(join(tmpdir(), `provider-sync-${name}-`));
  const lines = [];
  const server = new ServerProcess(dir, (line) => lines.push(line), { retention: 1000, wsQueue: 256, ...options });
  copyFileSync(join(root, "examples/catalog.toml"), server.catalog);
  const base = await server.start();
  const site = await staticSite(pageSite(`${name}-site`, "chaos/index.html"));
  const browser = await launchChromium();
  try {
    await body({ base, browser, lines, server, site });
    assert.deepEqual(server.errors, [], lines.join("\n"));
  } finally {
    await browser.close();
    await server.stop("SIGTERM").catch(() => {});
    await new Promise((resolve) => site.server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

test("after a SIGKILL of the server the client resumes from its version: a write made while it was away arrives as an event, no full resync", { timeout: 120_000 }, () => withBed("crash", {}, async ({ base, browser, lines, server, site }) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("pageerror", (error) => lines.push(`page error: ${error.message}`));
    await page.goto(`${site.url}/index.html?${new URLSearchParams({ api: base })}`);
    const state = () => pageState(page);
    await eventually("the page synced over its WebSocket", async () => {
      const s = await state();
      return s?.status === "synced" && s.transport === "websocket";
    });
    const before = (await state()).version;

    await server.stop("SIGKILL");
    await eventually("the page to see the server gone", async () => !(await state()).isConnected);
    await context.setOffline(true);
    await server.start();
    const priority = 1 + Math.floor(Math.random() * 900);
    const response = await fetch(`${base}/admin/providers/anthropic`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ priority }),
    });
    assert.equal(response.status, 200, await response.text());
    const version = Number(response.headers.get("x-sync-version"));
    assert.ok(version > before, `the write made version ${version}, past the page's ${before}`);
    // The premise: the page has not seen the write (it is unreachable).
    const away = await state();
    assert.ok(!away.isConnected && away.version < version, JSON.stringify(away));

    await context.setOffline(false);
    await eventually("the page back on its WebSocket, at the write's version", async () => {
      const s = await state();
      return s.status === "synced" && s.transport === "websocket" && s.version >= version;
    });
    const current = await (await fetch(`${base}/state`)).json();
    const s = await state();
    assert.equal(s.version, current.metadata.version);
    assert.equal(s.checksum, current.metadata.checksum);
    const shown = await page.evaluate(() => window.__sync.getState().providers.find((p) => p.id === "anthropic").priority);
    assert.equal(shown, priority);

    const log = await page.evaluate(() => window.__log);
    assert.deepEqual(log.filter((line) => line.includes("resynced")), [], log.join("\n"));
    assert.ok(
      log.some((line) => line.includes(`provider_updated v${version}`)),
      `the write came as its event:\n${log.join("\n")}`,
    );
}));

test("a server frozen (SIGSTOP) whose own heartbeats are 30 s apart is given up within about two of the client's 2 s periods: its heartbeat goes unanswered", { timeout: 120_000 }, () => withBed("frozen", { heartbeatMs: 30_000 }, async ({ base, browser, lines, server, site }) => {
    const page = await (await browser.newContext()).newPage();
    page.on("pageerror", (error) => lines.push(`page error: ${error.message}`));
    await page.goto(`${site.url}/index.html?${new URLSearchParams({ api: base, heartbeat: "2000" })}`);
    const state = () => pageState(page);
    await eventually("the page synced over its WebSocket", async () => {
      const s = await state();
      return s?.status === "synced" && s.transport === "websocket";
    });
    // Past the hello's heartbeat and its answer: the link proven.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.equal((await state()).isConnected, true);
    server.freeze();
    // Two client periods and the answer window (4-6 s), well before the
    // 60 s that twice the server's period would take.
    await eventually("the page to give up the frozen server's socket", async () => !(await state()).isConnected, 15_000);
    const log = await page.evaluate(() => window.__log);
    assert.ok(
      log.some((line) => line.includes("disconnected") && line.includes("no heartbeat from the server")),
      log.join("\n"),
    );
    server.thaw();
    await eventually("the page back on its WebSocket", async () => {
      const s = await state();
      return s.status === "synced" && s.transport === "websocket";
    }, 30_000);
}));
