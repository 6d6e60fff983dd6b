#!/usr/bin/env bash
# The corpus's oracle (corpus/main.c) catches a thread that mixes old and
# new code: oracle_mix.so, a hand-written patch that replaces bp_const but
# not bp_const_inner (which cases/const.diff also changes), applied to bpt
# told to expect const.diff's new value. The program must fail, naming a
# value that is neither old nor new (6012). Skipped where the live runs
# are (sanitizer builds, the generic backend).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

[ -x "$tree/bpt" ] || skip "the corpus is not built (the bp_corpus test)"
live_ok || skip "needs the x86_64 backend and a build without sanitizer"

"${REWIRE_CC:-cc}" -O2 -fPIC -shared -I"$REWIRE_SOURCE_DIR/include" \
	-I"$REWIRE_BUILD_DIR/include" -o "$tmp/oracle_mix.so" \
	"$bp_src/oracle_mix.c" || fail "oracle_mix.so did not build"

start_bpt "$tree/bpt" --new const=6022
bpt_phase 1
rwrun patch "$bpid" "$tmp/oracle_mix.so" --timeout 30
expect_rc 0 "rewire patch oracle_mix.so"
bpt_phase 2
rwrun unpatch "$bpid" oracle_mix --timeout 30
expect_rc 0 "rewire unpatch oracle_mix"
bpt_phase 3
bpt_phase 4
kill -USR1 "$bpid"
set +e
wait "$bpid"
st=$?
set -e
bpid=
grep -E 'FAIL|VIOLATION' "$blog" | head -3 | sed 's/^/  /'
[ "$st" -eq 1 ] || fail "the oracle did not fail (status $st)"
grep -q "neither the old nor the new value: probe const returned 6012" "$blog" ||
	fail "the oracle did not report the mix 6012"
echo PASS
