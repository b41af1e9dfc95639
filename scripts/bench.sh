#!/usr/bin/env bash
# bench.sh [--strict] BUILD_DIR: runs every benchmark of BUILD_DIR/bench
# inside the test environment (make bench starts it), prints each one's
# figures beside its baseline's, and writes bench/RESULTS.md: the machine,
# the versions, the date, every figure with its target and PASS/MISS, and
# each benchmark's full output.  Not part of make test: timings on shared
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
results=bench/RESULTS.md
rows=$(mktemp)
outputs=$(mktemp -d)
trap 'rm -rf "$rows" "$outputs"' EXIT
export TUSK_BENCH_RESULTS=$rows
export TUSK_LOG=${TUSK_LOG:-warn}

missed=()
start=$(date +%s)
# bench-schema and bench-complete create 10,000 tables: the autovacuum and
# catalog work that follows would load the server (and the 2 cores) under
# the benchmarks after them, so they come last.
benches=()
for bench in "$build"/bench/bench-*; do
  case $(basename "$bench") in
    bench-schema | bench-complete) ;;
    *) benches+=("$bench") ;;
  esac
done
benches+=("$build/bench/bench-schema" "$build/bench/bench-complete")
for bench in "${benches[@]}"; do
  [ -f "$bench" ] && [ -x "$bench" ] || continue
  name=$(basename "$bench")
  echo "== $name"
  "$bench" 2>&1 | tee "$outputs/$name.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || missed+=("$name")
done
elapsed=$(($(date +%s) - start))

{
  echo "# Benchmark results"
  echo
  echo "Written by \`make bench\` (scripts/bench.sh); do not edit by hand."
  echo "Each figure is Tusk's median [min-max] beside its baseline's, measured"
  echo "alternately in the same run; only the ratios are comparable between"
  echo "runs on these shared machines."
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "- machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
  echo "- versions: $(gcc --version | head -1); PostgreSQL $(/usr/lib/postgresql/15/bin/postgres --version | awk '{print $3}'); libpq $(pkg-config --modversion libpq); GLib $(pkg-config --modversion glib-2.0); SQLite $(pkg-config --modversion sqlite3); libssh $(pkg-config --modversion libssh)"
  echo "- build: $build ($(meson introspect --buildoptions "$build" 2>/dev/null | python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))' 2>/dev/null))"
  echo "- all benchmarks took ${elapsed} s"
  echo
  echo "| benchmark | figure | unit | Tusk | baseline | ratio | target | |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8}' "$rows"
  echo
  echo "## Full output"
  for out in "$outputs"/*.txt; do
    echo
    echo "### $(basename "$out" .txt)"
    echo
    echo '```'
    grep -v -E '^[0-9T:.-]+Z +(DEBUG|TRACE|INFO)' "$out"
    echo '```'
  done
} >"$results"
echo "wrote $results (${elapsed} s)"

if [ ${#missed[@]} -gt 0 ]; then
  echo "targets missed or benchmark failed: ${missed[*]}"
  [ $strict -eq 1 ] && exit 1
fi
exit 0
