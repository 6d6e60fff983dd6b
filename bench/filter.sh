#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/filter.sh [RW_BENCH_FILTER] [ITERS] - instructions per event of
# each rw-bench-filter variant, counted by callgrind: only the variant's
# loop and what it calls (--toggle-collect=fb_loop_VARIANT), --smc-check=all
# because rewire patches code at run time. Ir / ITERS is printed, and the
# difference with the plain loop (the event alone).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../build/bench/bench/rw-bench-filter}
iters=${2:-200000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

command -v valgrind >/dev/null || { echo "filter.sh: valgrind not found" >&2; exit 77; }
[ -x "$bin" ] || { echo "filter.sh: $bin not built" >&2; exit 1; }

ir_of() {
	local v=$1 out=$tmp/callgrind.out.$1
	valgrind --tool=callgrind --smc-check=all \
		--toggle-collect="fb_loop_$v" \
		--callgrind-out-file="$out" \
		"$bin" --callgrind "$v" --iters "$iters" >/dev/null 2>"$tmp/log.$v" ||
		{ cat "$tmp/log.$v" >&2; return 1; }
	awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

printf 'callgrind: %s events per variant, Ir per event (loop included, and without it)\n' "$iters"
printf '  %-8s %12s %9s %9s\n' variant "Ir total" "Ir/event" "-loop"
plain=""
for v in plain generic ring pass out out_str out_all; do
	ir=$(ir_of "$v")
	[ -z "$plain" ] && plain=$ir
	awk -v v="$v" -v ir="$ir" -v p="$plain" -v n="$iters" \
		'BEGIN { printf "  %-8s %12d %9.1f %9.1f\n", v, ir, ir / n, (ir - p) / n }'
done
