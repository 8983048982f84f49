#!/usr/bin/env bash
# Run every cargo-fuzz target for SECS seconds, JOBS targets at a time, on the stable
# toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the sanitizer flags). Each target starts
# from its committed seeds (fuzz/seeds/TARGET, read-only) and grows fuzz/corpus/TARGET, which
# this script creates (libFuzzer refuses a corpus directory that does not exist).
# Logs go to fuzz/logs/TARGET.log; the last line of each is libFuzzer's final stats.
#   usage: fuzz/run-all.sh [SECS=600] [JOBS=2] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}; jobs=${2:-2}; shift $(( $# > 2 ? 2 : $# )) || true
targets=("$@")
# installed before `cargo fuzz list` needs it (on a fresh machine the list came out empty and
# nothing ran)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
  [ ${#targets[@]} -gt 0 ] || { echo "run-all.sh: cargo fuzz list found no targets" >&2; exit 1; }
fi
for t in "${targets[@]}"; do RUSTC_BOOTSTRAP=1 cargo fuzz build "$t"; done
mkdir -p fuzz/logs
run() {
  local t=$1
  mkdir -p "fuzz/corpus/$t"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 > "fuzz/logs/$t.log" 2>&1 \
    && echo "$t: ok" || echo "$t: FAILED (see fuzz/logs/$t.log and fuzz/artifacts/$t/)"
}
export -f run; export secs
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run {}'
