#!/usr/bin/env bash
# End-to-end: packs the npm package, builds both examples from it (the React
# app installs the tarball as an application would), then drives them in
# Chromium against a real server, and the plain page in Firefox ESR too.
# Screenshots: test-output/e2e/.
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

# testbed.mjs runs it from CARGO_TARGET_DIR when that is set.
cargo build -p provider-sync-testbed
(
  cd tests/e2e
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
  npm test
)
