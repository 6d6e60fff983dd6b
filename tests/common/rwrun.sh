# shellcheck shell=bash disable=SC2034,SC2154
# Sourced by the shell tests' own helper files (tests/integration/cli/common.sh,
# tests/buildpatch/lib.sh): the rewire command under a timeout, so that a
# hang fails the test instead of blocking CI, and checks of its exit code
# and output, and what a failing test prints. They use the sourcing file's
# rw (the rewire command), tmp (a scratch directory) and fail, and these of
# its variables:
#
#   rwrun_timeout     rwrun's timeout in seconds when RW_TIMEOUT is not set
#                     (default 60)
#   wait_log_pidvar   the name of a variable holding the pid of the program
#                     that writes the logs (may be empty): wait_log fails as
#                     soon as that program has exited (default: none)
#
#   rwrun [ARGS...]        run the rewire command; sets rc, out, err and
#                          last_cmd (its arguments)
#   expect_rc N WHAT       rc must be N
#   expect_out RE WHAT     stdout must match the extended regex RE
#   expect_err RE WHAT     stderr must match RE
#   step WHAT              print a heading "== WHAT (at N s)", N the
#                          script's SECONDS
# Every bound in seconds here (and in the scripts that source this) is
# multiplied by REWIRE_TEST_TIME_SCALE (default 1; 4 in the emulated
# aarch64 VM: scripts/aarch64/guest-suite.sh): rw_scale S.
#
#   wait_log FILE RE [S]   wait up to S seconds (default 20) for a line
#   wait_socket PID [S]    wait up to S seconds (default 20) for PID's
#                          control socket in REWIRE_CTL_DIR
#   fail_report N FILE...  for fail: the last rewire command, its exit
#                          code, output and errors, and the last N lines of
#                          each FILE that exists

# step WHAT: a heading, with the seconds since the script started (where
# an emulated or loaded run spends its time).
step() {
	echo "== $* (at ${SECONDS} s)"
}

# rw_slurp VAR FILE: FILE's text in VAR without its trailing newlines, as
# $(cat FILE) gives it, with no process started (each costs a tenth of a
# second or more in the emulated aarch64 VM).
rw_slurp() {
	local -n rw_slurp_v=$1
	rw_slurp_v=
	IFS= read -r -d '' rw_slurp_v <"$2" || true
	while [[ $rw_slurp_v == *$'\n' ]]; do
		rw_slurp_v=${rw_slurp_v%$'\n'}
	done
}

rw_scale() {
	echo $(($1 * ${REWIRE_TEST_TIME_SCALE:-1}))
}

rwrun() {
	local secs
	secs=$(rw_scale "${RW_TIMEOUT:-${rwrun_timeout:-60}}")
	last_cmd="$*"
	set +e
	timeout -k 5 "$secs" "$rw" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	set -e
	rw_slurp out "$tmp/out"
	rw_slurp err "$tmp/err"
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		fail "rewire $* did not finish within $secs s"
	fi
}

expect_rc() {
	[ "$rc" -eq "$1" ] || fail "$2: exit code $rc, expected $1"
}

expect_out() {
	grep -Eq -- "$1" <<<"$out" || fail "$2: stdout does not match '$1'"
}

expect_err() {
	grep -Eq -- "$1" <<<"$err" || fail "$2: stderr does not match '$1'"
}

wait_log() {
	local file=$1 re=$2 secs pid='' i
	secs=$(rw_scale "${3:-20}")
	if [ -n "${wait_log_pidvar:-}" ]; then
		pid=${!wait_log_pidvar:-}
	fi
	for ((i = 0; i < secs * 20; i++)); do
		if grep -Eq -- "$re" "$file" 2>/dev/null; then
			return 0
		fi
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			fail "the program exited while waiting for '$re' in $file"
		fi
		sleep 0.05
	done
	fail "no line matching '$re' in $file within $secs s"
}

wait_socket() {
	local pid=$1 secs i
	secs=$(rw_scale "${2:-20}")
	for ((i = 0; i < secs * 20; i++)); do
		if [ -S "$REWIRE_CTL_DIR/$pid.sock" ]; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			fail "process $pid exited before its control socket appeared"
		fi
		sleep 0.05
	done
	fail "no control socket $REWIRE_CTL_DIR/$pid.sock after $secs s"
}

fail_report() {
	local lines=$1 f
	shift
	echo "--- last rewire command: rewire ${last_cmd:-} (rc=${rc:-?})"
	echo "--- stdout:"
	tail -40 "$tmp/out" 2>/dev/null || true
	echo "--- stderr:"
	tail -40 "$tmp/err" 2>/dev/null || true
	for f in "$@"; do
		[ -f "$f" ] || continue
		echo "--- $f:"
		tail -"$lines" "$f"
	done
}
