#!/usr/bin/env bash
# bench.sh [--strict] BUILD_DIR: runs every benchmark of BUILD_DIR/bench
# inside the test environment (make bench starts it) and prints each one's
# figures beside its baseline's.  Not part of make test: timings on shared
# machines only mean something as ratios measured in the same run.
# A benchmark exits non-zero when a figure misses its target; that fails
# this script only with --strict.
set -uo pipefail
strict=0
if [ "${1:-}" = "--strict" ]; then
  strict=1
  shift
fi
build=${1:-build-release}
missed=()
for bench in "$build"/bench/bench-*; do
  [ -f "$bench" ] && [ -x "$bench" ] || continue
  echo "== $(basename "$bench")"
  "$bench" || missed+=("$(basename "$bench")")
done
if [ ${#missed[@]} -gt 0 ]; then
  echo "targets missed or benchmark failed: ${missed[*]}"
  [ $strict -eq 1 ] && exit 1
fi
exit 0
