#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/callgrind.sh [RW_BENCH] [ITERS] - instructions per iteration of each
# rw-bench loop, counted by callgrind (deterministic, unlike the timings).
#
# For every variant: rw-bench --callgrind VARIANT runs bench_loop_VARIANT
# once for ITERS iterations (default 1,000,000) under
#   valgrind --tool=callgrind --smc-check=all --toggle-collect=bench_loop_V
# so that only that loop and what it calls are counted (--smc-check=all
# because rewire patches code at run time). Ir / ITERS is printed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../build/bench/bench/rw-bench}
iters=${2:-1000000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind not found" >&2; exit 77; }
[ -x "$bin" ] || { echo "callgrind.sh: $bin not built" >&2; exit 1; }

ir_of() {
	local v=$1 out=$tmp/callgrind.out.$1
	valgrind --tool=callgrind --smc-check=all \
		--toggle-collect="bench_loop_$v" \
		--callgrind-out-file="$out" \
		"$bin" --callgrind "$v" --iters "$iters" >/dev/null 2>"$tmp/log.$v" ||
		{ cat "$tmp/log.$v" >&2; return 1; }
	# "summary: N" (or "totals: N") is the Ir collected while the
	# toggle function was on the stack.
	awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

printf 'callgrind: %s iterations per variant, Ir per iteration (loop + callee)\n' "$iters"
printf '  %-16s %14s %10s\n' variant "Ir total" "Ir/iter"
for v in direct static_call indirect retpoline plain key flag \
	plain_default key_default flag_default \
	plain_natural key_natural key_natural_rw; do
	ir=$(ir_of "$v")
	awk -v v="$v" -v ir="$ir" -v n="$iters" \
		'BEGIN { printf "  %-16s %14d %10.3f\n", v, ir, ir / n }'
done

# rw-bench-tp (bench/tracepoint.c): the same count for each tracepoint
# loop, tpb_loop_VARIANT, with the probes of the "on" variants attached
# (their patched code and bound stubs are counted: --smc-check=all).
# RW_BENCH_TP names the binary; by default it sits next to RW_BENCH.
tp_bin=${RW_BENCH_TP:-$(dirname "$bin")/rw-bench-tp}
if [ -x "$tp_bin" ]; then
	tp_ir_of() {
		local v=$1 out=$tmp/callgrind.out.tp.$1
		valgrind --tool=callgrind --smc-check=all \
			--toggle-collect="tpb_loop_$v" \
			--callgrind-out-file="$out" \
			"$tp_bin" --callgrind "$v" --iters "$iters" >/dev/null 2>"$tmp/log.tp.$v" ||
			{ cat "$tmp/log.tp.$v" >&2; return 1; }
		awk '/^(summary|totals):/ { print $2; exit }' "$out"
	}
	printf '\ncallgrind: %s, %s iterations per variant, Ir per iteration (loop + probes)\n' \
		"$(basename "$tp_bin")" "$iters"
	printf '  %-16s %14s %10s\n' variant "Ir total" "Ir/iter"
	for v in $("$tp_bin" --list); do
		ir=$(tp_ir_of "$v")
		awk -v v="$v" -v ir="$ir" -v n="$iters" \
			'BEGIN { printf "  %-16s %14d %10.3f\n", v, ir, ir / n }'
	done
else
	printf '\ncallgrind: %s not built, tracepoint counts skipped\n' "$tp_bin"
fi

# rw-bench-pv (bench/pv_bench.c): the same count for a provider read in
# each form, pvb_loop_VARIANT; "vs plain" is the difference with a plain
# load of the current provider and the call of its read function.
# RW_BENCH_PV names the binary; by default it sits next to RW_BENCH.
pv_bin=${RW_BENCH_PV:-$(dirname "$bin")/rw-bench-pv}
if [ -x "$pv_bin" ]; then
	pv_ir_of() {
		local v=$1 out=$tmp/callgrind.out.pv.$1
		valgrind --tool=callgrind --smc-check=all \
			--toggle-collect="pvb_loop_$v" \
			--callgrind-out-file="$out" \
			"$pv_bin" --callgrind "$v" --iters "$iters" >/dev/null 2>"$tmp/log.pv.$v" ||
			{ cat "$tmp/log.pv.$v" >&2; return 1; }
		awk '/^(summary|totals):/ { print $2; exit }' "$out"
	}
	printf '\ncallgrind: %s, %s iterations per variant, Ir per iteration (loop + read function)\n' \
		"$(basename "$pv_bin")" "$iters"
	printf '  %-16s %14s %10s %9s\n' variant "Ir total" "Ir/iter" "vs plain"
	plain_ir=
	for v in $("$pv_bin" --list); do
		ir=$(pv_ir_of "$v")
		[ -n "$plain_ir" ] || plain_ir=$ir
		awk -v v="$v" -v ir="$ir" -v p="$plain_ir" -v n="$iters" \
			'BEGIN { printf "  %-16s %14d %10.3f %+9.3f\n", v, ir, ir / n, (ir - p) / n }'
	done
else
	printf '\ncallgrind: %s not built, provider counts skipped\n' "$pv_bin"
fi

# rw-bench-lp (bench/lp_bench.c): the same count for a call of a live
# patched function in each state, lpb_loop_VARIANT, with the state set up
# before the loop (entry NOPs, dispatcher, jmp new); the dispatcher and the
# far stubs are counted (--smc-check=all). "vs plain" is the difference
# with the same function built without NOPs; "entry" is what the program
# found at the function's entry. RW_BENCH_LP names the binary; by default
# it sits next to RW_BENCH.
lp_bin=${RW_BENCH_LP:-$(dirname "$bin")/rw-bench-lp}
if [ -x "$lp_bin" ]; then
	lp_ir_of() {
		local v=$1 out=$tmp/callgrind.out.lp.$1
		valgrind --tool=callgrind --smc-check=all \
			--toggle-collect="lpb_loop_$v" \
			--callgrind-out-file="$out" \
			"$lp_bin" --callgrind "$v" --iters "$iters" >"$tmp/stdout.lp.$v" 2>"$tmp/log.lp.$v" ||
			{ cat "$tmp/log.lp.$v" >&2; return 1; }
		awk '/^(summary|totals):/ { print $2; exit }' "$out"
	}
	printf '\ncallgrind: %s, %s iterations per variant, Ir per iteration (loop + call)\n' \
		"$(basename "$lp_bin")" "$iters"
	printf '  %-16s %14s %10s %9s  %s\n' variant "Ir total" "Ir/iter" "vs plain" entry
	plain_ir=
	for v in $("$lp_bin" --list); do
		ir=$(lp_ir_of "$v")
		[ -n "$plain_ir" ] || plain_ir=$ir
		entry=$(sed -n 's/^entry: //p' "$tmp/stdout.lp.$v")
		awk -v v="$v" -v ir="$ir" -v p="$plain_ir" -v n="$iters" -v e="$entry" \
			'BEGIN { printf "  %-16s %14d %10.3f %+9.3f  %s\n", v, ir, ir / n, (ir - p) / n, e }'
	done
else
	printf '\ncallgrind: %s not built, live patching counts skipped\n' "$lp_bin"
fi
