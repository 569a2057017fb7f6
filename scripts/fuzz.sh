#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, starting from the corpus kept in
# fuzz/corpus/<target>/. CI calls it with a short budget so a regression that
# panics shows up; run it by hand with a long one (docs/fuzzing.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60, all)
#
# Exits non-zero on the first crash; the reproducer lands in
# fuzz/artifacts/<target>/ and the command to replay it is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-60}
shift || true

# A debug build of the tool compiles faster and runs no slower (the fuzzed
# code is built by it, not in it).
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --debug

# cargo-fuzz needs nightly compiler flags (-Z sanitizer). Use the nightly
# toolchain when it is installed; otherwise let the stable compiler accept
# them (RUSTC_BOOTSTRAP), which is what nightly does, on the same sources.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  FUZZ=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  FUZZ=(cargo fuzz)
fi

cd fuzz
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <("${FUZZ[@]}" list); fi
"${FUZZ[@]}" build
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  printf '\n==> fuzzing %s for %ss (corpus: %s inputs)\n' "$t" "$SECONDS_PER_TARGET" "$(ls "corpus/$t" | wc -l)"
  # -max_len bounds input size (and so work per execution); -rss_limit_mb
  # turns an allocation blow-up into a reported crash instead of an OOM kill.
  log=$ROOT/target/fuzz-$t.log
  mkdir -p "$ROOT/target"
  set +e
  "${FUZZ[@]}" run "$t" "corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
  status=$?
  set -e
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "fuzz target $t failed (exit $status); replay with: cd fuzz && ${FUZZ[*]} run $t artifacts/$t/<file>" >&2
    exit "$status"
  fi
done
echo "fuzzing done: ${#targets[@]} targets, ${SECONDS_PER_TARGET}s each, no crash"
