#!/usr/bin/env python3
"""tap-summary.py LOG.json…: count the test cases in meson's testlog.json
files (every test runs with --tap) and print one summary line.

A case is a TAP "ok"/"not ok" line; a test without TAP output is one case.  A test program that failed without
reporting a failing case (a crash, a sanitizer abort, a timeout) counts as
one more failure, so nothing that went wrong can be missed.  Prints
"N passed, N failed" (", N skipped" after it when any skipped) and exits 1
when anything failed.
"""
import json
import re
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            test = json.loads(line)
            stdout = test.get("stdout") or ""
            bad = cases = 0
            for case in re.finditer(r"^(not )?ok \d+([^\n]*)", stdout, re.M):
                cases += 1
                if case.group(1):
                    bad += 1
                elif "# SKIP" in case.group(2):
                    skipped += 1
                else:
                    passed += 1
            ok = test.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
            if cases == 0 and ok:
                passed += 1  # a plain (non-TAP) test: one case
            if not ok and bad == 0:
                bad = 1
                print(f"{test['name']}: {test.get('result')} (exit {test.get('returncode')})"
                      " without a failing case", file=sys.stderr)
            failed += bad
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
