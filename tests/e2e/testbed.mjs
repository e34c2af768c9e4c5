// Starting the testbed (a real provider-sync-server plus its control
// service) and Debian's Chromium, for the end-to-end tests and the browser
// benchmarks.
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

/** Starts the testbed binary (`profile`: "debug" or "release") with `args`;
 * resolves with the child process and its two URLs. */
export async function startTestbed(args, profile = "debug") {
  const child = spawn(join(root, `target/${profile}/provider-sync-testbed`), args, {
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
