// Chaos convergence, three fixed schedules (chaos.mjs has the harness and
// lists the faults; scripts/chaos.sh runs many with fresh seeds). Each:
// five SDK pages in four Chromium contexts against the real server binary,
// about 40 s of admin writes and faults of the server and the clients; then
// every page holds exactly `GET /state`, status synced, and every context's
// cached copy too. CHAOS_SEED=S runs that one seed instead.
import { test } from "node:test";
import { runSchedule } from "./chaos.mjs";

// Seeds whose schedules between them take every kind of fault.
const SEEDS = [1, 2, 3];
const seeds = process.env.CHAOS_SEED ? [Number(process.env.CHAOS_SEED) >>> 0] : SEEDS;

for (const seed of seeds) {
  test(`chaos schedule, seed ${seed}: every client ends equal to GET /state`, { timeout: 180_000 }, async (t) => {
    const summary = await runSchedule({ seed, durationMs: 40_000, verbose: !!process.env.CHAOS_VERBOSE });
    t.diagnostic(JSON.stringify(summary));
  });
}
