#!/usr/bin/env bash
# bench.sh BUILD_DIR: runs every benchmark of BUILD_DIR/bench inside the test
# environment (make bench starts it) and prints each one's figures beside its
# baseline's.  Not part of make test: timings on shared machines only mean
# something as ratios measured in the same run.
set -euo pipefail
build=${1:-build}
status=0
for bench in "$build"/bench/bench-*; do
  [ -x "$bench" ] || continue
  echo "== $(basename "$bench")"
  "$bench" || status=1
done
exit $status
