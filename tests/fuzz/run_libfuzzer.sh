#!/usr/bin/env bash
# A bounded libFuzzer run of one fuzz target (tests/fuzz/CMakeLists.txt).
#
#   run_libfuzzer.sh WORKDIR CORPUS SOURCE... [CLANG-FLAGS...]
#
# Builds SOURCE... (the target and the code under test) with
#   clang -g -O1 -fsanitize=fuzzer,address,undefined
# into WORKDIR/fuzzer, copies CORPUS to WORKDIR/corpus (libFuzzer adds
# the inputs it finds there; the committed seeds stay as they are), and
# runs for REWIRE_FUZZ_TIME seconds (default 20), or REWIRE_FUZZ_RUNS
# executions when that is set. A crash, a leak, a sanitizer report or an
# oracle's abort() fails the test and leaves the input in
# WORKDIR/crash-*; replay it with WORKDIR/fuzzer FILE.
#
# Exit 77 (skipped) when clang or libFuzzer is missing: Debian 12's
# packages are clang and libclang-rt-14-dev (scripts/deps.sh).
set -euo pipefail

if [ $# -lt 3 ]; then
	sed -n '4p' "$0" >&2
	exit 2
fi
work=$1
corpus=$2
shift 2

cc=""
for c in "${REWIRE_FUZZ_CC:-}" clang clang-14; do
	if [ -n "$c" ] && command -v "$c" >/dev/null 2>&1; then
		cc=$c
		break
	fi
done
if [ -z "$cc" ]; then
	echo "run_libfuzzer: clang not found; skipping" >&2
	exit 77
fi

mkdir -p "$work"
# shellcheck disable=SC2054 # the commas belong to -fsanitize=
flags=(-g -O1 -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=all -D_GNU_SOURCE)

# libFuzzer is a separate package (its runtime, libclang_rt.fuzzer).
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
	'{ (void)d; (void)n; return 0; }' >"$work/probe.c"
if ! "$cc" "${flags[@]}" "$work/probe.c" -o "$work/probe" \
	>"$work/probe.log" 2>&1; then
	echo "run_libfuzzer: $cc cannot link -fsanitize=fuzzer; skipping" >&2
	sed -n '1,5p' "$work/probe.log" >&2
	exit 77
fi

"$cc" "${flags[@]}" "$@" -o "$work/fuzzer"

rm -rf "$work/corpus"
mkdir -p "$work/corpus"
cp "$corpus"/* "$work/corpus/"

limit=(-max_total_time="${REWIRE_FUZZ_TIME:-20}")
if [ -n "${REWIRE_FUZZ_RUNS:-}" ]; then
	limit=(-runs="$REWIRE_FUZZ_RUNS")
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
echo "run_libfuzzer: $cc ${flags[*]} $*"
echo "run_libfuzzer: $work/fuzzer ${limit[*]} $work/corpus"
exec "$work/fuzzer" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$work/" "$work/corpus"
