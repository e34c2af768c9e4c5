// One connection per browser: five pages of one Chromium context on one
// server. The server counts one WebSocket; a write reaches all five; when
// the leading page closes, another takes the connection over, and no page
// misses an event. (The hand-over time is measured in bench/, not here.)
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { admin, control, eventually, launchChromium, pageSite, root, serverSockets, startTestbed } from "./testbed.mjs";

let bed, browser;


async function serverVersion() {
  return (await (await fetch(`${bed.server}/version`)).json()).version;
}



const stateOf = (page) => page.evaluate(() => {
  const state = window.__sync?.getState();
  return state && { status: state.status, version: state.version, transport: state.transport };
});

before(async () => {
  const site = pageSite("tabs-site", "tabs/index.html");
  bed = await startTestbed(["--catalog", join(root, "examples/catalog.toml"), "--static-dir", site]);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  bed?.child.kill("SIGTERM");
});

test("five pages share one WebSocket, hand it over, and miss no event", async () => {
  const context = await browser.newContext();
  const url = `${bed.control}/index.html?api=${encodeURIComponent(bed.server)}`;
  const pages = [];
  const loadedAt = [];
  // Which page holds an open WebSocket, as the browser reports it.
  const openSockets = new Map();
  for (let i = 0; i < 5; i++) {
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error(`page ${i}:`, error.message));
    openSockets.set(page, 0);
    page.on("websocket", (socket) => {
      openSockets.set(page, openSockets.get(page) + 1);
      socket.on("close", () => openSockets.set(page, openSockets.get(page) - 1));
    });
    await page.goto(url);
    await eventually(`page ${i} synced`, async () => (await stateOf(page))?.status === "synced");
    pages.push(page);
    loadedAt.push((await stateOf(page)).version);
  }
  for (const page of pages) assert.equal((await stateOf(page)).transport, "websocket");
  await eventually("one socket on the server", async () => (await serverSockets(bed)) === 1);

  await admin(bed, "PATCH", "/providers/xai", { priority: 11 });
  let target = await serverVersion();
  for (const [i, page] of pages.entries()) {
    await eventually(`page ${i} at ${target}`, async () => (await stateOf(page)).version === target);
  }

  // One page holds the socket: it leads. It closes; writes go on meanwhile.
  const holders = () => pages.filter((page) => !page.isClosed() && openSockets.get(page) > 0);
  await eventually("one page holding a socket", async () => holders().length === 1);
  const leader = holders()[0];
  const leaderAt = pages.indexOf(leader);
  await leader.close();
  for (let i = 0; i < 5; i++) await admin(bed, "PATCH", "/providers/xai", { priority: 20 + i });
  target = await serverVersion();
  const rest = pages.filter((page) => page !== leader);
  const restLoadedAt = loadedAt.filter((_, i) => i !== leaderAt);
  for (const [i, page] of rest.entries()) {
    await eventually(`page ${i + 1} at ${target}`, async () => {
      const state = await stateOf(page);
      return state.version === target && state.status === "synced" && state.transport === "websocket";
    });
  }
  await eventually("one socket again", async () => (await serverSockets(bed)) === 1);
  await eventually("another page holding it", async () => holders().length === 1 && holders()[0] !== leader);

  // A page going into the back/forward cache (pagehide) lets its place go:
  // an open socket or channel would keep it out of that cache. It hears
  // nothing until it is shown again (pageshow), then catches up. (Chromium
  // under Playwright does not restore pages from that cache, so the two
  // events are sent as the browser sends them.)
  const away = rest[0];
  const transition = (type) =>
    away.evaluate((type) => window.dispatchEvent(new PageTransitionEvent(type, { persisted: true })), type);
  await transition("pagehide");
  const hiddenAt = (await stateOf(away)).version;
  await admin(bed, "PATCH", "/providers/xai", { priority: 30 });
  target = await serverVersion();
  for (const [i, page] of rest.slice(1).entries()) {
    await eventually(`page ${i + 2} at ${target}`, async () => (await stateOf(page)).version === target);
  }
  await eventually("one socket, held by another page", async () => (await serverSockets(bed)) === 1);
  assert.equal((await stateOf(away)).version, hiddenAt, "a page in the cache hears nothing");
  await transition("pageshow");
  await eventually("the page back, caught up", async () => {
    const state = await stateOf(away);
    return state.version === target && state.status === "synced";
  });
  await eventually("still one socket", async () => (await serverSockets(bed)) === 1);

  // Every change since each page loaded reached its listeners, once; the
  // page that was away heard every change until it left, and a resync.
  for (const [i, page] of rest.entries()) {
    const seen = await page.evaluate(() => window.__events);
    const from = restLoadedAt[i];
    const until = page === away ? hiddenAt : target;
    const expected = Array.from({ length: until - from }, (_, k) => from + 1 + k);
    assert.deepEqual(seen.filter((v) => v > from && v <= until), expected, `page ${i + 1}'s events`);
  }
  assert.ok(await away.evaluate(() => window.__resynced.includes("leader_state")), "the page back was told it resynced");

  // The server's store wiped (a new epoch): every page is told once, the
  // leader by its own resync and the others by the leader's, handed on
  // (a follower told it twice: the leader's, then its own for the new
  // state).
  const resyncedBefore = await Promise.all(rest.map((page) => page.evaluate(() => window.__resynced.length)));
  const epochOf = async () => (await (await fetch(`${bed.server}/version`)).json()).epoch;
  const oldEpoch = await epochOf();
  await control(bed, "wipe");
  // (A connection kept alive from before the restart may fail once.)
  let newEpoch;
  await eventually("the wiped server", async () => {
    newEpoch = await epochOf().catch(() => undefined);
    return newEpoch !== undefined;
  });
  assert.notEqual(newEpoch, oldEpoch);
  for (const [i, page] of rest.entries()) {
    await eventually(`page ${i + 1} on the new epoch`, async () =>
      page.evaluate((epoch) => {
        const state = window.__sync.getState();
        return state.epoch === epoch && state.status === "synced";
      }, newEpoch),
    );
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  for (const [i, page] of rest.entries()) {
    const told = (await page.evaluate(() => window.__resynced)).slice(resyncedBefore[i]);
    assert.deepEqual(told, ["epoch_changed"], `page ${i + 1}'s resyncs after the wipe`);
  }
  await context.close();
});

test("a follower's forceSync outlives a leader that crashed, when another follower leads next", async () => {
  // Three tabs: the leader crashes (no pagehide, no word to the others)
  // while it syncs for the third; the second takes the lead. The third's
  // forceSync waited for good (only a leader that went in order said so).
  const context = await browser.newContext();
  const url = `${bed.control}/index.html?api=${encodeURIComponent(bed.server)}`;
  const pages = [];
  for (let i = 0; i < 3; i++) {
    const page = await context.newPage();
    await page.goto(url);
    await eventually(`page ${i} synced`, async () => (await stateOf(page))?.status === "synced");
    pages.push(page);
  }
  const [leader, next, waiting] = pages;
  await leader.route("**/sync", () => {});
  const asked = leader.waitForRequest("**/sync");
  await waiting.evaluate(() => {
    window.__forced = window.__sync.forceSync().then(() => "resolved", (error) => error.message);
  });
  await asked;
  const cdp = await context.newCDPSession(leader);
  // Not awaited: a crashed page answers nothing.
  cdp.send("Page.crash").catch(() => undefined);
  await eventually("the second tab leads", async () => (await stateOf(next))?.transport === "websocket");
  await eventually("the third tab's forceSync settles", async () =>
    waiting.evaluate(() => Promise.race([window.__forced, new Promise((r) => setTimeout(() => r("pending"), 50))])).then(
      (outcome) => outcome !== "pending",
    ),
  );
  assert.equal(await waiting.evaluate(() => window.__forced), "resolved");
  await context.close();
});

// A follower's forceSync() while its leader goes away resolves (the sync is
// done by the next leader, here the follower itself): it was refused with
// "the page gave up the connection" though the server was fine.
test("a follower's forceSync outlives its leader", async () => {
  const context = await browser.newContext();
  const url = `${bed.control}/index.html?api=${encodeURIComponent(bed.server)}`;
  const pages = [];
  for (let i = 0; i < 2; i++) {
    const page = await context.newPage();
    await page.goto(url);
    await eventually(`page ${i} synced`, async () => (await stateOf(page))?.status === "synced");
    pages.push(page);
  }
  const [leader, follower] = pages;
  // The leader's sync for the follower hangs (its answer held back), so
  // the leader is in the middle of it when it goes.
  await leader.route("**/sync", () => {});
  const asked = leader.waitForRequest("**/sync");
  await follower.evaluate(() => {
    window.__forced = window.__sync.forceSync().then(() => "resolved", (error) => error.message);
  });
  await asked;
  await leader.close();
  assert.equal(await follower.evaluate(() => window.__forced), "resolved");
  await eventually("the follower leads, synced", async () => {
    const state = await stateOf(follower);
    return state.status === "synced" && state.transport === "websocket";
  });
  await context.close();
});
