#!/usr/bin/env bash
# Fetches LiteLLM's model catalog (model_prices_and_context_window.json, MIT
# license) from the litellm wheels on PyPI and keeps it in a cache shared by
# runs: ${PROVIDER_SYNC_CACHE:-~/.cache/provider-sync}/litellm/VERSION.json.
# Prints the path of each file it was asked for, one per line.
#
#   scripts/fetch-litellm.sh [VERSION ...]    (default: 1.105.0 1.110.2)
set -euo pipefail

cache="${PROVIDER_SYNC_CACHE:-$HOME/.cache/provider-sync}/litellm"
mkdir -p "$cache"
[ $# -gt 0 ] || set -- 1.105.0 1.110.2

for version in "$@"; do
  out="$cache/$version.json"
  if [ ! -s "$out" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --dest "$work" "litellm==$version" >&2
    wheel=$(ls "$work"/litellm-*.whl)
    python3 - "$wheel" "$out.tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    data = z.read("litellm/model_prices_and_context_window_backup.json")
with open(sys.argv[2], "wb") as f:
    f.write(data)
PY
    mv "$out.tmp" "$out"
    rm -rf "$work"
    trap - EXIT
  fi
  echo "$out"
done
