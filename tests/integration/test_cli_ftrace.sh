#!/usr/bin/env bash
# rewire trace --function and rewire ls --functions against ft_target
# (cli_ftrace/ft_target.c: built -O2 with dpkg-buildflags, patchable, no
# annotation on its functions; three workers make a known number of calls
# in each phase the test starts with SIGUSR1/SIGUSR2):
#   - ls --functions: traceable functions, and why the others are not
#   - trace --function: exactly the calls made, their callers and threads
#   - '!GLOB' exclusions, several --function, JSON lines
#   - --graph: nesting and durations like function_graph
#   - mixed with a tracepoint in one session
#   - entries patched while traced, restored byte for byte afterwards,
#     also when the rewire command is killed
#   - bad input: a glob that matches nothing (exit 1, candidates), a
#     variable, a function without a patchable entry, usage errors
# shellcheck source=cli/common.sh disable=SC2119
source "$(dirname "$0")/cli/common.sh"

if [ "$backend" = generic ]; then
	skip "function tracing needs code patching (generic backend)"
fi

# The last "entry NAME=BYTES" the target printed.
entry_of() {
	grep -E "^entry $1=" "$tlog" | tail -n 1 | cut -d= -f2
}

nphase=0
# phase usr1|usr2: run one phase of the target and wait until it is done.
phase() {
	local sig=$1 what
	nphase=$((nphase + 1))
	what=$([ "$sig" = usr1 ] && echo work || echo sleep)
	kill -"${sig^^}" "$tpid"
	wait_log "$tlog" "^$what phase $nphase done"
}

# trace_bg OUT ARGS...: rewire trace in the background, waiting until the
# probes are attached.
trace_bg() {
	local out=$1
	shift
	rw_bg "$out" trace "$tpid" "$@"
	wait_log "$tmp/bg.err" "tracing [0-9]+ function.*\(Ctrl-C to stop\)"
	err=$(cat "$tmp/bg.err")
}

trace_end() {
	kill -INT "$bg_pid"
	rw_bg_end
	expect_rc 0 "trace ended by SIGINT"
}

count() {
	grep -Ec -- "$1" "$2" || true
}

start_target
work0=$(entry_of ft_work)
leaf0=$(entry_of ft_leaf)
[ -n "$work0" ] || fail "the target printed no entry bytes"

step "ls --functions"
rwrun ls "$tpid" --functions 'ft_*'
expect_rc 0 "ls --functions"
expect_out "^ft_work\(\) +traceable +- +ft_target" "ft_work is traceable"
expect_out "^ft_sleep_1ms\(\) +traceable" "ft_sleep_1ms is traceable"
expect_out "^ft_nopatch\(\) +no-entry" "ft_nopatch has no patchable entry"
if grep -Eq "ft_counter" <<<"$out"; then
	fail "ls --functions lists the variable ft_counter"
fi
expect_err "[0-9]+ functions, [0-9]+ traceable" "ls --functions summary"
rwrun ls "$tpid" --functions 'ft_*' --json
expect_rc 0 "ls --functions --json"
expect_json "[f['traceable'] for f in d['functions'] if f['name'] == 'ft_work']" "[True]"
expect_json "[f['status'] for f in d['functions'] if f['name'] == 'ft_nopatch']" "['no-entry']"
expect_json "[f['reason'] for f in d['functions'] if f['name'] == 'ft_nopatch']" "['no patchable entry']"
rwrun ls "$tpid" --functions
expect_rc 0 "ls --functions (all)"
expect_out "^bg_tick\(\) +traceable" "every function without a glob"
expect_out " +rewire +" "rewire's own functions are listed as such"

step "trace --function: every call, its caller and thread"
trace_bg "$tmp/ev1" --function ft_work
expect_err "tracing 1 function of process $tpid: ft_work\(\)" "start message"
phase usr1
[ "$(entry_of ft_work)" != "$work0" ] ||
	fail "ft_work's entry is unchanged while traced ($work0)"
trace_end
n=$(count '^[0-9]+\.[0-9]{9} [0-9]+ ft_work\(\) <- ' "$tmp/ev1")
[ "$n" -eq 600 ] || fail "trace --function ft_work: $n calls, expected 600"
n=$(count 'ft_work\(\) <- worker\+0x[0-9a-f]+$' "$tmp/ev1")
[ "$n" -eq 600 ] || fail "callers: $n of 600 are worker+0xOFF"
n=$(grep -E ' ft_work\(\) ' "$tmp/ev1" | awk '{print $2}' | sort -u | wc -l)
[ "$n" -eq 3 ] || fail "calls from $n threads, expected 3"
expect_err "600 events printed, 0 dropped" "summary"
phase usr1
[ "$(entry_of ft_work)" = "$work0" ] ||
	fail "ft_work's entry is $(entry_of ft_work) after the trace, was $work0"

step "several --function, '!GLOB' excludes"
trace_bg "$tmp/ev2" --function 'ft_*' --function '!ft_debug*' \
	--function '!ft_sleep*'
phase usr1
trace_end
[ "$(count ' ft_work\(\) <- ' "$tmp/ev2")" -eq 600 ] || fail "ft_work calls"
[ "$(count ' ft_leaf\(\) <- ft_work\+0x' "$tmp/ev2")" -eq 600 ] ||
	fail "ft_leaf calls, called by ft_work"
[ "$(count 'ft_debug_hook' "$tmp/ev2")" -eq 0 ] ||
	fail "an excluded function was traced"
[ "$(count 'bg_tick' "$tmp/ev2")" -eq 0 ] || fail "bg_tick was traced"

step "--json"
trace_bg "$tmp/ev3" --function ft_leaf --json
phase usr1
trace_end
if [ "$have_python" -eq 1 ]; then
	python3 -c "import json, sys
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    assert 'dropped' not in e and 'corrupt' not in e, e
    assert e['event'] == 'entry' and e['function'] == 'ft_leaf()', e
    assert e['caller'].startswith('ft_work+0x'), e
    assert e['tid'] > 0 and isinstance(e['ts'], int) and e['ts'] > 10**18, e
    n += 1
assert n == 600, n
" "$tmp/ev3" || fail "trace --function --json"
fi

step "--graph: nesting and durations"
trace_bg "$tmp/ev4" --function ft_work --function ft_leaf --graph
expect_err "with returns" "graph start message"
phase usr1
trace_end
n=$(count '^[0-9.]+ [0-9]+ {15}\|  ft_work\(\) \{$' "$tmp/ev4")
[ "$n" -eq 600 ] || fail "graph: $n 'ft_work() {' lines, expected 600"
n=$(count '^[0-9.]+ [0-9]+ +[0-9]+\.[0-9]{3} us \|  \} /\* ft_work\(\) \*/$' "$tmp/ev4")
[ "$n" -eq 600 ] || fail "graph: $n closing lines of ft_work, expected 600"
# ft_leaf is a leaf: "ft_leaf();" with its duration, one level deeper. (A
# thread that the scheduler stops inside it for more than the reader holds
# an entry back gets "ft_leaf() {" ... "}" instead: also correct.)
n=$(count '^[0-9.]+ [0-9]+ +[0-9]+\.[0-9]{3} us \|    ft_leaf\(\);$' "$tmp/ev4")
[ "$n" -ge 500 ] || fail "graph: $n 'ft_leaf();' leaf lines of 600"
# Per thread, the lines nest: an open line pushes its function, a close
# line pops the same one, a leaf neither; each is indented two spaces per
# level; leaves and closes have a duration, opens none. Prints the calls
# of each function and the lines that break a rule.
awk '{
	tid = $2; line = $0; sub(/^[^|]*\|  /, "", line)
	ind = match(line, /[^ ]/) - 1; body = substr(line, ind + 1)
	timed = $0 ~ /^[0-9.]+ [0-9]+ +[0-9]+\.[0-9][0-9][0-9] us \|/
	if (body ~ /\(\) \{$/) {
		name = body; sub(/\(\) \{$/, "", name)
		st[tid, ++d[tid]] = name
		if (ind != 2 * (d[tid] - 1) || timed) bad++
	} else if (body ~ /\(\);$/) {
		name = body; sub(/\(\);$/, "", name); n[name]++
		if (ind != 2 * d[tid] || !timed) bad++
	} else if (body ~ /^\} \/\* .*\(\) \*\/$/) {
		name = body; sub(/^\} \/\* /, "", name); sub(/\(\) \*\/$/, "", name)
		if (d[tid] < 1 || st[tid, d[tid]] != name) bad++
		d[tid]--; n[name]++
		if (ind != 2 * d[tid] || !timed) bad++
	} else {
		bad++
	}
}
END {
	for (t in d) if (d[t]) bad++
	printf "%d %d %d\n", n["ft_work"], n["ft_leaf"], bad
}' "$tmp/ev4" >"$tmp/nest"
[ "$(cat "$tmp/nest")" = "600 600 0" ] ||
	fail "graph: calls of ft_work, ft_leaf and broken lines: $(cat "$tmp/nest")"

step "a tracepoint and functions in one session"
rw_bg "$tmp/ev5" trace "$tpid" ft_phase --function ft_work
wait_log "$tmp/bg.err" "tracing 1 function.*\(Ctrl-C to stop\)"
err=$(cat "$tmp/bg.err")
expect_err "tracing 1 tracepoint of process $tpid: ft_phase" "tracepoint too"
phase usr1
trace_end
[ "$(count 'ft_phase: phase=[0-9]+ what="work"' "$tmp/ev5")" -eq 1 ] ||
	fail "the tracepoint's event is missing"
[ "$(count ' ft_work\(\) <- ' "$tmp/ev5")" -eq 600 ] ||
	fail "mixed session: ft_work calls"

step "the command killed: the process detaches"
trace_bg "$tmp/ev6" --function ft_work --function ft_leaf --graph
phase usr1
[ "$(entry_of ft_leaf)" != "$leaf0" ] || fail "ft_leaf not patched"
kill -9 "$bg_pid"
wait_exit "$bg_pid"
for ((i = 0; i < 100; i++)); do
	phase usr1
	if [ "$(entry_of ft_work)" = "$work0" ] &&
		[ "$(entry_of ft_leaf)" = "$leaf0" ]; then
		break
	fi
	sleep 0.1
done
[ "$(entry_of ft_work)" = "$work0" ] && [ "$(entry_of ft_leaf)" = "$leaf0" ] ||
	fail "entries not restored after the client died"

step "bad input"
rwrun trace "$tpid" --function 'no_such_function*'
expect_rc 1 "a glob that matches nothing"
expect_err "no_such_function" "the message names the glob"
rwrun trace "$tpid" ft_phase --function 'no_such_function*'
expect_rc 1 "a tracepoint and a glob that matches nothing"
rwrun ls "$tpid" --tracepoints
expect_out "^ft_phase +0 " "the tracepoint's probe is detached after the failed start"
rwrun trace "$tpid" --function ft_wrok
expect_rc 1 "a misspelt name"
expect_err "no function matches ft_wrok.*ft_work" \
	"the message suggests the name that comes close"
rwrun trace "$tpid" --function work
expect_rc 1 "a name that is not quite a function's"
expect_err "no function matches work.*ft_work" \
	"the message suggests the names that come close"
rwrun trace "$tpid" --function ft_counter
expect_rc 1 "a variable"
expect_err "ft_counter" "the message names the variable"
rwrun trace "$tpid" --function ft_nopatch
expect_rc 1 "a function without a patchable entry"
expect_err "patchable" "the message says why"
rwrun trace "$tpid" --graph
expect_rc 2 "--graph without --function"
rwrun trace "$tpid" --function ''
expect_rc 2 "an empty pattern"
rwrun trace "$tpid"
expect_rc 2 "nothing to trace"
# A function name given as a tracepoint pattern: the error says how.
rwrun trace "$tpid" 'ft_w*'
expect_rc 1 "functions given as tracepoints"
expect_err "no tracepoint matches 'ft_w\\*', but 1 function\\(s\\) do: trace them with --function 'ft_w\\*'" \
	"the hint to use --function"
phase usr1
[ "$(entry_of ft_work)" = "$work0" ] || fail "a failed attach changed ft_work"

echo "PASS"
