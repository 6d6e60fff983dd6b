#!/usr/bin/env bash
# One case of the build-patch corpus (tests/buildpatch/corpus/cases/):
#
#	test_bp_case.sh CASE
#
# 1. `rewire build-patch --dry-run --json` and then `-o CASE.so --json`
#    on cases/CASE.diff, against the corpus as build_corpus.sh built it
#    (its compile_commands.json, the program as --object): the exit
#    status, the report (which functions are replaced, carried, new,
#    deleted, where an edited function is inlined; or the refusal, its
#    symbol and reason) as cases/CASE.expect says, checked by
#    check_report.py; --dry-run writes nothing.
# 2. When a patch was written and the case has probes: the program
#    (corpus/main.c: worker threads and short-lived threads calling every
#    probe, each call checked) runs under `rewire run`; the patch is
#    applied with `rewire patch` and taken back with `rewire unpatch`
#    while the threads call the changed functions. The program's oracle
#    fails on a value that is neither old nor new (a thread mixed old and
#    new functions on one call chain), on a thread that switches back
#    during a transition, on an old value once `rewire patch` returned or
#    a new one once `rewire unpatch` returned, and on the program's
#    static counters not counting the patched calls.
# Part 2 is skipped (with a note) in sanitizer builds and on the generic
# backend.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

case=${1:?usage: test_bp_case.sh CASE}
diff=$bp_src/corpus/cases/$case.diff
expect=$bp_src/corpus/cases/$case.expect
[ -f "$diff" ] && [ -f "$expect" ] || fail "no case $case"
[ -x "$tree/bpt" ] || skip "the corpus is not built (the bp_corpus test)"
command -v python3 >/dev/null || skip "python3 is missing"

prog=$(awk '$1 == "program" { print $2 }' "$expect")
case $prog in
bpt) cc=$tree/compile_commands.json obj=$tree/bpt ;;
bptxx) cc=$tree/build-cxx/compile_commands.json obj=$tree/build-cxx/bptxx ;;
*) fail "$expect: program '$prog'?" ;;
esac
name=bp_$case
so=$tmp/$name.so
sed -n 's/^# \{0,1\}//p' "$expect" | sed 's/^/  /'

step "rewire build-patch --dry-run --json ($case.diff)"
rwrun build-patch --json --dry-run -c "$cc" -s "$tree" -d "$diff" \
	--object "$obj" -o "$so"
python3 "$bp_src/check_report.py" "$expect" "$tmp/out" "$rc" - ||
	fail "--dry-run: the report is not what $case.expect says"
[ ! -e "$so" ] || fail "--dry-run wrote $so"

step "rewire build-patch --json -o $name.so"
rwrun build-patch --json -c "$cc" -s "$tree" -d "$diff" --object "$obj" \
	-o "$so" --keep "$tmp/keep"
python3 "$bp_src/check_report.py" "$expect" "$tmp/out" "$rc" "$so" ||
	fail "the report is not what $case.expect says"
if [ "$rc" -ne 0 ]; then
	[ -n "$err" ] || fail "a refusal with nothing on stderr"
	echo "  stderr: $(head -3 "$tmp/err")"
	echo PASS
	exit 0
fi

# The same diff from stdin (the default), the patch's name from -n
# (checked last: the live run below does not depend on it).
stdin_check() {
	rwrun build-patch --json -c "$cc" -s "$tree" --object "$obj" \
		-n "${name}_stdin" -o "$tmp/stdin.so" <"$diff"
	python3 "$bp_src/check_report.py" "$expect" "$tmp/out" "$rc" \
		"$tmp/stdin.so" ||
		fail "the diff on stdin: the report is not what $case.expect says"
}

news=()
while read -r _ p v; do
	news+=(--new "$p=$v")
done < <(grep '^probe ' "$expect")
if [ ${#news[@]} -eq 0 ]; then
	stdin_check
	echo PASS
	exit 0
fi
if ! live_ok; then
	echo "NOTE: the live run is skipped (sanitizer build or generic backend)"
	stdin_check
	echo PASS
	exit 0
fi

step "$prog under rewire run: patch and unpatch under load (${news[*]})"
start_bpt "$obj" "${news[@]}"
bpt_phase 1
rwrun patch "$bpid" "$so" --timeout 30
expect_rc 0 "rewire patch $name.so"
expect_out "^patch $name enabled" "rewire patch $name.so"
echo "  $out"
bpt_phase 2
rwrun ls "$bpid" --patches
expect_out "^$name +enabled" "ls --patches"
bpt_phase 3
rwrun unpatch "$bpid" "$name" --timeout 30
expect_rc 0 "rewire unpatch $name"
echo "  $(head -1 <<<"$out")"
bpt_phase 4
bpt_end

step "the diff on stdin"
stdin_check
echo PASS
