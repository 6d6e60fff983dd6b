#!/usr/bin/env bash
# The kv server's value bug (examples/kv/kvserver.c, kv_copy_value copies
# a long value's tail from one byte too early) fixed from a diff:
# examples/kv/patches/fix_value.diff (the demo's), built into a patch with `rewire
# build-patch` from this build tree's compile_commands.json (-c DIR) and
# the source tree, for the built rw-kvserver. The report must replace
# kv_copy_value alone. Then rw-kvserver runs under `rewire run` with
# rw-kvload's 16 connections checking every reply; the patch is applied
# and taken back under load. Pass: no failed request in any phase, wrong
# replies before the patch, none while it is applied, again after
# `rewire unpatch`. In the aarch64 VM the patch applied is the build's
# fix_value_diff.so (the same build-patch, run at build time) instead of
# one built in the VM, whose two emulated compilations took minutes.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

kv=$REWIRE_BUILD_DIR/examples/kv
server=$kv/rw-kvserver
load=$kv/rw-kvload
[ -x "$server" ] && [ -x "$load" ] ||
	skip "the kv example is not built (REWIRE_BUILD_EXAMPLES off?)"
[ -f "$REWIRE_BUILD_DIR/compile_commands.json" ] ||
	skip "no compile_commands.json in $REWIRE_BUILD_DIR"
command -v python3 >/dev/null || skip "python3 is missing"
grep -Eq '^#define RW_BACKEND_(X86_64|AARCH64)' \
	"$REWIRE_BUILD_DIR/include/rewire/config.h" ||
	skip "live patching needs the x86_64 or aarch64 backend"
if [[ "${REWIRE_SANITIZE:-}" == *address* ]]; then
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
fi

# The same fix made at build time by rewire_build_patch() (CMake), when
# this build has it (not in sanitizer builds).
cmake_patch=$kv/fix_value_diff.so
if [ -n "${REWIRE_AARCH64_VM:-}" ] && [ -f "$cmake_patch" ]; then
	# The emulated machine compiles kvserver.c twice in four minutes:
	# there the build's fix_value_diff.so, made by the same build-patch
	# from the same diff (under user-mode qemu, at build time), is the
	# patch applied under load; the report is checked natively, and
	# test_bp_far runs build-patch in the VM.
	step "rewire build-patch: the build's fix_value_diff.so (aarch64 VM)"
	first=$cmake_patch
	first_name=fix_value_diff
	cmake_patch=
else
	step "rewire build-patch -c $REWIRE_BUILD_DIR -d fix_value.diff"
	rwrun build-patch --json -c "$REWIRE_BUILD_DIR" -s "$REWIRE_SOURCE_DIR" \
		-d "$REWIRE_SOURCE_DIR/examples/kv/patches/fix_value.diff" \
		--object "$server" -o "$tmp/kv_value.so"
	python3 "$bp_src/check_report.py" "$bp_src/kv_value.expect" "$tmp/out" \
		"$rc" "$tmp/kv_value.so" ||
		fail "the report is not what kv_value.expect says"
	first=$tmp/kv_value.so
	first_name=kv_value
fi

step "rw-kvserver under rewire run, rw-kvload: patch and unpatch under load"
"$rw" run -- "$server" --port 0 --port-file "$tmp/port" --threads 4 \
	>"$tmp/server.log" 2>&1 &
spid=$!
bp_pids+=("$spid")
for _ in $(seq 100); do
	[ -s "$tmp/port" ] && break
	sleep 0.1
done
[ -s "$tmp/port" ] || fail "the server did not start"
wait_socket "$spid"
mkfifo "$tmp/loadctl"
"$load" --port-file "$tmp/port" --connections 16 --threads 2 --duration 0 \
	--json "$tmp/report.json" <"$tmp/loadctl" >"$tmp/load.log" 2>&1 &
lpid=$!
bp_pids+=("$lpid")
exec 3>"$tmp/loadctl"
mark() { echo "mark $1" >&3; }
# The phase "before" must read long values: kvload stores every key first
# (a fraction of a second natively, seconds in the aarch64 VM).
wait_log "$tmp/load.log" 'keys stored in' 60
sleep 0.5
mark before
sleep 1
mark patching
rwrun patch "$spid" "$first" --timeout 30
expect_rc 0 "rewire patch $first_name.so"
echo "  $out"
mark patched
sleep 1.5
mark reverting
rwrun unpatch "$spid" "$first_name" --timeout 30
expect_rc 0 "rewire unpatch $first_name"
mark reverted
if [ -n "$cmake_patch" ] && [ -f "$cmake_patch" ]; then
	sleep 1
	mark patching2
	rwrun patch "$spid" "$cmake_patch" --timeout 30
	expect_rc 0 "rewire patch fix_value_diff.so (rewire_build_patch)"
	echo "  $out"
	mark patched2
	sleep 1.5
	mark reverting2
	rwrun unpatch "$spid" fix_value_diff --timeout 30
	expect_rc 0 "rewire unpatch fix_value_diff"
	mark reverted2
fi
sleep 1
echo stop >&3
exec 3>&-
set +e
wait "$lpid"
lst=$?
set -e
kill -TERM "$spid"
wait "$spid" 2>/dev/null || true
cat "$tmp/load.log"
[ "$lst" -eq 0 ] || fail "rw-kvload saw failed requests (status $lst)"
python3 - "$tmp/report.json" <<'PY' || fail "the patch did not fix the replies"
import json, sys
d = json.load(open(sys.argv[1]))
ph = {p["label"]: p for p in d["phases"]}
bad = []
for p in d["phases"]:
    if p["errors"]:
        bad.append(f"{p['label']}: {p['errors']} failed requests")
# A phase that must have no wrong reply is stable: the transitions (the
# patch command, the unpatch command) are phases of their own.
want = ["start", "before", "patching", "patched", "reverting", "reverted"]
if "patching2" in ph:
    want += ["patching2", "patched2", "reverting2", "reverted2"]
labels = [p["label"] for p in d["phases"]]
if labels != want:
    bad.append(f"phases {labels}, expected {want}")
checks = [("before", "some"), ("patched", "none"), ("reverted", "some")]
if "patched2" in ph:
    checks += [("patched2", "none"), ("reverted2", "some")]
for label, want in checks:
    w = ph[label]["wrong"]
    if ph[label]["requests"] == 0:
        bad.append(f"{label}: no requests")
    if (want == "none") != (w == 0):
        bad.append(f"{label}: {w} wrong replies, expected {want}")
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
echo PASS
