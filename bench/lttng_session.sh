#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/lttng_session.sh [--keep] [--subbuf-size SIZE] [--num-subbuf N] -- CMD [ARGS...]
#
# Runs CMD inside a real LTTng session that records every rwb_trace:* event
# (the provider of bench/lttng_trace_tp.h), then says what LTTng recorded:
#
#   1. start a session daemon (lttng-sessiond --daemonize) if none answers;
#   2. lttng create (output in a new directory under /tmp), a user-space
#      channel of --num-subbuf (default 8) sub-buffers of --subbuf-size
#      (default 4M) per CPU, large enough that a benchmark round never
#      fills it (discard mode, LTTng's default: a full buffer drops
#      events, it never blocks), lttng enable-event -u 'rwb_trace:*',
#      lttng start;
#   3. run CMD (its output is shown and kept);
#   4. lttng stop (which warns about discarded events), lttng destroy;
#   5. count the recorded events with babeltrace (or babeltrace2) and
#      compare with the "lttng events fired: N" line CMD printed;
#   6. stop the session daemon if step 1 started it, remove the trace
#      (unless --keep).
#
# Needs lttng-tools (apt-get install lttng-tools); exits 77 without it.
# Prints "lttng: N events fired, M recorded, D discarded" last.
set -euo pipefail

keep=0
subbuf=4M
nsub=8
while [ $# -gt 0 ]; do
	case $1 in
	--keep) keep=1 ;;
	--subbuf-size) subbuf=$2; shift ;;
	--num-subbuf) nsub=$2; shift ;;
	--) shift; break ;;
	*) echo "usage: bench/lttng_session.sh [--keep] [--subbuf-size SIZE] [--num-subbuf N] -- CMD [ARGS...]" >&2; exit 2 ;;
	esac
	shift
done
[ $# -gt 0 ] || { echo "lttng_session.sh: no command" >&2; exit 2; }

if ! command -v lttng >/dev/null || ! command -v lttng-sessiond >/dev/null; then
	echo "lttng_session.sh: lttng-tools not installed (apt-get install lttng-tools)" >&2
	exit 77
fi

out=$(mktemp -d /tmp/rwbench-lttng.XXXXXX)
name=rwbench-$$
started_daemon=0
session=0

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	if [ "$session" = 1 ]; then
		lttng destroy "$name" >/dev/null 2>&1 || true
	fi
	if [ "$started_daemon" = 1 ]; then
		# The daemon this script started, by the pid it wrote.
		for f in /var/run/lttng/lttng-sessiond.pid "$HOME/.lttng/lttng-sessiond.pid"; do
			if [ -r "$f" ]; then
				kill "$(cat "$f")" 2>/dev/null || true
				break
			fi
		done
	fi
	if [ "$keep" = 0 ]; then
		rm -rf "$out"
	else
		echo "lttng_session.sh: trace kept in $out" >&2
	fi
}
trap cleanup EXIT

# 1. A session daemon.
if ! lttng list >/dev/null 2>&1; then
	lttng-sessiond --daemonize
	started_daemon=1
	for _ in $(seq 50); do
		lttng list >/dev/null 2>&1 && break
		sleep 0.1
	done
fi

# 2. The session.
lttng create "$name" --output="$out/trace" >/dev/null
session=1
lttng enable-channel -u -s "$name" --subbuf-size="$subbuf" \
	--num-subbuf="$nsub" rwbench >/dev/null
lttng enable-event -u -s "$name" -c rwbench 'rwb_trace:*' >/dev/null
lttng start "$name" >/dev/null
echo "lttng: session $name, channel rwbench: $nsub x $subbuf per CPU, event rwb_trace:*, $(lttng --version | head -1)"

# 3. The command.
set +e
"$@" 2>&1 | tee "$out/cmd.log"
rc=${PIPESTATUS[0]}
set -e

# 4. Stop: lttng prints a warning when events were discarded.
lttng stop "$name" >"$out/stop.log" 2>&1 || true
cat "$out/stop.log"
discarded=$(sed -n 's/.*\b\([0-9][0-9]*\) events were discarded.*/\1/p' "$out/stop.log" | head -1)
lttng destroy "$name" >/dev/null
session=0

# 5. What was recorded.
fired=$(sed -n 's/^lttng events fired: //p' "$out/cmd.log" | tail -1)
bt=""
for b in babeltrace2 babeltrace; do
	command -v $b >/dev/null && { bt=$b; break; }
done
if [ -n "$bt" ]; then
	recorded=$($bt "$out/trace" 2>/dev/null | grep -c 'rwb_trace:req' || true)
else
	recorded="? (no babeltrace)"
fi
echo "lttng: ${fired:-?} events fired, $recorded recorded, ${discarded:-0} discarded"
exit "$rc"
