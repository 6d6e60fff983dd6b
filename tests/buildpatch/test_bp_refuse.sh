#!/usr/bin/env bash
# A patch from `rewire build-patch` is bound to the build it was made for
# (its .rewire.bind: the object's build-id, each replaced function's size
# and hash). Through `rewire patch`, each refused with exit status 1 and a
# message that says why, the process unchanged (its oracle, corpus/main.c,
# sees old values only, or the first patch only; `rewire ls --patches`):
#   - build-id mismatch: the patch of cases/body.diff built for the
#     fixture's bpt (build A), loaded into bpt rebuilt with an unrelated
#     change (build B: util.c's bp_limit is 65, not 64; bp_body's code is
#     the same, the build-id another): both ids in the message;
#   - a patch for another program: bptxx's patch (cases/cxx_method.diff)
#     loaded into bpt: both ids in the message;
#   - a patch for a library the process does not load: refuse_lib.diff
#     for the corpus's libbpl.so, loaded into bpt: the library named;
#   - the same patch twice (the same file, then a copy of it): the second
#     load is refused, the first patch stays enabled, alone.
# Skipped in sanitizer builds and on the generic backend.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

[ -x "$tree/bpt" ] || skip "the corpus is not built (the bp_corpus test)"
live_ok || skip "live patching of the corpus needs the x86_64 backend and a build without sanitizer"
cases=$bp_src/corpus/cases

step "the patches: body.diff for bpt (build A), cxx_method.diff for bptxx"
rwrun build-patch -c "$tree/compile_commands.json" -s "$tree" \
	-d "$cases/body.diff" --object "$tree/bpt" -o "$tmp/bp_body.so"
expect_rc 0 "build-patch body.diff"
rwrun build-patch -c "$tree/build-cxx/compile_commands.json" -s "$tree" \
	-d "$cases/cxx_method.diff" --object "$tree/build-cxx/bptxx" \
	-o "$tmp/bp_cxx_method.so"
expect_rc 0 "build-patch cxx_method.diff"
rwrun build-patch -c "$tree/compile_commands.json" -s "$tree" \
	-d "$bp_src/refuse_lib.diff" --object "$tree/libbpl.so" \
	-o "$tmp/bp_lib.so"
expect_rc 0 "build-patch refuse_lib.diff for libbpl.so"

step "build B: bpt rebuilt with an unrelated change"
cp -r "$bp_src/corpus" "$tmp/treeB"
sed -i 's/^long bp_limit = 64;$/long bp_limit = 65;/' "$tmp/treeB/util.c"
grep -q '^long bp_limit = 65;$' "$tmp/treeB/util.c" || fail "util.c: no bp_limit"
bp_flags "$tmp/treeB"
(cd "$tmp/treeB" && make CC="${REWIRE_CC:-cc}" CFLAGS="$CFLAGS" \
	CPPFLAGS="$CPPFLAGS" LDFLAGS="$LDFLAGS" >"$tmp/make.log" 2>&1) ||
	fail "build B failed"
ida=$(build_id "$tree/bpt")
idb=$(build_id "$tmp/treeB/bpt")
idxx=$(build_id "$tree/build-cxx/bptxx")
echo "  build-ids: A $ida, B $idb, bptxx $idxx"
[ -n "$ida" ] && [ -n "$idb" ] && [ "$ida" != "$idb" ] ||
	fail "builds A and B do not have two build-ids"
cmp -s <(objdump -d --no-show-raw-insn "$tree/bpt" | grep -A12 '<bp_body>:' | cut -f2-) \
	<(objdump -d --no-show-raw-insn "$tmp/treeB/bpt" | grep -A12 '<bp_body>:' | cut -f2-) ||
	fail "bp_body's code differs between builds A and B"

no_patches() {
	rwrun ls "$bpid" --patches
	expect_rc 0 "ls --patches"
	grep -Eq '^\(none\)$' <<<"$out" || fail "$1: patches loaded: $out"
}

step "build B under rewire run: A's patch is refused"
start_bpt "$tmp/treeB/bpt"
bpt_phase 1
rwrun patch "$bpid" "$tmp/bp_body.so" --timeout 20
expect_rc 1 "A's patch in B"
echo "  $err"
expect_err "$ida" "the message names the patch's build-id"
expect_err "$idb" "the message names the process's build-id"
no_patches "A's patch in B"

step "bptxx's patch in bpt is refused"
rwrun patch "$bpid" "$tmp/bp_cxx_method.so" --timeout 20
expect_rc 1 "bptxx's patch in bpt"
echo "  $err"
expect_err "$idxx" "the message names the patch's build-id"
expect_err "$idb" "the message names the process's build-id"
no_patches "bptxx's patch in bpt"

step "libbpl.so's patch in bpt, which does not load libbpl.so, is refused"
rwrun patch "$bpid" "$tmp/bp_lib.so" --timeout 20
expect_rc 1 "a patch for a library not loaded"
echo "  $err"
expect_err "libbpl" "the message names the library"
no_patches "libbpl.so's patch in bpt"
bpt_phase 2
bpt_phase 3
bpt_phase 4
bpt_end

step "the same patch twice in build A"
start_bpt "$tree/bpt" --new body=1002
bpt_phase 1
rwrun patch "$bpid" "$tmp/bp_body.so" --timeout 30
expect_rc 0 "the first load"
bpt_phase 2
rwrun patch "$bpid" "$tmp/bp_body.so" --timeout 20
expect_rc 1 "the same patch again"
echo "  $err"
expect_err "bp_body" "the message names the patch"
cp "$tmp/bp_body.so" "$tmp/bp_body_copy.so"
rwrun patch "$bpid" "$tmp/bp_body_copy.so" --timeout 20
expect_rc 1 "a copy of the patch"
echo "  $err"
rwrun ls "$bpid" --patches
expect_out "^bp_body +enabled .*$tmp/bp_body.so$" "the first patch stays"
[ "$(grep -Ec '^bp_body' <<<"$out")" -eq 1 ] ||
	fail "more than one patch loaded: $out"
bpt_phase 3
rwrun unpatch "$bpid" bp_body --timeout 30
expect_rc 0 "unpatch"
bpt_phase 4
bpt_end
echo PASS
