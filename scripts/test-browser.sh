#!/usr/bin/env bash
# The SDK's browser suite: headless Chromium against a real server, which the
# testbed runs (and stops, restarts, wipes on the tests' request).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -p provider-sync-testbed
log_dir=$(mktemp -d)
target/debug/provider-sync-testbed --catalog examples/catalog.toml --ws-queue 4 \
  > "$log_dir/urls" 2> "$log_dir/testbed.log" &
testbed=$!
trap 'kill $testbed 2>/dev/null; wait $testbed 2>/dev/null; rm -rf "$log_dir"' EXIT
for _ in $(seq 1 100); do
  grep -q '^CONTROL_URL=' "$log_dir/urls" && break
  kill -0 $testbed 2>/dev/null || { cat "$log_dir/testbed.log"; exit 1; }
  sleep 0.1
done
export PROVIDER_SYNC_TEST_SERVER=$(sed -n 's/^SERVER_URL=//p' "$log_dir/urls")
export PROVIDER_SYNC_TEST_CONTROL=$(sed -n 's/^CONTROL_URL=//p' "$log_dir/urls")
echo "testbed: $PROVIDER_SYNC_TEST_SERVER (control $PROVIDER_SYNC_TEST_CONTROL)"

export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-120}
cd sdk
cargo test --target wasm32-unknown-unknown --test browser
