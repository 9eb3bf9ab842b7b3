#!/usr/bin/env bash
# Runs each libFuzzer target (built by `cmake --preset fuzz && cmake --build --preset fuzz`)
# for SECONDS seconds (default 60) from its seed corpus in fuzz/corpus/<target>, with the
# dictionary fuzz/dict/<target>.dict where there is one.
# Crashes are written to build-fuzz/crashes/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
mkdir -p build-fuzz/crashes
status=0
for target in build-fuzz/fuzz/fuzz_*; do
  [ -x "$target" ] || continue
  name="$(basename "$target")"
  work="build-fuzz/corpus/$name"
  mkdir -p "$work"
  options=(-max_total_time="$seconds" -print_final_stats=0 -artifact_prefix="build-fuzz/crashes/$name-")
  if [ -f "fuzz/dict/$name.dict" ]; then options+=(-dict="fuzz/dict/$name.dict"); fi
  echo "fuzzing $name for ${seconds}s"
  if ! "$target" "${options[@]}" "$work" "fuzz/corpus/$name" > "build-fuzz/$name.log" 2>&1; then
    echo "FAILED: $name (see build-fuzz/$name.log)"; tail -30 "build-fuzz/$name.log"; status=1
  fi
done
exit $status
