#!/usr/bin/env bash
# REST throughput: GET /version, GET /state (200) and GET /state with a
# matching If-None-Match (304) from provider-sync, and, in the same run,
# nginx serving the same bytes as static files — the practical ceiling.
# wrk with one thread and 64 connections, 5 s each, on the same 2 cores.
# Installs wrk and nginx from Debian when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  apt_get() { if [ "$(id -u)" = 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi; }
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends wrk nginx-light
fi
cargo build --release -p provider-sync-server
# Every client of a benchmark comes from one loopback address, and the
# fan-out holds 10k sockets: the per-address rate limits are off and the
# connection and session caps raised (the defaults are in the README).
export PROVIDER_SYNC_READ_RATE_LIMIT=0 PROVIDER_SYNC_ADMIN_RATE_LIMIT=0
export PROVIDER_SYNC_MAX_CONNECTIONS=100000 PROVIDER_SYNC_MAX_WS_SESSIONS=100000 PROVIDER_SYNC_MAX_WS_SESSIONS_PER_ADDRESS=0 PROVIDER_SYNC_MAX_CONNECTIONS_PER_ADDRESS=0

work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

target/release/provider-sync-server --bind 127.0.0.1:18110 --database "$work/bench.db" \
  --catalog examples/catalog.toml >"$work/server.log" 2>&1 &
server_pid=$!
api=http://127.0.0.1:18110/api/provider-sync
for _ in $(seq 1 100); do curl -sf "$api/healthz" >/dev/null && break; sleep 0.1; done

mkdir -p "$work/www"
chmod 755 "$work"  # nginx workers run as another user
curl -sf "$api/version" >"$work/www/version.json"
curl -sf "$api/state" >"$work/www/state.json"
etag=$(curl -sfI "$api/state" | tr -d '\r' | sed -n 's/^etag: //Ip')
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  server {
    listen 127.0.0.1:18111;
    root $work/www;
  }
}
NGINX
chmod 644 "$work"/www/*
nginx -c "$work/nginx.conf"
nginx_etag=$(curl -sfI http://127.0.0.1:18111/state.json | tr -d '\r' | sed -n 's/^etag: //Ip')

run() { # name url [header]
  local out
  if [ -n "${3:-}" ]; then
    out=$(wrk -t1 -c64 -d5s --latency -H "$3" "$2")
  else
    out=$(wrk -t1 -c64 -d5s --latency "$2")
  fi
  local rps p50 p99
  # wrk prints latencies as 708.00us, 1.92ms or 1.02s: in ms here.
  ms='{ v = $2; f = 1; if (v ~ /us$/) f = 0.001; else if (v ~ /ms$/) f = 1; else if (v ~ /s$/) f = 1000; sub(/[a-z]+$/, "", v); printf "%.3f", v * f }'
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" '"$ms")
  p99=$(echo "$out" | awk '$1 == "99%" '"$ms")
  echo "| $1 | $rps | $p50 | $p99 |"
}

echo "| request | requests/s | p50 ms | p99 ms |"
echo "| --- | ---: | ---: | ---: |"
run "provider-sync GET /version" "$api/version"
run "nginx GET /version.json" "http://127.0.0.1:18111/version.json"
run "provider-sync GET /state (200)" "$api/state"
run "nginx GET /state.json (200)" "http://127.0.0.1:18111/state.json"
run "provider-sync GET /state (304)" "$api/state" "If-None-Match: $etag"
run "nginx GET /state.json (304)" "http://127.0.0.1:18111/state.json" "If-None-Match: $nginx_etag"
