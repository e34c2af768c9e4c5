#!/usr/bin/env bash
# The benchmarks: payload sizes on a 50 × 2,000 catalog, protocol apply
# (criterion), and WebSocket
# fan-out (provider-sync against a Node `ws` broadcast server, same workload,
# same run) at 1k and 10k clients. Prints markdown tables for BENCHMARKS.md.
# Never fails on speed. Set CLIENTS="1000" to run one size only.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release -p provider-sync-server -p provider-sync-bench
(cd bench/ws-baseline && { [ -d node_modules ] || npm ci --no-audit --no-fund; })

echo "## Sync payload sizes"
target/release/sync-sizes

echo
echo "## apply (criterion)"
cargo bench -p provider-sync-protocol --bench apply 2>/dev/null | grep -E "^[a-z].*|time:"

work=$(mktemp -d)
server_pid=""; node_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() { for _ in $(seq 1 100); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }

echo
echo "## WebSocket fan-out (50 writes 100 ms apart)"
echo
echo "Latency from the write's acknowledgement (p50/p99/max) and from its sending (whole p50/p99)."
echo
echo "| server | clients | deliveries | p50 ms | p99 ms | max ms | whole p50 ms | whole p99 ms | deliveries/s | server CPU s | KiB per idle connection | missed |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for clients in ${CLIENTS:-1000 10000}; do
  rm -f "$work"/bench.db*
  target/release/provider-sync-server --bind 127.0.0.1:18100 --database "$work/bench.db" \
    --catalog examples/catalog.toml --admin-token bench --ws-queue 1024 >"$work/server.log" 2>&1 &
  server_pid=$!
  wait_for http://127.0.0.1:18100/api/provider-sync/healthz
  target/release/loadgen --target provider-sync --url http://127.0.0.1:18100/api/provider-sync \
    --clients "$clients" --server-pid "$server_pid"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

  node bench/ws-baseline/server.mjs 18101 >"$work/node.log" 2>&1 &
  node_pid=$!
  sleep 0.5
  target/release/loadgen --target ws --url http://127.0.0.1:18101 --clients "$clients" --server-pid "$node_pid"
  kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=""
done

echo
echo "## REST against nginx"
echo
bash scripts/bench-rest.sh | grep '^|'

echo
echo "## End to end: admin write to the SDK's state in Chromium"
echo
bash scripts/setup.sh >/dev/null
bash scripts/build-pkg.sh >/dev/null
site=$(mktemp -d)
cp -r examples/plain-html/. "$site/" && cp -r pkg "$site/provider-sync"
cargo build --release -p provider-sync-testbed -p provider-sync-bench 2>/dev/null
(cd tests/e2e && { [ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null; })
node bench/e2e/latency.mjs "$site" 200

echo
echo "## The SDK in Chromium on 50 x 2,000 models"
echo
big=$(mktemp --suffix=.toml)
target/release/gen-catalog >"$big"
node bench/e2e/client.mjs "$site" "$big" 50
rm -rf "$site" "$big"
