#!/usr/bin/env bash
# fuzz.sh [SECONDS] [--quiet]: builds the libFuzzer targets with clang
# (ASan + UBSan) in build-fuzz/ and runs each for SECONDS (default 600),
# two at a time, each from its seed corpus in fuzz/corpus/ plus what
# earlier runs found (build-fuzz/fuzz/work/).  Prints libFuzzer's count of
# executions per target; a crash input is kept in build-fuzz/fuzz/work/.
# `make fuzz` runs this; `make test` runs it for 30 s per target.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
verbose=--verbose
[ "${2:-}" = "--quiet" ] && verbose=
scripts/deps.sh || exit 1
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz --buildtype=debugoptimized -Dfuzz=true \
    -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true >/dev/null || exit 1
fi
meson configure build-fuzz -Dfuzz_seconds="$seconds" >/dev/null || exit 1
ninja -C build-fuzz >build-fuzz/ninja.log 2>&1 || {
  cat build-fuzz/ninja.log
  exit 1
}
meson test -C build-fuzz --no-rebuild --suite fuzz --num-processes 2 --print-errorlogs $verbose
