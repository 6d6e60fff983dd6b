#!/usr/bin/env bash
# `rewire build-patch`'s options and its bad inputs, on the corpus's bpt
# (the fixture): each bad input is exit 2 (usage, bad input) or 1 (a
# compiler error) with a message that names what is wrong, and writes
# nothing; the options work as rewire(1) says.
#   - no --object, no -o, an unknown option, no compile_commands.json: 2
#   - a diff that does not apply (its context is not in the tree): 2,
#     the file named; the source tree is left as it was
#   - a diff that does not compile: 1, the compiler's error shown
#   - a diff of a file no unit compiles (a README): no patch (3), said so
#   - -p 0 with a diff whose names have no a/ b/ prefix; the default
#     ./compile_commands.json and source directory (run from the tree);
#     --name; --keep DIR keeps the generated sources; -v prints the
#     commands
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

[ -x "$tree/bpt" ] || skip "the corpus is not built (the bp_corpus test)"
cases=$bp_src/corpus/cases
cc=$tree/compile_commands.json
so=$tmp/u.so
sum_before=$(cd "$tree" && cat ./*.c ./*.h | md5sum)

nothing_written() {
	[ ! -e "$so" ] || fail "$1: $so was written"
	[ "$(cd "$tree" && cat ./*.c ./*.h | md5sum)" = "$sum_before" ] ||
		fail "$1: the source tree changed"
}

step "usage errors: exit 2"
rwrun build-patch -c "$cc" -s "$tree" -d "$cases/body.diff" -o "$so"
expect_rc 2 "no --object"
expect_err "object" "no --object"
rwrun build-patch -c "$cc" -s "$tree" -d "$cases/body.diff" --object "$tree/bpt"
expect_rc 2 "no -o"
rwrun build-patch -c "$cc" -s "$tree" -d "$cases/body.diff" --object "$tree/bpt" \
	-o "$so" --no-such-option
expect_rc 2 "an unknown option"
rwrun build-patch -c "$tmp/none.json" -s "$tree" -d "$cases/body.diff" \
	--object "$tree/bpt" -o "$so"
expect_rc 2 "a missing compile_commands.json"
expect_err "none\.json" "a missing compile_commands.json is named"
rwrun build-patch -c "$cc" -s "$tree" -d "$tmp/missing.diff" \
	--object "$tree/bpt" -o "$so"
expect_rc 2 "a missing diff"
expect_err "missing\.diff" "a missing diff is named"
nothing_written "usage errors"

step "a diff that does not apply: exit 2"
sed 's/return 1001;/return 1003;/' "$cases/body.diff" >"$tmp/stale.diff"
# The context line no longer matches: "-	return 1003;" is not in calc.c.
sed -i 's/^-\treturn 1003;/-\treturn 1004;/' "$tmp/stale.diff"
rwrun build-patch -c "$cc" -s "$tree" -d "$tmp/stale.diff" \
	--object "$tree/bpt" -o "$so"
expect_rc 2 "a diff that does not apply"
expect_err "calc\.c" "the file the diff does not apply to is named"
nothing_written "a diff that does not apply"

step "a diff that does not compile: exit 1"
sed 's/return 1002;/return 1002 +;/' "$cases/body.diff" >"$tmp/broken.diff"
rwrun build-patch -c "$cc" -s "$tree" -d "$tmp/broken.diff" \
	--object "$tree/bpt" -o "$so"
expect_rc 1 "a diff that does not compile"
expect_err "calc\.c:[0-9]+(:[0-9]+)?: error" "the compiler's error is shown"
nothing_written "a diff that does not compile"

step "a diff of a file no unit compiles"
printf 'bpt: the build-patch corpus\n' >"$tmp/README.a"
printf 'bpt: the build-patch corpus, for rewire\n' >"$tmp/README.b"
(diff -u --label a/README --label b/README "$tmp/README.a" "$tmp/README.b" ||
	true) >"$tmp/readme.diff"
cp "$tmp/README.a" "$tmp/README.orig"
cp -r "$tree" "$tmp/tree2"
cp "$tmp/README.a" "$tmp/tree2/README"
rwrun build-patch -c "$tmp/tree2/compile_commands.json" -s "$tmp/tree2" \
	-d "$tmp/readme.diff" --object "$tmp/tree2/bpt" -o "$so"
[ "$rc" -eq 3 ] || [ "$rc" -eq 2 ] ||
	fail "a diff of no unit: exit status $rc, expected 3 (nothing to patch) or 2"
echo "  exit $rc: $(tail -1 <<<"$out$err")"
nothing_written "a diff of no unit"

step "-p 0, the default database and source (run from the tree), -n, --keep, -v"
sed -e 's|^--- a/|--- |' -e 's|^+++ b/|+++ |' -e 's|^diff --git a/\(.*\) b/.*|diff \1|' \
	"$cases/body.diff" >"$tmp/p0.diff"
pushd "$tree" >/dev/null
rwrun build-patch -p 0 -d "$tmp/p0.diff" --object bpt -n renamed_fix \
	-o "$so" --keep "$tmp/keep" -v
popd >/dev/null
expect_rc 0 "-p 0 from the tree"
[ -s "$so" ] || fail "-p 0: no patch written"
expect_err "-ffunction-sections" "-v prints the compile commands"
find "$tmp/keep" -maxdepth 1 -type f -printf '  kept: %f (%s bytes)\n'
grep -qs renamed_fix "$tmp"/keep/*.c ||
	fail "--keep: no generated C source in $tmp/keep names the patch 'renamed_fix'"
[ "$(cd "$tree" && cat ./*.c ./*.h | md5sum)" = "$sum_before" ] ||
	fail "the source tree changed"
if live_ok; then
	start_bpt "$tree/bpt" --new body=1002
	bpt_phase 1
	rwrun patch "$bpid" "$so" --timeout 30
	expect_rc 0 "rewire patch of the -n patch"
	expect_out "^patch renamed_fix enabled" "the patch's name is -n's"
	bpt_phase 2
	bpt_phase 3
	rwrun unpatch "$bpid" renamed_fix --timeout 30
	expect_rc 0 "rewire unpatch renamed_fix"
	bpt_phase 4
	bpt_end
fi
echo PASS
