#!/usr/bin/env bash
# examples/livepatch_basic: the documented example runs and does what it
# says: every call wrong before the patch, every call right once the
# transition completed, wrong again after the disable.
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"

exe=$REWIRE_BUILD_DIR/examples/rw-example-livepatch_basic
if [ ! -x "$exe" ]; then
	echo "SKIP: $exe not built (REWIRE_BUILD_EXAMPLES off?)"
	exit 77
fi
out=$("$exe")
echo "$out"
if grep -q "skipped" <<<"$out"; then
	exit 77
fi
line() { grep "^$1" <<<"$out"; }
oks() { line "$1" | grep -o '[0-9]* ok' | awk '{s += $1} END {print s + 0}'; }
bads() { line "$1" | grep -o '[0-9]* bad' | awk '{s += $1} END {print s + 0}'; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(oks 'before')" -eq 0 ] || fail "right results before the patch"
[ "$(bads 'before')" -gt 0 ] || fail "no calls before the patch"
[ "$(bads 'patched')" -eq 0 ] || fail "wrong results after the transition"
[ "$(oks 'patched')" -gt 0 ] || fail "no calls while patched"
[ "$(oks 'unpatched again')" -eq 0 ] || fail "right results after the disable"
[ "$(bads 'unpatched again')" -gt 0 ] || fail "no calls after the disable"
grep -q "main thread: average = 20" <<<"$out" || fail "the bug is not back"
echo "PASS"
