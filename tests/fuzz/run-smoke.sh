#!/bin/sh
# Runs every libFuzzer target of a KVLAB_FUZZ build for a bounded time (FUZZ_SECONDS, default
# 30 s each), with a per-input timeout of 10 s (a hang is a finding) and leak detection.
# Usage: tests/fuzz/run-smoke.sh BUILD_DIR     (make fuzz-smoke calls it with build-fuzz)
# Corpora are kept in BUILD_DIR/fuzz-corpus/<target>/, seeded first by BUILD_DIR/tests/fuzz/make-corpus
# from real engine files; crash inputs land in BUILD_DIR/fuzz-out/. The inputs of fixed findings
# in tests/fuzz/regressions/<target>/ are run too. FUZZ_ONLY=REGEX runs only
# the targets whose name matches. FUZZ_SEED (default 1) fixes libFuzzer's seed, so a CI run is
# repeatable on the same machine.
# Exit status: 0 when no target found anything, 1 otherwise (or when no target was built).
set -u
build=${1:-build-fuzz}
seconds=${FUZZ_SECONDS:-30}
dir="$build/tests/fuzz"
status=0
found=0
mkdir -p "$build/fuzz-out" "$build/fuzz-tmp"
# Scratch directories of the targets (left behind by a crashing input) stay inside the build.
KVLAB_FUZZ_TMP=$(cd "$build/fuzz-tmp" && pwd)
export KVLAB_FUZZ_TMP
if [ -x "$dir/make-corpus" ]; then
  if ! "$dir/make-corpus" "$build/fuzz-corpus"; then
    echo "fuzz-smoke: make-corpus failed"
    status=1
  fi
fi
for t in "$dir"/fuzz_*; do
  [ -x "$t" ] && [ -f "$t" ] || continue
  found=1
  name=$(basename "$t")
  if [ -n "${FUZZ_ONLY:-}" ] && ! echo "$name" | grep -Eq "$FUZZ_ONLY"; then
    continue
  fi
  corpus="$build/fuzz-corpus/$name"
  mkdir -p "$corpus"
  # Inputs of fixed findings (tests/fuzz/regressions/<target>/) run first in every smoke run: a
  # second corpus directory is read, never written.
  regress="$(dirname "$0")/regressions/$name"
  [ -d "$regress" ] || regress=""
  echo "fuzz-smoke: $name for ${seconds}s"
  if ! "$t" -max_total_time="$seconds" -seed="${FUZZ_SEED:-1}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$build/fuzz-out/$name-" "$corpus" ${regress:+"$regress"} >"$build/fuzz-out/$name.log" 2>&1; then
    echo "fuzz-smoke: $name FOUND A PROBLEM: see $build/fuzz-out/$name.log and $build/fuzz-out/$name-*"
    tail -n 30 "$build/fuzz-out/$name.log"
    status=1
  else
    grep -E "^stat::number_of_executed_units|^Done" "$build/fuzz-out/$name.log" | sed "s/^/  /"
  fi
done
if [ "$found" = 0 ]; then
  echo "fuzz-smoke: no fuzz_* targets in $dir (configure with CC=clang -DKVLAB_FUZZ=ON)"
  exit 1
fi
exit $status
