# shellcheck shell=bash disable=SC2034,SC2119
# Sourced by tests/integration/test_cli_*.sh: paths, a private control
# directory, the target process, and checks of the rewire command's exit
# code and output. Every command runs under a timeout, so that a hang fails
# the test instead of blocking CI.
#
#   rwrun [ARGS...]        run the rewire command; sets rc, out, err
#   expect_rc N WHAT       rc must be N
#   expect_out RE WHAT     stdout must match the extended regex RE
#   expect_err RE WHAT     stderr must match RE
#   start_target [ARGS]    start cli_target with REWIRE_CTL=1; sets tpid,
#                          tlog (its stdout), terr (its stderr); waits until
#                          its socket exists and it printed "ready"
#   wait_log FILE RE [S]   wait up to S seconds (default 20) for a line
#   wait_exit PID [S]      wait for a background job; sets rc (fails on a
#                          hang)
#   json EXPR              python3 on stdout as `d`: prints EXPR (skips
#                          the check with a note when python3 is missing)
#   json_start             one python3 for the test's json calls
#
# rwrun, expect_*, wait_log (and wait_socket, fail_report) are in
# tests/common/rwrun.sh, shared with tests/buildpatch/lib.sh.
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"

rw=${REWIRE_TOOL:-$REWIRE_BUILD_DIR/tools/rewire}
target=${CLI_TARGET:-$REWIRE_BUILD_DIR/tests/cli/cli_target}
patchdir=${CLI_PATCH_DIR:-$REWIRE_BUILD_DIR/tests/cli}
peer=${CLI_PEER:-$REWIRE_BUILD_DIR/tests/cli/cli_peer_connect}
backend=${CLI_BACKEND:-x86_64}

if [ ! -x "$rw" ]; then
	echo "SKIP: $rw not built"
	exit 77
fi
if [ ! -x "$target" ]; then
	echo "SKIP: $target not built"
	exit 77
fi

tmp=$(mktemp -d /tmp/rwcli.XXXXXX)
export REWIRE_CTL_DIR=$tmp/ctl
unset REWIRE_CTL REWIRE_LIB
# A sanitized target under `rewire run`: librewire is preloaded before
# the sanitizer's runtime.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
bg_pids=()
ntarget=0
have_python=0
if command -v python3 >/dev/null 2>&1; then
	have_python=1
fi
# (For shellcheck: from here, or from the test_cli_*.sh one level up.)
# shellcheck source-path=SCRIPTDIR/../../common source-path=SCRIPTDIR/../common
# shellcheck source=rwrun.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../common/rwrun.sh"

cli_cleanup() {
	local p
	# Quietly: bash reports a killed job when it reaps it.
	{
		for p in "${bg_pids[@]}"; do
			kill -9 "$p" || true
			wait "$p" || true
		done
	} 2>/dev/null
	rm -rf "$tmp"
}
trap cli_cleanup EXIT

fail() {
	echo "FAIL: $*"
	fail_report 40 "$tmp"/bg.err "$tmp"/target.*
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

# The last value printed by the target for NAME (verbose, value, ...).
last_value() {
	grep -E "^$1=" "$tlog" | tail -n 1 | cut -d= -f2
}

wait_value() {
	local name=$1 want=$2 secs i
	secs=$(rw_scale "${3:-20}")
	for ((i = 0; i < secs * 20; i++)); do
		if [ "$(last_value "$name")" = "$want" ]; then
			return 0
		fi
		sleep 0.05
	done
	fail "the target's $name is $(last_value "$name"), not $want, after $secs s"
}

# A target's lifetime only bounds an orphan (the test kills its targets on
# exit): long enough for the slowest run (the emulated aarch64 machine ran
# test_cli_filter for 275 s).
start_target() {
	ntarget=$((ntarget + 1))
	tlog=$tmp/target.$ntarget.out
	terr=$tmp/target.$ntarget.err
	REWIRE_CTL=1 "$target" --lifetime 900 "$@" >"$tlog" 2>"$terr" &
	tpid=$!
	bg_pids+=("$tpid")
	wait_socket "$tpid"
	wait_log "$tlog" '^ready'
}

kill_target() {
	{
		kill -9 "$1" || true
		wait "$1" || true
	} 2>/dev/null
}

# rw_bg OUT ARGS...: the rewire command in the background, its stdout in
# OUT and its stderr in $tmp/bg.err; its pid in $bg_pid.
rw_bg() {
	local out=$1
	shift
	# Emptied here, not by the background shell's redirections: those
	# may run after the caller already looks for the new command's
	# first lines, and find the previous command's.
	: >"$out"
	: >"$tmp/bg.err"
	"$rw" "$@" >>"$out" 2>>"$tmp/bg.err" &
	bg_pid=$!
	bg_pids+=("$bg_pid")
}

# rw_bg_end [SECS]: wait until it exits: its status in $rc, its stderr in
# $err.
rw_bg_end() {
	wait_exit "$bg_pid" "${1:-30}"
	rw_slurp err "$tmp/bg.err"
}

wait_exit() {
	local pid=$1 secs i
	secs=$(rw_scale "${2:-30}")
	for ((i = 0; i < secs * 20; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			set +e
			wait "$pid"
			rc=$?
			set -e
			return 0
		fi
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null || true
	fail "background rewire (pid $pid) did not finish within $secs s"
}

# One python3 answers the json calls of a test (a coprocess, json_start):
# in the emulated aarch64 machine each start of python3 took 1.6 s. A
# request is a line "E D", then E bytes of EXPR and D bytes of the
# document; the answer is print(EXPR)'s lines (or an error line), then
# the end mark. Started in a command substitution, the coprocess ends
# with it (its input closes): json_start in the test's own shell keeps
# one for the whole test, as expect_json does.
json_mark=__rw_json_end__
json_start() {
	[ "$have_python" -eq 1 ] || return 0
	if [ -n "${JSONQ_PID:-}" ] && kill -0 "$JSONQ_PID" 2>/dev/null; then
		return 0
	fi
	coproc JSONQ {
		exec python3 -S -c 'import json, sys
i, o = sys.stdin.buffer, sys.stdout
for head in iter(i.readline, b""):
    ne, nd = map(int, head.split())
    expr, doc = i.read(ne).decode(), i.read(nd).decode()
    try:
        exec("print(%s)" % expr, {"json": json, "d": json.loads(doc)})
    except Exception as e:
        print("__rw_json_error__ %s: %s" % (type(e).__name__, e))
    print("'"$json_mark"'")
    o.flush()'
	}
}

json() {
	local LC_ALL=C line= answer= err=
	if [ "$have_python" -eq 0 ]; then
		echo "(python3 missing: JSON check '$1' skipped)" >&2
		echo "__nopython__"
		return 0
	fi
	json_start
	printf '%d %d\n%s%s' "${#1}" "${#out}" "$1" "$out" >&"${JSONQ[1]}" ||
		fail "JSON check '$1': python3 is gone"
	while IFS= read -r line <&"${JSONQ[0]}"; do
		[ "$line" != "$json_mark" ] || break
		case $line in
		__rw_json_error__*) err=${line#__rw_json_error__ } ;;
		*) answer+=${answer:+$'\n'}$line ;;
		esac
	done
	[ "$line" = "$json_mark" ] || fail "JSON check '$1': python3 is gone"
	[ -z "$err" ] || fail "JSON check '$1' ($err) on: $out"
	printf '%s\n' "$answer"
}

expect_json() {
	local got
	json_start
	got=$(json "$1")
	[ "$got" = "__nopython__" ] || [ "$got" = "$2" ] ||
		fail "JSON: $1 is '$got', expected '$2'"
}

# A pid that is not in use: a child that exited and was reaped.
dead_pid() {
	sh -c 'exit 0' &
	local p=$!
	wait "$p" || true
	echo "$p"
}
