#!/usr/bin/env bash
# Sizes of the npm package's parts (raw, gzip -9, brotli -q 11), from pkg/
# as scripts/build-pkg.sh leaves it, and the size budget: wasm + JS glue
# brotli may not grow more than 10% over the figure recorded in
# BENCHMARKS.md (the line "size-budget: wasm+glue brotli N").
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f pkg/provider_sync_sdk_bg.wasm ] || bash scripts/build-pkg.sh >/dev/null
budget=$(sed -n 's/.*size-budget: wasm+glue brotli \([0-9]*\).*/\1/p' BENCHMARKS.md | head -1)
node - "$budget" <<'JS'
const fs = require("fs"), path = require("path"), zlib = require("zlib");
const sizes = (files) => files.reduce((total, file) => {
  const data = fs.readFileSync(file);
  total[0] += data.length;
  total[1] += zlib.gzipSync(data, { level: 9 }).length;
  total[2] += zlib.brotliCompressSync(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
  return total;
}, [0, 0, 0]);
const js = (dir) => fs.readdirSync(dir, { recursive: true }).filter((f) => f.endsWith(".js")).map((f) => path.join(dir, f));
const parts = [
  ["wasm (provider_sync_sdk_bg.wasm)", ["pkg/provider_sync_sdk_bg.wasm"]],
  ["JS glue (provider_sync_sdk.js)", ["pkg/provider_sync_sdk.js"]],
  ["wasm + glue", ["pkg/provider_sync_sdk_bg.wasm", "pkg/provider_sync_sdk.js"]],
  ["entry (index.js)", ["pkg/index.js"]],
  ["classic global (provider-sync.global.js)", ["pkg/provider-sync.global.js"]],
  ["React layer (react/*.js)", js("pkg/react")],
  ["TanStack Query layer (react-query/*.js)", js("pkg/react-query")],
  ["styles.css", ["pkg/styles.css"]],
];
console.log("| part | raw | gzip | brotli |\n| --- | ---: | ---: | ---: |");
let core;
for (const [name, files] of parts) {
  const [raw, gz, br] = sizes(files);
  if (name === "wasm + glue") core = br;
  console.log(`| ${name} | ${raw.toLocaleString("en")} | ${gz.toLocaleString("en")} | ${br.toLocaleString("en")} |`);
}
const budget = Number(process.argv[2]);
if (!budget) {
  console.error("BENCHMARKS.md has no 'size-budget: wasm+glue brotli N' line");
  process.exit(1);
}
const limit = Math.floor(budget * 1.1);
console.log(`\nsize budget: wasm + glue brotli ${core} B, recorded ${budget} B, limit ${limit} B (+10%)`);
if (core > limit) {
  console.error(`over budget by ${core - limit} B: shrink it, or record the new figure in BENCHMARKS.md with the reason`);
  process.exit(1);
}
JS
