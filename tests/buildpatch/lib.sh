# shellcheck shell=bash disable=SC2034
# Sourced by the tests of `rewire build-patch` (tests/buildpatch/*.sh): the
# paths, a scratch directory removed at exit, the processes started (killed
# at exit), and helpers. Every rewire command runs under a timeout.
#
#   bp_flags DIR             CFLAGS, CXXFLAGS, CPPFLAGS, LDFLAGS: Debian's
#                            (hardening=+all, -fcf-protection) plus
#                            -fpatchable-function-entry=5, for a package
#                            whose source is DIR (-ffile-prefix-map=DIR=.)
#   rwrun ARGS...            the rewire command; sets rc, out, err
#   expect_rc N WHAT, expect_err RE WHAT, expect_out RE WHAT
#   start_bpt PROG ARGS...   PROG (bpt, bptxx) under `rewire run`; sets
#                            bpid, blog; waits for "ready"
#   bpt_phase N              SIGUSR1 to bpid, wait for "phase N"
#   bpt_end                  the last SIGUSR1: waits for its exit, checks
#                            its status and "PASS"
#
# rwrun, expect_*, wait_log (and wait_socket, fail_report) are in
# tests/common/rwrun.sh, shared with tests/integration/cli/common.sh.
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"
: "${REWIRE_SOURCE_DIR:?set by CTest}"

bp_src=$REWIRE_SOURCE_DIR/tests/buildpatch
rw=${REWIRE_TOOL:-$REWIRE_BUILD_DIR/tools/rewire}
# The corpus as tests/buildpatch/build_corpus.sh builds it (the fixture).
tree=$REWIRE_BUILD_DIR/tests/buildpatch/tree

skip() {
	echo "SKIP: $*"
	exit 77
}

[ -x "$rw" ] || skip "$rw is not built"

tmp=$(mktemp -d /tmp/rewire-bp.XXXXXX)
chmod 755 "$tmp"
export REWIRE_CTL_DIR=$tmp/ctl
mkdir -m 700 "$REWIRE_CTL_DIR"
unset REWIRE_CTL REWIRE_LIB
bp_pids=()
# A build-patch may take a while on a loaded machine; wait_log gives up as
# soon as the program under test (start_bpt) exits.
rwrun_timeout=120
# In the aarch64 VM (scripts/aarch64/vm.sh) the compiler runs emulated,
# 10-30 times slower.
if [ -n "${REWIRE_AARCH64_VM:-}" ]; then
	rwrun_timeout=400
fi
wait_log_pidvar=bpid
# shellcheck source=../common/rwrun.sh
source "$REWIRE_SOURCE_DIR/tests/common/rwrun.sh"

bp_cleanup() {
	local p
	{
		for p in "${bp_pids[@]}"; do
			kill -9 "$p" || true
			wait "$p" || true
		done
	} 2>/dev/null
	if [ -n "${BP_KEEP:-}" ]; then
		echo "files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap bp_cleanup EXIT

fail() {
	echo "FAIL: $*"
	fail_report 30 "$tmp"/*.log
	exit 1
}

# Live patching needs a code-patching backend (x86_64, aarch64), and a
# program that is not built with the sanitizer cannot preload an
# instrumented librewire. (The corpus tests that call it are x86-64's and
# labelled not_aarch64 there: buildpatch.cmake.)
live_ok() {
	grep -Eq "^#define RW_BACKEND_(X86_64|AARCH64)" \
		"$REWIRE_BUILD_DIR/include/rewire/config.h" &&
		[ -z "${REWIRE_SANITIZE:-}" ]
}

# Debian's flags, as its packages get them with hardening=+all (and the
# -fcf-protection newer releases add by default), plus the flag rewire
# documents.
bp_flags() {
	local pe="-fpatchable-function-entry=5" dir=$1

	export DEB_BUILD_MAINT_OPTIONS=hardening=+all
	if command -v dpkg-buildflags >/dev/null; then
		# As in a package build: run from the source tree.
		CFLAGS="$(cd "$dir" && dpkg-buildflags --get CFLAGS) -fcf-protection $pe"
		CXXFLAGS="$(cd "$dir" && dpkg-buildflags --get CXXFLAGS) -fcf-protection $pe"
		CPPFLAGS=$(cd "$dir" && dpkg-buildflags --get CPPFLAGS)
		LDFLAGS=$(cd "$dir" && dpkg-buildflags --get LDFLAGS)
	else
		CFLAGS="-g -O2 -fstack-protector-strong -fcf-protection $pe"
		CXXFLAGS=$CFLAGS
		CPPFLAGS="-D_FORTIFY_SOURCE=2"
		LDFLAGS="-Wl,-z,relro -Wl,-z,now"
	fi
	unset DEB_BUILD_MAINT_OPTIONS
}

# The build-id of an ELF file, in hex.
build_id() {
	readelf -n "$1" | awk '/Build ID:/ { print $3; exit }'
}

nstart=0
start_bpt() {
	local prog=$1
	shift
	nstart=$((nstart + 1))
	blog=$tmp/bpt.$nstart.log
	"$rw" run -- "$prog" --lifetime 100 "$@" >"$blog" 2>&1 &
	bpid=$!
	bp_pids+=("$bpid")
	wait_socket "$bpid"
	wait_log "$blog" '^ready$'
}

bpt_phase() {
	kill -USR1 "$bpid"
	wait_log "$blog" "^phase $1\$"
}

bpt_end() {
	local i st
	kill -USR1 "$bpid"
	for ((i = 0; i < 600; i++)); do
		kill -0 "$bpid" 2>/dev/null || break
		sleep 0.05
	done
	set +e
	wait "$bpid"
	st=$?
	set -e
	bpid=
	grep -E '^(probe|short|FAIL|PASS)' "$blog" | sed 's/^/  /'
	[ "$st" -eq 0 ] && grep -q '^PASS$' "$blog" ||
		fail "the program's oracle failed (status $st): $(grep -E 'FAIL|VIOLATION' "$blog" | head -5)"
}
