#!/usr/bin/env bash
# The rewire command sends nothing to a server that is not the process it
# addresses (doc/SECURITY.md; needs root to play the other user: skipped
# otherwise). The victim is a process of root without a control server;
# cli_fake_server answers for its pid as a well-behaved server would, and
# logs every byte it receives. In each case `rewire patch` must refuse
# with exit code 3 and a message that says why, and the fake server must
# have received nothing beyond the connection:
#   1. a control directory pre-created by another user (uid 65534), the
#      fake server in it, run as that user;
#   2. the directory a symbolic link to that one;
#   3. a directory of root's, mode 0700, with a socket that root bound and
#      a server that listens as uid 65534 (SO_PEERCRED's uid);
#   4. the same with a server that listens as root but is another process
#      (SO_PEERCRED's pid);
#   5. a directory of root's that others may write to (mode 0777).
# shellcheck source=cli/common.sh disable=SC2119
source "$(dirname "$0")/cli/common.sh"

if [ "$(id -u)" -ne 0 ]; then
	skip "needs root (to run a server as another user)"
fi
fake=${CLI_FAKE_SERVER:-$REWIRE_BUILD_DIR/tests/cli/cli_fake_server}
[ -x "$fake" ] || fail "$fake not built"
nobody=65534

# The victim: a process of root, no control server of its own.
sleep 120 &
victim=$!
bg_pids+=("$victim")
chmod 711 "$tmp"

# fake_start DIR UID: the fake server at DIR/$victim.sock.
fake_start() {
	local dir=$1 uid=$2
	flog=$tmp/fake.$RANDOM.log
	: >"$flog"
	chmod 666 "$flog"
	"$fake" "$dir/$victim.sock" "$uid" "$flog" >"$tmp/fake.out" 2>&1 &
	fpid=$!
	bg_pids+=("$fpid")
	wait_log "$tmp/fake.out" '^ready'
}

fake_stop() {
	kill_target "$fpid"
}

# attempt CTLDIR WHAT RE: `rewire patch` through CTLDIR must fail with
# exit 3, a message matching RE, and the fake server must have received
# no byte.
attempt() {
	local dir=$1 what=$2 re=$3
	REWIRE_CTL_DIR=$dir rwrun patch "$victim" "$patchdir/cli_fix.so"
	echo "$what: rc $rc: $err"
	fake_stop
	echo "--- the fake server's log:"
	cat "$flog"
	expect_rc 3 "$what"
	expect_err "$re" "$what"
	expect_err "Nothing was sent" "$what"
	if grep -q '^msg' "$flog" || grep -Eq '^bytes [1-9]' "$flog"; then
		fail "$what: the fake server received a request"
	fi
}

step "1. a directory of another user"
evil=$tmp/evil
mkdir -m 700 "$evil"
chown "$nobody:$nobody" "$evil"
fake_start "$evil" "$nobody"
attempt "$evil" "another user's directory" \
	"refusing the control directory .*evil: it belongs to uid $nobody"

step "2. a symbolic link"
ln -s "$evil" "$tmp/link"
fake_start "$evil" "$nobody"
attempt "$tmp/link" "a link" "refusing the control directory .*link: it is a symbolic link"

step "3. a server of another uid in root's directory"
rootdir=$tmp/rootdir
mkdir -m 700 "$rootdir"
fake_start "$rootdir" "$nobody"
attempt "$rootdir" "another uid's server" \
	"the server there is process $fpid, uid $nobody"
# It accepted the connection and got nothing.
grep -q '^conn' "$flog" || fail "the fake server saw no connection"

step "4. a server of another process"
fake_start "$rootdir" -
attempt "$rootdir" "another process's server" \
	"the server there is process $fpid, uid 0 .*, not process $victim"

step "5. a directory others may write to"
opendir=$tmp/open
mkdir -m 777 "$opendir"
fake_start "$opendir" -
attempt "$opendir" "a directory of mode 0777" "its mode is 0777"

echo "PASS"
