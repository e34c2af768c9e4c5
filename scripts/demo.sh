#!/usr/bin/env bash
# Runs the server on its embedded SQLite default with the sample catalog and
# serves the live catalog page at http://127.0.0.1:8080/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PROVIDER_SYNC_ADMIN_TOKEN="${PROVIDER_SYNC_ADMIN_TOKEN:-demo-token}"
cargo build --release -p provider-sync-server
echo "Open http://${PROVIDER_SYNC_BIND:-127.0.0.1:8080}/ — admin token: $PROVIDER_SYNC_ADMIN_TOKEN"
exec target/release/provider-sync-server \
  --catalog examples/catalog.toml \
  --static-dir examples/plain-html \
  "$@"
