#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/shape.sh [RW_BENCH] - disassemble every measured loop of rw-bench
# (objdump -d) so that one can check what each variant really executes:
# "call <bench_target>", "call <rw__sc_tramp_bench_sc>", "call *%reg",
# "call <__x86_indirect_thunk_reg>", and the static key's 5-byte NOP.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../build/bench/bench/rw-bench}
dis=$(mktemp)
trap 'rm -f "$dis"' EXIT
objdump -d --no-show-raw-insn "$bin" >"$dis"

for f in bench_target rw__sc_tramp_bench_sc bench_loop_direct \
	bench_loop_static_call bench_loop_indirect bench_loop_retpoline \
	bench_loop_plain bench_loop_key bench_loop_flag \
	bench_loop_plain_default bench_loop_key_default \
	bench_loop_flag_default bench_loop_plain_natural \
	bench_loop_key_natural bench_loop_key_natural_rw; do
	echo "== $f"
	awk -v f="<$f>:" '$2 == f { p = 1; next } p && /^$/ { exit } p' "$dis"
done
