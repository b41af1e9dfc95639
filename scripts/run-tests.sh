#!/usr/bin/env bash
# run-tests.sh: the whole suite, as `make test` and CI run it.
#
#   1. builds the debug tree (build/), an AddressSanitizer + UBSan tree
#      (build-asan/) and a ThreadSanitizer tree (build-tsan/), all with
#      warnings as errors;
#   2. starts the test environment once (scripts/test-env.sh: PostgreSQL,
#      the Secret Service, sshd) and runs every test in the first two trees
#      inside it, and every test of a module with threads of its own (pool,
#      runtime, storage writer, log writer, keychain thread, query, state)
#      in the third: those modules use pthread locks and mark their GLib
#      hand-offs for TSan, which cannot see GLib's futexes; the unit tests
#      also run under valgrind memcheck (build/, --setup valgrind), where a
#      definite leak or a memory error fails;
#   3. builds the libFuzzer targets with clang (build-fuzz/) and runs each
#      for 30 s from its seed corpus (scripts/fuzz.sh; `make fuzz` runs
#      them longer);
#   4. counts every test case of all runs and ends with the line
#      "N passed, N failed".
# Exits 0 only when nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh || exit 1

build_tree() { # DIR MESON-OPTIONS…
  local dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --buildtype=debug -Dwerror=true "$@" >/dev/null || return 1
  else
    meson configure "$dir" -Dwerror=true "$@" >/dev/null || return 1
  fi
  ninja -C "$dir" >"$dir/ninja.log" 2>&1 || {
    cat "$dir/ninja.log"
    return 1
  }
}

if ! build_tree build || ! build_tree build-asan -Db_sanitize=address,undefined -Db_lundef=false ||
  ! build_tree build-tsan -Db_sanitize=thread -Db_lundef=false; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

# The sanitizers abort on the first report, so a report is a failed test.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0

rm -f build/meson-logs/testlog.json build/meson-logs/testlog-valgrind.json \
  build-asan/meson-logs/testlog.json \
  build-tsan/meson-logs/testlog.json build-fuzz/meson-logs/testlog.json
scripts/test-env.sh -- bash -c '
  meson test -C build --no-rebuild --print-errorlogs --num-processes 2 "$@"
  echo "== the same suite under AddressSanitizer + UndefinedBehaviorSanitizer"
  meson test -C build-asan --no-rebuild --print-errorlogs --num-processes 2 --no-suite lint "$@"
  echo "== the threaded core under ThreadSanitizer"
  G_SLICE=always-malloc TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/tsan.supp" \
    meson test -C build-tsan --no-rebuild --print-errorlogs --num-processes 2 pool runtime storage log credentials query state
  echo "== the unit tests under valgrind memcheck (definite leaks fail)"
  meson test -C build --no-rebuild --print-errorlogs --num-processes 2 --setup valgrind \
    error log data-dir connection-config repos storage-export sql-split storage \
    credentials state
  exit 0' run-tests "$@"
env_status=$?

echo "== the fuzz targets, 30 s each"
scripts/fuzz.sh 30 --quiet
fuzz_status=$?

logs=()
for log in build/meson-logs/testlog.json build/meson-logs/testlog-valgrind.json \
  build-asan/meson-logs/testlog.json \
  build-tsan/meson-logs/testlog.json build-fuzz/meson-logs/testlog.json; do
  [ -f "$log" ] && logs+=("$log")
done
summary=$(python3 scripts/tap-summary.py "${logs[@]}")
read -r passed _ failed _ <<<"${summary//,/}"
if [ $env_status -ne 0 ]; then
  echo "the test environment failed (exit $env_status): counted as one failure"
  failed=$((failed + 1))
fi
# A fuzz build that failed leaves no test log to count: count it here.
if [ $fuzz_status -ne 0 ] && [ ! -f build-fuzz/meson-logs/testlog.json ]; then
  echo "the fuzz targets did not build (exit $fuzz_status): counted as one failure"
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
