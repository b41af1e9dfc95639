#!/usr/bin/env bash
# fuzz-run.sh TARGET SEED_DIR WORK_DIR SECONDS: runs one libFuzzer target
# for SECONDS from its seed corpus (read only) plus what earlier runs found
# (WORK_DIR), and prints libFuzzer's own count of executions.  A crash, a
# leak or a sanitizer report makes it exit non-zero and leaves the input in
# WORK_DIR/crash-*.
set -uo pipefail
target=$1 seeds=$2 work=$3 seconds=$4
mkdir -p "$work/corpus"
log="$work/last.log"
"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$seeds" \
  >"$log" 2>&1
status=$?
grep -E '^(Done|stat::number_of_executed_units)' "$log"
if [ $status -ne 0 ]; then
  tail -n 60 "$log"
fi
exit $status
