# Sourced by scripts that need a throwaway PostgreSQL: Debian's binaries
# (scripts/setup.sh installs them), initdb in a temporary directory, a free
# loopback port. `pg_start DIR` starts it and sets PG_URL; `pg_stop DIR`
# stops it. As root, the server runs as the postgres user (initdb refuses
# root).
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)

pg_as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_start() {
  local dir=$1 port
  if [ -z "$pg_bin" ]; then
    echo "PostgreSQL is not installed: scripts/setup.sh installs Debian's postgresql" >&2
    return 1
  fi
  mkdir -p "$dir"
  # The postgres user must reach it (a mktemp directory is private).
  chmod 755 "$dir" "$(dirname "$dir")"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
  pg_as_postgres "$pg_bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
  pg_as_postgres "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

pg_stop() {
  pg_as_postgres "$pg_bin/pg_ctl" -D "$1/data" -m fast stop >/dev/null 2>&1 || true
}
