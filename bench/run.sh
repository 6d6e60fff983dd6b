#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/run.sh [--quick] [--no-build] [-- RW_BENCH_ARGS...]
#
# Builds the "bench" preset (Release, tests off), then prints one report:
# the machine, rw-bench (call and key costs, update latency; one run of
# one binary) and bench/callgrind.sh (instruction counts), then the
# separate executables (rw-bench-stop, rw-bench-tp, rw-bench-lp, and
# bench/trace.sh for rw-bench-trace, bench/ftrace.sh for rw-bench-ftrace).
#   --quick      short run (rw-bench --quick, 200,000 callgrind iterations)
#   --no-build   use build/bench as it is
# Arguments after -- go to rw-bench (e.g. -- --pin 1).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
bin=$src/build/bench/bench/rw-bench
quick=0
build=1
extra=()

while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--no-build) build=0 ;;
	--) shift; extra=("$@"); break ;;
	*) echo "usage: bench/run.sh [--quick] [--no-build] [-- RW_BENCH_ARGS...]" >&2; exit 2 ;;
	esac
	shift
done

if [ $build = 1 ]; then
	(cd "$src" && cmake --preset bench >/dev/null &&
		cmake --build build/bench --target rw-bench >/dev/null)
	# rw-bench-tp before callgrind.sh, which counts its loops too.
	(cd "$src" && cmake --build build/bench --target rw-bench-tp >/dev/null)
	# rw-bench-lp (live patching) too, for the same reason.
	(cd "$src" && cmake --build build/bench --target rw-bench-lp >/dev/null)
	# rw-bench-pv (provider reads) too, for the same reason.
	(cd "$src" && cmake --build build/bench --target rw-bench-pv >/dev/null)
fi

echo "== machine"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
echo "kernel:  $(uname -sr)"
echo "cc:      $(${CC:-cc} --version | head -1)"
echo "valgrind: $(valgrind --version 2>/dev/null || echo none)"
echo "commit:  $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo

args=()
cg_iters=1000000
if [ $quick = 1 ]; then
	args+=(--quick)
	cg_iters=200000
fi
echo "== $bin ${args[*]} ${extra[*]}"
"$bin" "${args[@]}" "${extra[@]}"
echo
echo "== bench/callgrind.sh $bin $cg_iters"
"$here/callgrind.sh" "$bin" "$cg_iters"

# rw_stop_threads() latency (bench/stop_threads.c, its own executable).
stop_bin=$src/build/bench/bench/rw-bench-stop
if [ $build = 1 ]; then
	(cd "$src" && cmake --build build/bench --target rw-bench-stop >/dev/null)
fi
stop_args=()
if [ $quick = 1 ]; then
	stop_args+=(--quick)
fi
echo
echo "== $stop_bin ${stop_args[*]}"
"$stop_bin" "${stop_args[@]}"

# Tracepoints (bench/tracepoint.c, its own executable, built above): off
# against LTTng-UST and USDT, on against direct calls of the probes, and
# register latency. Its instruction counts are in the callgrind section.
tp_bin=$src/build/bench/bench/rw-bench-tp
tp_args=()
if [ $quick = 1 ]; then
	tp_args+=(--quick)
fi
echo
echo "== $tp_bin ${tp_args[*]}"
"$tp_bin" "${tp_args[@]}"

# Provider reads (bench/pv_bench.c, its own executable, built above):
# rw_provider_read() against a plain load of the current provider and a
# call of its read function. Its instruction counts are in the callgrind
# section.
pv_bin=$src/build/bench/bench/rw-bench-pv
echo
echo "== $pv_bin"
"$pv_bin"

# Live patching (bench/lp_bench.c, its own executable, built above): call
# cost of a patched function before, during and after a transition, and
# transition time with 1, 8 and 64 threads. Its instruction counts are in
# the callgrind section.
lp_bin=$src/build/bench/bench/rw-bench-lp
lp_args=()
if [ $quick = 1 ]; then
	lp_args+=(--quick)
fi
echo
echo "== $lp_bin ${lp_args[*]}"
"$lp_bin" "${lp_args[@]}"

# Tracing with `rewire trace` (bench/trace.sh, its own executable): the
# ring probe of a real session against LTTng-UST recording the same event
# in an LTTng session (bench/lttng_session.sh; without lttng-tools, no
# LTTng rows), the highest event rate with no drops, and callgrind counts
# of the probe path.
trace_bin=$src/build/bench/bench/rw-bench-trace
if [ $build = 1 ]; then
	(cd "$src" && cmake --build build/bench --target rw-bench-trace >/dev/null)
fi
trace_args=()
if [ $quick = 1 ]; then
	trace_args+=(--quick)
fi
echo
echo "== bench/trace.sh ${trace_args[*]} $trace_bin"
"$here/trace.sh" "${trace_args[@]}" "$trace_bin"

# Function tracing (bench/ftrace.sh, its own executables): a traced
# function's call off, entry and graph against tracepoints and `rewire
# trace` sessions, attach time for 1,000 and 10,000 functions with 8 busy
# threads, callgrind counts, and uftrace and a bpftrace uprobe on the same
# function (each skipped when not installed).
if [ $build = 1 ]; then
	(cd "$src" && cmake --build build/bench --target rw-bench-ftrace \
		rw-bench-ftrace-ext rewire-cli >/dev/null)
fi
ftrace_args=()
if [ $quick = 1 ]; then
	ftrace_args+=(--quick)
fi
echo
echo "== bench/ftrace.sh ${ftrace_args[*]} $src/build/bench"
"$here/ftrace.sh" "${ftrace_args[@]}" "$src/build/bench"
