#!/usr/bin/env bash
# memcached for the aarch64 VM, built on the host (a host_compile test of
# cross builds only: scripts/aarch64/test.sh runs those before the VM
# boots). Debian's source package, its own ./configure --host and make,
# REWIRE_CC and the target's dpkg-buildflags flags (memcached_build.sh,
# "Cross"): the guest then runs test_memcached_ftrace on that binary
# instead of skipping, and compiles nothing. Checks that the binary is for
# the target and that process_command_ascii begins with BTI C and the two
# NOPs of the aarch64 patchable entry. Skips (77) as memcached_build does
# (no network, no source package, no libevent for the target).
#
# Then, as test_bp_kv's patch is made at build time: `rewire build-patch`
# (the target's, under user-mode qemu: REWIRE_CROSS_RUN) makes
# mc_version.so from tests/buildpatch/memcached/version.diff with the
# compile_commands.json that bear recorded, and its report is checked
# against memcached/version.expect here; test_bp_memcached applies it
# under load in the VM, where compiling proto_text.c twice would take
# minutes. Without bear or the emulator, that part is left out (said).
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"

skip() {
	echo "SKIP: $*"
	exit 77
}
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
[ -z "${REWIRE_SANITIZE:-}" ] ||
	skip "memcached is not built with the sanitizer of this build"
host=$("${REWIRE_CC:?set by CTest}" -dumpmachine)
# shellcheck source=memcached_build.sh
source "$(dirname "$0")/memcached_build.sh"
top=$REWIRE_BUILD_DIR/thirdparty/memcached
t0=$SECONDS
cc_opt=()
if command -v bear >/dev/null && [ -n "${REWIRE_CROSS_RUN:-}" ]; then
	cc_opt=(--compile-commands)
fi
memcached_build "$top" "${cc_opt[@]}"
echo "memcached for $host: $mc ($((SECONDS - t0)) s)"

objdump=$host-objdump
command -v "$objdump" >/dev/null || skip "$objdump is missing"
"$objdump" -f "$mc" | grep -q "architecture: ${host%%-*}" ||
	fail "$mc is not for $host: $("$objdump" -f "$mc")"
case $host in
aarch64*)
	entry=$("$objdump" -d "$mc" |
		awk '/<process_command_ascii>:/ { n = 3; next }
		     n > 0 { printf "%s ", $2; n-- }')
	[ "$entry" = "d503245f d503201f d503201f " ] ||
		fail "process_command_ascii does not begin with BTI C and two NOPs: $entry"
	echo "process_command_ascii: bti c; nop; nop"
	;;
esac

if [ ${#cc_opt[@]} -eq 0 ]; then
	echo "no bear or no REWIRE_CROSS_RUN: mc_version.so not made (test_bp_memcached will skip in the VM)"
	echo PASS
	exit 0
fi
bp_src=$(cd "$(dirname "$0")/../buildpatch" && pwd)
read -ra run <<<"$REWIRE_CROSS_RUN"
rm -f "$top/mc_version.so"
t0=$SECONDS
set +e
"${run[@]}" "$REWIRE_BUILD_DIR/tools/rewire" build-patch --json \
	-c "$mc_build" -s "$mc_src" -d "$bp_src/memcached/version.diff" \
	--object "$mc" --name mc_version -o "$top/mc_version.so.new" \
	>"$top/bp.json" 2>"$top/bp.err"
rc=$?
set -e
echo "rewire build-patch (under ${run[*]: -1}): exit $rc, $((SECONDS - t0)) s"
python3 "$bp_src/check_report.py" "$bp_src/memcached/version.expect" \
	"$top/bp.json" "$rc" "$top/mc_version.so.new" || {
	tail -20 "$top/bp.err"
	fail "the report is not what memcached/version.expect says"
}
mv "$top/mc_version.so.new" "$top/mc_version.so"
echo "mc_version.so: for test_bp_memcached in the VM"
echo PASS
