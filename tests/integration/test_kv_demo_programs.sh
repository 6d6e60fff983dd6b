#!/usr/bin/env bash
# examples/kv: the programs of the main demo, without rewire changing
# anything. rw-kvserver serves rw-kvload's load (three phases, marked on
# kvload's stdin) without a single error and shows its bug: wrong answers,
# well-formed, for values of 100 bytes or more, in every phase. It answers
# malformed requests with ERROR and goes on serving, and on SIGTERM it
# closes everything, prints its summary and exits 0 (under ASan, with no
# leak). Nothing here patches code, so the test runs on every backend.
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"

dir=$REWIRE_BUILD_DIR/examples/kv
server=$dir/rw-kvserver
load=$dir/rw-kvload
for exe in "$server" "$load"; do
	if [ ! -x "$exe" ]; then
		echo "SKIP: $exe not built (REWIRE_BUILD_EXAMPLES off?)"
		exit 77
	fi
done

tmp=$(mktemp -d)
server_pid=
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	for f in server.out load.out load.err garbage.out again.out again.err; do
		if [ -s "$tmp/$f" ]; then
			echo "--- $f"
			cat "$tmp/$f"
		fi
	done
	exit 1
}

# A field of a phase (or of "total") in kvload's JSON report.
field() {
	grep "\"label\": \"$1\"" "$tmp/report.json" |
		grep -o "\"$2\": [0-9.]*" | awk '{ print $2 }'
}

# 1. The server, on a port it picks.
"$server" --port 0 --threads 4 --port-file "$tmp/port" \
	>"$tmp/server.out" 2>&1 &
server_pid=$!

# 2. Three phases of about a second each. kvload waits for the port file;
# the first phase's second begins once kvload has stored its keys (which
# takes seconds on the emulated aarch64 machine: a phase of SETs only
# would have no GET to answer wrong), at most 60 s from now.
rc=0
{
	for _ in $(seq 600); do
		grep -q "keys stored in" "$tmp/load.err" 2>/dev/null && break
		sleep 0.1
	done
	sleep 1
	echo "mark second"
	sleep 1
	echo "mark third"
	sleep 1
	echo stop
} | "$load" --port-file "$tmp/port" --connections 8 --threads 2 \
	--keys 500 --json "$tmp/report.json" \
	>"$tmp/load.out" 2>"$tmp/load.err" || rc=$?
cat "$tmp/load.out"
[ "$rc" -eq 0 ] || fail "kvload exited with $rc (errors?)"
grep -q "^kvserver: pid $server_pid port [0-9]* workers 4$" \
	"$tmp/server.out" || fail "no pid and port line"
grep -q "kvload: phase second at" "$tmp/load.err" || fail "no mark line"
for phase in start second third total; do
	requests=$(field "$phase" requests)
	errors=$(field "$phase" errors)
	wrong=$(field "$phase" wrong)
	ok=$(field "$phase" ok)
	[ -n "$requests" ] || fail "phase $phase missing from the report"
	[ "$requests" -gt 0 ] || fail "phase $phase: no request"
	[ "$errors" -eq 0 ] || fail "phase $phase: $errors errors"
	[ "$wrong" -gt 0 ] || fail "phase $phase: no wrong answer (bug gone?)"
	[ "$ok" -gt 0 ] || fail "phase $phase: no right answer"
	[ $((ok + wrong + errors)) -eq "$requests" ] ||
		fail "phase $phase: ok + wrong + errors != requests"
done
grep -q "kvload: wrong: GET key-[0-9]*: bytes [0-9]* to [0-9]* of" \
	"$tmp/load.err" || fail "the wrong answers are not described"

# 3. Malformed input: each request gets its ERROR, the server survives.
"$load" --port-file "$tmp/port" --garbage >"$tmp/garbage.out" 2>&1 ||
	fail "kvload --garbage failed"
cat "$tmp/garbage.out"
kill -0 "$server_pid" 2>/dev/null || fail "the server died"

# 4. And still serves a clean load (stdin closed: --duration ends it).
"$load" --port-file "$tmp/port" --duration 1 --keys 200 </dev/null \
	>"$tmp/again.out" 2>"$tmp/again.err" ||
	fail "kvload after the garbage exited with an error"

# 5. SIGTERM: a clean stop within 10 s, exit status 0, the summary, and
# the port file removed.
kill -TERM "$server_pid"
for _ in $(seq 100); do
	kill -0 "$server_pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$server_pid" 2>/dev/null && fail "the server ignores SIGTERM"
rc=0
wait "$server_pid" || rc=$?
server_pid=
[ "$rc" -eq 0 ] || fail "the server exited with $rc"
grep -q "^kvserver: SIGTERM, stopping$" "$tmp/server.out" ||
	fail "no stop line"
grep -q "^kvserver: served [0-9]* requests" "$tmp/server.out" ||
	fail "no summary line"
[ ! -e "$tmp/port" ] || fail "the port file was left behind"
cat "$tmp/server.out"
echo "PASS"
