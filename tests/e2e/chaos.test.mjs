// Chaos convergence, a few fixed schedules (chaos.mjs has the harness;
// scripts/chaos.sh runs many with fresh seeds). Each: five pages in four
// Chromium contexts against the real server binary, about 40 s of admin
// writes, SIGKILLs and restarts, cut and stalled sockets, offline spells and
// reloads; then every page holds exactly `GET /state`, status synced.
// CHAOS_SEED=S runs that one seed instead.
import { test } from "node:test";
import { runSchedule } from "./chaos.mjs";

const seeds = process.env.CHAOS_SEED ? [Number(process.env.CHAOS_SEED) >>> 0] : [1, 2, 3];

for (const seed of seeds) {
  test(`chaos schedule, seed ${seed}: every client ends equal to GET /state`, { timeout: 180_000 }, async (t) => {
    const summary = await runSchedule({ seed, durationMs: 40_000, verbose: !!process.env.CHAOS_VERBOSE });
    t.diagnostic(JSON.stringify(summary));
  });
}
