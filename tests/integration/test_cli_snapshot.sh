#!/usr/bin/env bash
# The flight recorder against snap_target (snap/snap_target.c: three threads
# firing snap_req(thread, seq, op) as fast as they can, built -O2 with
# Debian's flags):
#   - `rewire snapshot` without a flight recorder: exit 1, and the message
#     says how to start one;
#   - `rewire trace --snapshot`: the threads never wait for a reader: each
#     fires more than three full rings' worth of events while nobody reads
#     (progress, not speed: the rates are printed, not compared);
#   - `rewire snapshot PID -o F --last 1`: per thread consecutive sequence
#     numbers, every event the program had fired before the snapshot began
#     (its progress lines tell) and none it fired after the snapshot ended,
#     every timestamp within the last second; the first line says
#     what the snapshot covers; JSON too (integer ns, the same checks);
#     Chrome JSON (the same events, consecutive per thread) and CTF (as
#     many events through babeltrace2);
#   - the signal: `kill -USR1` of the rewire command writes F.1, F.2;
#   - Ctrl-C with --final: a last snapshot, the session stopped (then
#     `rewire snapshot` finds none), exit 0;
#   - the process killed under a --final flight recorder: its last events
#     are written from the rings it left, exit 3.
# shellcheck source=cli/common.sh disable=SC2119
source "$(dirname "$0")/cli/common.sh"

snap_target=${SNAP_TARGET:-$REWIRE_BUILD_DIR/tests/cli/snap_target}
[ -x "$snap_target" ] || skip "$snap_target not built"
[ "$have_python" -eq 1 ] || skip "python3 is needed to check the snapshots"

start_snap_target() {
	ntarget=$((ntarget + 1))
	tlog=$tmp/target.$ntarget.out
	terr=$tmp/target.$ntarget.err
	# About 10,000 events per second per thread (--work), so that the
	# checks stay quick; niced, so that the test's own commands get the
	# CPU they need on a busy machine.
	REWIRE_CTL=1 nice -n 10 "$snap_target" --lifetime 900 --work 20000 \
		>"$tlog" 2>"$terr" &
	tpid=$!
	bg_pids+=("$tpid")
	wait_socket "$tpid"
	wait_log "$tlog" '^ready'
}

# Events per second of all threads together over about @1 seconds, from
# the target's progress lines.
rate() {
	local a b
	a=$(grep '^progress' "$tlog" | tail -n 1)
	sleep "$1"
	b=$(grep '^progress' "$tlog" | tail -n 1)
	python3 -c "import sys
a = [int(x) for x in sys.argv[1].split()[1:]]
b = [int(x) for x in sys.argv[2].split()[1:]]
print(int(sum(b[2:]) - sum(a[2:])) * 1e9 / (b[0] - a[0]))" "$a" "$b"
}

# check_snapshot FILE FORMAT LAST T0 T1: the checks above on a text or JSON
# snapshot taken between realtime T0 and T1 (ns), with --last LAST seconds,
# against the program's progress lines.
check_snapshot() {
	local i
	# A progress line after T1.
	for ((i = 0; i < 100; i++)); do
		[ "$(grep '^progress' "$tlog" | tail -n 1 | cut -d' ' -f3)" \
			-gt "$5" ] && break
		sleep 0.02
	done
	python3 - "$@" "$tlog" <<'EOF' || fail "snapshot $1"
import json, re, sys
path, fmt, last, t0, t1, tlog = sys.argv[1:7]
last, t0, t1 = float(last), int(t0), int(t1)
progress = [[int(x) for x in l.split()[1:]] for l in open(tlog)
            if l.startswith("progress ")]
# The counters before T0 (every event they count was fired before the
# snapshot began) and after T1 (none of the snapshot's events is newer).
before = [p for p in progress if p[1] <= t0][-1][2:]
after = [p for p in progress if p[1] >= t1][0][2:]
lines = open(path).read().splitlines()
assert lines, "empty snapshot"
head = lines[0]
events = {}
tss = []
ev_re = re.compile(r'^(\d+)\.(\d{9}) (\d+) snap_req: thread=(\d) '
                   r'seq=(\d+) op="(GET|SET|DELETE|INCR)"$')
if fmt == "text":
    assert head.startswith("# rewire: snapshot of process"), head
    assert "before it" in head and "sub-buffers given up" in head, head
    for l in lines[1:]:
        # One timeline: no event placed out of order, but for a tie the
        # clock itself breaks: a thread that moved to another CPU may read
        # a TSC a few nanoseconds behind the one it left (virtual machines
        # keep them only that close), and the reader then says so rather
        # than reorder a thread's own events.
        m = re.search(r'arrived ([0-9.]+) us late', l)
        assert "late" not in l or (m and float(m.group(1)) < 1.0), l
        if l.startswith("#"):
            continue
        m = ev_re.match(l)
        assert m, "not an event line: %r" % l
        ts = int(m.group(1)) * 10**9 + int(m.group(2))
        events.setdefault(int(m.group(4)), []).append(int(m.group(5)))
        tss.append(ts)
else:
    h = json.loads(head)["snapshot"]
    assert h["events"] > 0 and t0 - 10**9 <= h["ts"] <= t1, h
    for l in lines[1:]:
        e = json.loads(l)
        assert e.get("late_ns", 0) < 1000 and "late" not in e, e
        if e.get("tp") != "snap_req":
            continue
        assert isinstance(e["ts"], int), e
        events.setdefault(e["args"]["thread"], []).append(e["args"]["seq"])
        tss.append(e["ts"])
    assert h["events"] == len(tss), (h, len(tss))
assert sorted(events) == [0, 1, 2], sorted(events)
slack = 50 * 10**6
for t, seqs in events.items():
    # The order of a thread is the order of its ring; the merged timeline
    # interleaves threads only.
    for a, b in zip(seqs, seqs[1:]):
        assert b == a + 1, "thread %d: %d then %d" % (t, a, b)
    # The newest events are those of the moment of the snapshot: every
    # event fired before it began is there, none fired after it ended.
    assert before[t] <= seqs[-1] + 1 < after[t] + 1, \
        (t, before[t], seqs[-1], after[t])
if last:
    lo = t0 - int(last * 1e9) - slack
    assert min(tss) >= lo, "an event %.3f s before the snapshot" % \
        ((t0 - min(tss)) / 1e9)
assert max(tss) <= t1 + slack, "an event after the snapshot"
print("%s: %d events, threads %s, newest %s, counters %s .. %s\n  %s" % (
    path, len(tss), sorted(events), [events[t][-1] for t in sorted(events)],
    before, after, head))
EOF
}

now_ns() {
	date +%s%N
}

start_snap_target

step "no flight recorder"
rwrun snapshot "$tpid" -o "$tmp/none.txt"
expect_rc 1 "snapshot without a flight recorder"
expect_err "no flight-recorder session" "snapshot without a flight recorder"
expect_err "rewire trace $tpid TRACEPOINT... --snapshot" "how to start one"

step "rate untraced"
rate0=$(rate 1)
echo "untraced: $rate0 events/s"

step "rewire trace --snapshot"
rw_bg "$tmp/trace.out" trace "$tpid" snap_req --snapshot --final \
	--ring-size 256K -o "$tmp/sig.txt"
wait_log "$tmp/bg.err" "flight recorder: process $tpid"
trace_pid=$bg_pid
sleep 0.5
rate1=$(rate 1)
echo "flight recorder on: $rate1 events/s"
# Never blocking: nobody reads the rings, so a thread that waited for room
# would stop once its ring is full. Each thread must go on well past three
# rings' worth of events (a 256 KiB ring holds at most 256 KiB / 48 bytes,
# 5,462 of these records). Progress, not speed: the machine may be loaded
# (speed is in doc/BENCHMARKS.md, "Flight recorder snapshots").
python3 - "$tlog" <<'EOF' || fail "a thread stopped under the flight recorder"
import sys, time
cap = 3 * (256 * 1024 // 48)
def counters():
    last = [l for l in open(sys.argv[1]) if l.startswith("progress ")][-1]
    return [int(x) for x in last.split()[3:]]
c0 = counters()
deadline = time.time() + 90
while True:
    c = counters()
    d = [b - a for a, b in zip(c0, c)]
    if min(d) > cap:
        print("each thread fired more than %d events on: %s" % (cap, d))
        break
    if time.time() > deadline:
        sys.exit("after 90 s the threads fired only %s events" % d)
    time.sleep(0.1)
EOF
[ ! -s "$tmp/trace.out" ] || fail "trace --snapshot -o wrote to stdout"

step "rewire snapshot --last 1"
t0=$(now_ns)
rwrun snapshot "$tpid" -o "$tmp/s1.txt" --last 1
t1=$(now_ns)
expect_rc 0 "snapshot --last 1"
expect_err "snapshot of process $tpid session [0-9]+ at " "coverage on stderr"
check_snapshot "$tmp/s1.txt" text 1 "$t0" "$t1"

step "rewire snapshot --format json --last 0.5"
t0=$(now_ns)
rwrun snapshot "$tpid" --format json -o "$tmp/s2.json" --last 0.5
t1=$(now_ns)
expect_rc 0 "snapshot --format json"
check_snapshot "$tmp/s2.json" json 0.5 "$t0" "$t1"

step "rewire snapshot --format ctf, chrome-json"
rwrun snapshot "$tpid" --format chrome-json -o "$tmp/s3.json" --last 0.5
expect_rc 0 "snapshot --format chrome-json"
n=$(grep -Eo '[0-9]+ events? of' <<<"$err" | cut -d' ' -f1)
python3 - "$tmp/s3.json" "$n" <<'EOF' || fail "snapshot --format chrome-json"
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"] if isinstance(d, dict) else d
inst = [e for e in ev if e.get("ph") == "i" and e["name"] == "snap_req"]
assert len(inst) == int(sys.argv[2]), (len(inst), sys.argv[2])
seqs = {}
for e in inst:
    seqs.setdefault(e["args"]["thread"], []).append(e["args"]["seq"])
for t, s in seqs.items():
    assert s == list(range(s[0], s[0] + len(s))), t
EOF
if command -v babeltrace2 >/dev/null 2>&1; then
	rwrun snapshot "$tpid" --format ctf -o "$tmp/s4.ctf" --last 0.5
	expect_rc 0 "snapshot --format ctf"
	n=$(grep -Eo '[0-9]+ events? of' <<<"$err" | cut -d' ' -f1)
	got=$(babeltrace2 "$tmp/s4.ctf" | grep -c 'snap_req: ') ||
		fail "babeltrace2 cannot read the snapshot"
	[ "$got" = "$n" ] ||
		fail "babeltrace2 reads $got events of the snapshot's $n"
else
	echo "(babeltrace2 missing: the CTF snapshot is not read back)"
fi

step "the signal"
t0=$(now_ns)
kill -USR1 "$trace_pid"
wait_log "$tmp/bg.err" "-> $tmp/sig.txt.1"
t1=$(now_ns)
check_snapshot "$tmp/sig.txt.1" text 0 "$t0" "$t1"
kill -USR1 "$trace_pid"
wait_log "$tmp/bg.err" "-> $tmp/sig.txt.2"

step "usage errors"
rwrun snapshot "$tpid" --last soon
expect_rc 2 "--last soon"
rwrun snapshot "$tpid" --format xml
expect_rc 2 "--format xml"
rwrun trace "$tpid" snap_req --snapshot --on-signal KILL
expect_rc 2 "--on-signal KILL"
rwrun snapshot "$tpid" --session 999
expect_rc 1 "--session 999"
expect_err "no flight-recorder session 999" "--session 999"
rwrun trace "$tpid" snap_req --snapshot --filter 'thread =='
expect_rc 2 "--snapshot --filter with a syntax error"
expect_err "\\^" "the caret under the filter's column"

step "Ctrl-C with --final"
t0=$(now_ns)
kill -INT "$trace_pid"
rw_bg_end
t1=$(now_ns)
expect_rc 0 "trace --snapshot ended by SIGINT"
expect_err "3 snapshots written" "summary"
check_snapshot "$tmp/sig.txt" text 0 "$t0" "$t1"
rwrun snapshot "$tpid"
expect_rc 1 "snapshot after the session stopped"
expect_err "no flight-recorder session" "snapshot after the session stopped"

step "a filtered flight recorder"
rw_bg "$tmp/trace3.out" trace "$tpid" snap_req --snapshot \
	--filter 'thread == 1 && op == "*"'
wait_log "$tmp/bg.err" "flight recorder: process $tpid"
sleep 0.3
rwrun snapshot "$tpid" --format json -o "$tmp/f.json"
expect_rc 0 "snapshot of a filtered flight recorder"
python3 - "$tmp/f.json" <<'EOF' || fail "the filtered flight recorder kept other threads' events"
import json, sys
seqs = []
for l in open(sys.argv[1]).read().splitlines()[1:]:
    e = json.loads(l)
    if e.get("tp") != "snap_req":
        continue
    assert e["args"]["thread"] == 1, e
    seqs.append(e["args"]["seq"])
assert len(seqs) > 100, len(seqs)
assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "holes"
EOF
kill -INT "$bg_pid"
rw_bg_end
expect_rc 0 "filtered trace --snapshot ended by SIGINT"

step "the process dies under a --final flight recorder"
rw_bg "$tmp/trace2.out" trace "$tpid" 'snap_*' --snapshot --final \
	-o "$tmp/crash.txt"
wait_log "$tmp/bg.err" "flight recorder: process $tpid"
sleep 0.3
kill_target "$tpid"
rw_bg_end 20
expect_rc 3 "flight recorder of a process that died"
expect_err "process $tpid exited" "flight recorder of a process that died"
grep -Eq 'snap_req: thread=[0-2] seq=[0-9]+' "$tmp/crash.txt" ||
	fail "no events written from the rings of the dead process"

echo "PASS"
