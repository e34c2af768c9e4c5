#!/usr/bin/env bash
# Builds the npm package into pkg/ (git-ignored): the release wasm
# (wasm-bindgen --target web, wasm-opt -Oz), the TypeScript entries compiled
# from pkg-template/src, styles, package.json, README and licenses. Then
# `npm pack pkg/` makes the tarball.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=target/tools
if [ ! -x "$tools/node_modules/.bin/wasm-opt" ]; then
  npm install --silent --no-save --no-audit --no-fund --prefix "$tools" binaryen@132.0.0 >/dev/null
fi
if [ ! -d pkg-template/node_modules ]; then
  (cd pkg-template && npm ci --no-audit --no-fund)
fi

rm -rf pkg && mkdir -p pkg
cargo build -p provider-sync-sdk --target wasm32-unknown-unknown --profile wasm-release
# Cargo puts the wasm under CARGO_TARGET_DIR when one is set.
wasm-bindgen --target web --out-dir pkg \
  "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm-release/provider_sync_sdk.wasm"
"$tools/node_modules/.bin/wasm-opt" -Oz --converge --strip-debug --strip-producers \
  pkg/provider_sync_sdk_bg.wasm -o pkg/provider_sync_sdk_bg.wasm
rm -f pkg/.gitignore
# wasm-bindgen declares `[Symbol.dispose](): void;`, which only type-checks
# with TypeScript's ESNext.Disposable lib (TS 5.2+): an app with lib ES2022
# and skipLibCheck false fails on it (TS2550). Drop the declaration; the
# method itself stays at run time (set where the engine has Symbol.dispose).
sed -i.bak '/^[[:space:]]*\[Symbol\.dispose\]()[[:space:]]*:[[:space:]]*void;[[:space:]]*$/d' pkg/provider_sync_sdk.d.ts
rm pkg/provider_sync_sdk.d.ts.bak
if grep -n 'Symbol\.dispose' pkg/*.d.ts; then
  echo "build-pkg.sh: a Symbol.dispose declaration is left in the wasm-bindgen .d.ts (see above)" >&2
  exit 1
fi

(cd pkg-template && node_modules/.bin/tsc -p tsconfig.build.json)
cp pkg-template/src/styles.css pkg-template/src/provider-sync.global.js pkg-template/README.md pkg/
cp LICENSE-MIT LICENSE-APACHE pkg/
# The published manifest: the template without what only builds and tests it.
node -e '
  const fs = require("fs");
  const manifest = JSON.parse(fs.readFileSync("pkg-template/package.json", "utf8"));
  delete manifest.devDependencies;
  delete manifest.scripts;
  fs.writeFileSync("pkg/package.json", JSON.stringify(manifest, null, 2) + "\n");
'
echo "built pkg/ ($(du -sh pkg | cut -f1))"
