#!/usr/bin/env bash
# Mutation testing with cargo-mutants (crates.io), one module at a time, each
# against only the test binaries that exercise it:
#
#   scripts/mutants.sh [MODULE...] [-- CARGO-MUTANTS-OPTION...]
#
# MODULE is `crate:module` (sdk:machine, server:validate, protocol:apply),
# a crate's whole set (sdk = its native modules, server = service, commands,
# catalog and validate, protocol = the whole crate), or `list`. Default:
# sdk protocol (over an hour on two shared cores; a server mutant costs
# about 30 s to build, so name server modules one at a time). Options after
# `--` go to cargo mutants, e.g. `-- --in-place` (mutate this tree and reuse
# its target/ instead of building a copy from scratch: the server's copy
# costs 4-5 minutes and 7 GB per module; do not edit the tree meanwhile) or
# `-- -F 'plan_sync'` (re-run the mutants whose names match).
#
# Each module's results go to $MUTANTS_OUT/<crate>-<module>/mutants.out/
# (default target/mutants; caught.txt, missed.txt, unviable.txt,
# timeout.txt, outcomes.json), and one line per module to
# $MUTANTS_OUT/summary.tsv: caught, missed, unviable, timeout, the share
# caught of viable, seconds. The script exits non-zero when a module's run
# fails to start (a failing baseline, say), not because mutants were
# missed. It refuses to start a module with less than MUTANTS_MIN_FREE_GB
# (default 15) free on the output's disk. Not part of scripts/test.sh.
# Installs cargo-mutants when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${MUTANTS_OUT:-target/mutants}"
min_free_gb="${MUTANTS_MIN_FREE_GB:-15}"

# module -> package, files (space-separated globs), test targets.
declare -A package files tests
add() { package[$1]=$2; files[$1]=$3; tests[$1]=$4; }

sdk_pkg=provider-sync-sdk
# `view`'s unit tests build a machine; the wire tests read cache records.
add sdk:machine "$sdk_pkg" sdk/src/machine.rs "--lib --test=machine"
add sdk:backoff "$sdk_pkg" sdk/src/backoff.rs "--lib --test=machine"
add sdk:config "$sdk_pkg" sdk/src/config.rs "--lib --test=machine"
add sdk:view "$sdk_pkg" sdk/src/view.rs "--lib --test=machine"
add sdk:cache "$sdk_pkg" sdk/src/cache.rs "--lib --test=wire"
add sdk:wire "$sdk_pkg" sdk/src/wire.rs "--lib --test=wire"
add sdk:json "$sdk_pkg" sdk/src/json.rs "--lib --test=wire"

protocol_tests="--lib --test=decisions --test=history"
add protocol provider-sync-protocol "protocol/src/*.rs" "$protocol_tests"
for f in protocol/src/*.rs; do
  m=$(basename "$f" .rs)
  [ "$m" = lib ] || add "protocol:$m" provider-sync-protocol "$f" "$protocol_tests"
done

server_pkg=provider-sync-server
add server:validate "$server_pkg" server/src/validate.rs \
  "--lib --test=admin_api --test=http_api --test=catalog_tools --test=catalog_reconcile --test=litellm"
add server:catalog "$server_pkg" "server/src/catalog/*.rs" \
  "--lib --test=catalog_reconcile --test=catalog_tools --test=litellm"
add server:commands "$server_pkg" server/src/commands.rs \
  "--lib --test=admin_api --test=http_api --test=websocket"
# `cluster` (several instances on a PostgreSQL the tests start) and
# `catalog_tools` reach what the others do not: conflicts between
# instances, the store's reachability, a reload's dry run; `sqlite_lock`,
# letting go of the store at shutdown.
add server:service "$server_pkg" server/src/service.rs \
  "--lib --test=admin_api --test=http_api --test=websocket --test=convergence --test=persistence --test=cluster --test=catalog_tools --test=sqlite_lock"

sdk_all=(sdk:machine sdk:backoff sdk:config sdk:view sdk:cache sdk:wire sdk:json)
server_all=(server:validate server:catalog server:commands server:service)

modules=()
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; extra=("$@"); break ;;
    sdk) modules+=("${sdk_all[@]}") ;;
    server) modules+=("${server_all[@]}") ;;
    list) printf '%s\n' "${!package[@]}" | sort; exit 0 ;;
    *)
      if [ -z "${package[$1]+x}" ]; then
        echo "unknown module '$1' (scripts/mutants.sh list)" >&2
        exit 2
      fi
      modules+=("$1")
      ;;
  esac
  shift
done
[ ${#modules[@]} -gt 0 ] || modules=("${sdk_all[@]}" protocol)

cargo mutants --version >/dev/null 2>&1 || cargo install cargo-mutants --locked

mkdir -p "$out"
summary="$out/summary.tsv"
[ -s "$summary" ] ||
  printf 'module\tcaught\tmissed\tunviable\ttimeout\tcaught_of_viable\tseconds\n' >"$summary"

count() { if [ -f "$1" ]; then grep -c . "$1" || true; else echo 0; fi; }

for m in "${modules[@]}"; do
  free_gb=$(df -P --block-size=1G "$out" | awk 'NR == 2 { print $4 }')
  if [ "$free_gb" -lt "$min_free_gb" ]; then
    echo "only ${free_gb} GB free on $out's disk (MUTANTS_MIN_FREE_GB=$min_free_gb): stopping before $m" >&2
    exit 1
  fi
  dir="$out/${m//:/-}"
  rm -rf "$dir"
  mkdir -p "$dir"
  file_args=()
  for f in ${files[$m]}; do file_args+=(--file "$f"); done
  # As cargo arguments (not test arguments after `--`), so that the builds
  # too make only these test binaries: linking every one of the server's
  # would cost more than the compiling.
  target_args=()
  for t in ${tests[$m]}; do target_args+=(--cargo-arg="$t"); done
  echo "== $m: ${package[$m]} ${files[$m]} (tests: ${tests[$m]})" >&2
  start=$(date +%s)
  status=0
  cargo mutants --package "${package[$m]}" "${file_args[@]}" "${target_args[@]}" \
    --timeout 120 --build-timeout 600 --output "$dir" ${extra[@]+"${extra[@]}"} || status=$?
  seconds=$(($(date +%s) - start))
  # cargo mutants exits 2 when mutants were missed, 3 on timeouts: results.
  # Anything else (1, 4: a failing baseline) means the run did not happen.
  case $status in 0 | 2 | 3) ;; *)
    echo "cargo mutants failed on $m (exit $status); see $dir/mutants.out/" >&2
    exit "$status"
    ;;
  esac
  r="$dir/mutants.out"
  caught=$(count "$r/caught.txt")
  missed=$(count "$r/missed.txt")
  unviable=$(count "$r/unviable.txt")
  timeout=$(count "$r/timeout.txt")
  viable=$((caught + missed + timeout))
  share=$(awk -v c="$caught" -v v="$viable" 'BEGIN { if (v) printf "%.1f%%", 100 * c / v; else print "-" }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$caught" "$missed" "$unviable" "$timeout" "$share" "$seconds" |
    tee -a "$summary"
done
