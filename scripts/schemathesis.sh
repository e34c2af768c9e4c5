#!/usr/bin/env bash
# Schemathesis (PyPI) against the OpenAPI document of a real server on
# loopback: a stateless run (examples, coverage, fuzzing) and a stateful one
# (the document's links: providers and models created, read, changed,
# deprecated and removed), every check on, a fixed seed and a bounded number
# of examples per operation. Fails on any failure, or on a warning that the
# document lies about inputs (scripts/schemathesis.toml).
#
#   scripts/schemathesis.sh [MAX_EXAMPLES] [SEED]    (default: 50 1)
#
# The server: a temporary data directory, the sample catalog, a fresh admin
# token, rate limits off, health probes once a day (the run creates
# providers with made-up health URLs; none is probed). Schemathesis is
# installed once, at a pinned version, into
# ${PROVIDER_SYNC_CACHE:-~/.cache/provider-sync}/st-venv. Longer runs:
# scripts/schemathesis.sh 500 "$RANDOM". SERVER_BIN=path runs against that
# build of the server instead of building this one.
set -euo pipefail
cd "$(dirname "$0")/.."

max_examples="${1:-50}"
seed="${2:-1}"
version=4.32.5
venv="${PROVIDER_SYNC_CACHE:-$HOME/.cache/provider-sync}/st-venv"
st="$venv/bin/schemathesis"

if ! "$st" --version 2>/dev/null | grep -qx "schemathesis, version $version"; then
  echo "installing schemathesis $version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

server_bin="${SERVER_BIN:-}"
if [ -z "$server_bin" ]; then
  cargo build --quiet -p provider-sync-server --bin provider-sync-server
  server_bin="${CARGO_TARGET_DIR:-target}/debug/provider-sync-server"
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
"$server_bin" --bind "127.0.0.1:$port" --database "sqlite://$work/st.db" \
  --catalog examples/catalog.toml --admin-token "$token" \
  --read-rate-limit 0 --admin-rate-limit 0 --health-interval-ms 86400000 \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done

schema="http://127.0.0.1:$port/api/provider-sync/openapi.json"
run() {
  local phases=$1
  printf '\n== schemathesis: %s (seed %s, at most %s examples per operation)\n' "$phases" "$seed" "$max_examples"
  # Every check but one: a write whose body names another entity that does
  # not exist (a fallback provider, a model's provider or replacement) is
  # answered 404 naming that field, as the README says, and the stateful
  # phase, following a link from the answer that created the entity, reads
  # any such 404 as the entity itself gone ("created resource not found",
  # ST302); it cannot tell the two apart. That an entity is there at once
  # after its creation is checked by the server's own suites.
  "$st" --config-file scripts/schemathesis.toml run "$schema" \
    --phases "$phases" --checks all --exclude-checks ensure_resource_availability \
    --seed "$seed" --max-examples "$max_examples" \
    --header "Authorization: Bearer $token" --no-color --generation-database none \
    --report junit --report-dir "$work/report"
}
status=0
started=$SECONDS
run examples,coverage,fuzzing || status=1
run stateful || status=1
if grep -q ' ERROR \| panicked' "$work/server.log"; then
  echo "the server logged errors:" >&2
  grep ' ERROR \| panicked' "$work/server.log" | head -20 >&2
  status=1
fi
echo "schemathesis: $((SECONDS - started)) s, $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
