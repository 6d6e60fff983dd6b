#!/usr/bin/env bash
# rewire bind-patch (tools/rewire/cmd_bind.c), on the programs and patches
# of test_lp_bind (tests/lp_bind in the build tree):
# - binds lpbd_a.so's copy to lpbd_prog_a: the section holds the header,
#   the program (build-id 0a0a...) and compute with its size; a second run
#   leaves the file byte for byte as it was (idempotent);
# - another build gives another binding (B's build-id);
# - refusals, exit 1 with the reason: not a patch, a program without a
#   symbol table (stripped), a program without the function, two programs;
# - usage errors (no PATCH, no --object), exit 2.
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"

rw=$REWIRE_BUILD_DIR/tools/rewire
dir=$REWIRE_BUILD_DIR/tests/lp_bind
fail() {
	echo "FAIL: $*"
	exit 1
}
skip() {
	echo "SKIP: $*"
	exit 77
}
[ -x "$rw" ] || skip "$rw not built"
for f in lpbd_a.so lpbd_prog_a lpbd_prog_b; do
	[ -e "$dir/$f" ] || skip "$dir/$f not built (test_lp_bind)"
done
for t in objcopy readelf strip; do
	command -v "$t" >/dev/null || skip "$t not installed"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run EXPECTED_RC ARGS...: output in $out.
run() {
	local want=$1 rc=0
	shift
	out=$("$rw" "$@" 2>&1) || rc=$?
	echo "rewire $* -> $rc: $out"
	[ "$rc" = "$want" ] || fail "exit $rc, expected $want"
}
has() {
	grep -qF -- "$1" <<<"$out" || fail "output lacks '$1'"
}
section() {
	readelf -p .rewire.bind "$1" | tr -d '\n'
}

cp "$dir/lpbd_a.so" "$tmp/fix.so"
objcopy --remove-section .rewire.bind "$tmp/fix.so"
run 0 bind-patch "$tmp/fix.so" --object "$dir/lpbd_prog_a"
has "bound to 1 object, 1 function"
s=$(section "$tmp/fix.so")
echo "$s"
grep -q 'rewire-bind^I1\\n' <<<"$s" || fail "no header: $s"
grep -q 'object^I^I0a0a0a0a0a0a0a0a\\n' <<<"$s" || fail "no object: $s"
grep -Eq 'func\^I\^Icompute\^I0\^I[0-9]+\^I[0-9a-f]{16}\\n' <<<"$s" ||
	fail "no func: $s"
cp "$tmp/fix.so" "$tmp/before.so"
run 0 bind-patch "$tmp/fix.so" -o "$dir/lpbd_prog_a"
has "already bound (unchanged)"
cmp -s "$tmp/fix.so" "$tmp/before.so" || fail "the second run changed it"

run 0 bind-patch "$tmp/fix.so" --object "$dir/lpbd_prog_b"
grep -q 'object^I^I0b0b0b0b0b0b0b0b\\n' <<<"$(section "$tmp/fix.so")" ||
	fail "not rebound to B"

run 1 bind-patch "$dir/lpbd_prog_a" --object "$dir/lpbd_prog_a"
has "not a rewire patch"
strip -o "$tmp/stripped" "$dir/lpbd_prog_a"
run 1 bind-patch "$tmp/fix.so" --object "$tmp/stripped"
has "no symbol table (stripped)"
run 1 bind-patch "$tmp/fix.so" --object "$rw"
has "function 'compute' (the main program) not found"
run 1 bind-patch "$tmp/fix.so" --object "$dir/lpbd_prog_a" \
	--object "$dir/lpbd_prog_b"
has "are both programs"

run 2 bind-patch "$tmp/fix.so"
has "missing --object"
run 2 bind-patch --object "$dir/lpbd_prog_a"
has "missing PATCH.so"
echo "ok"
