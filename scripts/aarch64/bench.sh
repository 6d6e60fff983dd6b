#!/usr/bin/env bash
# Instructions per iteration of the benchmark loops on aarch64, counted in
# the aarch64 VM (emulated: instruction counts are exact, times mean
# nothing; doc/BENCHMARKS.md, "emulated"). The aarch64 counterpart of
# bench/callgrind.sh, without valgrind: the VM boots with qemu's -icount
# (vm.sh --icount), where the PMU's instructions event counts the guest's
# user-mode instructions exactly, and insn-count.c reads it around each
# run. Each loop runs twice, for N and N + ITERS iterations
# (rw-bench --callgrind VARIANT --iters N): the difference over ITERS is
# the loop's count per iteration, start-up and set-up cancelled.
#
#   scripts/aarch64/bench.sh [--build DIR] [--iters N] [--only BENCH]
#     --build DIR   a built aarch64 tree (default build/aarch64:
#                   cmake --preset aarch64 && cmake --build --preset aarch64)
#     --iters N     default 100000
#     --only BENCH  one table: rw-bench, rw-bench-tp, rw-bench-pv,
#                   rw-bench-lp or rw-bench-ftrace (default all)
# Exit 77 when the VM cannot be had.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

build=$src/build/aarch64 iters=100000 only=all
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$(cd "$2" && pwd); shift 2 ;;
	--iters) iters=$2; shift 2 ;;
	--only)
		case $2 in
		rw-bench | rw-bench-tp | rw-bench-pv | rw-bench-lp | rw-bench-ftrace) only=$2 ;;
		*) echo "bench.sh: --only: no benchmark $2" >&2; exit 2 ;;
		esac
		shift 2
		;;
	-h | --help) sed -n '2,18p' "$0"; exit 0 ;;
	*) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
command -v aarch64-linux-gnu-gcc >/dev/null ||
	rw_skip "aarch64-linux-gnu-gcc not found (scripts/deps.sh)"
[ -x "$build/bench/rw-bench" ] ||
	{ echo "bench.sh: $build/bench/rw-bench not built" >&2; exit 2; }
mkdir -p "$build/aarch64-vm"
aarch64-linux-gnu-gcc -O2 -Wall -Wextra -Werror -o "$build/aarch64-vm/insn-count" \
	"$here/insn-count.c"

# The guest's part: bash, in the VM.
cat >"$build/aarch64-vm/bench-guest.sh" <<'GUEST'
set -u
b=$1 n=$2 only=$3
ic=$b/aarch64-vm/insn-count
count() { # BIN VARIANT ITERS
	# rw-bench-ftrace's loop runs in its main thread, and its session
	# variants start the rewire command, whose work (formatting each
	# record) callgrind leaves out on x86-64: its main thread alone.
	local only=
	[ "$(basename "$1")" != rw-bench-ftrace ] || only=--main-thread
	"$ic" $only "$1" --callgrind "$2" --iters "$3" 2>&1 >/dev/null |
		sed -n 's/^insn-count: //p' | tail -n1
}
table() { # BIN VARIANTS...
	local bin=$1 v c1 c2
	shift
	printf '\n%s: instructions per iteration (%s iterations, emulated aarch64)\n' \
		"$(basename "$bin")" "$n"
	printf '  %-16s %10s\n' variant insn/iter
	for v in "$@"; do
		c1=$(count "$bin" "$v" "$n")
		c2=$(count "$bin" "$v" $((2 * n)))
		if [ -z "$c1" ] || [ -z "$c2" ]; then
			printf '  %-16s %10s\n' "$v" failed
			continue
		fi
		awk -v v="$v" -v a="$c1" -v b="$c2" -v n="$n" \
			'BEGIN { printf "  %-16s %10.3f\n", v, (b - a) / n }'
	done
}
"$ic" true 2>/dev/null || { echo "bench: no instruction counter"; exit 77; }
[ "$only" != all ] && [ "$only" != rw-bench ] ||
	table "$b/bench/rw-bench" direct static_call indirect retpoline \
		plain key flag plain_default key_default flag_default \
		plain_natural key_natural key_natural_rw
for x in rw-bench-tp rw-bench-pv rw-bench-lp rw-bench-ftrace; do
	if [ "$only" != all ] && [ "$only" != "$x" ]; then
		continue
	elif [ -x "$b/bench/$x" ]; then
		table "$b/bench/$x" $("$b/bench/$x" --list)
	else
		printf '\n%s: not built, skipped\n' "$x"
	fi
done
GUEST
"$here/vm.sh" --icount --build "$build" --cwd "$build" \
	--timeout "${REWIRE_VM_TIMEOUT:-1800}" -- \
	bash "$build/aarch64-vm/bench-guest.sh" "$build" "$iters" "$only"
