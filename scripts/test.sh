#!/usr/bin/env bash
# Runs every check and test of the project. Installs what it needs when it is
# missing (the wasm target), and reuses what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
for component in rustfmt clippy; do
  rustup component list --installed | grep -q "^$component" || rustup component add "$component"
done
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings
# The generated TypeScript and OpenAPI derives compile too.
cargo clippy -p provider-sync-protocol --features tsify,openapi -- -D warnings

step "wasm build of the SDK"
cargo build -p provider-sync-sdk --target wasm32-unknown-unknown

step "tests"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "\nall tests: %d passed, %d failed\n", p, f }' "$log"
