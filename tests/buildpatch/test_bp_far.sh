#!/usr/bin/env bash
# What a patch made by `rewire build-patch` reaches in the program from
# afar (far/far.c, far/far.diff): the program is compiled here, with a
# compile_commands.json written here, as a distribution builds (rewire's
# patchable entry, -fcf-protection on x86-64, -mbranch-protection=standard
# on aarch64). The patch replaces far_value, which reads the program's
# static far_scale (by name, through the relocation table), calls the
# global far_global and the static far_static, calls snprintf (libc) and
# tail-calls far_tail. The dynamic linker maps the patch far from the
# program (beyond the +-128 MiB of an aarch64 BL): the emitter's code
# must reach all of them anywhere. Pass: the report replaces far_value
# alone; on aarch64 the patch's code calls through x16 (blr, and br for
# the tail call); the program under `rewire run` (linked with librewire:
# idle, it declares quiescent states as examples/kv does) answers 15 for
# 1 before the patch, 1015 while it is applied (far_static still counting
# in the program's far_counter), 15 again after `rewire unpatch`.
#
# aarch64 also: the same program linked marked BTI (-z force-bti; it is
# not run: Debian's start files have no landing pads). far_static, a
# static function only called directly, has none either, and a BLR to it
# would fault in a guarded page: the report must carry a copy of it.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

conf=$REWIRE_BUILD_DIR/include/rewire/config.h
if grep -q "^#define RW_BACKEND_AARCH64" "$conf"; then
	arch=aarch64
	aflags="-fpatchable-function-entry=2 -mbranch-protection=standard"
elif grep -q "^#define RW_BACKEND_X86_64" "$conf"; then
	arch=x86_64
	aflags="-fpatchable-function-entry=5 -fcf-protection"
else
	skip "live patching needs the x86_64 or aarch64 backend"
fi
[ -z "${REWIRE_SANITIZE:-}" ] ||
	skip "the program would have to be built with the sanitizer"
command -v python3 >/dev/null || skip "python3 is missing"
cc=${REWIRE_CC:-cc}

step "compile far.c ($arch) and write its compile_commands.json"
src=$tmp/src build=$tmp/build
mkdir "$src" "$build"
cp "$bp_src/far/far.c" "$src/far.c"
# -ffunction-sections: without it the assembler makes the x86-64 tail call
# to far_tail, close by in .text, a 2-byte jump, 3 bytes shorter than in
# build-patch's before.o, which it compiles with it (and it would refuse).
# shellcheck disable=SC2206
args=("$cc" -O2 -g $aflags -flive-patching=inline-only-static
	-ffunction-sections -I"$REWIRE_SOURCE_DIR/include"
	-I"$REWIRE_BUILD_DIR/include" -c "$src/far.c" -o far.o)
python3 - "$build" "$src/far.c" "${args[@]}" >"$build/compile_commands.json" <<'PY'
import json, sys
print(json.dumps([{"directory": sys.argv[1], "file": sys.argv[2],
                   "arguments": sys.argv[3:]}], indent=1))
PY
link=(-L"$REWIRE_BUILD_DIR" "-Wl,-rpath,$REWIRE_BUILD_DIR" -lrewire)
(cd "$build" && "${args[@]}" && "$cc" -o far far.o "${link[@]}") ||
	fail "cannot build far.c with $cc"

step "rewire build-patch -d far.diff"
rwrun build-patch --json --keep "$tmp/work" -c "$build" -s "$src" \
	-d "$bp_src/far/far.diff" --object "$build/far" --name far_fix \
	-o "$tmp/far_fix.so"
python3 "$bp_src/check_report.py" "$bp_src/far/far.expect" "$tmp/out" \
	"$rc" "$tmp/far_fix.so" ||
	fail "the report is not what far.expect says"
gen=$tmp/work/gen.s
[ -f "$gen" ] || fail "no $gen (--keep)"
for name in far_scale far_global far_static far_tail; do
	grep -q "\.string	\"$name\"" "$gen" ||
		fail "no relocation names the program's $name"
done
if [ "$arch" = aarch64 ]; then
	grep -q 'blr	x16' "$gen" || fail "no call through x16 in $gen"
	grep -q 'br	x16' "$gen" || fail "no tail call through x16 in $gen"
	! grep -Eq '	bl	(far_|snprintf)' "$gen" ||
		fail "a direct call out of the patch is left in $gen"
fi

step "far under rewire run: patch and unpatch"
mkfifo "$tmp/in"
"$rw" run -- "$build/far" <"$tmp/in" >"$tmp/far.log" 2>&1 &
bpid=$!
bp_pids+=("$bpid")
exec 3>"$tmp/in"
wait_log "$tmp/far.log" '^ready$' 60
wait_socket "$bpid" 60
ask() {
	echo "$1" >&3
	wait_log "$tmp/far.log" "^far_value\\(1\\) = $2, far_static ran $3 times$" 60
}
ask 1 15 1
rwrun patch "$bpid" "$tmp/far_fix.so" --timeout 60
expect_rc 0 "rewire patch far_fix.so"
ask 1 1015 2
ask 1 1015 3
rwrun unpatch "$bpid" far_fix --timeout 60
expect_rc 0 "rewire unpatch far_fix"
ask 1 15 4
exec 3>&-
wait "$bpid" || fail "far exited with $?"

if [ "$arch" = aarch64 ]; then
	step "the program marked BTI: far_static is carried"
	(cd "$build" &&
		"$cc" -o far_bti far.o "${link[@]}" -Wl,-z,force-bti 2>/dev/null) ||
		fail "cannot link far_bti"
	rwrun build-patch --json -c "$build" -s "$src" \
		-d "$bp_src/far/far.diff" --object "$build/far_bti" \
		--name far_bti_fix -o "$tmp/far_bti_fix.so"
	python3 "$bp_src/check_report.py" "$bp_src/far/far_bti.expect" \
		"$tmp/out" "$rc" "$tmp/far_bti_fix.so" ||
		fail "the report is not what far_bti.expect says"
	grep -q 'landing pad' "$tmp/out" ||
		fail "the report does not say why far_static is carried"
fi
echo PASS
