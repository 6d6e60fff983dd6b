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
t0=$SECONDS
memcached_build "$REWIRE_BUILD_DIR/thirdparty/memcached"
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
echo PASS
