#!/usr/bin/env bash
# Runs every check and test of the project. Installs what it needs when it is
# missing (wasm target, wasm-bindgen-cli at the wasm-bindgen crate's exact
# version, Chromium and ChromeDriver from Debian) and reuses what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
for component in rustfmt clippy; do
  rustup component list --installed | grep -q "^$component" || rustup component add "$component"
done
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
  # --locked fails for some versions against the registry copy; plain works.
  cargo install wasm-bindgen-cli --version "$bindgen_version" --locked \
    || cargo install wasm-bindgen-cli --version "$bindgen_version"
fi
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
  apt_get() { if [ "$(id -u)" = 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi; }
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends chromium chromium-driver
fi

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings
# The generated TypeScript and OpenAPI derives compile too, and so does the
# browser half of the SDK.
cargo clippy -p provider-sync-protocol --features tsify,openapi -- -D warnings
cargo clippy -p provider-sync-sdk --target wasm32-unknown-unknown --all-targets -- -D warnings

log=$(mktemp)
trap 'rm -f "$log"' EXIT

step "native tests"
cargo test --workspace 2>&1 | tee -a "$log"

step "browser tests (headless Chromium against a real server)"
bash scripts/test-browser.sh 2>&1 | tee -a "$log"

# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "\nall tests: %d passed, %d failed\n", p, f }' "$log"
