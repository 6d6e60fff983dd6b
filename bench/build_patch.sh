#!/usr/bin/env bash
# rewire build-patch: what it takes and what its patches cost
# (doc/BENCHMARKS.md, "Patches from a diff").
#
#   bench/build_patch.sh [BUILD_DIR]      (default build/ci)
#
#  1. wall time of `rewire build-patch` for the kv demo's diff
#     (examples/kv/patches/fix_value.diff), median of 3, and the same for
#     memcached's VERSION diff when test_bp_memcached built memcached in
#     BUILD_DIR/thirdparty/memcached;
#  2. the code model a patch is compiled with: instructions per call of
#     the same function (bench/bp_model.c) compiled as the program is
#     (-O2 -fPIE) and as build-patch compiles a patch (-O2 -mcmodel=large
#     -fno-pic), under callgrind, side by side.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build/ci}
rw=$build/tools/rewire
tmp=$(mktemp -d /tmp/rewire-bench-bp.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

median3() { sort -n | sed -n 2p; }

time_bp() { # label, then build-patch arguments
	local label=$1
	shift
	for _ in 1 2 3; do
		local t0 t1
		t0=$(date +%s%N)
		"$rw" build-patch --quiet "$@" >/dev/null
		t1=$(date +%s%N)
		echo $(((t1 - t0) / 1000000))
	done | median3 | sed "s/^/$label: build-patch wall ms (median of 3): /"
}

echo "== build-patch time"
time_bp "kv fix_value.diff" -c "$build" -s "$src" \
	--object "$build/examples/kv/rw-kvserver" \
	--diff "$src/examples/kv/patches/fix_value.diff" -o "$tmp/kv.so"
m=$build/thirdparty/memcached/build
if [ -f "$m/compile_commands.json" ]; then
	time_bp "memcached version.diff" -c "$m" \
		-s "$build/thirdparty/memcached/src/tree" \
		--object "$m/memcached" \
		--diff "$src/tests/buildpatch/memcached/version.diff" \
		-o "$tmp/mc.so"
else
	echo "memcached: not built in $m (run test_bp_memcached first)"
fi

echo "== code model: Ir per call of bp_work (callgrind)"
if ! command -v valgrind >/dev/null; then
	echo "valgrind missing"
	exit 0
fi
cc=${CC:-cc}
$cc -O2 -fPIE -pie -o "$tmp/small" "$src/bench/bp_model.c"
$cc -O2 -mcmodel=large -fno-pic -no-pie -o "$tmp/large" "$src/bench/bp_model.c"
n=200000
for m in small large; do
	valgrind --tool=callgrind --callgrind-out-file="$tmp/$m.out" \
		--toggle-collect=bp_loop "$tmp/$m" $n >/dev/null 2>&1
	ir=$(callgrind_annotate "$tmp/$m.out" 2>/dev/null |
		awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
	echo "$m model: $ir Ir for $n calls: $(echo "scale=2; $ir / $n" | bc) Ir per call"
done
