#!/usr/bin/env bash
# Many processes at once (select.c): the selectors --all, --exe, --build-id
# and --comm choose the right processes among two programs (sel_target_a,
# sel_target_b: select/sel_target.c built twice with Debian's flags), in
# text and JSON; `key --all` acts on each, checked from each process's own
# output; a process that fails (a key only the other program has) does not
# stop the others and makes the exit code 1, each failure reported;
# nothing matched: exit 3 and the message, JSON still printed; --jobs 1 and
# the default give the same results; trace relays each process's lines
# after "PID: " and writes -o PATH per process (%p), and -o without %p is
# refused before anything runs; a usage error is reported once; as root, a
# process of another user is skipped and reported, never touched, when the
# command runs as a third user.
#
# --all sees every process of the machine: the test runs in a pid namespace
# of its own (unshare --pid --mount-proc), so it needs root.
set -euo pipefail
if [ "${SEL_IN_NS:-}" != 1 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: needs root: --all is tested in a pid namespace of its own"
		exit 77
	fi
	if ! unshare --pid --fork --mount-proc true 2>/dev/null; then
		echo "SKIP: unshare --pid --fork --mount-proc is not allowed here"
		exit 77
	fi
	SEL_IN_NS=1 exec unshare --pid --fork --mount-proc bash "$0" "$@"
fi
# shellcheck source=cli/common.sh
source "$(dirname "$0")/cli/common.sh"

target_b=${SEL_TARGET_B:?set by CTest}
target_a=$target

# start_sel PROGRAM: one target, its pid in $tpid and its log in $tlog.
start_sel() {
	ntarget=$((ntarget + 1))
	tlog=$tmp/target.$ntarget.out
	REWIRE_CTL=1 "$1" --lifetime 900 >"$tlog" 2>"$tmp/target.$ntarget.err" &
	tpid=$!
	bg_pids+=("$tpid")
	wait_socket "$tpid"
	wait_log "$tlog" '^ready'
}

# The last value NAME had in LOG.
value_of() {
	grep -E "^$2=" "$1" | tail -n 1 | cut -d= -f2
}

wait_value_of() {
	local log=$1 name=$2 want=$3 i
	for ((i = 0; i < 400; i++)); do
		[ "$(value_of "$log" "$name")" = "$want" ] && return 0
		sleep 0.05
	done
	fail "$log: $name is $(value_of "$log" "$name"), not $want"
}

# ejson EXPR WANT [EXPR WANT...]: each Python EXPR on stdout's JSON document
# `d` must print WANT (one python3 run: it starts slowly on a loaded
# machine). P(RESULT) is the sorted pids of the processes with that result
# ('' for all), space-separated.
ejson() {
	local exprs=() wants=() got=() i
	while [ $# -gt 0 ]; do
		exprs+=("$1")
		wants+=("$2")
		shift 2
	done
	mapfile -t got < <(python3 -c 'import json, sys
d = json.loads(sys.stdin.read())
def P(r):
    return " ".join(str(p["pid"]) for p in sorted(d["processes"], key=lambda p: p["pid"]) if r in ("", p["result"]))
for e in sys.argv[1:]:
    print(eval(e))' "${exprs[@]}" <<<"$out") || fail "JSON: cannot read: $out"
	for i in "${!exprs[@]}"; do
		[ "${got[$i]:-}" = "${wants[$i]}" ] ||
			fail "JSON: ${exprs[$i]} is '${got[$i]:-}', expected '${wants[$i]}'"
	done
}

sorted() {
	tr ' ' '\n' <<<"$*" | sort -n | tr '\n' ' ' | sed 's/ $//'
}

step "four processes of two programs"
start_sel "$target_a"
a1=$tpid
a1log=$tlog
start_sel "$target_a"
a2=$tpid
a2log=$tlog
start_sel "$target_b"
b1=$tpid
b1log=$tlog
start_sel "$target_b"
b2=$tpid
b2log=$tlog
all=$(sorted $a1 $a2 $b1 $b2)
as=$(sorted $a1 $a2)
bs=$(sorted $b1 $b2)

step "--comm, --exe, --build-id, --all select the right processes"
rwrun --json ls --comm sel_target_a --keys
expect_rc 0 "ls --comm sel_target_a"
ejson "P('ok')" "$as" "P('')" "$as" \
	"(d['command'], d['matched'], d['ok'], d['failed'], d['skipped'])" \
	"('ls', 2, 2, 0, 0)" \
	"d['selector']" \
	"{'all': False, 'exe': None, 'build_id': None, 'comm': 'sel_target_a'}" \
	"sorted(k['name'] for k in d['processes'][0]['output']['keys'])" \
	"['sel_only_a', 'sel_verbose']" \
	"(d['processes'][0]['comm'], d['processes'][0]['exit'], d['processes'][0]['error'])" \
	"('sel_target_a', 0, None)"
rwrun --json ls --comm 'sel_target_?' --keys
ejson "P('ok')" "$all"
rwrun --json ls --exe "$target_b" --keys
expect_rc 0 "ls --exe B"
ejson "P('ok')" "$bs" "P('')" "$bs" \
	"d['processes'][0]['exe'] == '$(readlink -f "$target_b")'" True
# The same file by another name: matched by device and inode.
ln -s "$target_a" "$tmp/link-to-a"
rwrun --json ls --exe "$tmp/link-to-a" --keys
ejson "P('')" "$as"
bid=$(readelf -n "$target_b" | awk '/Build ID/ { print $3 }')
[ -n "$bid" ] || fail "sel_target_b has no build-id"
rwrun --json ls --build-id "${bid:0:12}" --keys
expect_rc 0 "ls --build-id"
ejson "P('ok')" "$bs" "P('')" "$bs" "d['selector']['build_id']" "${bid:0:12}"
rwrun --json ls --build-id "$(tr a-f A-F <<<"${bid:0:10}")" --comm 'sel_*' --keys
ejson "P('')" "$bs"
rwrun --json ls --all --keys
expect_rc 0 "ls --all"
ejson "P('ok')" "$all" "P('')" "$all"
rwrun ls --all --keys
expect_rc 0 "ls --all (text)"
for p in $a1 $a2 $b1 $b2; do
	expect_out "^==> $p \(sel_target_[ab]\) <==" "ls --all: the block of $p"
	expect_out "^$p +sel_target_[ab] +ok" "ls --all: the row of $p"
done
expect_err "^\[4/4\] [0-9]+ sel_target_[ab] ok" "ls --all: progress"
rwrun -q ls --all --keys
[ -z "$err" ] || fail "--quiet: progress on stderr: $err"

step "nothing matched: exit 3"
rwrun ls --exe "$target_a" --comm sel_target_b
expect_rc 3 "--exe A --comm sel_target_b"
expect_err "no rewire-enabled process matches --exe $target_a --comm sel_target_b" \
	"nothing matched"
rwrun --json key --comm nosuchprogram sel_verbose on
expect_rc 3 "--comm nosuchprogram"
ejson "(d['matched'], d['processes'])" "(0, [])"
rwrun ls --build-id 0123456789abcdef
expect_rc 3 "--build-id of no program"

step "usage errors, reported once"
rwrun key --all sel_verbose
expect_rc 2 "key --all without on|off"
[ "$(grep -c 'expected PID NAME on|off' <<<"$err")" = 1 ] ||
	fail "the usage error is not printed once: $err"
rwrun key --all "$a1" sel_verbose on
expect_rc 2 "key --all PID"
expect_err "a selector takes the place of the PID" "key --all PID"
rwrun ls --all --jobs 0
expect_rc 2 "--jobs 0"
rwrun ls --jobs 2 1
expect_rc 2 "--jobs without a selector"
rwrun ls --build-id abc
expect_rc 2 "--build-id too short"
rwrun ls --build-id xyz12345678
expect_rc 2 "--build-id not hex"
rwrun key --help --all
expect_rc 0 "key --all --help"
expect_out "^usage: rewire key" "key --all --help"
rwrun help key
expect_out "--build-id HEX" "help key: the selectors"
rwrun help
expect_out "^Selecting processes" "rewire help: the selectors"

step "key --all acts on each process"
rwrun key --all sel_verbose on
expect_rc 0 "key --all sel_verbose on"
for p in $a1 $a2 $b1 $b2; do
	expect_out "^$p +sel_target_[ab] +ok +sel_verbose: off -> on \([0-9]+ sites?\)" \
		"key --all: the row of $p"
done
for log in "$a1log" "$a2log" "$b1log" "$b2log"; do
	wait_value_of "$log" verbose 1
done

step "one program fails, the other goes on: exit 1, each failure reported"
rwrun --json key --all sel_only_a on
expect_rc 1 "key --all sel_only_a on"
ejson "(d['matched'], d['ok'], d['failed'])" "(4, 2, 2)" \
	"P('ok')" "$as" "P('failed')" "$bs" \
	"sorted(set(p['error'] for p in d['processes'] if p['result'] == 'failed'))" \
	"[\"key sel_only_a: no static key named 'sel_only_a' (ENOENT)\"]" \
	"[p['exit'] for p in d['processes'] if p['result'] == 'failed']" "[1, 1]" \
	"[p['output']['error']['errname'] for p in d['processes'] if p['result'] == 'failed']" \
	"['ENOENT', 'ENOENT']"
expect_err "rewire: $b1: key sel_only_a: no static key" "the failure of $b1 on stderr"
expect_err "key: 2 of 4 processes failed" "the count of failures"
wait_value_of "$a1log" only_a 1
wait_value_of "$a2log" only_a 1
rwrun key --all sel_only_a off
expect_rc 1 "key --all sel_only_a off (text)"
expect_out "^$b2 +sel_target_b +failed +key sel_only_a: no static key" \
	"the failed row of $b2"
expect_out "^$a2 +sel_target_a +ok +sel_only_a: on -> off" "the row of $a2"
wait_value_of "$a1log" only_a 0

# A process that stops answering fails on its own timeout; the others
# are done before it.
kill -STOP "$b2"
rwrun key --all sel_verbose off
kill -CONT "$b2"
expect_rc 1 "key --all with a stopped process"
expect_out "^$b2 +sel_target_b +failed +.*(did not answer|timed out|no reply|stopped)" \
	"the stopped process's row"
for p in $a1 $a2 $b1; do
	expect_out "^$p +sel_target_[ab] +ok +sel_verbose: on -> off" "the row of $p"
done
tail -n 2 <<<"$err" | grep -Eq "^\[4/4\] $b2 sel_target_b failed" ||
	fail "the stopped process did not end last: $err"
wait_value_of "$b2log" verbose 1

step "--jobs 1 and the default: the same results"
rwrun --json key --jobs 1 --all sel_verbose off
expect_rc 0 "key --jobs 1 --all"
ejson "(d['matched'], d['ok'])" "(4, 4)"
for log in "$a1log" "$a2log" "$b1log" "$b2log"; do
	wait_value_of "$log" verbose 0
done
# The documents, but for the order of the progress lines, are the same.
rwrun --json ls --all --keys --jobs 1
one=$out
rwrun --json ls --all --keys
[ "$out" = "$one" ] || fail "--jobs 1: $one; default: $out"
rwrun --json ls --all --keys --jobs=256
[ "$out" = "$one" ] || fail "--jobs=256: $out; --jobs 1: $one"
ejson "P('ok')" "$all"

if [ "${SEL_BACKEND:-x86_64}" = x86_64 ] || [ "$SEL_BACKEND" = aarch64 ]; then
step "apply: changed, then unchanged; a process of another build refuses it"
fix=${SEL_FIX:?set by CTest}
rwrun --json apply --all "$fix"
expect_rc 1 "apply --all sel_fix.so (sel_target_b refuses it)"
ejson "(d['command'], d['matched'], d['ok'], d['failed'], d['changed'])" \
	"('apply', 4, 2, 2, 2)" \
	"P('changed')" "$as" "P('failed')" "$bs" \
	"all('RW_ERR_BUILD_ID' in p['error'] for p in d['processes'] if p['result'] == 'failed')" \
	True \
	"[p['output']['after'][0]['state'] for p in d['processes'] if p['result'] == 'changed']" \
	"['enabled', 'enabled']"
wait_value_of "$a1log" compute 42
wait_value_of "$a2log" compute 42
rwrun apply --comm sel_target_a "$fix"
expect_rc 0 "apply again"
expect_out "^$a1 +sel_target_a +unchanged +sel_fix enabled" \
	"apply again: unchanged"
rwrun --json apply --comm sel_target_a --absent sel_fix --check
expect_rc 0 "apply --absent --check"
ejson "P('would-change')" "$as" "d['changed']" 2
rwrun -q apply --exe "$target_a" --absent sel_fix
expect_rc 0 "apply --absent"
expect_out "^$a2 +sel_target_a +changed +disable\+unload sel_fix" \
	"apply --absent: changed"
wait_value_of "$a1log" compute 41
wait_value_of "$a2log" compute 41
[ "$(value_of "$b1log" compute)" = 41 ] || fail "sel_target_b was patched"
else
	echo "(apply skipped: live patching needs the x86_64 or aarch64 backend)"
fi

step "trace: lines after PID:, -o PATH per process with %p"
rwrun trace --all sel_tick -o "$tmp/trace.log" --count 1
expect_rc 2 "trace --all -o without %p"
expect_err "must contain %p" "trace --all -o without %p"
[ ! -e "$tmp/trace.log" ] || fail "-o without %p: a file was written"
rwrun snapshot --all --output="$tmp/snap"
expect_rc 2 "snapshot --all --output= without %p"
rwrun trace --comm sel_target_a sel_tick -o "$tmp/trace.%p.log" --count 3
expect_rc 0 "trace -o trace.%p.log"
for p in $a1 $a2; do
	[ "$(grep -c 'sel_tick: n=' "$tmp/trace.$p.log")" = 3 ] ||
		fail "trace.$p.log: $(cat "$tmp/trace.$p.log")"
done
rwrun trace --exe "$target_b" sel_tick --count 2
expect_rc 0 "trace --exe B (stdout)"
for p in $b1 $b2; do
	[ "$(grep -cE "^$p: [0-9.]+ [0-9]+ sel_tick: n=" <<<"$out")" = 2 ] ||
		fail "trace: the lines of $p: $out"
	expect_out "^$p +sel_target_b +ok" "trace: the row of $p"
done
rwrun --json trace --exe "$target_b" sel_tick --count 1
expect_rc 0 "--json trace"
lines=$(grep -c '"line":{' <<<"$out" || true)
[ "$lines" = 2 ] || fail "--json trace: $out"
# Ctrl-C reaches every child: the traces end, and so does the command.
rw_bg "$tmp/bg.out" trace --all sel_tick
for ((i = 0; i < 200; i++)); do
	[ "$(grep -c "tracing 1 tracepoint" "$tmp/bg.err")" = 4 ] && break
	sleep 0.05
done
kill -INT "$bg_pid"
rw_bg_end 30
[ "$rc" = 0 ] || fail "trace --all ended by SIGINT: exit $rc: $err"
grep -Eq "trace: [0-9]+ events? printed" <<<"$err" ||
	fail "trace --all after SIGINT: no summary: $err"

step "another user's process is skipped, never touched"
third=4242
chmod 0755 "$tmp"
for u in 65534 $third; do
	install -d -m 0700 -o $u -g $u "$tmp/u$u"
done
run_as() {
	local u=$1
	shift
	exec setpriv --reuid="$u" --regid="$u" --clear-groups \
		env REWIRE_CTL=1 REWIRE_CTL_DIR="$tmp/u$u" "$@"
}
ntarget=$((ntarget + 1))
nlog=$tmp/target.$ntarget.out
run_as 65534 "$target_a" --lifetime 900 >>"$nlog" 2>&1 &
npid=$!
bg_pids+=("$npid")
wait_log "$nlog" '^ready'
ntarget=$((ntarget + 1))
ulog=$tmp/target.$ntarget.out
run_as $third "$target_b" --lifetime 900 >"$ulog" 2>&1 &
upid=$!
bg_pids+=("$upid")
wait_log "$ulog" '^ready'
# The rewire command as the third user.
rw_real=$rw
rw=$tmp/rw-as-third
cat >"$rw" <<EOF
#!/bin/sh
exec setpriv --reuid=$third --regid=$third --clear-groups env REWIRE_CTL_DIR=$tmp/u$third "$rw_real" "\$@"
EOF
chmod 0755 "$rw"
rwrun --json key --all sel_verbose on
expect_rc 0 "key --all as a third user"
ejson "(d['matched'], d['ok'], d['failed'])" "(1, 1, 0)" \
	"P('ok')" "$upid" \
	"[(p['result'], p['uid'], p['exit'], p['output']) for p in d['processes'] if p['pid'] == $npid]" \
	"[('skipped', 65534, None, None)]" \
	"[p['error'] for p in d['processes'] if p['pid'] == $npid][0].startswith('process of uid 65534, not examined')" \
	True \
	"d['skipped'] == len(P('skipped').split()) >= 5" True
wait_value_of "$ulog" verbose 1
rwrun key --comm sel_target_a sel_verbose on
expect_rc 3 "key --comm sel_target_a as a third user: none it may control"
expect_err "no rewire-enabled process matches --comm sel_target_a that this user may control" \
	"only skipped processes"
expect_out "^$npid +sel_target_a +skipped +process of uid 65534" \
	"the skipped row of $npid"
rw=$rw_real
sleep 0.2
[ "$(value_of "$nlog" verbose)" = 0 ] ||
	fail "the process of uid 65534 was changed: $(cat "$nlog")"
# As root, that process can be controlled: it is not skipped.
rwrun --json ls --all --keys
ejson "P('ok')" "$(sorted $a1 $a2 $b1 $b2 $npid $upid)"

echo PASS
