// Starting the testbed (a real provider-sync-server plus its control
// service), Debian's Chromium and Debian's Firefox ESR, for the end-to-end
// tests and the browser benchmarks.
import { spawn } from "node:child_process";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import firefox from "selenium-webdriver/firefox.js";

export const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
/** Where cargo put the binaries: CARGO_TARGET_DIR, as cargo reads it. */
export const cargoTarget = resolve(root, process.env.CARGO_TARGET_DIR || "target");

/** Starts the testbed binary (`profile`: "debug" or "release") with `args`;
 * resolves with the child process and its two URLs. */
export async function startTestbed(args, profile = "debug") {
  const child = spawn(join(cargoTarget, profile, "provider-sync-testbed"), args, {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const urls = await new Promise((resolve, reject) => {
    let text = "";
    child.stdout.on("data", (chunk) => {
      text += chunk;
      const server = text.match(/^SERVER_URL=(.*)$/m);
      const control = text.match(/^CONTROL_URL=(.*)$/m);
      if (server && control) resolve({ server: server[1].trim(), control: control[1].trim() });
    });
    child.on("exit", (code) => reject(new Error(`testbed exited with ${code}`)));
  });
  return { child, ...urls };
}

/** Debian's Chromium, headless, quiet on the closed network. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
  });
}

/** Debian's Firefox ESR, headless, through geckodriver (Playwright drives
 * only its own build of Firefox): a selenium-webdriver session. Both paths
 * are given, so Selenium Manager, which would download them, never runs. */
export function launchFirefox({ width = 1280, height = 1000 } = {}) {
  process.env.SE_MANAGER_PATH = "/nonexistent/selenium-manager"; // fail, never fetch
  const options = new firefox.Options()
    .setBinary(process.env.FIREFOX ?? "/usr/bin/firefox-esr")
    .addArguments("-headless")
    .windowSize({ width, height });
  // Where `cargo install` put it (scripts/setup.sh).
  const geckodriver = process.env.GECKODRIVER ?? join(process.env.CARGO_HOME ?? join(homedir(), ".cargo"), "bin/geckodriver");
  const service = new firefox.ServiceBuilder(geckodriver)
    .setHostname("127.0.0.1")
    // Firefox connects to loopback only, and looks no Mozilla service up.
    // geckodriver ignores the capabilities' `env` off Android: its own
    // environment is what Firefox gets.
    .setEnvironment({ ...process.env, MOZ_DISABLE_NONLOCAL_CONNECTIONS: "1" })
    .build();
  return firefox.Driver.createSession(options, service);
}

/** The testbed's admin token. */
export const TOKEN = "testbed-admin-token-of-32-bytes-or-more";

/** A write through the admin API; fails the test unless it succeeds. */
export async function admin(bed, method, path, body) {
  const response = await fetch(`${bed.server}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${await response.text()}`);
}

/** Stops, starts or wipes the server through the control service. */
export async function control(bed, action) {
  const response = await fetch(`${bed.control}/${action}`, { method: "POST" });
  const body = await response.json();
  if (body.ok !== true) throw new Error(`${action}: ${JSON.stringify(body)}`);
}

/** Polls `check` every 50 ms until it holds; throws after `ms`. */
export async function eventually(what, check, ms = 10_000) {
  const start = Date.now();
  for (;;) {
    if (await check()) return;
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The server's count of open WebSocket connections (`/metrics`). */
export async function serverSockets(bed) {
  const text = await (await fetch(`${bed.server}/metrics`)).text();
  return Number(text.match(/^provider_sync_ws_connections (\d+)/m)[1]);
}

/** A site for the control service to serve: one test page (from
 * tests/e2e) as index.html, and the built package under provider-sync/.
 * Returns its directory. */
export function pageSite(name, page) {
  const site = join(root, "target", name);
  rmSync(site, { recursive: true, force: true });
  mkdirSync(site, { recursive: true });
  cpSync(join(root, "tests/e2e", page), join(site, "index.html"));
  cpSync(join(root, "pkg"), join(site, "provider-sync"), { recursive: true });
  return site;
}
