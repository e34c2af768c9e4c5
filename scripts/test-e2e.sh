#!/usr/bin/env bash
# End-to-end: packs the npm package, builds both examples from it (the React
# app installs the tarball as an application would), then drives them in
# Chromium against a real server, and the plain page in Firefox ESR too;
# among them three fixed chaos schedules (tests/e2e/chaos.test.mjs, about
# 45 s each; scripts/chaos.sh for long runs). Screenshots: test-output/e2e/.
set -euo pipefail
cd "$(dirname "$0")/.."

# scripts/test.sh has built it already.
[ "${PKG_BUILT:-}" = 1 ] || bash scripts/build-pkg.sh
# The tarball and the site stay in the work tree's target/ (the React
# example installs ../../target/provider-sync.tgz), wherever cargo builds.
mkdir -p target
rm -f target/provider-sync-*.tgz
npm pack ./pkg --pack-destination target/ >/dev/null
mv target/provider-sync-*.tgz target/provider-sync.tgz

site=target/demo-site
rm -rf "$site" && mkdir -p "$site"
cp -r examples/plain-html/. "$site/"
cp -r pkg "$site/provider-sync"

(
  cd examples/react-tanstack
  # The tarball changes with every build, so this example keeps no lockfile,
  # and the installed copy goes first (npm would keep it as "up to date").
  rm -rf node_modules/provider-sync
  npm install --no-package-lock --no-audit --no-fund --loglevel=error
  npm run build
)

# testbed.mjs runs them from CARGO_TARGET_DIR when that is set; the chaos
# suite runs the server binary itself (it SIGKILLs it).
cargo build -p provider-sync-testbed -p provider-sync-server --bins
(
  cd tests/e2e
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
  npm test
)
