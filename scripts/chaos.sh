#!/usr/bin/env bash
# Chaos convergence, long runs: `scripts/chaos.sh N` runs N schedules with
# fresh random seeds (`scripts/chaos.sh --seed S [--seed S…]` runs those),
# one after another, each about 40 s of faults (CHAOS_DURATION_MS) plus
# convergence, and prints PASS or FAIL per seed with the action log of each
# failure. Exit status 1 if any failed. CHAOS_VERBOSE=1 streams the actions.
# Builds what it needs unless PKG_BUILT=1 (pkg/ built already).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -eq 0 ]; then
  echo "usage: scripts/chaos.sh N | scripts/chaos.sh --seed S [--seed S …]" >&2
  exit 2
fi
args=()
if [[ "$1" =~ ^[0-9]+$ ]]; then
  args=(--runs "$1")
  shift
fi
args+=("$@" --duration "${CHAOS_DURATION_MS:-40000}")

[ "${PKG_BUILT:-}" = 1 ] || bash scripts/build-pkg.sh
# The harness runs the server binary from CARGO_TARGET_DIR (else target/).
# The same packages as scripts/test-e2e.sh builds (another set of packages
# unifies other features and rebuilds the binary each time).
cargo build -p provider-sync-testbed -p provider-sync-server --bins
(
  cd tests/e2e
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
)
exec node tests/e2e/chaos.mjs "${args[@]}"
