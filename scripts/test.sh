#!/usr/bin/env bash
# Runs every check and test of the project. scripts/setup.sh installs what
# they need when it is missing and reuses what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
# The abuse tests hold about 1,500 sockets on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Each step's heading; each step's time is kept and printed when the run
# ends, passed or failed: where a run's minutes went.
times=""
last_step="" last_start=$SECONDS
step() {
  if [ -n "$last_step" ]; then
    times+="$(printf '%5d s  %s' $((SECONDS - last_start)) "$last_step")"$'\n'
  fi
  last_step=$1 last_start=$SECONDS
  printf '\n== %s\n' "$*"
}
print_times() {
  step "end"
  printf '\ntime per step:\n%s%5d s  in all\n' "$times" "$SECONDS"
}

log=$(mktemp)
trap 'rm -f "$log"; print_times' EXIT

step "toolchain"
# A fresh checkout gains nothing from incremental builds, which keep a second
# copy of each crate's work: off in CI (a developer's warm tree keeps them).
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
# A fresh checkout's run leaves about 4.5 GB under target/: say so before a
# build fails half-way on a full disk.
free_kb=$(df -Pk . 2>/dev/null | awk 'NR == 2 { print $4 }' || true)
if [ "${free_kb:-0}" -lt $((6 * 1024 * 1024)) ]; then
  echo "warning: $((free_kb / 1024 / 1024)) GB free here; the run needs about 5 GB under target/" >&2
fi
bash scripts/setup.sh

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings
# The generated TypeScript and OpenAPI derives compile too, and so does the
# browser half of the SDK.
cargo clippy -p provider-sync-protocol --features tsify,openapi -- -D warnings
cargo clippy -p provider-sync-sdk --target wasm32-unknown-unknown --all-targets -- -D warnings


step "native tests"
cargo test --workspace 2>&1 | tee -a "$log"

step "Miri: the wire crate's table-driven reader (unsafe: fields written in place, dropped on errors) under its tests"
# The nightly toolchain's Miri (scripts/setup.sh) checks each read, write
# and drop of the decoder against Rust's rules, and reports leaks.
cargo +nightly miri test -p provider-sync-wire --test derive 2>&1 | tee -a "$log"

step "the server's suites again on PostgreSQL (servers of their own), and the cluster tests"
PROVIDER_SYNC_TEST_STORE=postgres cargo test -p provider-sync-server \
  --test http_api --test admin_api --test websocket --test convergence \
  --test persistence --test catalog_reconcile --test durability --test backup 2>&1 | tee -a "$log"

step "schemathesis against the OpenAPI document of a real server (seed 1, at most 50 cases per operation; long runs: scripts/schemathesis.sh 500 \$RANDOM)"
bash scripts/schemathesis.sh

step "browser tests (headless Chromium, then headless Firefox ESR, against a real server)"
bash scripts/test-browser.sh 2>&1 | tee -a "$log"

step "npm package: build, vitest, strict consumer type check"
bash scripts/build-pkg.sh
(cd pkg-template && node_modules/.bin/vitest run && node_modules/.bin/tsc -p test/tsconfig.json) 2>&1 | tee -a "$log"

step "end to end: both examples in Chromium (Playwright), the plain page in Firefox ESR (Selenium), against a real server"
PKG_BUILT=1 bash scripts/test-e2e.sh 2>&1 | tee -a "$log"

step "the cluster demo: PostgreSQL, two instances, nginx in front"
CLUSTER_DEMO_CHECK=1 PKG_BUILT=1 PROFILE=debug LB_PORT=18180 INSTANCE_PORTS="18181 18182" \
  bash scripts/cluster-demo.sh 2>&1 | tee -a "$log"

step "sizes"
bash scripts/size-report.sh

# One closing line for the whole run, summed over every runner: cargo and
# wasm-bindgen-test ("test result:"), vitest ("Tests  N passed"), node's test
# runner ("# pass N" / "# fail N").
sed 's/\x1b\[[0-9;]*m//g' "$log" | awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
  /^ *Tests +[0-9]/ { for (i = 1; i <= NF; i++) { if ($i == "passed") p += $(i-1); if ($i == "failed") f += $(i-1) } }
  /^# pass [0-9]/ { p += $3 }
  /^# fail [0-9]/ { f += $3 }
  END { printf "\nall tests: %d passed, %d failed\n", p, f }'
