#!/usr/bin/env bash
# rewire patch --timeout bounds the whole command, --revert-on-timeout,
# and a second `rewire patch` of a loaded patch (issue 12, point 15):
# - a target stopped (SIGSTOP) while `rewire patch --timeout 4` waits for
#   a stalled transition: the command ends within the timeout (plus a
#   little), exit 5, and says the process is stopped;
# - a target stopped before `rewire patch --timeout 2` connects: the same
#   (HELLO unanswered);
# - --revert-on-timeout on a stalled transition: exit 5, the transition
#   reversed and the patch unloaded, the target back on the old code;
# - `rewire patch` of a patch loaded already (enabled, then enabling):
#   exit 1, the patch's name and state, and the command to run.
# shellcheck source=cli/common.sh disable=SC2119
source "$(dirname "$0")/cli/common.sh"

case $backend in
x86_64 | aarch64) ;;
*) skip "live patching needs a patching backend (x86_64, aarch64)" ;;
esac
fix=$patchdir/cli_fix.so
stall=$patchdir/cli_stall.so
if [ ! -f "$fix" ] || [ ! -f "$stall" ]; then
	fail "patches not built in $patchdir"
fi

no_patches() {
	rwrun ls "$tpid" --patches
	expect_rc 0 "ls --patches"
	grep -Eq "^\(none\)$" <<<"$out" || fail "$1: patches left loaded: $out"
}

# The emulated machine runs everything slower (REWIRE_TEST_TIME_SCALE, as
# rw_test_time_scale() in tests/common/check.h): the command took 3 s
# there to start and send its request, so the budgets below, the bounds on
# them and the waits for the command scale with it.
scale=${REWIRE_TEST_TIME_SCALE:-1}
if ! [[ $scale =~ ^[0-9]+$ ]] || [ "$scale" -lt 1 ] || [ "$scale" -gt 100 ]; then
	scale=1
fi

# elapsed_ms START: milliseconds since START (date +%s%N).
elapsed_ms() {
	echo $((($(date +%s%N) - $1) / 1000000))
}

start_target
[ "$(last_value compute)" = 41 ] || fail "compute is not 41 at the start"

# The bounds below leave 2.5 s for a loaded machine (5 s in sanitizer
# builds, whose command starts and exits slower), times the scale; before
# the fix, a stopped target held the command for as long as it stayed
# stopped (here until rw_bg_end gives up, 30 s times the scale).
slack=2500
[ -z "${REWIRE_SANITIZE:-}" ] || slack=5000
slack=$((slack * scale))
step "a target stopped while a request is in flight"
t4=$((4 * scale))
t0=$(date +%s%N)
rw_bg "$tmp/bg.out" patch "$tpid" "$stall" --timeout "$t4"
wait_log "$tmp/bg.err" "patch cli_stall: enabling" $((20 * scale))
kill -STOP "$tpid"
echo "stopped the target after $(elapsed_ms "$t0") ms"
rw_bg_end $((30 * scale))
ms=$(elapsed_ms "$t0")
kill -CONT "$tpid"
echo "patch --timeout $t4 with the target stopped: rc $rc in $ms ms"
expect_rc 5 "patch --timeout $t4, target stopped"
expect_err "it is stopped" "patch --timeout $t4, target stopped"
[ "$ms" -lt $((t4 * 1000 + slack)) ] || fail "patch --timeout $t4 took $ms ms with the target stopped"
rwrun unpatch "$tpid" cli_stall --timeout 20
expect_rc 0 "unpatch after the stop"
no_patches "after the stop"

step "a target stopped before the command connects"
t2=$((2 * scale))
kill -STOP "$tpid"
t0=$(date +%s%N)
rwrun patch "$tpid" "$fix" --timeout "$t2"
ms=$(elapsed_ms "$t0")
kill -CONT "$tpid"
echo "patch --timeout $t2 of a stopped target: rc $rc in $ms ms: $err"
expect_rc 5 "patch --timeout $t2 of a stopped target"
expect_err "no answer to HELLO .*it is stopped" "patch --timeout $t2 of a stopped target"
[ "$ms" -lt $((t2 * 1000 + slack)) ] || fail "patch --timeout $t2 took $ms ms on a stopped target"
# It never got the request: nothing loaded once it runs again.
sleep 0.5
no_patches "after the stopped target ran again"

step "--revert-on-timeout"
t0=$(date +%s%N)
rwrun patch "$tpid" "$stall" --timeout "$scale" --revert-on-timeout
ms=$(elapsed_ms "$t0")
echo "patch --timeout $scale --revert-on-timeout: rc $rc in $ms ms"
expect_rc 5 "patch --revert-on-timeout"
expect_err "still enabling after" "patch --revert-on-timeout"
expect_err "reverting the transition \(--revert-on-timeout\)" "patch --revert-on-timeout"
expect_err "patch cli_stall: reverted and unloaded" "patch --revert-on-timeout"
no_patches "after --revert-on-timeout"
wait_value compute 41
rwrun patch "$tpid" "$stall" --revert-on-timeout --timeout 0
expect_rc 2 "--revert-on-timeout with --timeout 0"
rwrun patch "$tpid" "$stall" --revert-on-timeout --no-wait
expect_rc 2 "--revert-on-timeout with --no-wait"
rwrun help patch
expect_out "--revert-on-timeout" "help patch"

step "a second rewire patch of a loaded patch"
rwrun patch "$tpid" "$fix"
expect_rc 0 "patch cli_fix"
rwrun patch "$tpid" "$fix"
expect_rc 1 "patch cli_fix again"
expect_err "patch cli_fix is already loaded in process $tpid \(from .*cli_fix.so\) and enabled" "patch cli_fix again"
expect_err "rewire unpatch $tpid cli_fix" "patch cli_fix again"
rwrun unpatch "$tpid" cli_fix
expect_rc 0 "unpatch cli_fix"
rwrun patch "$tpid" "$stall" --no-wait
expect_rc 0 "patch cli_stall --no-wait"
rwrun patch "$tpid" "$stall" --timeout "$t2"
expect_rc 1 "patch cli_stall again"
expect_err "patch cli_stall is already loaded in process $tpid .* and enabling" "patch cli_stall again"
expect_err "rewire force $tpid cli_stall" "patch cli_stall again"
rwrun unpatch "$tpid" cli_stall --timeout 20
expect_rc 0 "unpatch cli_stall"
no_patches "at the end"

echo "PASS"
