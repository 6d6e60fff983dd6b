#!/usr/bin/env bash
# Processes in other namespaces (containers), found and controlled from the
# host, and `rewire ps` (issue 16, points 4 and 5). Needs root (unshare,
# another user): skipped otherwise, or when unshare cannot make namespaces.
#   1. a target started by `unshare --pid --mount --fork --mount-proc` with
#      its own /tmp (its socket is /tmp/rewire-0/1.sock in there): `rewire
#      ps` lists it with its host pid and its own pid 1; ls, key, trace and
#      patch reach it by the host pid; ps shows the patch applied, the
#      trace running and the key changed from its default, in text and
#      JSON;
#   2. a socket planted in a container's directory by another user (the
#      directory is theirs), or in a directory others may write to, is
#      refused, and the server there receives nothing;
#   3. the same user as a containerized target (uid 65534, not root)
#      finds and controls it; that user's ps lists root's processes as
#      denied and never connects to them.
# shellcheck source=cli/common.sh disable=SC2119
source "$(dirname "$0")/cli/common.sh"

if [ "$(id -u)" -ne 0 ]; then
	skip "needs root (unshare, another user)"
fi
command -v unshare >/dev/null || skip "unshare not found"
command -v setpriv >/dev/null || skip "setpriv not found"
# A container's own /tmp hides the host's: the directories of the test
# that lie under /tmp (the build tree of a checkout in /tmp, $tmp) are
# bound back into it, through the old /tmp kept aside on a tmpfs at /mnt
# (all of it in the container's own mount namespace).
keep=()
for d in "$REWIRE_BUILD_DIR" "${REWIRE_SOURCE_DIR:-}" "$tmp"; do
	[ -n "$d" ] || continue
	d=$(realpath -m "$d")
	case $d in /tmp/?*) keep+=("$d") ;; esac
done
# shellcheck disable=SC2016
own_tmp='mount -t tmpfs tmpfs /mnt && mkdir /mnt/host-tmp &&
	mount --rbind /tmp /mnt/host-tmp && mount -t tmpfs tmpfs /tmp &&
	IFS="
" && for d in $RW_KEEP; do
		mkdir -p "$d" && mount --rbind "/mnt/host-tmp/${d#/tmp/}" "$d" ||
			exit 1
	done && unset IFS'
RW_KEEP=$(printf '%s\n' "${keep[@]}")
export RW_KEEP
[ -d /mnt ] || skip "no /mnt to keep the host's /tmp aside in a container"
if ! unshare --pid --mount --fork --mount-proc \
	sh -c "$own_tmp" 2>"$tmp/unshare.err"; then
	skip "unshare cannot make pid and mount namespaces: $(cat "$tmp/unshare.err")"
fi
fake=${CLI_FAKE_SERVER:-$REWIRE_BUILD_DIR/tests/cli/cli_fake_server}
[ -x "$fake" ] || fail "$fake not built"
nobody=65534
as_nobody=(setpriv "--reuid=$nobody" "--regid=$nobody" --clear-groups)
# Everything the other user runs or writes is in $tmp.
chmod 711 "$tmp"

# container USER LOG CMD...: CMD in new pid and mount namespaces with its
# own /tmp, as USER (root, or a uid for setpriv); the host pid of its pid 1
# (CMD) in $cpid once CMD runs (its comm is no longer sh's or setpriv's).
container() {
	local user=$1 log=$2 i upid comm
	shift 2
	local run=()
	[ "$user" = root ] || run=(setpriv "--reuid=$user" "--regid=$user" --clear-groups)
	# shellcheck disable=SC2016
	env -u REWIRE_CTL_DIR unshare --pid --mount --fork --mount-proc sh -c \
		"$own_tmp"' && exec "$@"' sh "${run[@]}" "$@" \
		>"$log" 2>"$log.err" &
	upid=$!
	bg_pids+=("$upid")
	cpid=
	for ((i = 0; i < 400; i++)); do
		if [ -z "$cpid" ] && [ -r "/proc/$upid/task/$upid/children" ]; then
			cpid=$(awk '{ print $1 }' "/proc/$upid/task/$upid/children")
		fi
		if [ -n "$cpid" ]; then
			comm=$(cat "/proc/$cpid/comm" 2>/dev/null || true)
			case $comm in
			sh | setpriv | rewire | "") ;;
			*)
				bg_pids+=("$cpid")
				return 0
				;;
			esac
		fi
		kill -0 "$upid" 2>/dev/null || fail "the container exited: $(cat "$log.err")"
		sleep 0.05
	done
	fail "the container's command did not start: $(cat "$log.err")"
}

# The socket directory of uid $1 in a container: /tmp/rewire-UID unless
# /run/user/UID is a directory of that user (shared with the host here).
ctl_dir() {
	if [ -d "/run/user/$1" ] && [ "$(stat -c %u "/run/user/$1")" = "$1" ]; then
		echo "/run/user/$1/rewire"
	else
		echo "/tmp/rewire-$1"
	fi
}

step "1. a target in its own pid and mount namespaces"
tlog=$tmp/ctr.out
container root "$tlog" "$rw" run -- "$target" --lifetime 900
hpid=$cpid
wait_log "$tlog" '^ready pid=1$'
echo "host pid $hpid, its own pid 1"
cdir=$(ctl_dir 0)
[ -S "/proc/$hpid/root$cdir/1.sock" ] ||
	fail "no socket $cdir/1.sock in the container"
if [ -e "$cdir/$hpid.sock" ] || [ -e "$REWIRE_CTL_DIR/$hpid.sock" ]; then
	fail "a socket of the container's process on the host"
fi

rwrun ls "$hpid" --keys
expect_rc 0 "ls of the container's process by its host pid"
expect_out "^cli_verbose +off " "ls of the container's process"
rwrun key "$hpid" cli_verbose on
expect_rc 0 "key in the container"
wait_value verbose 1
rwrun ps
expect_rc 0 "ps"
echo "$out"
expect_out "^$hpid +1 +root +ok +cli-target +/proc/$hpid/root +- +- +cli_verbose=on " \
	"ps lists the container's process (host pid, its pid, container, key)"

step "trace and patch in the container"
rw_bg "$tmp/trace.out" trace "$hpid" cli_tick
wait_log "$tmp/trace.out" "cli_tick"
if [ "$backend" = x86_64 ]; then
	rwrun patch "$hpid" "$patchdir/cli_fix.so"
	expect_rc 0 "patch in the container"
	wait_value compute 42
	want_patch='cli_fix\[enabled\]'
else
	want_patch='-'
fi
rwrun ps
expect_rc 0 "ps while tracing"
echo "$out"
expect_out "^$hpid +1 +root +ok +cli-target +[^ ]+ +$want_patch +1:trace +cli_verbose=on " \
	"ps shows the patch, the trace and the key"
rwrun ps --json
expect_rc 0 "ps --json"
expect_json "[(p['nspid'], p['other_ns'], p['status'], p['root'], p['socket_dir']) for p in d['processes'] if p['pid'] == $hpid]" \
	"[(1, True, 'ok', '/proc/$hpid/root', '$cdir')]"
expect_json "[[(k['name'], k['enabled'], k['default']) for k in p['keys_changed']] for p in d['processes'] if p['pid'] == $hpid]" \
	"[[('cli_verbose', True, False)]]"
expect_json "[[(t['kind'], t['tracepoints']) for t in p['traces']] for p in d['processes'] if p['pid'] == $hpid]" \
	"[[('trace', ['cli_tick'])]]"
if [ "$backend" = x86_64 ]; then
	expect_json "[[(q['name'], q['state']) for q in p['patches']] for p in d['processes'] if p['pid'] == $hpid]" \
		"[[('cli_fix', 'enabled')]]"
fi
kill -INT "$bg_pid"
rw_bg_end
expect_rc 0 "trace in the container ended by SIGINT"
rwrun ps
expect_out "^$hpid +1 +root +ok +cli-target +[^ ]+ +$want_patch +- +cli_verbose=on " \
	"ps after the trace ended"

step "2. sockets planted in a container's directory"
# The victim: pid 1 of a container without a control server; its
# environment names its socket directory, /tmp/ctl in there.
container root "$tmp/victim.out" env REWIRE_CTL_DIR=/tmp/ctl sleep 120
victim=$cpid
vroot=/proc/$victim/root
fake_start() {
	flog=$tmp/fake.$RANDOM.log
	: >"$flog"
	chmod 666 "$flog"
	"$fake" "$vroot/tmp/ctl/1.sock" "$1" "$flog" >"$tmp/fake.out" 2>&1 &
	fpid=$!
	bg_pids+=("$fpid")
	wait_log "$tmp/fake.out" '^ready'
}
attempt() {
	local what=$1 re=$2
	rwrun ls "$victim"
	echo "$what: rc $rc: $err"
	kill_target "$fpid"
	echo "--- the fake server's log:"
	cat "$flog"
	expect_rc 3 "$what"
	expect_err "$re" "$what"
	expect_err "Nothing was sent" "$what"
	if grep -q '^msg' "$flog" || grep -Eq '^bytes [1-9]' "$flog"; then
		fail "$what: the fake server received a request"
	fi
	rm -f "$vroot/tmp/ctl/1.sock"
}
mkdir -m 700 "$vroot/tmp/ctl"
chown "$nobody:$nobody" "$vroot/tmp/ctl"
fake_start "$nobody"
attempt "another user's directory in the container" \
	"refusing the control directory /tmp/ctl in the namespace of process $victim: it belongs to uid $nobody"
chown 0:0 "$vroot/tmp/ctl"
chmod 777 "$vroot/tmp/ctl"
fake_start -
attempt "a directory of mode 0777 in the container" \
	"refusing the control directory /tmp/ctl in the namespace of process $victim: its mode is 0777"
chmod 700 "$vroot/tmp/ctl"
# A link out of the container is not followed.
rmdir "$vroot/tmp/ctl"
mkdir -m 700 "$tmp/hostctl"
ln -s "$tmp/hostctl" "$vroot/tmp/ctl"
rwrun ls "$victim"
expect_rc 3 "a link as the container's directory"
expect_err "refusing the control directory /tmp/ctl in the namespace of process $victim: it is a symbolic link" \
	"a link as the container's directory"

step "3. the same user, not root"
container $nobody "$tmp/ctr2.out" "$rw" run -- "$target" --lifetime 900
npid=$cpid
wait_log "$tmp/ctr2.out" '^ready pid=1$'
[ "$(stat -c %u "/proc/$npid")" = $nobody ] || fail "the target does not run as $nobody"
# A server of root that must never be connected to by the other user: it
# answers for a process of root on the host.
sleep 120 &
rvictim=$!
bg_pids+=("$rvictim")
mkdir -m 700 "$tmp/rootctl"
flog=$tmp/rootfake.log
: >"$flog"
chmod 666 "$flog"
"$fake" "$tmp/rootctl/$rvictim.sock" - "$flog" >"$tmp/fake.out" 2>&1 &
fpid=$!
bg_pids+=("$fpid")
wait_log "$tmp/fake.out" '^ready'

out=$("${as_nobody[@]}" "$rw" ls "$npid" --keys 2>"$tmp/err") && rc=0 || rc=$?
err=$(cat "$tmp/err")
expect_rc 0 "ls of a container's process of the same user"
expect_out "^cli_verbose +off " "ls as the same user"
out=$("${as_nobody[@]}" "$rw" key "$npid" cli_verbose on 2>"$tmp/err") && rc=0 || rc=$?
err=$(cat "$tmp/err")
expect_rc 0 "key as the same user"
out=$("${as_nobody[@]}" "$rw" ps 2>"$tmp/err") && rc=0 || rc=$?
err=$(cat "$tmp/err")
echo "$out"
expect_rc 0 "ps as $nobody"
expect_out "^$npid +1 +nobody +ok +cli-target +[^ ]+ +- +- +cli_verbose=on " \
	"ps as the same user lists its container's process"
expect_out "^$hpid +1 +root +denied " "ps as $nobody: root's container process denied"
expect_out "^$rvictim +- +root +denied " "ps as $nobody: root's process denied"
out=$("${as_nobody[@]}" "$rw" ps --json 2>"$tmp/err") && rc=0 || rc=$?
expect_json "[p['status'] for p in d['processes'] if p['pid'] in ($hpid, $rvictim)]" \
	"['denied', 'denied']"
expect_json "[(p['nspid'], p['status'], p['other_ns']) for p in d['processes'] if p['pid'] == $npid]" \
	"[(1, 'ok', True)]"
out=$("${as_nobody[@]}" "$rw" ls "$rvictim" 2>"$tmp/err") && rc=0 || rc=$?
err=$(cat "$tmp/err")
expect_rc 3 "ls of root's process as $nobody"
kill_target "$fpid"
if [ -s "$flog" ]; then
	cat "$flog"
	fail "the other user connected to root's server"
fi

echo "PASS"
