#!/usr/bin/env bash
# Fuzzes each target for a chosen time, one after the other, one job each:
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# (default 60 s, every target: ws_client_frame sync_request catalog_toml
# sdk_json). A run reads the kept corpus (fuzz/corpus/<target>/, committed)
# and grows a working corpus (fuzz/work/<target>/, not committed, kept
# between runs on this machine). Then the kept corpus is minimized: its
# hand-named files (seeds, and the inputs of fixed findings) always stay;
# of the inputs runs found (files named by their SHA-1), a smallest set
# that covers the same branches, then the smallest of those up to
# FUZZ_CORPUS_KB (default 64) per target. A crash or a failed check leaves
# its input in fuzz/artifacts/<target>/ (not committed) and makes the script
# fail once every target ran. The ordinary test run replays the kept corpus
# (tests/fuzz-checks/tests/replay.rs); commit what a run adds to it.
#
# A target with a dictionary of its format's words (fuzz/dict/<target>.dict)
# is run with it. The targets are safe Rust, so they run without a
# sanitizer (several times faster), with debug assertions on. Installs
# cargo-fuzz and the nightly toolchain when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ws_client_frame sync_request catalog_toml sdk_json)
budget=$((${FUZZ_CORPUS_KB:-64} * 1024))

cargo_fuzz_version=0.13.2
if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$cargo_fuzz_version" ]; then
  cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
fi
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal

max_len() {
  case $1 in
    ws_client_frame | sync_request) echo 4096 ;;
    *) echo 8192 ;;
  esac
}

fuzz() { cargo +nightly fuzz "$@"; }
build=(--fuzz-dir fuzz --sanitizer none --debug-assertions)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in "${targets[@]}"; do
  corpus=fuzz/corpus/$target
  work=fuzz/work/$target
  tmp=$scratch/$target
  mkdir -p "$corpus" "$work" "fuzz/artifacts/$target" "$tmp/kept" "$tmp/pool"
  printf '\n== %s: %s s\n' "$target" "$seconds"
  # The format's words, where a target has them (fuzz/dict/).
  dict=()
  [ ! -f "fuzz/dict/$target.dict" ] || dict=(-dict="fuzz/dict/$target.dict")
  # New inputs go to the first directory; the kept corpus is only read.
  fuzz run "${build[@]}" "$target" "$work" "$corpus" -- "${dict[@]}" \
    -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" >"$tmp/log" 2>&1 || true
  grep -E '^#[0-9]+ +(INITED|DONE)|^(==[0-9]+==|SUMMARY|Done [0-9]+ runs)|panicked at|^stat::number_of_executed_units' \
    "$tmp/log" || true
  grep -q '^Done [0-9]* runs in' "$tmp/log" || { failed+=("$target"); tail -40 "$tmp/log"; }

  find "$corpus" -maxdepth 1 -type f -regextype posix-extended ! -regex '.*/[0-9a-f]{40}' -exec cp {} "$tmp/kept/" \;
  find "$corpus" "$work" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9a-f]{40}' -exec cp {} "$tmp/pool/" \;
  if ! fuzz run "${build[@]}" "$target" "$tmp/kept" "$tmp/pool" -- \
    -set_cover_merge=1 -use_counters=0 -use_cmp=0 -max_len="$(max_len "$target")" -timeout=10 \
    >"$tmp/merge.log" 2>&1; then
    failed+=("$target (minimizing)")
    tail -20 "$tmp/merge.log"
    continue
  fi
  total=0
  find "$tmp/kept" -type f -regextype posix-extended -regex '.*/[0-9a-f]{40}' -printf '%s %p\n' | sort -n \
    | while read -r size path; do
      total=$((total + size))
      [ "$total" -le "$budget" ] || rm "$path"
    done
  find "$corpus" -maxdepth 1 -type f -delete
  cp "$tmp/kept"/* "$corpus/"
  echo "$target: kept $(ls "$corpus" | wc -l) files, $(du -sb "$corpus" | cut -f1) bytes"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
