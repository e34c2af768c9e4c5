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
# Installed, or again when the lockfile changed since (esbuild joined it).
if [ ! -d pkg-template/node_modules ] ||
  [ pkg-template/package-lock.json -nt pkg-template/node_modules/.package-lock.json ]; then
  (cd pkg-template && npm ci --no-audit --no-fund)
fi

rm -rf pkg && mkdir -p pkg
# The standard library is built with the SDK rather than taken prebuilt:
# for size (`optimize_for_size`), and with panics as a bare trap
# (`-Cpanic=immediate-abort`), which drops the panic machinery and its
# message formatting. On wasm32-unknown-unknown a panic never printed
# anything (no panic hook is installed) and always ended in a trap, so
# nothing observable changes; wasm + glue -2,968 B brotli measured. With
# the panics' messages gone, their source locations (`-Zlocation-detail=
# none`: the file names and lines passed to every panic) have no reader
# either: -669 B. These are unstable
# options, enabled for this one build with RUSTC_BOOTSTRAP on the stable
# toolchain, which needs the rust-src component (scripts/setup.sh). The
# flags are this build's own: CARGO_ENCODED_RUSTFLAGS, which would take
# precedence over them, is cleared. Reference types are turned off
# (`-reference-types`, on by default for wasm32 since Rust 1.82): the
# JavaScript values the wasm holds are then kept by the glue in an array
# and named by their index, instead of in a wasm table that the wasm's own
# code manages (`__externref_table_alloc` and its callers): 512 B brotli
# less, wasm -739 B, glue +227 B (BENCHMARKS.md, "npm package sizes").
rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
# The linker keeps its relocations in the module (`--emit-relocs`): where
# each function's table index is held, read by scripts/prune-table.mjs below
# (which drops them again).
env -u CARGO_ENCODED_RUSTFLAGS RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Clink-arg=--emit-relocs -Ctarget-feature=-reference-types" \
  cargo build -p provider-sync-sdk --target wasm32-unknown-unknown --profile wasm-release \
  -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
# Cargo puts the wasm under CARGO_TARGET_DIR when one is set.
linked="${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm-release/provider_sync_sdk.wasm"
wasm-bindgen --target web --out-dir pkg "$linked"
# The closure shims js-sys's unused imports leave in the function table,
# and what they call, cleared before wasm-opt (scripts/prune-table.mjs).
node scripts/prune-table.mjs "$linked" pkg/provider_sync_sdk_bg.wasm "$tools/node_modules/.bin/wasm-dis"
# After -Oz: the control flow rebuilt from flat IR by the relooper
# (`--flatten --rereloop`, then -Oz twice: about 430 B brotli), then
# whole-program flow analysis (GUFA), dead-argument elimination and
# inlining, each followed by the usual optimizations (about 130 B).
# `--low-memory-unused` lets wasm-opt fold a constant added to an address
# into the access's offset (its optimize-added-constants pass). The two
# differ only when the sum wraps past 2^32, which the old code would take
# as an address below 1 KiB and the new one traps on: Rust's pointer
# arithmetic stays in bounds, and nothing lives there (the linker puts the
# 1 MiB stack first, growing down towards 0, and the data above it; only a
# stack within 1 KiB of its end would reach it). With one more -Oz after
# it: 211 B brotli.
"$tools/node_modules/.bin/wasm-opt" --low-memory-unused -Oz --flatten --rereloop -Oz -Oz \
  --converge --gufa-optimizing --dae-optimizing \
  --inlining-optimizing -Oz --strip-debug --strip-producers \
  pkg/provider_sync_sdk_bg.wasm -o pkg/provider_sync_sdk_bg.wasm
# Short names between the wasm and its glue (about 3 KB brotli): wasm-opt
# renames imports, exports and the import module and prints the mapping;
# scripts/minify-names.mjs applies it to the glue and fails on any name it
# cannot place. The `target_features` section goes too (browsers do not read
# it; 80 B brotli).
names=$(mktemp)
"$tools/node_modules/.bin/wasm-opt" --minify-imports-and-exports-and-modules --strip-target-features \
  pkg/provider_sync_sdk_bg.wasm -o pkg/provider_sync_sdk_bg.wasm >"$names"
node scripts/minify-names.mjs "$names" pkg
rm -f "$names"
rm -f pkg/.gitignore
# The glue, minified by esbuild (whitespace, syntax and local names; the
# exported names, the class's own included, stay): about 1.45 KB brotli
# less than as wasm-bindgen writes it. Its JSDoc goes too; the .d.ts keeps
# it for editors. The first line, the types directive, is kept.
glue=pkg/provider_sync_sdk.js
directive=$(head -n 1 "$glue")
case $directive in
  "/* @ts-self-types="*) ;;
  *) echo "build-pkg.sh: the glue's first line is not its @ts-self-types directive: $directive" >&2; exit 1 ;;
esac
# The SDK's JavaScript snippets (sdk/js/, which the glue imports from
# pkg/snippets/) are bundled into it: one file, as before them.
pkg-template/node_modules/.bin/esbuild "$glue" --bundle --format=esm --minify --target=es2020 \
  --log-level=warning --outfile="$glue.min"
{ printf '%s\n' "$directive"; cat "$glue.min"; } >"$glue"
rm -r "$glue.min" pkg/snippets
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

# What getState() shows before any data, from the SDK itself (its native
# build prints it): the React layer's state before a service exists, never
# restated in TypeScript.
state=$(cargo run -q -p provider-sync-sdk --example initial_state)
printf '%s\n' "// Generated by scripts/build-pkg.sh from the SDK's ProviderSyncClientState::initial(): do not edit." \
  "export const INITIAL_STATE = Object.freeze($state);" > pkg/initial-state.js
printf '%s\n' 'import type { ProviderSyncClientState } from "./provider_sync_sdk.js";' \
  "/** What getState() shows before any data (the SDK's ProviderSyncClientState::initial()). */" \
  'export declare const INITIAL_STATE: ProviderSyncClientState;' > pkg/initial-state.d.ts

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
