#!/usr/bin/env bash
# The benchmarks: payload sizes on a 50 × 2,000 catalog, protocol apply
# (criterion), and WebSocket
# fan-out (provider-sync against a Node `ws` broadcast server, same workload,
# same run) at 1k and 10k clients, each case REPEAT times (default 3,
# interleaved with the baseline) and summarised as median (range). Prints
# markdown tables for BENCHMARKS.md. Never fails on speed. FANOUT_CASES
# (CLIENTS:INTERVAL_MS[:WRITES] ..., 50 writes a run unless given) picks
# the fan-out cases; SECTIONS (any of
# sizes apply fanout burst rest e2e client tabs litellm cluster) runs only
# some tables. BURST_CASES (CLIENTS:EVENTS ...) picks the burst cases.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

REPEAT=${REPEAT:-3}
# At 1k clients 200 writes a run: the floor's CPU over 50 was some 0.2 s.
FANOUT_CASES=${FANOUT_CASES:-"1000:100:200 10000:250 10000:100"}
BURST_CASES=${BURST_CASES:-"10000:300 1000:3000"}
SECTIONS=${SECTIONS:-"sizes apply fanout burst rest e2e client tabs litellm cluster"}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
# Every client of a benchmark comes from one loopback address, and the
# fan-out holds 10k sockets: the per-address rate limits are off and the
# connection and session caps raised (the defaults are in the README).
export PROVIDER_SYNC_READ_RATE_LIMIT=0 PROVIDER_SYNC_ADMIN_RATE_LIMIT=0
export PROVIDER_SYNC_MAX_CONNECTIONS=100000 PROVIDER_SYNC_MAX_WS_SESSIONS=100000 PROVIDER_SYNC_MAX_WS_SESSIONS_PER_ADDRESS=0 PROVIDER_SYNC_MAX_CONNECTIONS_PER_ADDRESS=0

# The server as a user builds it (alone), then the tools. Built together,
# cargo would unify the features of their shared dependencies and give the
# server other ones than a user's build (`scripts/bench-rest.sh`, which
# builds the server alone, then built it again, about 3 minutes). The tools
# link the server's library only: the binary stays this one.
cargo build --release -p provider-sync-server
cargo build --release -p provider-sync-bench -p provider-sync-testbed

work=$(mktemp -d)
server_pid=""; node_pid=""; floor_pid=""; cluster_pids=()
source scripts/postgres.sh
cleanup() {
  for pid in "${cluster_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -d "$work/pg" ]; then pg_stop "$work/pg"; fi
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  [ -n "$floor_pid" ] && kill "$floor_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listens on $1" >&2; return 1; }
wait_for() { for _ in $(seq 1 100); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }

# Runs the load generator (with the arguments after the first three) against
# provider-sync (a fresh store, the catalog CATALOG, --ws-queue QUEUE), then
# the Node baseline, then the floor (bench/src/bin/floor.rs: one frame
# written to every socket with plain non-blocking writes), appending their
# rows to ROWS. ps_args (an array) adds arguments to the provider-sync run.
# Installs the baseline's npm packages when they are missing.
against_all() {
  local catalog=$1 queue=$2 rows=$3
  shift 3
  rm -f "$work"/bench.db*
  target/release/provider-sync-server --bind 127.0.0.1:18100 --database "$work/bench.db" \
    --catalog "$catalog" --admin-token bench-admin-token-of-32-bytes-or-more --ws-queue "$queue" >"$work/server.log" 2>&1 &
  server_pid=$!
  wait_for http://127.0.0.1:18100/api/provider-sync/healthz
  target/release/loadgen --target provider-sync --url http://127.0.0.1:18100/api/provider-sync \
    "$@" ${ps_args[@]+"${ps_args[@]}"} --server-pid "$server_pid" >>"$rows"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

  (cd bench/ws-baseline && { [ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null; })
  node bench/ws-baseline/server.mjs 18101 >"$work/node.log" 2>&1 &
  node_pid=$!
  wait_for_port 18101
  target/release/loadgen --target ws --url http://127.0.0.1:18101 "$@" --server-pid "$node_pid" >>"$rows"
  kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=""

  target/release/floor 18102 >"$work/floor.log" 2>&1 &
  floor_pid=$!
  wait_for_port 18102
  target/release/loadgen --target floor --url http://127.0.0.1:18102 "$@" --server-pid "$floor_pid" >>"$rows"
  kill "$floor_pid"; wait "$floor_pid" 2>/dev/null || true; floor_pid=""
}

if want sizes; then
  echo "## Sync payload sizes"
  target/release/sync-sizes
  echo
fi

if want apply; then
  echo "## apply (criterion)"
  cargo bench -p provider-sync-protocol --bench apply 2>/dev/null | grep -E "^[a-z].*|time:"
  echo
fi

if want fanout; then
  echo "## WebSocket fan-out (cases $FANOUT_CASES as CLIENTS:INTERVAL_MS[:WRITES], 50 writes a run unless given; median (range) over $REPEAT runs)"
  echo
  echo "Latency from the write's acknowledgement (p50/p99/max) and from its sending (whole p50/p99)."
  echo
  # Cases are CLIENTS:INTERVAL_MS[:WRITES]. 250 ms apart, each change
  # reaches every client before the next write (the latency of one
  # broadcast); 100 ms apart at 10k clients the machine is near saturation
  # (throughput). A row names its clients and interval, not its writes: two
  # cases that differ only in writes would be taken for one.
  seen=" "
  for case in $FANOUT_CASES; do
    IFS=: read -r clients interval _ <<<"$case"
    if [[ "$seen" == *" $clients:$interval "* ]]; then
      echo "bench.sh: FANOUT_CASES names $clients clients every $interval ms twice" >&2
      exit 2
    fi
    seen="$seen$clients:$interval "
  done
  rows="$work/fanout.md"
  : >"$rows"
  for run in $(seq 1 "$REPEAT"); do
    for case in $FANOUT_CASES; do
      IFS=: read -r clients interval writes <<<"$case"
      ps_args=()
      against_all examples/catalog.toml 1024 "$rows" --clients "$clients" --interval-ms "$interval" --writes "${writes:-50}"
    done
  done
  echo "| server | clients | write every ms | runs | p50 ms | p99 ms | max ms | whole p50 ms | whole p99 ms | deliveries/s | server CPU µs per delivery | load generator CPU µs per delivery | server KiB per idle connection | missed | from due p50 ms | from due p99 ms |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  target/release/median-rows --key-cells 3 <"$rows" | tee "$work/fanout-medians.md"
  echo
  echo "Ratios to the floor (medians; server CPU per delivery, and whole p99):"
  echo
  echo "| clients | write every ms | provider-sync CPU | node ws CPU | provider-sync whole p99 | node ws whole p99 | provider-sync p99 from due | node ws p99 from due |"
  echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  # Cells: server, clients, interval, runs, p50, p99, max, whole p50,
  # whole p99 (10), deliveries/s, server CPU (12), ..., p99 from due (17);
  # a median's range is after it in brackets.
  awk -F'|' '
    function first(cell) { split(cell, part, " "); return part[1] + 0 }
    { gsub(/^ +| +$/, "", $2); key = $3 "|" $4; cpu[$2, key] = first($12); p99[$2, key] = first($10); due[$2, key] = first($17)
      if (!(key in seen)) { seen[key] = 1; keys[++n] = key } }
    END {
      for (i = 1; i <= n; i++) {
        k = keys[i]; f = cpu["floor", k]; q = p99["floor", k]; d = due["floor", k]
        if (!f || !q || !d) continue
        split(k, c, "|")
        printf "| %s | %s | %.2f× | %.2f× | %.2f× | %.2f× | %.2f× | %.2f× |\n", c[1] + 0, c[2] + 0,
          cpu["provider-sync", k] / f, cpu["node ws", k] / f, p99["provider-sync", k] / q, p99["node ws", k] / q,
          due["provider-sync", k] / d, due["node ws", k] / d
      }
    }' "$work/fanout-medians.md"
  echo
fi

if want burst; then
  echo "## Burst: every change at once (median (range) over $REPEAT runs)"
  echo
  echo "provider-sync reloads a generated catalog (SIGHUP) in which every model's price changed: one transaction, one event per model; the baseline and the floor get as many broadcasts back to back. Time from the reload (or the first broadcast) until the last client has the last event."
  echo
  rows="$work/burst.md"
  : >"$rows"
  for run in $(seq 1 "$REPEAT"); do
    for case in $BURST_CASES; do
      clients=${case%%:*}; events=${case##*:}
      target/release/gen-catalog --providers 50 --models "$events" >"$work/burst.toml"
      ps_args=(--burst-catalog "$work/burst.toml" --providers 50 --models "$events")
      against_all "$work/burst.toml" 4096 "$rows" --clients "$clients" --writes "$events" --burst --deadline-s 300
    done
  done
  echo "| server | clients | events | runs | last client has the last event, ms | deliveries/s | server CPU µs per delivery | missed |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  target/release/median-rows --key-cells 3 <"$rows"
  echo
fi

if want rest; then
  echo "## REST against nginx (median (range) over $REPEAT runs)"
  echo
  echo "| request | runs | requests/s | p50 ms | p99 ms |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  for run in $(seq 1 "$REPEAT"); do bash scripts/bench-rest.sh; done | target/release/median-rows
  echo
fi

if want e2e || want client || want litellm || want tabs; then
  SKIP_MIRI=1 bash scripts/setup.sh >/dev/null
  bash scripts/build-pkg.sh >/dev/null
  site="$work/site"
  mkdir -p "$site" && cp -r examples/plain-html/. "$site/" && cp -r pkg "$site/provider-sync"
  (cd tests/e2e && { [ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null; })
fi

if want e2e; then
  echo "## End to end: admin write to the SDK's state in Chromium (median (range) over $REPEAT runs)"
  echo
  echo "| writes | runs | p50 ms | p99 ms | max ms |"
  echo "| ---: | ---: | ---: | ---: | ---: |"
  for run in $(seq 1 "$REPEAT"); do node bench/e2e/latency.mjs "$site" 200; done | target/release/median-rows
  echo
fi

if want client; then
  echo "## The SDK in Chromium on 50 x 2,000 models (median (range) over $REPEAT runs)"
  echo
  target/release/gen-catalog >"$work/big.toml"
  echo "| measure | runs | value |"
  echo "| --- | ---: | ---: |"
  for run in $(seq 1 "$REPEAT"); do node bench/e2e/client.mjs "$site" "$work/big.toml" 50; done | target/release/median-rows
fi

if want tabs; then
  echo "## One connection per browser: hand-over when the leading tab closes (3 pages, Chromium)"
  echo
  tabs_site="$work/tabs-site"
  mkdir -p "$tabs_site" && cp tests/e2e/tabs/index.html "$tabs_site/" && cp -r pkg "$tabs_site/provider-sync"
  node bench/e2e/handover.mjs "$tabs_site" 20
  echo
fi

if want litellm; then
  # LiteLLM's catalog (PyPI's litellm wheels, cached by fetch-litellm.sh).
  old_json=$(bash scripts/fetch-litellm.sh 1.105.0)
  new_json=$(bash scripts/fetch-litellm.sh 1.110.2)
  echo
  echo "## LiteLLM's catalog (1.110.2, chat models) as the workload (median (range) over $REPEAT runs)"
  echo
  for run in $(seq 1 "$REPEAT"); do target/release/litellm-catalog "$old_json" "$new_json"; done >"$work/litellm.md"
  grep '^catalog:' "$work/litellm.md" | head -1
  echo
  echo "| measure | runs | value |"
  echo "| --- | ---: | ---: |"
  {
    target/release/median-rows <"$work/litellm.md"
    for run in $(seq 1 "$REPEAT"); do
      rm -f "$work"/litellm.db*
      start=$(date +%s%N)
      target/release/provider-sync-server --bind 127.0.0.1:18102 --database "$work/litellm.db" \
        --catalog "$new_json" >"$work/litellm-server.log" 2>&1 &
      server_pid=$!
      wait_for http://127.0.0.1:18102/api/provider-sync/healthz
      ready=$(( ($(date +%s%N) - start) / 1000000 ))
      curl -s -o /dev/null http://127.0.0.1:18102/api/provider-sync/state
      rss=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$server_pid/status")
      kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
      rm -f "$work"/litellm.db*
      echo "| server start to ready, seeding an empty store (process), ms | $ready |"
      echo "| server RSS after seeding and one /state, MiB | $rss |"
      server_pid=""
    done | target/release/median-rows
  }
  echo
  echo "The SDK in Chromium on that catalog (includeDeprecated, price writes to gpt-4o):"
  echo
  echo "| measure | runs | value |"
  echo "| --- | ---: | ---: |"
  for run in $(seq 1 "$REPEAT"); do node bench/e2e/client.mjs "$site" "$new_json" 50 gpt-4o; done | target/release/median-rows
fi

if want cluster; then
  # Three instances on one throwaway PostgreSQL.
  echo
  echo "## Several instances on one PostgreSQL (median (range) over $REPEAT runs)"
  echo
  echo "| measure | runs | p50 (or value) | p99 (or value) |"
  echo "| --- | ---: | ---: | ---: |"
  for run in $(seq 1 "$REPEAT"); do
    pg_start "$work/pg"
    cluster_pids=()
    for port in 18110 18111 18112; do
      target/release/provider-sync-server --bind "127.0.0.1:$port" --database "$PG_URL" \
        --admin-token bench-admin-token-of-32-bytes-or-more >"$work/cluster-$port.log" 2>&1 &
      cluster_pids+=($!)
    done
    for port in 18110 18111 18112; do wait_for "http://127.0.0.1:$port/api/provider-sync/readyz"; done
    target/release/cluster --instances http://127.0.0.1:18110/api/provider-sync \
      http://127.0.0.1:18111/api/provider-sync http://127.0.0.1:18112/api/provider-sync
    for pid in "${cluster_pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
    # Fan-out at 10k clients on PostgreSQL: all on one instance, then split
    # over two (writes on the first), same run.
    for split in 1 2; do
      cluster_pids=()
      for port in 18110 18111; do
        target/release/provider-sync-server --bind "127.0.0.1:$port" --database "$PG_URL" \
          --catalog examples/catalog.toml --admin-token bench-admin-token-of-32-bytes-or-more --ws-queue 1024 >"$work/cluster-$port.log" 2>&1 &
        cluster_pids+=($!)
      done
      for port in 18110 18111; do wait_for "http://127.0.0.1:$port/api/provider-sync/readyz"; done
      clients=(http://127.0.0.1:18110/api/provider-sync)
      [ "$split" = 2 ] && clients+=(http://127.0.0.1:18111/api/provider-sync)
      target/release/loadgen --target provider-sync --url http://127.0.0.1:18110/api/provider-sync \
        --client-url "${clients[@]}" --clients 10000 --interval-ms 250 \
        --server-pid "${cluster_pids[@]}" >>"$work/fanout-cluster.md"
      for pid in "${cluster_pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
    done
    pg_stop "$work/pg"
    rm -rf "$work/pg"
  done >"$work/cluster.md"
  target/release/median-rows <"$work/cluster.md"
  echo
  echo "Fan-out on PostgreSQL, 10k clients, a write every 250 ms (columns as in the fan-out table; CPU and memory summed over both instances):"
  echo
  echo "| server | clients | write every ms | runs | p50 ms | p99 ms | max ms | whole p50 ms | whole p99 ms | deliveries/s | server CPU µs per delivery | load generator CPU µs per delivery | server KiB per idle connection | missed | from due p50 ms | from due p99 ms |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  target/release/median-rows --key-cells 3 <"$work/fanout-cluster.md"
fi
