#!/usr/bin/env bash
# rewire trace's one timeline, against trace_burst (4 threads x 3000 events
# a round; 1500 in the aarch64 VM, in bursts that overflow a 4 KiB ring):
#   - oracle, JSON and text of one session (--also): for every thread,
#     fired = read + dropped, its events in order; the whole output in
#     non-decreasing ts except events marked late; every ts an integer ns;
#     text and JSON carry the same events with the same ns;
#   - the summary explains the drops per thread (--ring-size to use);
#   - clocks: events converted to CLOCK_REALTIME (default) and to
#     CLOCK_MONOTONIC (--clock monotonic) fall within 20 us of the clock
#     the program read around them, with the process recording the TSC (if
#     it can) and with REWIRE_TRACE_CLOCK=monotonic.
# shellcheck source=cli/common.sh disable=SC2119
source "$(dirname "$0")/cli/common.sh"

burst=${TRACE_BURST:-$REWIRE_BUILD_DIR/tests/cli/trace_burst}
# In the emulated aarch64 VM 1,500 events a thread a round (3,000
# natively): the python3 oracle over six rounds took minutes there. Bursts
# of 64 between 1 ms pauses still overflow the 4 KiB ring of round 1.
if [ -n "${REWIRE_AARCH64_VM:-}" ]; then
	export TRACE_BURST_EVENTS=1500
fi
[ -x "$burst" ] || skip "$burst not built"
[ "$have_python" -eq 1 ] || skip "python3 is needed for the oracle"

# start_burst NAME [ENV...]: trace_burst in $tmp/NAME, pid in $bpid.
start_burst() {
	local name=$1
	shift
	mkdir -p "$tmp/$name"
	env REWIRE_CTL=1 "$@" "$burst" "$tmp/$name" >"$tmp/$name/log" \
		2>"$tmp/$name/err" &
	bpid=$!
	bg_pids+=("$bpid")
	wait_socket "$bpid"
	wait_log "$tmp/$name/log" '^ready'
}

# session NAME ROUND ARGS...: one traced round; rewire's stderr in $err.
session() {
	local name=$1 round=$2
	shift 2
	rw_bg "$tmp/$name/out.$round" trace "$bpid" tm_ev "$@"
	wait_log "$tmp/bg.err" "tracing 1 tracepoint"
	touch "$tmp/$name/go.$round"
	wait_log "$tmp/$name/log" "^done $round\$"
	# Past the reorder window, then Ctrl-C: the rest is written at the
	# end anyway.
	sleep 0.3
	kill -INT "$bg_pid"
	rw_bg_end
	expect_rc 0 "trace round $round of $name"
}

# check NAME ROUND JSON [TEXT] [CLOCK]: the oracle.
check() {
	python3 - "$tmp/$1/log" "$2" "$3" "${4:-}" "${5:-}" <<'PY' ||
import json, sys
log, rnd, jpath, tpath, clock = sys.argv[1:6]
rnd = int(rnd)
fired, clk, cur = {}, {}, 0
for line in open(log):
    w = line.split()
    if w[0] == 'done':
        cur = int(w[1])
    elif cur == rnd - 1 and w[0] == 'fired':
        fired[int(w[1])] = int(w[2])
    elif cur == rnd - 1 and w[0] == 'clk':
        clk[(int(w[1]), int(w[2]))] = [int(x) for x in w[3:7]]
assert len(fired) == 4, fired
read, dropped, last, events = {}, {}, {}, []
prev = 0
late = 0
worst = 0
for line in open(jpath):
    e = json.loads(line)
    assert isinstance(e['ts'], int), line
    if 'dropped' in e:
        assert 'tid' in e, line  # no slot / nested: not here
        dropped[e['tid']] = dropped.get(e['tid'], 0) + e['dropped']
        continue
    assert 'corrupt' not in e, line
    t, seq = e['tid'], e['args']['seq']
    assert e['args']['thread'] in range(4), line
    assert seq > last.get(t, -1), ('thread order', line)
    last[t] = seq
    read[t] = read.get(t, 0) + 1
    if 'late_ns' in e:
        assert e['ts'] + e['late_ns'] == prev, ('late by', line, prev)
        late += 1
    else:
        assert e['ts'] >= prev, ('timeline', line, prev)
        prev = e['ts']
    events.append((e['ts'], t, seq))
    if (t, seq) in clk:
        lo, hi = clk[(t, seq)][0:2] if clock != 'monotonic' \
            else clk[(t, seq)][2:4]
        assert lo - 20000 <= e['ts'] <= hi + 20000, \
            ('clock', clock, line, lo, hi, e['ts'] - lo)
        worst = max(worst, lo - e['ts'], e['ts'] - hi)
for t, n in fired.items():
    assert read.get(t, 0) + dropped.get(t, 0) == n, \
        ('fired != read + dropped', t, n, read.get(t), dropped.get(t))
if clock:
    assert sum(1 for k in clk if k[1] >= 0) == len(clk)
    seen = {(t, s) for (_, t, s) in events}
    assert all(k in seen for k in clk), \
        'a bracketed event is missing (dropped?)'
if tpath:
    text = []
    for line in open(tpath):
        if line.startswith('# rewire:'):
            continue
        ts, tid, rest = line.split(' ', 2)
        s, ns = ts.split('.')
        assert len(ns) == 9, line
        seq = int(rest.split('seq=')[1])
        text.append((int(s) * 10**9 + int(ns), int(tid), seq))
    assert text == events, 'text and JSON differ'
print('round %d: %d events, %d dropped, %d late, %d threads%s' % (
    rnd, len(events), sum(dropped.values()), late, len(read),
    ', %s clock: at most %d ns outside the bracket' % (clock, worst)
    if clock else ''))
PY
		fail "oracle of $1 round $2"
}

for mode in auto monotonic; do
	step "merged output ($mode clock in the process)"
	if [ $mode = auto ]; then
		start_burst $mode
	else
		start_burst $mode REWIRE_TRACE_CLOCK=monotonic
	fi
	o=$tmp/$mode
	# Round 1: small rings, drops; JSON and text of the same session.
	session $mode 1 --format json --ring-size 4K --drain-ms 20 \
		--also "text=$o/text.1"
	check $mode 1 "$o/out.1" "$o/text.1"
	expect_err "[0-9]+ events printed, [1-9][0-9]* dropped" "summary"
	expect_err "thread [0-9]+: [0-9]+ events? dropped" "drops per thread"
	expect_err "--ring-size [0-9]+[KM] would have held that" "advice"
	# Round 2: large rings, wall clock; round 3: CLOCK_MONOTONIC.
	session $mode 2 --json --ring-size 4M
	check $mode 2 "$o/out.2" "" realtime
	session $mode 3 --json --ring-size 4M --clock monotonic
	check $mode 3 "$o/out.3" "" monotonic
	kill_target "$bpid"
done

echo "PASS"
