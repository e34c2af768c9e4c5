#!/usr/bin/env bash
# The demo on several instances: a throwaway PostgreSQL (Debian's, in a
# temporary directory), two provider-sync-server instances on it
# (127.0.0.1:8081 and :8082, the sample catalog), and nginx in front of them
# as a WebSocket-aware load balancer on http://127.0.0.1:8080/ serving the
# demo page. Ctrl-C stops everything and removes the data.
#
# Kill one instance (the script prints their process ids) and watch the page
# carry on through the other. It installs nginx (Debian's nginx-light) with
# apt when missing; a Debian package may start its own service on port 80. CLUSTER_DEMO_CHECK=1 starts everything, checks
# the page and both instances through the balancer, and stops (the test
# command runs it that way). PROFILE=debug builds faster.
set -euo pipefail
cd "$(dirname "$0")/.."
# nginx (on loopback) names the client in X-Forwarded-For: the instances
# believe it from there only, so rate limits apply per browser.
export PROVIDER_SYNC_TRUSTED_PROXIES=127.0.0.1

PROFILE=${PROFILE:-release}
LB_PORT=${LB_PORT:-8080}
PORTS=(${INSTANCE_PORTS:-8081 8082})

SKIP_BROWSER=1 SKIP_MIRI=1 bash scripts/setup.sh >/dev/null
apt_get() { if [ "$(id -u)" = 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi; }
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends nginx-light >/dev/null \
    || DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends nginx >/dev/null
fi
nginx=$(command -v nginx || echo /usr/sbin/nginx)

[ "${PKG_BUILT:-}" = 1 ] || bash scripts/build-pkg.sh >/dev/null
site=target/cluster-demo-site
rm -rf "$site" && mkdir -p "$site"
cp -r examples/plain-html/. "$site/"
cp -r pkg "$site/provider-sync"
if [ "$PROFILE" = release ]; then
  cargo build --release -p provider-sync-server
else
  cargo build -p provider-sync-server
fi
bin=${CARGO_TARGET_DIR:-target}/$PROFILE/provider-sync-server

work=$(mktemp -d)
chmod 755 "$work"
source scripts/postgres.sh
pids=()
cleanup() {
  local status=$?
  if [ "$status" != 0 ]; then
    # What went wrong is in the logs about to be removed.
    for log in "$work"/instance-*.log "$work"/nginx-error.log "$work"/pg/log; do
      [ -f "$log" ] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }
    done
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  pg_stop "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

pg_start "$work/pg"
database=$PG_URL
echo "PostgreSQL: $database"

export PROVIDER_SYNC_ADMIN_TOKEN="${PROVIDER_SYNC_ADMIN_TOKEN:-demo-admin-token-not-for-production-use}"
for port in "${PORTS[@]}"; do
  "$bin" --bind "127.0.0.1:$port" --database "$database" --catalog examples/catalog.toml \
    --static-dir "$site" >"$work/instance-$port.log" 2>&1 &
  pids+=($!)
  echo "instance on 127.0.0.1:$port: pid $!"
done
for port in "${PORTS[@]}"; do
  ready=""
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$port/api/provider-sync/readyz" >/dev/null 2>&1 && { ready=1; break; }
    sleep 0.1
  done
  [ -n "$ready" ] || { echo "the instance on port $port did not become ready" >&2; exit 1; }
done

upstreams=""
for port in "${PORTS[@]}"; do upstreams+="    server 127.0.0.1:$port max_fails=1 fail_timeout=2s;"$'\n'; done
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx-body;
  proxy_temp_path $work/nginx-proxy;
  fastcgi_temp_path $work/nginx-fastcgi;
  uwsgi_temp_path $work/nginx-uwsgi;
  scgi_temp_path $work/nginx-scgi;
  upstream provider_sync {
$upstreams  }
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:$LB_PORT;
    location / {
      proxy_pass http://provider_sync;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_read_timeout 1h;
      proxy_next_upstream error timeout http_502 http_503;
    }
  }
}
EOF
"$nginx" -c "$work/nginx.conf" -p "$work"
for _ in $(seq 1 50); do [ -f "$work/nginx.pid" ] && break; sleep 0.1; done

if [ "${CLUSTER_DEMO_CHECK:-}" = 1 ]; then
  page=$(curl -sf "http://127.0.0.1:$LB_PORT/")
  grep -q "AI provider catalog" <<<"$page" || { echo "the page did not come through the balancer" >&2; exit 1; }
  for port in "${PORTS[@]}"; do
    curl -sf "http://127.0.0.1:$port/api/provider-sync/readyz" >/dev/null
  done
  # A write on one instance shows on the other.
  curl -sf -X POST "http://127.0.0.1:${PORTS[0]}/api/provider-sync/admin/providers" \
    -H "Authorization: Bearer $PROVIDER_SYNC_ADMIN_TOKEN" -H 'content-type: application/json' \
    -d '{"id":"cluster-demo","name":"Cluster demo"}' >/dev/null
  for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:${PORTS[1]}/api/provider-sync/providers/cluster-demo" >/dev/null && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:${PORTS[1]}/api/provider-sync/providers/cluster-demo" >/dev/null \
    || { echo "a write on one instance did not reach the other" >&2; exit 1; }
  echo "cluster demo: page served through the balancer, both instances ready, a write crossed instances"
  # The SDK in Chromium through the balancer, across the death of an instance.
  (cd tests/e2e && { [ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null; })
  instances="["
  for i in "${!PORTS[@]}"; do
    [ "$i" = 0 ] || instances+=","
    instances+="{\"port\":${PORTS[$i]},\"pid\":${pids[$i]}}"
  done
  instances+="]"
  CLUSTER_LB="http://127.0.0.1:$LB_PORT" CLUSTER_INSTANCES="$instances" \
    node --test tests/e2e/cluster-failover.mjs
  exit 0
fi

echo "Open http://127.0.0.1:$LB_PORT/ — admin token: $PROVIDER_SYNC_ADMIN_TOKEN (Ctrl-C stops everything)"
wait "${pids[@]}"
