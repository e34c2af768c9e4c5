// One connection per browser: how long the tabs are without a connection
// when the tab holding it closes. Three pages of one Chromium context on
// one server (tests/e2e/tabs/index.html); each round closes the leading
// page (the oldest: the next in line for the lock is the next oldest),
// writes at once, and measures from the close until
//   - the server counts one WebSocket again (the new leader connected),
//   - the write is in every remaining page's state.
// A new page joins before the next round. The baseline, in the same run:
// a write's way to every page with the leader in place. Prints one row per
// measure with the median and range over the rounds.
//
// Usage: node handover.mjs SITE_DIR [ROUNDS]  (run by scripts/bench.sh)
import { join } from "node:path";
import { launchChromium, root, startTestbed } from "../../tests/e2e/testbed.mjs";

const site = process.argv[2];
const rounds = Number(process.argv[3] ?? 20);

const bed = await startTestbed(["--catalog", join(root, "examples/catalog.toml"), "--static-dir", site], "release");
const browser = await launchChromium();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const sockets = async () =>
  Number((await (await fetch(`${bed.server}/metrics`)).text()).match(/^provider_sync_ws_connections (\d+)/m)[1]);
const versionOf = (page) => page.evaluate(() => window.__sync?.getState().version ?? -1);

try {
  const context = await browser.newContext();
  const url = `${bed.control}/index.html?api=${encodeURIComponent(bed.server)}`;
  const open = async () => {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => window.__sync?.getState().status === "synced", null, { timeout: 15_000 });
    return page;
  };
  const pages = [await open(), await open(), await open()];
  const reconnect = [];
  const delivered = [];
  const baseline = [];
  const write = async (priority) => {
    const written = await fetch(`${bed.server}/admin/providers/xai`, {
      method: "PATCH",
      headers: { authorization: "Bearer testbed-admin-token-of-32-bytes-or-more", "content-type": "application/json" },
      body: JSON.stringify({ priority }),
    });
    if (!written.ok) throw new Error(`write: HTTP ${written.status}`);
    return (await (await fetch(`${bed.server}/version`)).json()).version;
  };
  for (let round = 0; round < rounds; round++) {
    while ((await sockets()) !== 1) await sleep(10);
    const started = performance.now();
    const version = await write(1000 + round);
    while (!(await Promise.all(pages.map(versionOf))).every((v) => v >= version)) await sleep(5);
    baseline.push(performance.now() - started);
    const leader = pages.shift();
    const closed = performance.now();
    await leader.close();
    const target = await write(round);
    let connected = null;
    for (;;) {
      if (connected === null && (await sockets()) === 1) connected = performance.now() - closed;
      const versions = await Promise.all(pages.map(versionOf));
      if (versions.every((v) => v >= target)) {
        delivered.push(performance.now() - closed);
        break;
      }
      await sleep(5);
    }
    while (connected === null) {
      if ((await sockets()) === 1) connected = performance.now() - closed;
      else await sleep(5);
    }
    reconnect.push(connected);
    pages.push(await open());
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const row = (name, xs) =>
    `| ${name} | ${xs.length} | ${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}) |`;
  console.log("| from the leading page's close | rounds | ms, median (range) |\n| --- | ---: | ---: |");
  console.log(row("until the new leader's socket is counted", reconnect));
  console.log(row("until a write made at the close is in every other page", delivered));
  console.log(row("baseline: a write to every page, the leader in place", baseline));
  console.log(`\nratio of the write's way with a hand-over to without: ${(median(delivered) / median(baseline)).toFixed(1)}×`);
} finally {
  await browser.close();
  bed.child.kill("SIGTERM");
}
