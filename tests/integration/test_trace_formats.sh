#!/usr/bin/env bash
# rewire trace's CTF and Chrome trace-event outputs, read by independent
# readers and compared event by event with a reference:
#   1. sink_feed (trace_formats/sink_feed.c) feeds a synthetic session with
#      every awkward case straight into the two sinks and writes what it
#      fed (exact); babeltrace2 must print every event, field, type and
#      timestamp of the CTF trace and report the drops as discarded
#      (check_ctf.py), and the Chrome JSON must be valid, well-formed
#      trace events with the same events (check_chrome.py);
#   2. a real session of tf_target (tracepoints of every kind, a function
#      graph) written as CTF, with --also text, json and chrome-json: the
#      CTF through babeltrace2 and the Chrome JSON must match the text and
#      JSON outputs of the same session; then a session that drops events
#      (a small ring) on the monotonic clock; and the errors for a bad -o.
# Skips (77) without babeltrace2. python3 reads the outputs.
# shellcheck source=cli/common.sh disable=SC2119
source "$(dirname "$0")/cli/common.sh"

here=$(cd "$(dirname "$0")" && pwd)/trace_formats
feed=${SINK_FEED:-$REWIRE_BUILD_DIR/tests/trace_formats/sink_feed}

command -v babeltrace2 >/dev/null 2>&1 ||
	skip "babeltrace2 is not installed (Debian: apt-get install babeltrace2)"
[ "$have_python" -eq 1 ] || skip "python3 is not installed"
[ -x "$feed" ] || skip "$feed not built"

step "sinks fed directly: every kind, names, drops, graph cases"
mkdir "$tmp/feed"
"$feed" feed "$tmp/feed/ctf" "$tmp/feed/chrome.json" "$tmp/feed/oracle" ||
	fail "sink_feed failed"
python3 "$here/check_ctf.py" "$tmp/feed/ctf" --oracle "$tmp/feed/oracle" ||
	fail "CTF of the synthetic session"
python3 "$here/check_chrome.py" "$tmp/feed/chrome.json" \
	--oracle "$tmp/feed/oracle" || fail "Chrome JSON of the synthetic session"
# The directory must be new or empty; errors say what is wrong.
"$feed" open "$tmp/feed/ctf" 2>"$tmp/open.err" && fail "a non-empty directory was taken"
grep -q "Directory not empty" "$tmp/open.err" || fail "non-empty: $(cat "$tmp/open.err")"
"$feed" open "$tmp/feed/oracle/x" 2>"$tmp/open.err" && fail "a path under a file was taken"
grep -q "Not a directory" "$tmp/open.err" || fail "under a file: $(cat "$tmp/open.err")"
mkdir "$tmp/empty"
"$feed" open "$tmp/empty" || fail "an empty directory was refused"

kinds='tf_ints=s,u,p,b;tf_strs=str,str;tf_float=f,f'
functions=(--function 'tf_*' --graph)
if [ "$backend" = generic ]; then
	functions=() # function tracing needs code patching
fi

step "a session as CTF, text, JSON and Chrome JSON at once"
start_target
out_dir=$tmp/s1
mkdir "$out_dir"
rw_bg "$tmp/bg.out" trace "$tpid" 'tf_*' "${functions[@]}" \
	--format ctf -o "$out_dir/ctf" --also "text=$out_dir/text" \
	--also "json=$out_dir/json" --also "chrome-json=$out_dir/chrome.json"
wait_log_pidvar=bg_pid # fail at once if the command exits
wait_log "$tmp/bg.err" "tracing [0-9]+ tracepoints.*\(Ctrl-C to stop\)"
if [ ${#functions[@]} -gt 0 ]; then
	wait_log "$tmp/bg.err" "tracing [0-9]+ functions?.*\(Ctrl-C to stop\)"
fi
kill -USR1 "$tpid"
wait_log "$tlog" "^burst 1 done"
wait_log_pidvar=
sleep 0.3 # the reorder window
kill -INT "$bg_pid"
rw_bg_end
expect_rc 0 "trace ended by SIGINT"
python3 "$here/check_ctf.py" "$out_dir/ctf" --text "$out_dir/text" \
	--json "$out_dir/json" --kinds "$kinds" --min-events 180 ||
	fail "CTF against the text and JSON outputs"
python3 "$here/check_chrome.py" "$out_dir/chrome.json" --text "$out_dir/text" \
	--json "$out_dir/json" --kinds "$kinds" ||
	fail "Chrome JSON against the text and JSON outputs"
grep -q 'procname = "tf_target"' "$out_dir/ctf/metadata" ||
	fail "the CTF env does not name the process"
kill_target "$tpid"

step "the target dies during the session: both traces stay readable"
start_target
out_dir=$tmp/s3
mkdir "$out_dir"
rw_bg "$tmp/bg.out" trace "$tpid" 'tf_*' --format ctf -o "$out_dir/ctf" \
	--also "chrome-json=$out_dir/chrome.json"
wait_log "$tmp/bg.err" "tracing [0-9]+ tracepoints.*\(Ctrl-C to stop\)"
kill -USR1 "$tpid"
wait_log "$tlog" "^burst 1 done"
sleep 0.5 # delivered (the sinks begin then, and read the process's name)
kill_target "$tpid"
rw_bg_end
expect_rc 3 "trace of a target that died"
n=$(babeltrace2 "$out_dir/ctf" | grep -c "tf_ints: ") ||
	fail "babeltrace2 cannot read the CTF of a session cut short"
[ "$n" -eq 60 ] || fail "$n tf_ints events in the CTF, expected 60"
grep -q 'procname = "tf_target"' "$out_dir/ctf/metadata" ||
	fail "the CTF env lost the process's name when it died"
python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
n = sum(1 for e in d["traceEvents"] if e.get("name") == "tf_ints")
assert n == 60, n' "$out_dir/chrome.json" ||
	fail "the Chrome JSON of a session cut short"

step "drops as discarded events, monotonic clock"
REWIRE_TRACE_CLOCK=monotonic start_target
out_dir=$tmp/s2
mkdir "$out_dir"
rw_bg "$tmp/bg.out" trace "$tpid" tf_ints --ring-size 4K --clock monotonic \
	--format ctf -o "$out_dir/ctf" --also "text=$out_dir/text" \
	--also "json=$out_dir/json" --also "chrome-json=$out_dir/chrome.json"
wait_log_pidvar=bg_pid
wait_log "$tmp/bg.err" "tracing 1 tracepoint.*\(Ctrl-C to stop\)"
kill -USR2 "$tpid"
wait_log "$tlog" "^flood 1 done"
wait_log_pidvar=
sleep 0.3
kill -INT "$bg_pid"
rw_bg_end
expect_rc 0 "trace ended by SIGINT"
grep -q "events dropped on thread" "$out_dir/text" ||
	fail "nothing dropped with a 4 KiB ring: the drops are not tested"
python3 "$here/check_ctf.py" "$out_dir/ctf" --text "$out_dir/text" \
	--json "$out_dir/json" --kinds 'tf_ints=s,u,p,b' --min-events 100 ||
	fail "CTF of a session with drops"
python3 "$here/check_chrome.py" "$out_dir/chrome.json" --text "$out_dir/text" \
	--json "$out_dir/json" --kinds 'tf_ints=s,u,p,b' ||
	fail "Chrome JSON of a session with drops"
grep -q 'clock = "monotonic"' "$out_dir/ctf/metadata" ||
	fail "the CTF clock is not the monotonic one"

step "bad -o for ctf"
: >"$tmp/afile"
rwrun trace "$tpid" tf_ints --duration 0.2 --format ctf -o "$tmp/afile/ctf"
expect_rc 1 "ctf under a file"
expect_err "Not a directory" "ctf under a file"
rwrun trace "$tpid" tf_ints --duration 0.2 --format ctf -o "$tmp/s2/ctf"
expect_rc 1 "ctf into a trace directory"
expect_err "Directory not empty" "ctf into a trace directory"

echo "PASS"
