#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/live_patching_cost.sh [BUILD_DIR] [SECONDS] - what GCC's
# -flive-patching=inline-only-static (added by rewire_target_patchable)
# costs the kv example server: examples/kv/kvserver.c is built twice with
# the ci preset's flags, -fpatchable-function-entry=5 with and without it,
# and for each build prints the .text size, the clones and pieces GCC made
# (nm), and the instructions per request that callgrind counts in the
# worker threads (--toggle-collect=worker_main) while rw-kvload drives the
# server for SECONDS (default 4) over 2 connections.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$here/..
build=${1:-$src/build/ci}
secs=${2:-4}
tmp=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"' EXIT

command -v valgrind >/dev/null ||
	{ echo "live_patching_cost.sh: valgrind not found" >&2; exit 77; }
load=$build/examples/kv/rw-kvload
[ -x "$load" ] && [ -e "$build/librewire.so" ] ||
	{ echo "live_patching_cost.sh: build $build first" >&2; exit 1; }

printf '%-22s %8s %7s %10s %12s\n' build ".text" clones requests Ir/request
for v in no-live-patching live-patching; do
	flags=(-fpatchable-function-entry=5)
	[ "$v" = live-patching ] &&
		flags+=(-flive-patching=inline-only-static)
	bin=$tmp/kvserver-$v
	cc -D_GNU_SOURCE -I"$src/include" -I"$build/include" -O2 -g -DNDEBUG \
		-std=gnu17 "${flags[@]}" -o "$bin" "$src/examples/kv/kvserver.c" \
		-L"$build" -Wl,-rpath,"$build" -lrewire -lurcu-bp -lpthread -ldl
	text=$(size -A "$bin" | awk '$1 == ".text" { print $2 }')
	clones=$(nm "$bin" | grep -cE '\.(constprop|isra|part|cold)' || true)
	rm -f "$tmp/port"
	valgrind --tool=callgrind --toggle-collect=worker_main \
		--callgrind-out-file="$tmp/cg.$v" "$bin" --threads 2 \
		--port-file "$tmp/port" >"$tmp/out.$v" 2>"$tmp/log.$v" &
	server=$!
	"$load" --port-file "$tmp/port" --connections 2 --threads 1 \
		--duration "$secs" >/dev/null 2>&1
	kill -TERM "$server"
	wait "$server" || true
	server=""
	reqs=$(sed -n 's/^kvserver: served \([0-9]*\) requests.*/\1/p' \
		"$tmp/out.$v")
	ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$tmp/cg.$v")
	printf '%-22s %8s %7s %10s %12s\n' "$v" "$text" "$clones" "$reqs" \
		"$(awk -v i="$ir" -v r="$reqs" 'BEGIN { printf "%.0f", i / r }')"
done
