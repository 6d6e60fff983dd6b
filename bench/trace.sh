#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/trace.sh [--quick] [RW_BENCH_TRACE] - the figures of "Tracing with
# `rewire trace`" in doc/BENCHMARKS.md, from one build of rw-bench-trace
# (default build/bench/bench/rw-bench-trace):
#
#   1. rw-bench-trace --only cost inside an LTTng session
#      (bench/lttng_session.sh): ns per event of the ring probe against
#      LTTng-UST, 1 and 2 threads, and what LTTng recorded;
#   2. rw-bench-trace --only rate: the reader's speed and the highest rate
#      a thread sustains with no drops (no LTTng session needed);
#   3. callgrind, instructions per iteration of each loop of
#      rw-bench-trace --list (as bench/callgrind.sh does for rw-bench):
#      valgrind --tool=callgrind --smc-check=all --toggle-collect=tb_loop_L.
#
# Without lttng-tools step 1 runs without a session (no LTTng rows).
# --quick: rw-bench-trace --quick and 50,000 callgrind iterations.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
quick=0
if [ "${1:-}" = "--quick" ]; then
	quick=1
	shift
fi
bin=${1:-$here/../build/bench/bench/rw-bench-trace}
[ -x "$bin" ] || { echo "trace.sh: $bin not built (cmake --build build/bench --target rw-bench-trace)" >&2; exit 1; }

args=()
iters=200000
if [ $quick = 1 ]; then
	args+=(--quick)
	iters=50000
fi

echo "== rw-bench-trace --only cost ${args[*]} (in an LTTng session)"
if command -v lttng >/dev/null; then
	"$here/lttng_session.sh" -- "$bin" --only cost "${args[@]}"
else
	echo "(lttng-tools not installed: no LTTng session, no LTTng rows)"
	"$bin" --only cost "${args[@]}"
fi

echo
echo "== rw-bench-trace --only rate ${args[*]}"
"$bin" --only rate "${args[@]}"

echo
if ! command -v valgrind >/dev/null; then
	echo "callgrind: valgrind not found, skipped"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'callgrind: %s, %s iterations per variant, Ir per iteration (loop + probe)\n' \
	"$(basename "$bin")" "$iters"
printf '  %-10s %14s %10s  %s\n' variant "Ir total" "Ir/iter" "note"
while read -r v loop; do
	out=$tmp/callgrind.out.$v
	valgrind --tool=callgrind --smc-check=all \
		--toggle-collect="tb_loop_$loop" \
		--callgrind-out-file="$out" \
		"$bin" --callgrind "$v" --iters "$iters" >"$tmp/stdout.$v" 2>"$tmp/log.$v" ||
		{ cat "$tmp/log.$v" >&2; exit 1; }
	ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$out")
	note=$(sed -n 's/^dropped: /dropped /p' "$tmp/stdout.$v")
	awk -v v="$v" -v ir="$ir" -v n="$iters" -v note="$note" \
		'BEGIN { printf "  %-10s %14d %10.1f  %s\n", v, ir, ir / n, note }'
done < <("$bin" --list)
