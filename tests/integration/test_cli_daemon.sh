#!/usr/bin/env bash
# Programs that fork, started with `rewire run` (issue 12, point 18). The
# control server follows fork() when it was started by REWIRE_CTL=1:
# - daemon(3) (fork, the parent leaves with _exit, the child serves): the
#   child is controllable (`rewire ls CHILD`), no socket remains for the
#   parent, `rewire ps` lists only live processes, and the child's
#   threads are the program's main thread and rewire's (rewire-ctl,
#   rewire-rcu), none other under the program's name;
# - a double fork with setsid (both parents leave with _exit): the
#   grandchild is controllable, `rewire ps` lists no process that is gone;
# - a program that forks a worker and goes on: both are controllable;
# - a server started as root that drops to nobody (memcached -u): its
#   socket stays in root's directory, where the command finds it (issue
#   12, point 17); run with the default directories (REWIRE_CTL_DIR
#   empty), as root only.
# shellcheck source=cli/common.sh disable=SC2119
source "$(dirname "$0")/cli/common.sh"

# The control server follows fork() by starting its thread in the child,
# which ThreadSanitizer refuses after a multithreaded fork ("starting new
# threads after multi-threaded fork is not supported").
case "${REWIRE_SANITIZE:-}" in
*thread*)
	echo "SKIP: TSan does not support threads started in a fork child"
	exit 77
	;;
esac

daemon=${CLI_DAEMON_TARGET:-$REWIRE_BUILD_DIR/tests/cli/cli_daemon_target}
[ -x "$daemon" ] || fail "$daemon not built"
mkdir -m 700 "$REWIRE_CTL_DIR"

# pids_of FILE: waits for FILE, sets parent, server and middle from it.
pids_of() {
	local file=$1 i
	for ((i = 0; i < 400; i++)); do
		[ -s "$file" ] && break
		sleep 0.05
	done
	[ -s "$file" ] || fail "$file not written"
	parent=$(sed -n 's/.*parent=\([0-9]*\).*/\1/p' "$file")
	server=$(sed -n 's/.*server=\([0-9]*\).*/\1/p' "$file")
	middle=$(sed -n 's/.*middle=\([0-9]*\).*/\1/p' "$file")
	bg_pids+=("$server")
}

# gone_socket PID: the socket of PID disappears within 5 s.
gone_socket() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ -e "$REWIRE_CTL_DIR/$1.sock" ] || return 0
		sleep 0.05
	done
	fail "the socket of process $1 (exited) is still there: $(ls "$REWIRE_CTL_DIR")"
}

# ps_only_live: `rewire ps` lists no process that is gone. A process of
# another test may exit between the listing and the check: one found gone
# must still be listed by a second ps to fail.
ps_only_live() {
	local p first
	rwrun ps
	expect_rc 0 "ps"
	echo "$out"
	first=$out
	while read -r p; do
		kill -0 "$p" 2>/dev/null && continue
		rwrun ps
		if grep -qx "$p" <<<"$(awk 'NR > 1 { print $1 }' <<<"$out")"; then
			fail "ps lists process $p, which is gone"
		fi
	done < <(awk 'NR > 1 { print $1 }' <<<"$first")
	out=$first
}

step "daemon(3)"
rwrun run -- "$daemon" daemon "$tmp/daemon.pids"
expect_rc 0 "run daemon"
pids_of "$tmp/daemon.pids"
echo "parent $parent, daemon $server"
wait_socket "$server"
rwrun ls "$server"
expect_rc 0 "ls of the daemon"
rwrun ls "$server" --threads
expect_rc 0 "ls --threads of the daemon"
echo "$out"
expect_out "^[0-9]+ +rewire-ctl " "the daemon's control thread"
expect_out "^[0-9]+ +rewire-rcu " "liburcu's thread named as rewire's"
n=$(grep -Ec "^[0-9]+ +cli_daemon_targ" <<<"$out" || true)
[ "$n" -eq 1 ] || fail "$n threads under the program's name (only its main thread should be)"
gone_socket "$parent"
ps_only_live
expect_out "^$server +- +[^ ]+ +ok " "ps lists the daemon"

step "a double fork"
rwrun run -- "$daemon" double "$tmp/double.pids"
expect_rc 0 "run double"
pids_of "$tmp/double.pids"
echo "parent $parent, middle $middle, daemon $server"
wait_socket "$server"
rwrun ls "$server"
expect_rc 0 "ls of the double-forked daemon"
gone_socket "$middle"
ps_only_live
expect_out "^$server +- +[^ ]+ +ok " "ps lists the double-forked daemon"

step "a worker"
"$rw" run -- "$daemon" worker "$tmp/worker.pids" >/dev/null 2>"$tmp/worker.err" &
bg_pids+=("$!")
pids_of "$tmp/worker.pids"
echo "parent $parent, worker $server"
wait_socket "$parent"
wait_socket "$server"
rwrun ls "$parent"
expect_rc 0 "ls of the parent"
rwrun ls "$server"
expect_rc 0 "ls of the worker"

kill_target "$parent"
rwrun ps
expect_rc 0 "ps after the parent was killed"
if grep -Eq "^$parent " <<<"$out"; then
	fail "ps lists the killed parent"
fi

step "a daemon that drops privileges"
if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: needs root"
else
	# The pid file's directory must be writable by nobody.
	chmod 1777 "$tmp"
	REWIRE_CTL_DIR= "$rw" run -- "$daemon" drop "$tmp/drop.pids" \
		>/dev/null 2>"$tmp/drop.err" &
	bg_pids+=("$!")
	pids_of "$tmp/drop.pids"
	[ "$(awk '/^Uid:/ { print $3 }' "/proc/$server/status")" = 65534 ] ||
		fail "process $server did not drop to uid 65534"
	drop_sock=$(REWIRE_CTL_DIR= "$rw" ps --json |
		grep -o "\"socket\": *\"[^\"]*/$server.sock\"" |
		sed 's/.*: *"//; s/"$//' || true)
	REWIRE_CTL_DIR= rwrun ls "$server" --threads
	expect_rc 0 "ls of the daemon that dropped privileges"
	expect_out "^[0-9]+ +rewire-ctl " "its control thread"
	REWIRE_CTL_DIR= rwrun key "$server" no_such_key on
	expect_rc 1 "key of the daemon that dropped privileges (reached it)"
	kill_target "$server"
	# Its server, now nobody, cannot remove its socket from root's 0700
	# directory: ps --clean (root) does.
	REWIRE_CTL_DIR= rwrun ps --clean
	expect_rc 0 "ps --clean"
	[ -z "$drop_sock" ] || [ ! -e "$drop_sock" ] ||
		fail "the stale socket $drop_sock is still there"
fi

echo "PASS"
