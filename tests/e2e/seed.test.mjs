// The seed's Basic Usage example behind a development proxy (as Vite's dev
// server is: the page and /api/provider-sync on one origin), reloaded while
// the backend is down and the proxy answers 500: the cached catalog is
// shown, not an error.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { eventually, launchChromium, root, startTestbed } from "./testbed.mjs";

const site = join(root, "target/seed-site");
const pkg = join(root, "pkg");
const esbuild = createRequire(join(root, "pkg-template/package.json"))("esbuild");
let bed, browser, proxy, backendDown = false;

/** The development proxy: static files, and /api/provider-sync (HTTP and
 * WebSocket) to the backend, or 500 while the backend is "down". */
function startProxy(backend) {
  const target = new URL(backend);
  const server = createServer(async (request, response) => {
    if (!request.url.startsWith("/api/provider-sync")) {
      const file = request.url === "/" ? "index.html" : request.url.slice(1).split("?")[0];
      try {
        const type = file.endsWith(".wasm") ? "application/wasm" : file.endsWith(".js") ? "text/javascript" : "text/html";
        response.writeHead(200, { "content-type": type }).end(readFileSync(join(site, file)));
      } catch {
        response.writeHead(404).end();
      }
      return;
    }
    if (backendDown) {
      response.writeHead(500, { "content-type": "text/plain" }).end("proxy error: connect ECONNREFUSED");
      return;
    }
    const body = [];
    for await (const chunk of request) body.push(chunk);
    const answer = await fetch(`${target.origin}${request.url}`, {
      method: request.method,
      headers: { "content-type": request.headers["content-type"] ?? "application/json" },
      body: body.length ? Buffer.concat(body) : undefined,
    });
    response.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json" });
    response.end(Buffer.from(await answer.arrayBuffer()));
  });
  server.on("upgrade", (request, socket, head) => {
    if (backendDown) {
      socket.end("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n");
      return;
    }
    const upstream = connect(Number(target.port), target.hostname, () => {
      const lines = [`${request.method} ${request.url} HTTP/1.1`];
      for (let i = 0; i < request.rawHeaders.length; i += 2) lines.push(`${request.rawHeaders[i]}: ${request.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
      upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

before(async () => {
  rmSync(site, { recursive: true, force: true });
  mkdirSync(site, { recursive: true });
  await esbuild.build({
    entryPoints: [join(root, "tests/e2e/seed/app.jsx")],
    outfile: join(site, "app.js"),
    bundle: true,
    format: "esm",
    jsx: "automatic",
    define: { "process.env.NODE_ENV": '"production"' },
    alias: { "provider-sync": join(pkg, "index.js"), "provider-sync/react": join(pkg, "react/index.js") },
    nodePaths: [join(root, "pkg-template/node_modules")],
    logLevel: "error",
  });
  copyFileSync(join(pkg, "provider_sync_sdk_bg.wasm"), join(site, "provider_sync_sdk_bg.wasm"));
  writeFileSync(
    join(site, "index.html"),
    '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>' +
      '<body><div id="root"></div><script type="module" src="app.js"></script></body></html>',
  );
  bed = await startTestbed(["--catalog", join(root, "examples/catalog.toml")]);
  proxy = await startProxy(bed.server);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  proxy?.close();
  bed?.child.kill("SIGTERM");
});

test("the seed's example, reloaded with the backend down, shows the cached catalog", async () => {
  const page = await browser.newPage();
  const origin = `http://127.0.0.1:${proxy.address().port}`;
  await page.goto(`${origin}/`);
  await page.locator("li").first().waitFor({ timeout: 10_000 });
  const listed = await page.locator("li").count();
  assert.ok(listed >= 4, `${listed} providers listed`);
  // The copy is in IndexedDB before the reload (page.evaluate awaits the
  // promise; waitForFunction would take the promise itself as true).
  await eventually("the copy in IndexedDB", () =>
    page.evaluate(
      () =>
        new Promise((ok) => {
          const open = indexedDB.open("provider-sync");
          open.onsuccess = () => {
            const db = open.result;
            if (!db.objectStoreNames.contains("states")) {
              db.close();
              return ok(false);
            }
            const keys = db.transaction("states").objectStore("states").getAllKeys();
            // The copy itself, not only when it was last confirmed.
            keys.onsuccess = () => {
              db.close();
              ok(keys.result.some((key) => !String(key).endsWith("#confirmed")));
            };
          };
        }),
    ),
  );

  backendDown = true;
  const failed = [];
  page.on("response", (response) => {
    if (response.status() === 500) failed.push(new URL(response.url()).pathname);
  });
  await page.reload();
  await page.locator("li").first().waitFor({ timeout: 10_000 });
  assert.equal(await page.locator("li").count(), listed, "the cached catalog");
  assert.equal(await page.locator('[role="alert"]').count(), 0, "no error for a catalog that is shown");
  // The proxy did answer 500: the page was offline indeed (the cached
  // catalog may be shown before the first refused request's answer comes).
  await eventually("a request the proxy refused", () =>
    failed.some((path) => path.startsWith("/api/provider-sync")),
  );
  backendDown = false;
  await page.close();
});
