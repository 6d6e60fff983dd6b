#!/usr/bin/env bash
# Another user cannot control the process (needs root: skipped otherwise).
# 1. The 0700 directory: the rewire command run as nobody (setpriv or
#    runuser) against a root target fails with exit 3 and says
#    "permission denied ... run as that user or root".
# 2. SO_PEERCRED, behind the directory: cli_peer_connect reaches the
#    socket with file-system uid 0 but effective uid 65534 (what
#    SO_PEERCRED reports): HELLO is refused or the connection closed, while
#    the same helper as root is served, and the target logs the refusal.
# shellcheck source=cli/common.sh disable=SC2119
source "$(dirname "$0")/cli/common.sh"

if [ "$(id -u)" -ne 0 ]; then
	skip "needs root (to run a client as another user)"
fi
nobody_uid=65534
nobody_gid=65534
as_nobody=()
if command -v setpriv >/dev/null 2>&1; then
	as_nobody=(setpriv --reuid="$nobody_uid" --regid="$nobody_gid" --clear-groups)
elif command -v runuser >/dev/null 2>&1 && getent passwd nobody >/dev/null; then
	as_nobody=(runuser -u nobody --)
else
	skip "neither setpriv nor runuser"
fi

start_target
sock=$REWIRE_CTL_DIR/$tpid.sock
[ "$(stat -c %a "$REWIRE_CTL_DIR")" = 700 ] ||
	fail "control directory mode $(stat -c %a "$REWIRE_CTL_DIR"), not 700"

step "the rewire command as nobody"
# A copy that nobody can execute wherever the build tree is. Only the
# control directory ($tmp/ctl, 0700) keeps nobody out.
chmod 711 "$tmp"
pub=$tmp/pub
mkdir -m 755 "$pub"
cp "$rw" "$pub/rewire"
chmod 755 "$pub/rewire"
set +e
timeout -k 5 60 "${as_nobody[@]}" env REWIRE_CTL_DIR="$REWIRE_CTL_DIR" \
	"$pub/rewire" ls "$tpid" >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
out=$(cat "$tmp/out")
err=$(cat "$tmp/err")
expect_rc 3 "ls as nobody"
expect_err "permission denied" "ls as nobody"
expect_err "run as that user or root" "ls as nobody"

step "SO_PEERCRED"
[ -x "$peer" ] || fail "$peer not built"
set +e
timeout -k 5 60 "$peer" "$sock" root >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
out=$(cat "$tmp/out")
err=$(cat "$tmp/err")
expect_rc 0 "HELLO as root"
set +e
timeout -k 5 60 "$peer" "$sock" "$nobody_uid" "$nobody_gid" >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
out=$(cat "$tmp/out")
err=$(cat "$tmp/err")
echo "$out"
if [ "$rc" -eq 77 ]; then
	skip "SO_PEERCRED check not reachable: $out"
fi
expect_rc 0 "HELLO as uid $nobody_uid"
expect_out "refused|closed" "HELLO as uid $nobody_uid"
wait_log "$terr" "$nobody_uid|refus|denied|not allowed" 10
# The server still serves its own user afterwards.
rwrun ls "$tpid" --keys
expect_rc 0 "ls after the refused peer"

echo "PASS"
