#!/usr/bin/env bash
# Builds the release wasm (size profile, wasm-bindgen --target web, wasm-opt
# -Oz from npm's binaryen: Debian's corrupts wasm-bindgen output) and prints
# the sizes of the wasm and its JS glue: raw, gzip -9, brotli -q 11.
# Output: target/wasm-size/.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=target/tools
if [ ! -x "$tools/node_modules/.bin/wasm-opt" ]; then
  npm install --silent --no-save --prefix "$tools" binaryen@132.0.0 >/dev/null
fi
out=target/wasm-size
rm -rf "$out" && mkdir -p "$out"
cargo build -p provider-sync-sdk --target wasm32-unknown-unknown --profile wasm-release
wasm-bindgen --target web --out-dir "$out" \
  target/wasm32-unknown-unknown/wasm-release/provider_sync_sdk.wasm
"$tools/node_modules/.bin/wasm-opt" -Oz --strip-debug --strip-producers \
  "$out/provider_sync_sdk_bg.wasm" -o "$out/provider_sync_sdk_bg.wasm"

report() {
  node -e '
    const fs = require("fs"), zlib = require("zlib");
    let total = [0, 0, 0];
    for (const file of process.argv.slice(1)) {
      const data = fs.readFileSync(file);
      const sizes = [data.length, zlib.gzipSync(data, { level: 9 }).length,
        zlib.brotliCompressSync(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length];
      sizes.forEach((s, i) => total[i] += s);
      console.log(`${file.split("/").pop().padEnd(28)} raw ${String(sizes[0]).padStart(8)}  gzip ${String(sizes[1]).padStart(7)}  brotli ${String(sizes[2]).padStart(7)}`);
    }
    console.log(`${"wasm + glue".padEnd(28)} raw ${String(total[0]).padStart(8)}  gzip ${String(total[1]).padStart(7)}  brotli ${String(total[2]).padStart(7)}`);
  ' "$@"
}
report "$out/provider_sync_sdk_bg.wasm" "$out/provider_sync_sdk.js"
