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
# LiteLLM's license notice beside its files (MIT: the notice goes where the
# data goes), from the one the repository keeps for its excerpt.
if [ ! -s "$cache/LICENSE" ]; then
  {
    echo "The *.json files in this folder are LiteLLM's model_prices_and_context_window.json"
    echo "(from the \`litellm\` wheels on PyPI, unchanged), under LiteLLM's MIT license:"
    echo
    sed -n '/^MIT License/,$p' "$(dirname "$0")/../server/tests/fixtures/litellm/LICENSE"
  } > "$cache/LICENSE.tmp"
  mv "$cache/LICENSE.tmp" "$cache/LICENSE"
fi
[ $# -gt 0 ] || set -- 1.105.0 1.110.2

for version in "$@"; do
  out="$cache/$version.json"
  if [ ! -s "$out" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --dest "$work" "litellm==$version" >&2
    wheel=$(ls "$work"/litellm-*.whl)
    # The file is dated by its release number (wheels carry no usable date:
    # reproducible builds set 1980), so that releases are ordered by their
    # modification time, which is a plain LiteLLM file's revision, whatever
    # order they were fetched in.
    python3 - "$wheel" "$out.tmp" "$version" <<'PY'
import os, sys, zipfile
name = "litellm/model_prices_and_context_window_backup.json"
with zipfile.ZipFile(sys.argv[1]) as z:
    data = z.read(name)
with open(sys.argv[2], "wb") as f:
    f.write(data)
parts = [int(p) for p in sys.argv[3].split(".")[:3] if p.isdigit()] + [0, 0, 0]
stamp = 1577836800 + parts[0] * 10_000_000 + parts[1] * 10_000 + parts[2]
os.utime(sys.argv[2], (stamp, stamp))
PY
    mv "$out.tmp" "$out"
    rm -rf "$work"
    trap - EXIT
  fi
  echo "$out"
done
