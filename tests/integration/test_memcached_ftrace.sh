#!/usr/bin/env bash
# Function tracing on a real server that nobody wrote for rewire: memcached,
# from Debian's source package, built by its own unmodified build system
# (./configure && make) with Debian's flags plus
# -fpatchable-function-entry=5 (the issue 13 example; on aarch64 =2 and
# -mbranch-protection=standard, cross-built on the host by
# memcached_cross_build before the VM boots). It runs as Debian
# runs it (4 worker threads, -u nobody: it drops privileges at start-up)
# under `rewire run`, with clients storing and reading keys the whole time:
#   - `rewire ls --functions` lists its functions, traceable;
#   - `rewire trace --function` sees every request's process_command_ascii
#     (a count), `funccount` counts hits, `funclatency` draws a histogram;
#   - while and after tracing every reply is right, and the traced
#     functions' first bytes are the original ones afterwards (read from
#     /proc/PID/mem).
# The source and the build are kept in the build tree
# (thirdparty/memcached), so only the first run compiles. Skips (77) with
# a message when the source package, libevent or the network is missing,
# in sanitizer builds (an uninstrumented memcached cannot preload an
# instrumented librewire) and on the generic backend.
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"

skip() {
	echo "SKIP: $*"
	exit 77
}

grep -Eq "^#define RW_BACKEND_(X86_64|AARCH64)" "$REWIRE_BUILD_DIR/include/rewire/config.h" ||
	skip "function tracing needs a code-patching backend (x86_64, aarch64)"
[ -z "${REWIRE_SANITIZE:-}" ] ||
	skip "memcached is not built with the sanitizer of this build"
[ "$(id -u)" -eq 0 ] || skip "needs root (memcached -u nobody)"
# shellcheck source=memcached_build.sh
source "$(dirname "$0")/memcached_build.sh"

rw=$REWIRE_BUILD_DIR/tools/rewire
top=$REWIRE_BUILD_DIR/thirdparty/memcached
tmp=$(mktemp -d /tmp/rewire-memcached.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill -9 "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# --- The source, from Debian, built once --------------------------------
memcached_build "$top"
echo "memcached: $("$mc" -V)"

# --- The server, under rewire run ----------------------------------------
export REWIRE_CTL_DIR=$tmp/ctl
mkdir -m 700 "$REWIRE_CTL_DIR"
memcached_start "$tmp/mc.out" pids

# Clients: each sets and gets its own keys and checks every reply.
cpids=()
for c in 1 2 3; do
	memcached_client "$c" "$tmp/stop" >"$tmp/client.$c" 2>&1 &
	cpids+=("$!")
done

# The first bytes of a function, from /proc/PID/mem (root may read them).
bytes_of() {
	local addr
	addr=$(grep -E "^$1\(\) " "$tmp/ls" | awk '{print $NF}') || true
	[ -n "$addr" ] || return 0
	dd if="/proc/$mc_pid/mem" bs=1 skip=$((addr)) count=9 status=none |
		od -An -tx1 | tr -d ' \n'
}

echo "== ls --functions"
"$rw" ls "$mc_pid" --functions 'process_*' >"$tmp/ls.out" 2>"$tmp/ls.err" ||
	fail "ls --functions: $(cat "$tmp/ls.err")"
grep -Eq '^process_command_ascii\(\) +traceable' "$tmp/ls.out" ||
	fail "process_command_ascii is not listed as traceable: $(cat "$tmp/ls.out")"
"$rw" ls "$mc_pid" --functions 'process_command_ascii' --json >"$tmp/ls.json" ||
	fail "ls --functions --json"
python3 - "$tmp/ls.json" >"$tmp/ls" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    for f in json.loads(line)["functions"]:
        print(f"{f['demangled']}() {f['address']}")
EOF
before=$(bytes_of process_command_ascii)
[ -n "$before" ] || fail "cannot read process_command_ascii's bytes"
echo "process_command_ascii starts with $before"

echo "== trace --function, 200 requests"
timeout 60 "$rw" trace "$mc_pid" --function process_command_ascii --count 200 \
	>"$tmp/trace.out" 2>"$tmp/trace.err" ||
	fail "trace --function: $(cat "$tmp/trace.err")"
n=$(grep -c 'process_command_ascii()' "$tmp/trace.out" || true)
[ "$n" -eq 200 ] || fail "trace printed $n events, not 200"

echo "== funccount and funclatency while the clients run"
timeout 60 "$rw" funccount "$mc_pid" 'process_*' --duration 2 \
	>"$tmp/count.out" 2>"$tmp/count.err" ||
	fail "funccount: $(cat "$tmp/count.err")"
grep -Eq 'process_command_ascii.* [1-9][0-9]*' "$tmp/count.out" ||
	fail "funccount saw no process_command_ascii: $(cat "$tmp/count.out")"
timeout 60 "$rw" funclatency "$mc_pid" process_command_ascii --duration 2 \
	>"$tmp/lat.out" 2>"$tmp/lat.err" ||
	fail "funclatency: $(cat "$tmp/lat.err")"
grep -q '@' "$tmp/lat.out" || fail "funclatency drew no histogram"

after=$(bytes_of process_command_ascii)
[ "$before" = "$after" ] ||
	fail "process_command_ascii's bytes changed: $before -> $after"

touch "$tmp/stop"
for c in "${cpids[@]}"; do
	wait "$c" || fail "a client saw a wrong reply: $(cat "$tmp"/client.*)"
done
echo "clients:"
sed 's/^/  /' "$tmp"/client.*
kill "$mc_pid"
wait "$mc_pid" 2>/dev/null || true
sed -n '1,12p' "$tmp/count.out"
sed -n '1,20p' "$tmp/lat.out"
echo "PASS"
