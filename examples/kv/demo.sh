#!/usr/bin/env bash
# The demo: a key-value server under load is traced, switched and
# live-patched by the rewire command while it serves, and the load
# generator reports what its clients saw in each phase.
#
#   examples/kv/demo.sh BUILD_DIR [--phase-seconds N] [--keep] [--installed]
#                                 [--patch FILE]
#
# BUILD_DIR is a configured and built rewire tree (scripts/demo.sh builds
# build/default and calls this). With --installed, BUILD_DIR is a build of
# examples/kv alone against the installed rewire (cmake -S examples/kv),
# and the command is the installed `rewire` (scripts/package-test.sh).
# Phases (each about N seconds, default 3):
#   before      the server as started: checksums computed byte by byte,
#               the value bug present (values of 100 bytes or more come
#               back with a wrong last byte: "wrong" answers)
#   tracing     `rewire trace` streams the kv_request tracepoint
#   after-trace the probe detached again
#   timing      `rewire funclatency` times crc32c_bytewise, a function
#               with no annotation in its source (function tracing of its
#               patchable entry), and draws the histogram of its durations
#   switching / after-switch   `rewire call` points the kv_checksum static
#               call at the SSE4.2 implementation
#   building-patch             `rewire build-patch` makes fix_value.so from
#                              patches/fix_value.diff (while the load runs);
#                              with --patch FILE, FILE is applied instead
#                              (the aarch64 VM's test, where the compiler
#                              runs emulated; test_bp_kv builds it there)
#   patching / patched         `rewire patch` applies it
#   reverting / reverted       `rewire unpatch` takes it back
# Exit status: 0 when no request failed and the patch removed every wrong
# answer while it was applied; 1 otherwise.
set -euo pipefail

usage() {
	sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

build=${1:-}
[ -n "$build" ] || usage 2
[ "$build" = -h ] || [ "$build" = --help ] && usage 0
shift
secs=3
keep=0
installed=0
prebuilt=
while [ $# -gt 0 ]; do
	case $1 in
	--phase-seconds) secs=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	--installed) installed=1; shift ;;
	--patch)
		[ $# -ge 2 ] && [ -f "$2" ] ||
			{ echo "demo: --patch needs an existing file" >&2; exit 2; }
		prebuilt=$2; shift 2 ;;
	-h | --help) usage 0 ;;
	*) echo "demo: unknown option $1" >&2; usage 2 ;;
	esac
done

bin=$build/examples/kv
src=$(cd "$(dirname "$0")/../.." && pwd)
rewire=$build/tools/rewire
if [ "$installed" = 1 ]; then
	bin=$build
	rewire=$(command -v rewire) ||
		{ echo "demo: --installed: no rewire command in PATH" >&2; exit 1; }
fi
server=$bin/rw-kvserver
load=$bin/rw-kvload
patch=$bin/fix_value.so
for f in "$rewire" "$server" "$load" "$patch"; do
	[ -e "$f" ] || { echo "demo: $f is missing: build $build first" >&2; exit 1; }
done

work=$(mktemp -d /tmp/rewire-demo.XXXXXX)
server_pid=
load_pid=
cleanup() {
	[ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null || true
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	[ "$keep" = 1 ] && echo "demo: files kept in $work" || rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# The load generator takes "mark PHASE" lines on its standard input.
mark() { echo "mark $1" >&3; }

say "starting the server under \`rewire run\` (4 worker threads)"
"$rewire" run -- "$server" --port 0 --port-file "$work/port" --threads 4 \
	>"$work/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { cat "$work/server.out"; echo "demo: the server did not start" >&2; exit 1; }
echo "server pid $server_pid, port $(cat "$work/port")"

say "starting the load: 16 connections from 2 threads"
mkfifo "$work/ctl"
"$load" --port-file "$work/port" --connections 16 --threads 2 --duration 0 \
	--json "$work/report.json" <"$work/ctl" >"$work/report.txt" 2>"$work/load.err" &
load_pid=$!
exec 3>"$work/ctl"
sleep 1
mark before
sleep "$secs"

say "rewire ls $server_pid"
"$rewire" ls "$server_pid" --keys --calls --tracepoints --patches

say "rewire trace $server_pid kv_request (for $secs s; the first 10 events shown)"
mark tracing
"$rewire" trace "$server_pid" kv_request --duration "$secs" \
	>"$work/trace.txt" 2>"$work/trace.err"
head -n 10 "$work/trace.txt"
echo "... $(wc -l <"$work/trace.txt") events in all"
cat "$work/trace.err"
mark after-trace
sleep "$secs"

say "rewire funclatency $server_pid crc32c_bytewise (for $secs s; no annotation in its source)"
mark timing
"$rewire" funclatency "$server_pid" crc32c_bytewise --duration "$secs" \
	--interval "$secs" >"$work/latency.txt" 2>"$work/latency.err"
cat "$work/latency.err" "$work/latency.txt"

say "rewire call $server_pid kv_checksum crc32c_hw"
mark switching
"$rewire" call "$server_pid" kv_checksum crc32c_hw
mark after-switch
sleep "$secs"

# The fix, from the diff a developer would send for review: rewire
# build-patch recompiles kvserver.c before and after it with the build's
# own commands, finds the functions whose code changed and makes the
# patch, bound to this build of the server. (patches/fix_value.c is the
# same fix written by hand.)
mark building-patch
if [ -n "$prebuilt" ]; then
	say "rewire build-patch: skipped, --patch $prebuilt"
	patch=$prebuilt
else
	say "rewire build-patch -c $build --object $server --diff examples/kv/patches/fix_value.diff -o fix_value.so"
	"$rewire" build-patch -c "$build" --source "$src" --object "$server" \
		--diff "$src/examples/kv/patches/fix_value.diff" \
		-o "$work/fix_value.so"
	patch=$work/fix_value.so
fi

say "rewire patch $server_pid fix_value.so"
mark patching
"$rewire" patch "$server_pid" "$patch"
mark patched
sleep "$secs"

say "rewire unpatch $server_pid fix_value"
mark reverting
"$rewire" unpatch "$server_pid" fix_value
mark reverted
sleep "$secs"

echo stop >&3
exec 3>&-
status=0
wait "$load_pid" || status=$?
load_pid=
kill -TERM "$server_pid"
server_status=0
wait "$server_pid" || server_status=$?
server_pid=

say "report (latency in microseconds, as the clients measured it)"
cat "$work/report.txt"
if [ "$server_status" != 0 ] || ! grep 'kvserver: served' "$work/server.out"; then
	echo "demo: the server did not shut down cleanly on SIGTERM" \
	     "(status $server_status):" >&2
	cat "$work/server.out" >&2
	exit 1
fi
if [ "$status" != 0 ]; then
	echo "demo: requests failed (see above)" >&2
	cat "$work/load.err" >&2
	exit 1
fi
# Columns: phase time requests req/s errors wrong p50 p99.
wrong() { awk -v p="$1" '$1 == p { print $6 }' "$work/report.txt"; }
before=$(wrong before) patched=$(wrong patched) reverted=$(wrong reverted)
echo
if [ "${before:-0}" -gt 0 ] && [ "${patched:-1}" -eq 0 ] && [ "${reverted:-0}" -gt 0 ]; then
	echo "demo: no request failed. Wrong answers (the bug): $before before" \
	     "the patch, 0 while it was applied, $reverted after it was reverted."
else
	echo "demo: the patch did not behave as expected: wrong answers" \
	     "before=$before patched=$patched reverted=$reverted" >&2
	exit 1
fi
