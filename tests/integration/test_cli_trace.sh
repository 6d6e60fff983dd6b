#!/usr/bin/env bash
# rewire trace against a running cli_target: --count (exact), --duration
# with patterns and JSON lines, --output, Ctrl-C (exit 0, summary, probes
# detached), a small --ring-size, errors (unknown tracepoint: exit 1;
# usage: exit 2), and the target killed while it is traced (exit 3, no
# hang).
# shellcheck source=cli/common.sh disable=SC2119
source "$(dirname "$0")/cli/common.sh"

event_re='^[0-9]+\.[0-9]{9} [0-9]+ '

probes_of() {
	rwrun ls "$tpid" --tracepoints
	expect_rc 0 "ls --tracepoints"
	grep -E "^$1 " <<<"$out" | awk '{print $2}'
}

start_target

step "trace --count"
rwrun trace "$tpid" cli_tick --count 5
expect_rc 0 "trace --count 5"
[ "$(grep -Ec "$event_re" <<<"$out")" -eq 5 ] ||
	fail "trace --count 5 printed $(grep -Ec "$event_re" <<<"$out") events"
expect_out "${event_re}cli_tick: n=[0-9]+ who=\"worker-[0-2]\"$" "event format"
expect_err "tracing 1 tracepoint of process $tpid: cli_tick" "start message"
expect_err "5 events printed, [0-9]+ dropped" "summary"
[ "$(probes_of cli_tick)" = 0 ] || fail "probe still attached after trace --count"

step "trace --duration, a pattern, --json"
rwrun trace "$tpid" 'cli_*' --duration 1 --json
expect_rc 0 "trace --duration 1 --json"
if [ "$have_python" -eq 1 ]; then
	python3 -c "import json, sys
seen = set()
for line in sys.stdin:
    e = json.loads(line)
    # Integer ns since the epoch, on every line (drops too).
    assert isinstance(e['ts'], int) and e['ts'] > 10**18, e
    if 'dropped' in e or 'corrupt' in e:
        continue
    assert e['tid'] > 0, e
    seen.add(e['tp'])
    if e['tp'] == 'cli_tick':
        assert sorted(e['args']) == ['n', 'who'], e
        assert e['args']['who'].startswith('worker-'), e
    if e['tp'] == 'cli_sample':
        assert sorted(e['args']) == ['odd', 'ratio', 'seq'], e
        assert isinstance(e['args']['odd'], bool), e
assert seen == {'cli_tick', 'cli_sample'}, seen
" <<<"$out" || fail "trace --json output"
else
	expect_out '"tp":"cli_sample"' "trace --json"
	expect_out '"tp":"cli_tick"' "trace --json"
fi
expect_err "tracing 2 tracepoints" "pattern matched both tracepoints"
[ "$(probes_of cli_tick)" = 0 ] || fail "probe still attached after --duration"
[ "$(probes_of cli_sample)" = 0 ] || fail "probe still attached after --duration"

step "trace --output, ended by SIGINT (Ctrl-C)"
rw_bg "$tmp/bg.out" trace "$tpid" cli_sample --output "$tmp/events"
wait_log "$tmp/events" "cli_sample: seq=[0-9]+ ratio=[0-9.e+-]+ odd=(true|false)"
[ "$(probes_of cli_sample)" = 1 ] || fail "no probe attached while tracing"
kill -INT "$bg_pid"
rw_bg_end
expect_rc 0 "trace ended by SIGINT"
expect_err "[1-9][0-9]* events? printed, [0-9]+ dropped" "summary after SIGINT"
[ ! -s "$tmp/bg.out" ] || fail "trace --output wrote to stdout"
[ "$(probes_of cli_sample)" = 0 ] || fail "probe still attached after SIGINT"

step "trace with SIGTERM and a small ring"
rw_bg "$tmp/events2" trace "$tpid" cli_tick cli_sample --ring-size 4K
wait_log "$tmp/events2" "cli_tick"
kill -TERM "$bg_pid"
rw_bg_end
expect_rc 0 "trace ended by SIGTERM"
expect_err "events? printed" "summary after SIGTERM"

step "errors"
rwrun trace "$tpid" no_such_tracepoint
expect_rc 1 "unknown tracepoint"
expect_err "no_such_tracepoint|matched nothing|ENOENT" "unknown tracepoint"
rwrun trace "$tpid" cli_tick --count zero
expect_rc 2 "--count zero"
rwrun trace "$tpid" cli_tick --duration -1
expect_rc 2 "--duration -1"
rwrun trace "$tpid" cli_tick --ring-size lots
expect_rc 2 "--ring-size lots"
rwrun trace "$tpid" cli_tick --format yaml
expect_rc 2 "--format yaml"
expect_err "not text, json, ctf or chrome-json" "--format yaml"
rwrun trace "$tpid" cli_tick --format ctf
expect_rc 2 "--format ctf without -o"
rwrun trace "$tpid" cli_tick --also json
expect_rc 2 "--also without =PATH"
rwrun trace "$tpid" cli_tick --also json=- --format text
expect_rc 2 "two outputs on stdout"
rwrun trace "$tpid" cli_tick --clock tai
expect_rc 2 "--clock tai"
rwrun trace "$tpid" cli_tick --reorder-window soon
expect_rc 2 "--reorder-window soon"
rwrun trace "$tpid" cli_tick --drain-ms 0
expect_rc 2 "--drain-ms 0"
rwrun trace "$(dead_pid)" cli_tick
expect_rc 3 "trace of an unknown PID"

step "the target exits while traced"
rw_bg "$tmp/events3" trace "$tpid" cli_tick
wait_log "$tmp/events3" "cli_tick"
kill_target "$tpid"
rw_bg_end 20
expect_rc 3 "trace of a target that exits"
expect_err "process $tpid exited" "trace of a target that exits"
expect_err "events? printed" "summary after the target exited"

step "a session over the process's cap on trace memory"
REWIRE_TRACE_MEM_MAX=1M start_target
rwrun trace "$tpid" cli_tick
expect_rc 1 "trace over REWIRE_TRACE_MEM_MAX"
expect_err "capped at 1.0 MiB \(REWIRE_TRACE_MEM_MAX\)" "the cap, named"
expect_err "smaller --ring-size" "what to change"
[ "$(probes_of cli_tick)" = 0 ] || fail "probe attached after a refusal"

echo "PASS"
