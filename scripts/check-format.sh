#!/usr/bin/env bash
# check-format.sh: every tracked C file is formatted by .clang-format.
# Prints the files that are not and exits 1 if there are any.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r f; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "not clang-formatted: $f (run: make format)"
    bad=1
  fi
done < <(git ls-files --cached --others --exclude-standard '*.c' '*.h')
exit $bad
