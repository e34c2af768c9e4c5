// The chaos convergence harness: five SDK pages in four Chromium contexts
// (separate IndexedDB and connections; one context holds two tabs sharing a
// connection, one page polls and never opens a WebSocket), each context
// behind its own TCP proxy to a real provider-sync-server process, and a
// seeded schedule of faults:
// - admin writes of every kind (one at a time, in bursts, several at once
//   on distinct entities; ids that existed once are created again), each
//   answered as expected; writes sent while the server is down must fail
//   and are not counted, and one may be in flight at a SIGKILL;
// - the server: SIGKILL and restart on the same port and store (sometimes
//   taking a crash-time backup), SIGTERM and restart, SIGSTOP/SIGCONT, a
//   wiped store or the backup restored with --new-epoch (new epochs), the
//   catalog file edited and reloaded with SIGHUP; per seed, a short event
//   log (too_old) and a small WebSocket queue (resync_required);
// - the clients: cut connections (a reset), stalled ones (both ways or
//   one), offline spells (setOffline), reloads, hidden pages, pages into
//   the back/forward cache and back, a tab closed and opened again,
//   forceSync() calls.
// Afterwards every page must hold exactly the server's `GET /state`
// (version, epoch, checksum, and every field of every provider and model,
// deprecated ones included) with status `synced`, each context's IndexedDB
// copy must equal it too, no copy may have been repaired for a
// checksum_mismatch, and neither a page nor the server may have logged an
// error.
//
// chaos.test.mjs runs a few fixed seeds; scripts/chaos.sh runs many:
//   node tests/e2e/chaos.mjs [--runs N] [--seed S]... [--duration MS]
// The seed decides the actions and their order; the timing between the
// browser, the server and this script is not reproducible, so a seed that
// failed once may pass the next time (the report keeps the action log).
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { cargoTarget, launchChromium, pageSite, root } from "./testbed.mjs";

/** Tokens are about to need 32 bytes; this one has 40. */
export const TOKEN = "chaos-admin-token-0123456789abcdef012345";
const PREFIX = "/api/provider-sync";

/** mulberry32: a small seeded PRNG, enough to pick actions. */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Helpers over one PRNG. */
function dice(random) {
  const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));
  const pick = (list) => list[Math.floor(random() * list.length)];
  const chance = (p) => random() < p;
  const weighted = (table) => {
    const total = table.reduce((sum, [weight]) => sum + weight, 0);
    let at = random() * total;
    for (const [weight, value] of table) {
      if ((at -= weight) < 0) return value;
    }
    return table[table.length - 1][1];
  };
  return { random, int, pick, chance, weighted };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The real `provider-sync-server` binary as a child process, on one store
 * and, after the first start, one port. */
export class ServerProcess {
  /** `heartbeatMs`: how often the server sends its heartbeats (1000 by
   * default; it waits five periods, at least 5 s, for the client's). */
  constructor(dir, log, { retention, wsQueue, heartbeatMs = 1000 }) {
    this.dir = dir;
    this.heartbeatMs = heartbeatMs;
    this.catalog = join(dir, "catalog.toml");
    this.log = log;
    this.retention = retention;
    this.wsQueue = wsQueue;
    this.port = 0;
    this.child = null;
    this.starts = 0;
    this.errors = []; // the server's ERROR lines
    this.tail = []; // its last log lines
    this.died = null;
  }

  /** Catalog reloads so far by result, from /metrics. */
  async reloads(baseUrl) {
    const text = await (await fetch(`${baseUrl}/metrics`)).text();
    const counts = {};
    for (const [, result, n] of text.matchAll(/^provider_sync_catalog_reloads_total\{result="(\w+)"\} (\d+)/gm)) {
      counts[result] = Number(n);
    }
    return counts;
  }

  get up() {
    return this.child !== null;
  }

  /** `once`: flags for this start only (`--new-epoch`). */
  async start(once = []) {
    const args = [
      "--bind", `127.0.0.1:${this.port}`,
      "--database", join(this.dir, "chaos.db"),
      "--catalog", this.catalog,
      "--admin-token", TOKEN,
      // Every client is on one loopback address.
      "--read-rate-limit", "0", "--admin-rate-limit", "0",
      "--heartbeat-ms", String(this.heartbeatMs),
      "--client-timeout-ms", String(Math.max(5000, this.heartbeatMs * 5)),
      "--health-interval-ms", "3600000",
      "--shutdown-timeout-ms", "2000",
      "--store-lock-timeout-ms", "10000",
      "--event-retention", String(this.retention),
      // A small queue sends resync_required to a client that falls behind
      // (a stalled socket during a burst); a short write deadline drops it.
      "--ws-queue", String(this.wsQueue), "--ws-write-timeout-ms", "3000",
      ...once,
    ];
    const child = spawn(join(cargoTarget, "debug", "provider-sync-server"), args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
    });
    let errors = "";
    child.stderr.on("data", (chunk) => {
      errors += chunk;
      if (process.env.CHAOS_VERBOSE) process.stderr.write(chunk);
      for (const line of String(chunk).split("\n")) {
        const plain = line.replace(/\x1b\[[0-9;]*m/g, "");
        if (/\bERROR\b/.test(plain)) this.errors.push(plain);
        if (plain.trim()) this.tail = [...this.tail.slice(-39), plain];
      }
    });
    const url = await new Promise((resolve, reject) => {
      let text = "";
      child.stdout.on("data", (chunk) => {
        text += chunk;
        const found = text.match(/provider-sync-server listening on (\S+)/);
        if (found) resolve(found[1]);
      });
      child.on("exit", (code, signal) => reject(new Error(`the server exited (${code ?? signal}) before listening: ${errors}`)));
    });
    child.removeAllListeners("exit");
    this.exited = new Promise((resolve) => child.on("exit", resolve));
    child.on("exit", (code, signal) => {
      // Not stopped by the harness: it died by itself.
      if (this.child !== child) return;
      this.died = `pid ${child.pid} exited by itself (${code ?? signal}); its last log lines:\n${this.tail.join("\n")}`;
      this.log(`server ${this.died}`);
    });
    this.port = Number(new URL(url).port);
    this.child = child;
    this.starts += 1;
    this.log(`server up (start ${this.starts}, pid ${child.pid}${once.length ? `, ${once.join(" ")}` : ""})`);
    return url;
  }

  /** SIGKILL (or SIGTERM: a graceful stop) and wait for the exit. */
  async stop(signal = "SIGKILL") {
    const child = this.child;
    if (!child) return;
    this.child = null;
    // A stopped process acts on SIGTERM only once it runs again.
    if (this.frozen && signal !== "SIGKILL") child.kill("SIGCONT");
    this.frozen = false;
    child.kill(signal);
    await this.exited;
  }

  /** SIGSTOP (a process paused: a VM migrating, a long GC, a debugger):
   * its connections stay open, nothing answers; `thaw()` is SIGCONT. */
  freeze() {
    if (!this.child || this.frozen) return false;
    this.child.kill("SIGSTOP");
    this.frozen = true;
    return true;
  }

  thaw() {
    if (this.child && this.frozen) this.child.kill("SIGCONT");
    this.frozen = false;
  }

  /** The store's files (the database, its WAL and shared memory). */
  files(dir = this.dir) {
    return ["chaos.db", "chaos.db-wal", "chaos.db-shm"].map((name) => join(dir, name));
  }

  /** A copy of the store as the crash left it (the server is down). */
  backup() {
    const to = join(this.dir, "backup");
    rmSync(to, { recursive: true, force: true });
    mkdirSync(to);
    for (const [from, into] of this.files().map((f, i) => [f, this.files(to)[i]])) {
      if (existsSync(from)) copyFileSync(from, into);
    }
    this.hasBackup = true;
  }

  /** The backup put back in place of the store (the server is down). */
  restore() {
    const from = join(this.dir, "backup");
    for (const [file, saved] of this.files().map((f, i) => [f, this.files(from)[i]])) {
      rmSync(file, { force: true });
      if (existsSync(saved)) copyFileSync(saved, file);
    }
  }

  /** The store deleted (the server is down): the next start is a new
   * store, a new epoch, seeded from the catalog. */
  wipe() {
    for (const file of this.files()) rmSync(file, { force: true });
  }
}

/** A TCP proxy in front of the server for one browser context: `cut()`
 * closes every connection through it (a reset in mid-stream, as a
 * dropped NAT entry or a crashed proxy does), `stall(["up", "down"])`
 * holds every byte in those directions (up: to the server; the connection
 * stays open but says nothing), `stall([])` delivers them. */
class Proxy {
  constructor(target) {
    this.target = target; // () => port
    this.pairs = new Set();
    this.stalled = new Set(); // "up", "down" 
    this.server = createTcpServer((client) => this.accept(client));
  }

  listen() {
    return new Promise((resolve) => this.server.listen(0, "127.0.0.1", () => resolve(this.server.address().port)));
  }

  accept(client) {
    const upstream = connect(this.target(), "127.0.0.1");
    const pair = { client, upstream, held: [] };
    this.pairs.add(pair);
    const forward = (from, to, direction) => from.on("data", (chunk) => {
      if (this.stalled.has(direction)) pair.held.push([to, chunk]);
      else to.write(chunk);
    });
    forward(client, upstream, "up");
    forward(upstream, client, "down");
    const close = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on("error", close);
      socket.on("close", close);
    }
  }

  cut() {
    for (const { client, upstream } of this.pairs) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  stall(directions) {
    this.stalled = new Set(directions);
    if (this.stalled.size) return;
    for (const pair of this.pairs) {
      for (const [to, chunk] of pair.held) if (!to.destroyed) to.write(chunk);
      pair.held = [];
    }
  }

  close() {
    this.cut();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".css": "text/css", ".json": "application/json" };

/** The chaos page and the package, from a server that never goes down. */
export function staticSite(dir) {
  const server = createHttpServer((request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
    try {
      const body = readFileSync(join(dir, path === "/" ? "index.html" : path));
      response.writeHead(200, { "content-type": TYPES[extname(path)] ?? "application/octet-stream" }).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, url: `http://127.0.0.1:${server.address().port}` })));
}

/** The clients: each is a browser context (its own IndexedDB, its own
 * connection) behind its own proxy; "tabs" has two pages that share one
 * connection; "polling" never opens a WebSocket. */
const CLIENTS = [
  { name: "plain", pages: [{}] },
  { name: "deprecated", pages: [{ deprecated: true }] },
  { name: "polling", pages: [{ polling: true }] },
  { name: "tabs", pages: [{ deprecated: true }, {}] },
];

const PROVIDER_TYPES = ["openai", "anthropic", "google", "mistral", "openai_compatible"];
const STATUSES = ["available", "degraded", "unavailable", "maintenance", "unknown"];
const WORDS = ["Nova", "Quill", "Ember", "Atlas", "Zephyr", "Orbit", "Lumen", "Cobalt", "Drift", "Fable"];
const CAPABILITIES = ["chat", "streaming", "vision", "function_calling", "json_mode", "embeddings"];

/** One valid admin write for `state`, or null when none applies: { method,
 * path, body, ifMatch?, expect } where expect is "ok" or 412 (a stale
 * If-Match: nothing may change). With `busy` (ids other writes of a
 * parallel burst touch), only writes that stay valid whatever order those
 * commit in: none on those ids, no deletes, no new references. */
function chooseWrite(d, state, counter, seen, busy = null) {
  const free = (e) => !busy || !busy.has(e.id);
  // Ids that existed once and are gone: created again, an entity starts
  // over at revision 1 with other content.
  const gone = (ids, list) => [...ids].filter((id) => !list.some((e) => e.id === id) && !busy?.has(id));
  const goneProviders = gone(seen.providers, state.providers);
  const goneModels = gone(seen.models, state.all_models);
  const providers = state.providers.filter(free);
  const models = state.all_models.filter(free);
  const parallel = busy !== null;
  const date = (year = d.int(2026, 2027)) => `${year}-${String(d.int(1, 12)).padStart(2, "0")}-${String(d.int(1, 28)).padStart(2, "0")}`;
  const name = () => `${d.pick(WORDS)} ${d.int(1, 99)}`;
  const pricing = () => ({
    input_per_million: d.int(0, 2000) / 100,
    output_per_million: d.int(0, 8000) / 100,
    ...(d.chance(0.3) ? { cached_input_per_million: d.int(0, 500) / 100 } : {}),
  });
  const otherProvider = (id) => providers.filter((p) => p.id !== id);
  const kinds = [
    [3, "create_provider"],
    [providers.length ? 5 : 0, "patch_provider"],
    [providers.length > 3 && !parallel ? 1 : 0, "delete_provider"],
    [providers.length ? 5 : 0, "status"],
    [providers.length ? 5 : 0, "create_model"],
    [models.length ? 6 : 0, "patch_model"],
    [models.length > 5 && !parallel ? 2 : 0, "delete_model"],
    [models.length ? 4 : 0, "deprecate"],
    [providers.length && !parallel ? 2 : 0, "active"],
    [providers.length && !parallel ? 1 : 0, "stale"],
  ];
  if (kinds.every(([weight]) => weight === 0)) return null;
  const kind = d.weighted(kinds);
  const write = chosen(kind);
  if (write && busy) for (const id of write.touches ?? []) busy.add(id);
  return write;

  function chosen(kind) {
    switch (kind) {
      case "create_provider": {
        const id = goneProviders.length && d.chance(0.4) ? d.pick(goneProviders) : `chaos-p${counter}`;
        const body = { id, name: id, provider_type: d.pick(PROVIDER_TYPES) };
        if (d.chance(0.5)) body.display_name = name();
        if (d.chance(0.5)) body.priority = d.int(0, 200);
        if (d.chance(0.3)) body.enabled = d.chance(0.5);
        if (d.chance(0.5)) body.base_url = `https://api.example-${d.int(1, 9)}.com/v1`;
        if (d.chance(0.4) && providers.length && !parallel) body.fallback_provider_id = d.pick(providers).id;
        if (d.chance(0.5)) body.capabilities = CAPABILITIES.filter(() => d.chance(0.5));
        if (d.chance(0.3)) body.status = d.pick(STATUSES);
        return { method: "POST", path: "/providers", body, expect: "ok", touches: [id], again: seen.providers.has(id) };
      }
      case "patch_provider": {
        const p = d.pick(providers);
        const body = {};
        while (Object.keys(body).length === 0) {
          if (d.chance(0.4)) body.display_name = name();
          if (d.chance(0.4)) body.priority = d.int(0, 200);
          if (d.chance(0.3)) body.enabled = d.chance(0.5);
          if (d.chance(0.2)) body.capabilities = CAPABILITIES.filter(() => d.chance(0.5));
          if (d.chance(0.2)) body.base_url = d.chance(0.3) ? null : `https://api.example-${d.int(1, 9)}.com/v${d.int(1, 3)}`;
          if (d.chance(0.2) && !parallel) {
            const others = otherProvider(p.id);
            body.fallback_provider_id = others.length && d.chance(0.7) ? d.pick(others).id : null;
          }
        }
        return {
          method: "PATCH", path: `/providers/${encodeURIComponent(p.id)}`, body, expect: "ok", touches: [p.id],
          ifMatch: d.chance(0.3) && !parallel ? p.revision : undefined,
        };
      }
      case "delete_provider": {
        const p = d.pick(providers.filter((p) => p.id !== CATALOG_PROVIDER));
        return { method: "DELETE", path: `/providers/${encodeURIComponent(p.id)}`, expect: "ok" };
      }
      case "status": {
        const p = d.pick(providers);
        const body = { status: d.pick(STATUSES) };
        if (d.chance(0.4)) body.message = `chaos ${d.int(1, 999)}`;
        return { method: "PUT", path: `/providers/${encodeURIComponent(p.id)}/status`, body, expect: "ok", touches: [p.id] };
      }
      case "create_model": {
        const id = goneModels.length && d.chance(0.4) ? d.pick(goneModels)
          : d.chance(0.2) ? `chaos/m${counter}:${d.int(1, 9)}` : `chaos-m${counter}`;
        const context = d.pick([8192, 32000, 128000, 200000, 1000000]);
        const body = { id, name: name(), provider_id: d.pick(providers).id, context_window: context };
        if (d.chance(0.5)) body.max_output_tokens = d.pick([4096, 8192, 16384]);
        if (d.chance(0.5)) body.max_input_tokens = d.int(1, context);
        for (const flag of ["supports_streaming", "supports_vision", "supports_function_calling", "supports_json_mode", "supports_reasoning"]) {
          if (d.chance(0.3)) body[flag] = d.chance(0.5);
        }
        if (d.chance(0.6)) body.pricing = pricing();
        if (d.chance(0.2)) {
          body.deprecation_status = "deprecated";
          body.deprecation_date = date(2026);
          if (d.chance(0.5)) body.sunset_date = date(2027);
          if (d.chance(0.5) && models.length && !parallel) body.replacement_model_id = d.pick(models).id;
        }
        return { method: "POST", path: "/models", body, expect: "ok", touches: [id], again: seen.models.has(id) };
      }
      case "patch_model": {
        const m = d.pick(models);
        const body = {};
        while (Object.keys(body).length === 0) {
          if (d.chance(0.3)) body.name = name();
          if (d.chance(0.2)) {
            body.context_window = d.pick([8192, 32000, 128000, 200000, 1000000]);
            body.max_input_tokens = d.int(1, body.context_window);
          }
          if (d.chance(0.2)) body.max_output_tokens = d.pick([2048, 4096, 8192, 16384, 65536]);
          if (d.chance(0.2)) body[d.pick(["supports_streaming", "supports_vision", "supports_function_calling", "supports_json_mode", "supports_reasoning"])] = d.chance(0.5);
          if (d.chance(0.2)) body.pricing = d.chance(0.2) ? null : pricing();
          if (d.chance(0.15) && !parallel) body.provider_id = d.pick(providers).id;
          if (d.chance(0.15)) {
            body.deprecation_status = d.pick(["active", "deprecated", "sunset"]);
            // An active model has no retirement dates (the server refuses them).
            if (body.deprecation_status === "active") Object.assign(body, { deprecation_date: null, sunset_date: null });
          }
          if (d.chance(0.1) && !parallel) {
            const others = models.filter((o) => o.id !== m.id);
            body.replacement_model_id = others.length && d.chance(0.7) ? d.pick(others).id : null;
          }
        }
        return {
          method: "PATCH", path: `/models/${encodeURIComponent(m.id)}`, body, expect: "ok", touches: [m.id],
          ifMatch: d.chance(0.3) && !parallel ? m.revision : undefined,
        };
      }
      case "delete_model": {
        const m = d.pick(models);
        return { method: "DELETE", path: `/models/${encodeURIComponent(m.id)}`, expect: "ok" };
      }
      case "deprecate": {
        const m = d.pick(models);
        const body = { deprecation_date: date(2026) };
        if (d.chance(0.6)) body.sunset_date = d.chance(0.2) ? null : date(2027);
        else if (m.sunset_date && m.sunset_date < body.deprecation_date) body.sunset_date = null;
        if (d.chance(0.5) && !parallel) {
          const others = models.filter((o) => o.id !== m.id);
          body.replacement_model_id = others.length && d.chance(0.8) ? d.pick(others).id : null;
        }
        return { method: "POST", path: `/models/${encodeURIComponent(m.id)}/deprecate`, body, expect: "ok", touches: [m.id] };
      }
      case "active": {
        const body = { provider_id: d.chance(0.85) ? d.pick(providers).id : null };
        if (d.chance(0.4)) body.default_provider_id = d.chance(0.8) ? d.pick(providers).id : null;
        return { method: "PUT", path: "/active-provider", body, expect: "ok" };
      }
      case "stale": {
        // A write based on an old revision: 412, and nothing changes.
        const p = d.pick(providers);
        return {
          method: "PATCH", path: `/providers/${encodeURIComponent(p.id)}`, body: { priority: d.int(0, 200) },
          ifMatch: p.revision + d.int(1, 5), expect: 412,
        };
      }
    }
    return null;
  }
}

/** The catalog file: the example's, plus a provider of its own whose
 * models come and go and change with each edit (round 0: all six). Only
 * this part changes, so every version of the file stays valid whatever the
 * admin API did meanwhile (the chaos never deletes this provider). */
const CATALOG_PROVIDER = "chaos-catalog";
function catalogText(d, round) {
  let text = readFileSync(join(root, "examples/catalog.toml"), "utf8");
  text += `\n[[providers]]\nid = "${CATALOG_PROVIDER}"\nname = "${CATALOG_PROVIDER}"\nprovider_type = "openai_compatible"\n`;
  text += `priority = ${round === 0 ? 10 : d.int(0, 50)}\n`;
  for (let i = 0; i < 6; i++) {
    if (round > 0 && !d.chance(0.7)) continue;
    const context = d.pick([8192, 32000, 128000]);
    text += `\n[[models]]\nid = "cat-${i}"\nprovider_id = "${CATALOG_PROVIDER}"\nname = "Catalog ${i}"\ncontext_window = ${context}\n`;
    if (d.chance(0.5)) text += `max_output_tokens = ${d.pick([2048, 4096])}\n`;
    if (d.chance(0.6)) text += `pricing = { input_per_million = ${d.int(0, 900) / 100}, output_per_million = ${d.int(0, 900) / 100} }\n`;
    if (d.chance(0.3)) text += `supports_reasoning = ${d.chance(0.5)}\n`;
  }
  return text;
}

/** Every field the page holds against the server's state; a list of
 * differences (empty when equal). */
function differences(server, page, label) {
  const found = [];
  const expectEqual = (what, a, b) => {
    const x = JSON.stringify(a);
    const y = JSON.stringify(b);
    if (x !== y) found.push(`${label}: ${what}: page ${y} != server ${x}`);
  };
  const meta = server.metadata;
  expectEqual("version", meta.version, page.state.version);
  expectEqual("epoch", meta.epoch, page.state.epoch);
  expectEqual("checksum", meta.checksum, page.state.checksum);
  expectEqual("status", "synced", page.state.status);
  expectEqual("active_provider_id", server.active_provider_id, page.state.activeProviderId);
  expectEqual("default_provider_id", server.default_provider_id, page.state.defaultProviderId);
  const compareLists = (what, serverList, pageList, ordered = true) => {
    const byId = (list) => new Map(list.map((e) => [e.id, e]));
    const s = byId(serverList);
    const p = byId(pageList);
    if (p.size !== pageList.length) found.push(`${label}: ${what}: duplicate ids on the page`);
    for (const [id, entity] of s) {
      if (!p.has(id)) found.push(`${label}: ${what}: ${id} missing on the page`);
      else expectEqual(`${what} ${id}`, canonical(entity), canonical(p.get(id)));
    }
    for (const id of p.keys()) if (!s.has(id)) found.push(`${label}: ${what}: ${id} on the page, not on the server`);
    if (ordered) expectEqual(`${what} order`, serverList.map((e) => e.id), pageList.map((e) => e.id));
  };
  compareLists("providers", server.providers, page.state.providers);
  // Active ones, then deprecated ones: the order of neither list.
  compareLists("all models", server.all_models, page.allModels, false);
  const shown = page.includeDeprecated ? server.all_models : server.all_models.filter((m) => m.deprecation_status === "active");
  compareLists("getState().models", shown, page.state.models);
  return found;
}

/** The copy a context's IndexedDB holds for `api` (the leading tab's
 * last save), read through `page`: its state, or null. */
function cachedState(page, api) {
  return page.evaluate((api) => new Promise((resolve, reject) => {
    const open = indexedDB.open("provider-sync");
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      if (!db.objectStoreNames.contains("states")) return resolve(null);
      const all = db.transaction("states").objectStore("states").getAll();
      all.onerror = () => reject(all.error);
      all.onsuccess = () => {
        db.close();
        // Saved as JSON text (a release before saved objects).
        const records = all.result.map((r) => (typeof r === "string" ? JSON.parse(r) : r));
        const record = records.find((r) => r && typeof r === "object" && r.source === api);
        resolve(record ? record.state : null);
      };
    };
  }), api);
}

/** A whole `SyncState` (a cached copy) against the server's. */
function stateDifferences(server, state, label) {
  const found = [];
  const expectEqual = (what, a, b) => {
    const x = JSON.stringify(canonical(a));
    const y = JSON.stringify(canonical(b));
    if (x !== y) found.push(`${label}: ${what}: cached ${y} != server ${x}`);
  };
  for (const field of ["version", "epoch", "checksum"]) expectEqual(field, server.metadata[field], state.metadata[field]);
  expectEqual("active_provider_id", server.active_provider_id, state.active_provider_id);
  expectEqual("default_provider_id", server.default_provider_id, state.default_provider_id);
  expectEqual("providers", server.providers, state.providers);
  expectEqual("all_models", server.all_models, state.all_models);
  return found;
}

/** Objects with their keys sorted, so that JSON text compares content. */
function canonical(value) {
  return Array.isArray(value) ? value.map(canonical)
    : value && typeof value === "object"
      ? Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical(value[k])]))
      : value;
}

/** Runs one schedule; resolves with its summary, rejects with a report
 * that names the seed. `log` gets each line as it happens (or nothing). */
export async function runSchedule({ seed, durationMs = 40_000, verbose = false } = {}) {
  const d = dice(mulberry32(seed));
  const began = Date.now();
  const lines = [];
  const log = (text) => {
    const line = `${((Date.now() - began) / 1000).toFixed(2).padStart(6)}s ${text}`;
    lines.push(line);
    if (verbose) console.error(`[chaos ${seed}] ${line}`);
  };
  const dir = mkdtempSync(join(tmpdir(), "provider-sync-chaos-"));
  // A short event log makes clients that were away long enough need the
  // whole state ("too_old") rather than the missed events.
  const retention = d.pick([1000, 40, 12]);
  const wsQueue = d.pick([256, 16, 4]);
  const server = new ServerProcess(dir, log, { retention, wsQueue });
  const proxies = [];
  const pageErrors = [];
  const resyncs = {}; // reason -> count, every page
  const pageLabels = new Map();
  const counts = {
    writes: 0, recreated: 0, refused: 0, stale: 0, lost: 0, kills: 0, restarts: 0, epochs: 0, cuts: 0, stalls: 0, offline: 0,
    reloads: 0, catalog: 0, frozen: 0, away: 0, hidden: 0, forced: 0, tabs: 0,
  };
  let acked = []; // versions the server acknowledged, this epoch
  let site, browser;
  const timers = new Set();
  const later = (ms, fn) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };
  const pending = new Set(); // promises started by timers
  const track = (promise) => {
    const p = promise.catch((error) => log(`(background) ${error.message}`)).finally(() => pending.delete(p));
    pending.add(p);
  };

  try {
    let catalogRound = 0;
    writeFileSync(server.catalog, catalogText(d, catalogRound++));
    const baseUrl = await server.start();
    site = await staticSite(pageSite("chaos-site", "chaos/index.html"));
    browser = await launchChromium();
    browser.on("disconnected", () => log("the browser disconnected"));
    const clients = [];
    for (const spec of CLIENTS) {
      const proxy = new Proxy(() => server.port);
      proxies.push(proxy);
      const api = `http://127.0.0.1:${await proxy.listen()}${PREFIX}`;
      const context = await browser.newContext();
      await context.exposeBinding("__chaosReport", ({ page }, reason) => {
        resyncs[reason] = (resyncs[reason] ?? 0) + 1;
        log(`${pageLabels.get(page) ?? spec.name}: resynced (${reason})`);
      });
      const client = { ...spec, api, proxy, context, offline: false, stalled: false, pages: [] };
      client.open = async (i) => {
        const options = spec.pages[i];
        const page = await context.newPage();
        const label = `${spec.name}${spec.pages.length > 1 ? `#${i}` : ""}`;
        pageLabels.set(page, label);
        page.on("pageerror", (error) => pageErrors.push(`${label}: ${error.message}`));
        page.on("crash", () => {
          pageErrors.push(`${label}: the page crashed`);
          log(`${label}: the page crashed`);
        });
        const query = new URLSearchParams({ api });
        if (options.deprecated) query.set("deprecated", "1");
        if (options.polling) query.set("polling", "1");
        await page.goto(`${site.url}/index.html?${query}`);
        client.pages[i] = { page, label, index: i, includeDeprecated: !!options.deprecated, away: false };
      };
      for (let i = 0; i < spec.pages.length; i++) await client.open(i);
      clients.push(client);
    }
    const admin = async (write) => {
      const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
      if (write.ifMatch !== undefined) headers["if-match"] = `"${write.ifMatch}"`;
      const response = await fetch(`${baseUrl}/admin${write.path}`, {
        method: write.method, headers,
        body: write.body === undefined ? undefined : JSON.stringify(write.body),
        signal: AbortSignal.timeout(15_000),
      });
      return { status: response.status, version: Number(response.headers.get("x-sync-version")), text: await response.text() };
    };
    let lastState = await (await fetch(`${baseUrl}/state`)).json();
    let counter = 0;
    const describe = (w) => `${w.method} ${w.path}${w.ifMatch !== undefined ? ` (If-Match ${w.ifMatch})` : ""}${w.body ? ` ${JSON.stringify(w.body)}` : ""}`;

    /** A write while the server is meant to be up: it must be answered as
     * expected; while it is down it must fail and is not counted. */
    const seen = { providers: new Set(), models: new Set() };
    const refresh = async () => {
      if (server.up) {
        lastState = await (await fetch(`${baseUrl}/state`, { signal: AbortSignal.timeout(15_000) })).json();
        for (const p of lastState.providers) seen.providers.add(p.id);
        for (const m of lastState.all_models) seen.models.add(m.id);
      }
    };
    const write = async () => {
      await refresh();
      await send(chooseWrite(d, lastState, counter++, seen));
    };
    /** Several writes at once (one snapshot, none depending on another):
     * concurrent transactions, events broadcast in version order. */
    const parallel = async (n) => {
      await refresh();
      const busy = new Set();
      const writes = [];
      for (let i = 0; i < n; i++) writes.push(chooseWrite(d, lastState, counter++, seen, busy));
      log(`${n} writes at once`);
      await Promise.all(writes.map(send));
    };
    const send = async (w) => {
      if (!w) return;
      const wasUp = server.up;
      let answer;
      try {
        answer = await admin(w);
      } catch (error) {
        if (wasUp) {
          throw new Error(`${describe(w)}: no answer from a running server: ${error.cause?.message ?? error.message}` +
            (server.died ? `\nthe server ${server.died}` : ""));
        }
        counts.refused += 1;
        log(`refused while down: ${describe(w)}`);
        return;
      }
      if (w.expect === 412) {
        if (answer.status !== 412) throw new Error(`${describe(w)}: HTTP ${answer.status} ${answer.text}, expected 412`);
        counts.stale += 1;
        log(`412 as expected: ${describe(w)}`);
        return;
      }
      if (answer.status < 200 || answer.status > 299) throw new Error(`${describe(w)}: HTTP ${answer.status} ${answer.text}`);
      counts.writes += 1;
      if (w.again) counts.recreated += 1;
      if (answer.version) acked.push(answer.version);
      log(`v${answer.version || "="} ${w.again ? "(again) " : ""}${describe(w)}`);
    };

    let nextStart = []; // flags for the next start only
    const restart = async () => {
      if (server.up) return;
      await server.start(nextStart);
      nextStart = [];
      counts.restarts += 1;
    };
    // The page hidden or shown as a browser does it (document.hidden and
    // a visibilitychange event; headless Chromium has no tab to switch).
    const setHidden = (p, hidden) => p.page.evaluate((hidden) => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (hidden ? "hidden" : "visible") });
      document.dispatchEvent(new Event("visibilitychange"));
    }, hidden);
    const pageTransition = (p, type) =>
      p.page.evaluate((type) => window.dispatchEvent(new PageTransitionEvent(type, { persisted: true })), type);

    const actions = [
      [30, "write"],
      [4, "burst"],
      [3, "parallel"],
      [3, "kill"],
      [1, "kill_mid_write"],
      [1, "graceful_restart"],
      [4, "cut"],
      [3, "stall"],
      [3, "offline"],
      [3, "reload"],
      [2, "away"],
      [2, "hidden"],
      [2, "force_sync"],
      [2, "replace_tab"],
      [1, "new_epoch"],
      [2, "catalog"],
      [2, "freeze"],
    ];
    let downUntil = 0;
    while (Date.now() - began < durationMs) {
      if (!server.up && Date.now() >= downUntil) await restart();
      const action = d.weighted(actions);
      const client = d.pick(clients);
      switch (action) {
        case "write":
          await write();
          break;
        case "parallel":
          await parallel(d.int(2, 8));
          break;
        case "burst": {
          const n = d.int(3, 8);
          log(`burst of ${n}`);
          for (let i = 0; i < n; i++) await write();
          break;
        }
        case "kill":
        case "kill_mid_write": {
          if (!server.up) break;
          let inFlight = null;
          if (action === "kill_mid_write") {
            await refresh();
            const w = chooseWrite(d, lastState, counter++, seen);
            if (w && w.expect === "ok") {
              inFlight = admin(w).then(
                (answer) => {
                  // Answered before the kill: acknowledged, so it must last.
                  if (answer.status >= 200 && answer.status < 300) {
                    counts.writes += 1;
                    if (answer.version) acked.push(answer.version);
                    log(`v${answer.version || "="} (answered before the kill) ${describe(w)}`);
                  } else log(`HTTP ${answer.status} as the server died: ${describe(w)}`);
                },
                () => {
                  counts.lost += 1;
                  log(`no answer (killed mid-write, may or may not have committed): ${describe(w)}`);
                },
              );
            }
            await sleep(d.int(0, 15));
          }
          await server.stop("SIGKILL");
          counts.kills += 1;
          const down = d.int(100, 3000);
          const backup = d.chance(0.3);
          if (backup) server.backup();
          log(`SIGKILL; down for ${down} ms${backup ? "; the store as it was backed up" : ""}`);
          if (inFlight) await inFlight;
          // Started again by this loop (never beside a write, so a write
          // sent while it is down surely fails).
          downUntil = Date.now() + down;
          break;
        }
        case "graceful_restart":
          if (!server.up) break;
          log("SIGTERM (graceful) and start again");
          await server.stop("SIGTERM");
          await restart();
          break;
        case "cut":
          log(`cut ${client.name}'s connections (${client.proxy.pairs.size})`);
          client.proxy.cut();
          counts.cuts += 1;
          break;
        case "stall": {
          if (client.stalled) break;
          const ms = d.int(300, 7000);
          const thenCut = d.chance(0.3);
          // Both ways, or one: a server that stops hearing the client's
          // heartbeats while the client still hears the server's, or the
          // other way round.
          const directions = d.pick([["up", "down"], ["up", "down"], ["up"], ["down"]]);
          log(`stall ${client.name} (${directions.join("+")}) for ${ms} ms${thenCut ? ", then cut" : ""}`);
          client.stalled = true;
          client.proxy.stall(directions);
          counts.stalls += 1;
          later(ms, () => {
            if (thenCut) client.proxy.cut();
            client.proxy.stall([]);
            client.stalled = false;
            log(`${client.name} unstalled${thenCut ? " (cut)" : ""}`);
          });
          break;
        }
        case "offline": {
          if (client.offline) break;
          const ms = d.int(300, 5000);
          log(`${client.name} offline for ${ms} ms`);
          client.offline = true;
          await client.context.setOffline(true);
          counts.offline += 1;
          later(ms, () => track((async () => {
            await client.context.setOffline(false);
            client.offline = false;
            log(`${client.name} online`);
          })()));
          break;
        }
        case "reload": {
          // An offline context cannot load its page; a stalled one can
          // (the page comes from elsewhere).
          if (client.offline) break;
          const p = d.pick(client.pages);
          log(`reload ${p.label}`);
          await p.page.reload({ waitUntil: "load" });
          p.away = false;
          p.hidden = false;
          counts.reloads += 1;
          break;
        }
        case "away": {
          // Into the back/forward cache and out again (pagehide and
          // pageshow, as the browser sends them): a tab lets the shared
          // connection go while away and catches up when shown.
          const p = d.pick(client.pages);
          if (p.away) break;
          const ms = d.int(300, 5000);
          log(`${p.label} away (pagehide) for ${ms} ms`);
          p.away = true;
          await pageTransition(p, "pagehide");
          counts.away += 1;
          later(ms, () => track((async () => {
            if (!p.away || p.page.isClosed()) return;
            p.away = false;
            await pageTransition(p, "pageshow");
            log(`${p.label} back (pageshow)`);
          })()));
          break;
        }
        case "hidden": {
          const p = d.pick(client.pages);
          if (p.hidden) break;
          const ms = d.int(300, 5000);
          log(`${p.label} hidden for ${ms} ms`);
          p.hidden = true;
          await setHidden(p, true);
          counts.hidden += 1;
          later(ms, () => track((async () => {
            if (!p.hidden || p.page.isClosed()) return;
            p.hidden = false;
            await setHidden(p, false);
            log(`${p.label} visible`);
          })()));
          break;
        }
        case "force_sync": {
          // A user's "sync now": not awaited (it waits for the server,
          // which may be down); its failure is the page's business.
          const p = d.pick(client.pages);
          log(`${p.label} forceSync()`);
          await p.page.evaluate(() => {
            window.__sync?.forceSync().catch(() => {});
          });
          counts.forced += 1;
          break;
        }
        case "replace_tab": {
          // A tab of the shared connection closed (the leader or not) and
          // a new one opened: it starts from the cache and joins.
          const tabs = clients.find((c) => c.pages.length > 1);
          if (tabs.offline) break;
          const p = d.pick(tabs.pages);
          log(`close ${p.label} and open it again`);
          p.away = false;
          p.hidden = false;
          await p.page.close();
          await tabs.open(p.index);
          counts.tabs += 1;
          break;
        }
        case "freeze": {
          const ms = d.int(300, 6000);
          if (!server.freeze()) break;
          const child = server.child;
          log(`server frozen (SIGSTOP) for ${ms} ms`);
          counts.frozen += 1;
          later(ms, () => {
            if (server.child !== child || !server.frozen) return;
            server.thaw();
            log("server thawed (SIGCONT)");
          });
          break;
        }
        case "catalog": {
          // The team edits the catalog file; SIGHUP reloads it (a server
          // that is down reads it when it starts). Waits for the reload.
          const next = `${server.catalog}.next`;
          writeFileSync(next, catalogText(d, catalogRound++));
          renameSync(next, server.catalog);
          counts.catalog += 1;
          if (!server.up) {
            log("catalog edited (read at the next start)");
            break;
          }
          const total = (counts) => Object.values(counts).reduce((a, b) => a + b, 0);
          const before = await server.reloads(baseUrl);
          server.child.kill("SIGHUP");
          const waitUntil = Date.now() + 15_000;
          let after = before;
          while (total(after) === total(before)) {
            if (Date.now() > waitUntil) throw new Error("no catalog reload within 15 s of SIGHUP");
            await sleep(50);
            after = await server.reloads(baseUrl);
          }
          const results = Object.keys(after).filter((k) => after[k] !== before[k]);
          log(`catalog edited, SIGHUP: ${results.join(", ")}`);
          if (results.some((r) => r !== "applied" && r !== "unchanged")) {
            throw new Error(`catalog reload ${results.join(", ")}: ${server.errors.slice(-3).join(" | ")}`);
          }
          break;
        }
        case "new_epoch": {
          // A new history: the store wiped (a new store from the catalog)
          // or the backup restored with --new-epoch, as an operator does.
          const restore = server.hasBackup && d.chance(0.6);
          await server.stop("SIGKILL");
          if (restore) {
            server.restore();
            nextStart = ["--new-epoch"];
          } else {
            server.wipe();
          }
          acked = [];
          counts.epochs += 1;
          const down = d.int(100, 2000);
          log(`SIGKILL, ${restore ? "the backup restored (--new-epoch)" : "the store wiped"}; down for ${down} ms`);
          downUntil = Date.now() + down;
          break;
        }
      }
      await sleep(d.int(50, 1200));
    }

    // The end: every fault undone, the server up, then one last write that
    // every client must see.
    log("schedule over: undoing every fault");
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    await Promise.all(pending);
    for (const client of clients) {
      for (const p of client.pages) {
        if (p.away) await pageTransition(p, "pageshow");
        if (p.hidden) await setHidden(p, false);
        p.away = false;
        p.hidden = false;
      }
      client.proxy.stall([]);
      client.stalled = false;
      if (client.offline) await client.context.setOffline(false);
      client.offline = false;
    }
    server.thaw();
    await restart();
    await write();

    const target = await (await fetch(`${baseUrl}/state`)).json();
    const highest = Math.max(0, ...acked);
    if (target.metadata.version < highest) {
      throw new Error(`the server is at version ${target.metadata.version}, below acknowledged version ${highest}`);
    }
    const pages = clients.flatMap((c) => c.pages);
    const snapshot = ({ page }) => page.evaluate(() => {
      const sync = window.__sync;
      if (!sync) return null;
      return {
        state: sync.getState(),
        allModels: [...sync.getModels({ deprecated: false }), ...sync.getModels({ deprecated: true })],
        log: window.__log,
      };
    });
    const converged = async () => {
      for (const p of pages) {
        const s = await snapshot(p);
        if (!s || s.state.version !== target.metadata.version || s.state.status !== "synced") return false;
      }
      return true;
    };
    log(`waiting for every page at version ${target.metadata.version}`);
    const deadline = Date.now() + 60_000;
    while (!(await converged())) {
      if (Date.now() > deadline) {
        const report = [];
        for (const p of pages) {
          const s = await snapshot(p);
          report.push(`${p.label}: ${s ? `${s.state.status} v${s.state.version} ${s.state.transport} lastError=${s.state.lastError}` : "no service"}`);
          if (s) report.push(...s.log.slice(-15).map((l) => `    ${l}`));
        }
        throw new Error(`not every page reached version ${target.metadata.version} within 60 s:\n${report.join("\n")}`);
      }
      await sleep(200);
    }
    // Content: the server's state once more (nothing writes now).
    const final = await (await fetch(`${baseUrl}/state`)).json();
    const found = [];
    for (const p of pages) {
      const s = await snapshot(p);
      found.push(...differences(final, { ...s, includeDeprecated: p.includeDeprecated }, p.label));
    }
    // Each context's cache holds that state too, once its leader saved it
    // (a burst is saved after a short delay).
    for (const client of clients) {
      const page = client.pages[0].page;
      const label = `${client.name} (cache)`;
      const cacheDeadline = Date.now() + 30_000;
      let cached;
      while ((cached = await cachedState(page, client.api))?.metadata.version !== final.metadata.version) {
        if (Date.now() > cacheDeadline) {
          found.push(`${label}: holds version ${cached?.metadata.version} after 30 s, not ${final.metadata.version}`);
          break;
        }
        await sleep(200);
      }
      if (cached?.metadata.version === final.metadata.version) found.push(...stateDifferences(final, cached, label));
    }
    if (pageErrors.length) found.push(...pageErrors.map((e) => `page error: ${e}`));
    if (server.errors.length) found.push(...server.errors.slice(0, 10).map((e) => `server error: ${e}`));
    // Self-repaired, but a divergence all the same: a copy at the server's
    // version with other content.
    if (resyncs.checksum_mismatch) found.push(`${resyncs.checksum_mismatch} repair(s) for checksum_mismatch`);
    if (found.length) throw new Error(`divergence:\n${found.slice(0, 40).join("\n")}`);
    const summary = {
      seed, version: final.metadata.version, providers: final.providers.length, models: final.all_models.length,
      retention, wsQueue, seconds: Math.round((Date.now() - began) / 1000), ...counts, resyncs,
    };
    log(`converged: ${JSON.stringify(summary)}`);
    return summary;
  } catch (error) {
    const tail = lines.slice(-80).join("\n");
    error.message = `chaos schedule with CHAOS_SEED=${seed} failed: ${error.message}\n--- last actions ---\n${tail}`;
    throw error;
  } finally {
    for (const timer of timers) clearTimeout(timer);
    await browser?.close().catch(() => {});
    await server.stop("SIGKILL").catch(() => {});
    for (const proxy of proxies) await proxy.close().catch(() => {});
    site?.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `node tests/e2e/chaos.mjs [--runs N] [--seed S]... [--duration MS]`:
 * runs the schedules one after another and prints one line per seed;
 * exits 1 if any failed. */
async function main(argv) {
  const seeds = [];
  let runs = 1;
  let durationMs = 40_000;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--runs") runs = Number(argv[++i]);
    else if (argv[i] === "--seed") seeds.push(Number(argv[++i]) >>> 0);
    else if (argv[i] === "--duration") durationMs = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!seeds.length) {
    for (let i = 0; i < runs; i++) seeds.push((Math.random() * 2 ** 32) >>> 0);
  }
  const results = [];
  for (const [i, seed] of seeds.entries()) {
    try {
      const summary = await runSchedule({ seed, durationMs, verbose: !!process.env.CHAOS_VERBOSE });
      results.push({ seed, ok: true });
      console.log(`chaos ${i + 1}/${seeds.length} seed ${seed}: PASS ${JSON.stringify(summary)}`);
    } catch (error) {
      results.push({ seed, ok: false });
      console.log(`chaos ${i + 1}/${seeds.length} seed ${seed}: FAIL`);
      console.log(error.message);
    }
  }
  const failed = results.filter((r) => !r.ok);
  console.log(`\n${results.length - failed.length} of ${results.length} schedules passed` +
    (failed.length ? `; failed seeds: ${failed.map((r) => r.seed).join(" ")}` : ""));
  return failed.length ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (error) => {
    console.error(error);
    process.exit(2);
  });
}
