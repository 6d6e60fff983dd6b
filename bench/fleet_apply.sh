#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/fleet_apply.sh [BUILD_DIR] [RUNS] - how long `rewire apply` takes
# to apply one live patch to 1, 10 and 50 processes of this machine
# (doc/BENCHMARKS.md, "Fleet: rewire apply").
#
# The processes are fleet_target (tests/fleet/fleet_target.c: two threads,
# built with Debian's flags) and the patch fleet_fix.so, both from
# BUILD_DIR (default build/ci; a build with the tests). They are selected
# with --exe (a copy of fleet_target, so that nothing else matches): the
# time includes scanning /proc for rewire-enabled processes, connecting to
# each, sending the patch, the transition of every thread and the report.
# For each count and with --jobs 8 (the default) and --jobs 1, RUNS times
# (default 5): apply (every process changes), apply again (every one
# unchanged), apply --absent (every one changes back); the median of each,
# in milliseconds, wall-clock. The first line is one process named by its
# PID instead (no scan, no child process).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$here/..
build=${1:-$src/build/ci}
runs=${2:-5}
counts=${FLEET_COUNTS:-1 10 50}

rw=$build/tools/rewire
target=$build/tests/fleet/fleet_target
patch=$build/tests/fleet/fleet_fix.so
python=$(command -v python3 || true)
[ -x "$rw" ] && [ -x "$target" ] && [ -f "$patch" ] ||
	{ echo "fleet_apply.sh: build $build with the tests first" >&2; exit 1; }
[ -n "$python" ] || { echo "fleet_apply.sh: python3 not found" >&2; exit 1; }

tmp=$(mktemp -d)
export REWIRE_CTL_DIR=$tmp/ctl
unset REWIRE_CTL REWIRE_LIB
fail() {
	echo "fleet_apply.sh: $*" >&2
	exit 1
}
# shellcheck source=../tests/fleet/fleet.sh
source "$src/tests/fleet/fleet.sh"
trap 'fleet_stop; rm -rf "$tmp"' EXIT
cp "$target" "$tmp/fleet_target"

# run WANT ARGS...: rewire apply ARGS --json, checked (every process's
# result WANT); prints the milliseconds it took.
run() {
	local want=$1 t0 t1 out
	shift
	t0=$(date +%s%N)
	out=$("$rw" apply --exe "$tmp/fleet_target" "$@" --json --quiet) ||
		fail "rewire apply $* failed: ${out:0:2000}"
	t1=$(date +%s%N)
	"$python" -c "import json, sys
d = json.loads(sys.stdin.read())
# (Processes of other namespaces whose executable cannot be read are
# listed as skipped: not ours.)
r = [p['result'] for p in d['processes'] if p['result'] != 'skipped']
sys.exit(0 if len(r) == $n and set(r) == {'$want'} else 1)" <<<"$out" ||
		fail "rewire apply $*: not every one of $n processes $want: ${out:0:2000}"
	echo $(((t1 - t0) / 1000)) | awk '{ printf "%.1f\n", $1 / 1000 }'
}
# run_pid WANT PID ARGS...: the same for one process named by its PID (no
# scan of /proc, no child per process).
run_pid() {
	local want=$1 pid=$2 t0 t1 out
	shift 2
	t0=$(date +%s%N)
	out=$("$rw" apply "$pid" "$@" --json) ||
		fail "rewire apply $pid $* failed: ${out:0:2000}"
	t1=$(date +%s%N)
	"$python" -c "import json, sys
d = json.loads(sys.stdin.read())
sys.exit(0 if d['changed'] == ('$want' == 'changed') else 1)" <<<"$out" ||
		fail "rewire apply $pid $*: not $want: ${out:0:2000}"
	echo $(((t1 - t0) / 1000)) | awk '{ printf "%.1f\n", $1 / 1000 }'
}
median() {
	sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

printf '# %s, %s CPUs, %s processes in /proc, load %s, %s runs each, median ms\n' \
	"$(uname -r)" "$(nproc)" "$(find /proc -maxdepth 1 -name '[0-9]*' | wc -l)" \
	"$(cut -d' ' -f1 /proc/loadavg)" "$runs"
printf '%-10s %-6s %10s %14s %10s\n' processes jobs apply "apply again" absent
for n in $counts; do
	fleet_stop
	fleet_start "$n" "$tmp/fleet_target" --lifetime 600
	if [ "$n" = 1 ]; then
		# One process named by its PID, for comparison.
		: >"$tmp/apply" && : >"$tmp/again" && : >"$tmp/absent"
		for ((r = 0; r < runs; r++)); do
			run_pid changed "${fleet_pids[0]}" "$patch" >>"$tmp/apply"
			run_pid unchanged "${fleet_pids[0]}" "$patch" >>"$tmp/again"
			run_pid changed "${fleet_pids[0]}" --absent fleet_fix \
				>>"$tmp/absent"
		done
		printf '%-10s %-6s %10s %14s %10s\n' "1 (PID)" - \
			"$(median <"$tmp/apply")" "$(median <"$tmp/again")" \
			"$(median <"$tmp/absent")"
	fi
	for jobs in 8 1; do
		: >"$tmp/apply" && : >"$tmp/again" && : >"$tmp/absent"
		for ((r = 0; r < runs; r++)); do
			run changed "$patch" --jobs "$jobs" >>"$tmp/apply"
			run unchanged "$patch" --jobs "$jobs" >>"$tmp/again"
			run changed --absent fleet_fix --jobs "$jobs" >>"$tmp/absent"
		done
		printf '%-10s %-6s %10s %14s %10s\n' "$n" "$jobs" \
			"$(median <"$tmp/apply")" "$(median <"$tmp/again")" \
			"$(median <"$tmp/absent")"
	done
done
