#!/usr/bin/env bash
# rewire patch, unpatch and force against a running cli_target:
# - cli_fix.so: enabled (the target's cli_compute changes), listed,
#   disabled and unloaded by name; by path with --keep-loaded; --json;
# - bad patch files: missing (exit 1 before connecting), not ELF, writable
#   by others, owned by another user (exit 1 with the process's message,
#   nothing left loaded);
# - cli_stall.so (the holder thread never leaves cli_hold): --timeout
#   (exit 5, the blocking thread named, the hints), force, unpatch of a
#   forced patch; --no-wait then unpatch reverting the enable; Ctrl-C
#   while waiting (exit 130, the transition goes on);
# - the target killed while `rewire patch` waits (exit 3, no hang);
# - unknown patch names (exit 1), usage errors (exit 2).
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

# The emulated machine runs everything slower (REWIRE_TEST_TIME_SCALE, as
# rw_test_time_scale() in tests/common/check.h): the command takes seconds
# there to start and send its request, so its --timeout scales with it.
scale=${REWIRE_TEST_TIME_SCALE:-1}
if ! [[ $scale =~ ^[0-9]+$ ]] || [ "$scale" -lt 1 ] || [ "$scale" -gt 100 ]; then
	scale=1
fi

no_patches() {
	rwrun ls "$tpid" --patches
	expect_rc 0 "ls --patches"
	grep -Eq "^\(none\)$" <<<"$out" || fail "$1: patches left loaded: $out"
}

start_target
[ "$(last_value compute)" = 41 ] || fail "compute is not 41 at the start"

step "patch and unpatch cli_fix"
rwrun patch "$tpid" "$fix"
expect_rc 0 "patch cli_fix"
expect_out "^patch cli_fix enabled in [0-9.]+ ms \([0-9]+ threads?\)$" "patch cli_fix"
wait_value compute 42
rwrun ls "$tpid" --patches
expect_out "^cli_fix +enabled +[0-9]+/[0-9]+ +1 +- +[-0-9a-z:]+ +$fix$" "ls after patch"
rwrun ls "$tpid" --threads
expect_out "^[0-9]+ +cli-worker-0 +[A-Z] +yes$" "threads run the patch"
rwrun unpatch "$tpid" cli_fix
expect_rc 0 "unpatch cli_fix"
expect_out "^patch cli_fix disabled in [0-9.]+ ms" "unpatch: disabled"
expect_out "^patch cli_fix unloaded$" "unpatch: unloaded"
wait_value compute 41
no_patches "after unpatch"

step "patch --json, unpatch by path --keep-loaded, then unload"
rwrun --json patch "$tpid" "$fix" --quiet
expect_rc 0 "patch --json"
expect_json "(d['result'], d['patch']['name'], d['patch']['state'], d['patch']['path'])" "('enabled', 'cli_fix', 'enabled', '$fix')"
[ -z "$err" ] || fail "patch --quiet wrote to stderr: $err"
wait_value compute 42
rwrun unpatch "$tpid" "$fix" --keep-loaded
expect_rc 0 "unpatch by path --keep-loaded"
expect_out "^patch cli_fix disabled" "unpatch by path"
wait_value compute 41
rwrun ls "$tpid" --patches --json
expect_json "[(p['name'], p['state']) for p in d['patches']]" "[('cli_fix', 'disabled')]"
rwrun unpatch "$tpid" cli_fix --json
expect_rc 0 "unpatch of a disabled patch"
expect_json "d['result']" unloaded
no_patches "after unloading a disabled patch"

step "bad patch files"
rwrun patch "$tpid" "$tmp/missing.so"
expect_rc 1 "missing patch file"
expect_err "missing.so: No such file" "missing patch file"
rwrun patch "$(dead_pid)" "$tmp/missing.so"
expect_rc 1 "missing patch file is checked before connecting"
echo "not an ELF object" >"$tmp/notelf.so"
chmod 644 "$tmp/notelf.so"
rwrun patch "$tpid" "$tmp/notelf.so"
expect_rc 1 "not ELF"
expect_err "load( $tmp/notelf.so)?: .*notelf\.so.*\(RW_ERR_PATCH_FILE\)" "not ELF"
cp "$fix" "$tmp/writable.so"
chmod 666 "$tmp/writable.so"
rwrun patch "$tpid" "$tmp/writable.so"
expect_rc 1 "patch writable by others"
expect_err "load( $tmp/writable.so)?: .*writable\.so.*\(RW_ERR_PATCH_FILE\)" "patch writable by others"
if [ "$(id -u)" -eq 0 ]; then
	cp "$fix" "$tmp/other.so"
	chmod 755 "$tmp/other.so"
	chown 65534 "$tmp/other.so"
	rwrun patch "$tpid" "$tmp/other.so"
	expect_rc 1 "patch owned by another user"
	expect_err "load( $tmp/other.so)?: .*other\.so.*\(RW_ERR_PATCH_FILE\)" "patch owned by another user"
fi
no_patches "after the bad files"
[ "$(last_value compute)" = 41 ] || fail "a refused patch changed the target"

step "a stalled transition: --timeout, force, unpatch"
rwrun patch "$tpid" "$stall" --timeout $((3 * scale))
expect_rc 5 "patch --timeout"
expect_err "patch cli_stall: .*waits for [0-9]+ threads? of process $tpid" "pending threads listed"
expect_err "^[0-9]+ +cli-holder +[a-z]" "the holder is named"
expect_err "still enabling after" "timeout message"
expect_err "rewire unpatch $tpid cli_stall" "hint: unpatch"
expect_err "rewire force $tpid cli_stall" "hint: force"
rwrun ls "$tpid" --patches
expect_out "^cli_stall +enabling " "the transition goes on"
rwrun force "$tpid" cli_fix
expect_rc 1 "force of a patch that is not loaded"
rwrun force "$tpid" cli_stall
expect_rc 0 "force"
expect_out "^patch cli_stall: transition forced, now enabled \([1-9][0-9]* threads? switched without a check" "force"
rwrun force "$tpid" cli_stall
expect_rc 1 "force of a patch not in transition"
expect_err "not in a transition" "force of a patch not in transition"
rwrun ls "$tpid" --patches --json
expect_json "[(p['name'], p['state'], p['forced']) for p in d['patches']]" "[('cli_stall', 'enabled', True)]"
rwrun unpatch "$tpid" cli_stall --timeout 20
expect_rc 0 "unpatch of a forced patch"
expect_out "^patch cli_stall unloaded" "unpatch of a forced patch"
no_patches "after the forced patch"

step "--no-wait, then unpatch reverts the enable"
rwrun patch "$tpid" "$stall" --no-wait
expect_rc 0 "patch --no-wait"
expect_err "patch cli_stall: enabling" "patch --no-wait"
rwrun unpatch "$tpid" cli_stall --timeout 20
expect_rc 0 "unpatch of an enabling patch"
expect_out "^patch cli_stall disabled" "unpatch of an enabling patch"
no_patches "after reverting"

step "Ctrl-C while waiting"
rw_bg "$tmp/bg.out" patch "$tpid" "$stall" --timeout 0
wait_log "$tmp/bg.err" "patch cli_stall: enabling"
kill -INT "$bg_pid"
rw_bg_end
expect_rc 130 "patch interrupted"
expect_err "interrupted; stopped waiting" "patch interrupted"
expect_err "transition goes on in process $tpid" "patch interrupted"
rwrun ls "$tpid" --patches
expect_out "^cli_stall +enabling " "the transition goes on after Ctrl-C"
rwrun unpatch "$tpid" cli_stall --timeout 20
expect_rc 0 "unpatch after Ctrl-C"
no_patches "after Ctrl-C"

step "errors"
rwrun unpatch "$tpid" no_such_patch
expect_rc 1 "unpatch of an unknown patch"
expect_err "unpatch no_such_patch: " "unpatch of an unknown patch"
rwrun unpatch "$tpid" "$tmp/notloaded.so"
expect_rc 1 "unpatch of an unknown path"
rwrun force "$tpid" no_such_patch
expect_rc 1 "force of an unknown patch"
rwrun unpatch "$tpid"
expect_rc 2 "unpatch without PATCH"
rwrun patch "$tpid" "$fix" --no-such-option
expect_rc 2 "patch --no-such-option"

step "the target exits while rewire patch waits"
rw_bg "$tmp/bg.out" patch "$tpid" "$stall" --timeout 0
wait_log "$tmp/bg.err" "patch cli_stall: enabling"
kill_target "$tpid"
rw_bg_end 20
expect_rc 3 "patch of a target that exits"
expect_err "process $tpid exited" "patch of a target that exits"

echo "PASS"
