// The browser's HTTP cache and a refused answer. `GET /state` carries an
// ETag and `Cache-Control: no-cache`, so the browser keeps its body and
// asks again with `If-None-Match`; a body the SDK refused (a damaged state:
// its checksum does not match its content) came back from the cache as the
// answer to each retry's `304`, and the page stayed in `error` until the
// catalog changed, a reload included (a black-box check, 2026-12-07). The
// API is reached through a forwarder on loopback that damages one answer.
import assert from "node:assert/strict";
import { createServer, request as forward } from "node:http";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { launchChromium, root, startTestbed } from "./testbed.mjs";

let bed, browser, forwarder;
/** How many `GET /state` answers are still to be damaged. */
let damage = 0;
/** The `GET /state` requests seen, with their `If-None-Match`. */
const stateRequests = [];

before(async () => {
  bed = await startTestbed(["--catalog", join(root, "examples/catalog.toml"), "--static-dir", join(root, "target/demo-site")]);
  const server = new URL(bed.server);
  forwarder = createServer((req, res) => {
    const headers = { ...req.headers, host: server.host };
    // Plain bodies, to damage one.
    delete headers["accept-encoding"];
    const isState = req.method === "GET" && new URL(req.url, "http://x").pathname === `${server.pathname}/state`;
    if (isState) stateRequests.push(req.headers["if-none-match"] ?? null);
    const out = forward({ host: server.hostname, port: server.port, method: req.method, path: req.url, headers }, (answer) => {
      if (!(isState && answer.statusCode === 200 && damage > 0)) {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
        return;
      }
      damage -= 1;
      const chunks = [];
      answer.on("data", (chunk) => chunks.push(chunk));
      answer.on("end", () => {
        const state = JSON.parse(Buffer.concat(chunks).toString());
        // Another name under the same checksum and ETag.
        state.providers[0].name += " (damaged)";
        const body = JSON.stringify(state);
        const sent = { ...answer.headers, "content-length": Buffer.byteLength(body) };
        res.writeHead(200, sent);
        res.end(body);
      });
    });
    out.on("error", () => res.destroy());
    req.pipe(out);
  });
  // No WebSocket through it: the page polls, so every sync is a request.
  forwarder.on("upgrade", (_req, socket) => socket.destroy());
  await new Promise((resolve) => forwarder.listen(0, "127.0.0.1", resolve));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  forwarder?.close();
  bed?.child.kill("SIGTERM");
});

test("a damaged state is asked for again past the HTTP cache, and the page recovers without a change", async () => {
  const page = await browser.newPage();
  const api = `http://127.0.0.1:${forwarder.address().port}${new URL(bed.server).pathname}`;
  damage = 1;
  await page.goto(`${bed.control}/index.html?api=${encodeURIComponent(api)}`);
  const status = page.getByRole("status").first();
  // No write meanwhile: the catalog, and so the ETag, stays as it was.
  await status.filter({ hasText: "Synced" }).waitFor({ timeout: 20_000 });
  assert.equal(damage, 0, "the damaged answer was sent");
  assert.ok(stateRequests.length >= 2, `asked again: ${JSON.stringify(stateRequests)}`);
  // The retry went past the cache: no conditional request, answered 304
  // with the refused body.
  assert.equal(stateRequests[1], null, `the retry was not conditional: ${JSON.stringify(stateRequests)}`);
  assert.equal(await page.locator("text=(damaged)").count(), 0, "the damaged name was never shown");
  await page.close();
});
