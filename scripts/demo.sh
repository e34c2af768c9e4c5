#!/usr/bin/env bash
# Runs the server on its embedded SQLite default with the sample catalog and
# serves the live catalog page (examples/plain-html, using the SDK built into
# pkg/) at http://127.0.0.1:8080/.
#
# DEMO_CATALOG=litellm serves LiteLLM's real catalog instead (release
# ${LITELLM_VERSION:-1.110.2}'s chat models, about 3,300, fetched once from
# PyPI by scripts/fetch-litellm.sh), in its own database file
# (provider-sync-litellm.db) so that it does not mix with the sample's.
set -euo pipefail
cd "$(dirname "$0")/.."
SKIP_BROWSER=1 SKIP_MIRI=1 bash scripts/setup.sh
bash scripts/build-pkg.sh
site=target/demo-site
rm -rf "$site" && mkdir -p "$site"
cp -r examples/plain-html/. "$site/"
cp -r pkg "$site/provider-sync"
cargo build --release -p provider-sync-server
export PROVIDER_SYNC_ADMIN_TOKEN="${PROVIDER_SYNC_ADMIN_TOKEN:-demo-admin-token-not-for-production-use}"
echo "Open http://${PROVIDER_SYNC_BIND:-127.0.0.1:8080}/ — admin token: $PROVIDER_SYNC_ADMIN_TOKEN"
catalog=examples/catalog.toml
if [ "${DEMO_CATALOG:-sample}" = litellm ]; then
  catalog=$(bash scripts/fetch-litellm.sh "${LITELLM_VERSION:-1.110.2}")
  export DATABASE_URL="${DATABASE_URL:-sqlite://provider-sync-litellm.db}"
  # LiteLLM's MIT notice goes where its data goes: on the page too.
  cp "$(dirname "$catalog")/LICENSE" "$site/LITELLM-LICENSE.txt"
  notice="<p>Catalog data: LiteLLM's model_prices_and_context_window.json (release ${LITELLM_VERSION:-1.110.2}), Copyright (c) 2023 Berri AI, under the MIT License: <a href=\"LITELLM-LICENSE.txt\">its notice</a>.</p>"
  python3 - "$site/index.html" "$notice" <<'PY'
import sys
path, notice = sys.argv[1], sys.argv[2]
with open(path) as f:
    page = f.read()
marker = "<!-- catalog notice: scripts/demo.sh puts the notice of a catalog taken from elsewhere here -->"
assert marker in page, "the page's catalog notice marker"
with open(path, "w") as f:
    f.write(page.replace(marker, notice))
PY
fi
exec target/release/provider-sync-server \
  --catalog "$catalog" \
  --static-dir "$site" \
  "$@"
