#!/usr/bin/env bash
# The SDK's browser suite in headless Chromium, then in headless Firefox ESR,
# against a real server, which the testbed runs (and stops, restarts, wipes
# on the tests' request). ENGINES="firefox" (or "chromium") runs one pass.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}

cargo build -p provider-sync-testbed
log_dir=$(mktemp -d)
# A queue of 4 frames and a log of 10 events: a write of 41 events puts a
# session beyond both, so the server tells the client to resync.
"$target/debug/provider-sync-testbed" --catalog examples/catalog.toml --ws-queue 4 --event-retention 10 \
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
# The server's URL is baked in at compile time: one build, and every pass
# runs that wasm against this testbed.
cargo test --target wasm32-unknown-unknown --test browser --no-run

need() { command -v "$1" || { echo "$1 is missing: scripts/setup.sh installs it" >&2; exit 1; }; }
failed=()
for engine in ${ENGINES:-chromium firefox}; do
  # wasm-bindgen-test-runner drives the browser whose driver CHROMEDRIVER or
  # GECKODRIVER names (GECKODRIVER first), else the first driver on PATH
  # (geckodriver in ~/.cargo/bin may come before chromedriver): name one.
  case $engine in
    chromium)
      driver=(env -u GECKODRIVER CHROMEDRIVER="$(need chromedriver)")
      version=$(chromium --version 2>/dev/null) ;;
    firefox)
      # The runner adds -headless; --binary: Debian's ESR, not a `firefox`
      # that PATH might find first. Firefox connects to loopback only (no
      # lookups of Mozilla's services either): geckodriver passes its
      # environment on, and ignores the capabilities' `env` off Android.
      driver=(env -u CHROMEDRIVER GECKODRIVER="$(need geckodriver)"
        GECKODRIVER_ARGS="--binary $(need firefox-esr)" MOZ_DISABLE_NONLOCAL_CONNECTIONS=1)
      version=$(firefox-esr --version) ;;
    *) echo "unknown engine: $engine" >&2; exit 2 ;;
  esac
  # Each pass starts from the seeded catalog on a running server, whatever
  # the pass before left (a new epoch: the browser profile is new anyway).
  node -e 'fetch(process.argv[1], { method: "POST" }).then((r) => r.json())
    .then((b) => { if (!b.ok) throw new Error(JSON.stringify(b)) })' "$PROVIDER_SYNC_TEST_CONTROL/wipe"
  printf '\n== the browser suite in %s (%s)\n' "$engine" "$version"
  "${driver[@]}" cargo test --target wasm32-unknown-unknown --test browser || failed+=("$engine")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "browser suite failed in: ${failed[*]}" >&2
  exit 1
fi
