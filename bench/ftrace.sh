#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/ftrace.sh [--quick] [--rounds R] [BUILD_DIR] - the figures of
# "Function tracing" in doc/BENCHMARKS.md, from one build (default
# build/bench; targets rw-bench-ftrace, rw-bench-ftrace-ext, rewire-cli):
#
#   1. rw-bench-ftrace: ns per call of a traced function, off (never
#      traced, detached), entry and graph, against tracepoints doing the
#      same work and against `rewire trace` sessions; attach and detach
#      time for 1,000 and 10,000 functions with 8 busy threads, with the
#      core syncs each took (rw_text_get_stats);
#   2. the same attach run under strace -f -c -e trace=membarrier: the
#      membarrier calls the kernel saw, against rewire's own count;
#   3. callgrind, instructions per iteration of each loop of
#      rw-bench-ftrace --list, the variant set up alone:
#      valgrind --tool=callgrind --smc-check=all --toggle-collect=fb_loop_V;
#   4. rw-bench-ftrace-ext: one function, timed inside the program, R
#      rounds (default 7) of 500,000 calls per mode (in chunks, see
#      ftrace_ext.c); each round runs, in turn: nothing traced,
#      rewire entry and graph (rw_ftrace_attach, the record probe),
#      `rewire trace PID --function fbx_func` (when the command has
#      --function), `uftrace record -P fbx_func` (uftrace's dynamic
#      patching) and a bpftrace uprobe on a copy of the program (a uprobe
#      is per file: the other runs stay unprobed); ratios within a round.
#
# Whatever is missing (valgrind, strace, uftrace, bpftrace, or a kernel
# that refuses uprobes) is skipped with a message.
# --quick: rw-bench-ftrace --quick, 3 rounds of 200,000 calls, 50,000
# callgrind iterations.
# --only calls|strace|callgrind|ext: one part (1: calls and attach).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
quick=0
rounds=7
only=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1; rounds=3 ;;
	--rounds) rounds=$2; shift ;;
	--only) only=$2; shift ;;
	-*) echo "usage: bench/ftrace.sh [--quick] [--rounds R] [--only calls|strace|callgrind|ext] [BUILD_DIR]" >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
build=${1:-$here/../build/bench}
bin=$build/bench/rw-bench-ftrace
ext=$build/bench/rw-bench-ftrace-ext
cli=$build/tools/rewire
for f in "$bin" "$ext" "$cli"; do
	[ -x "$f" ] || { echo "ftrace.sh: $f not built (cmake --build $build --target rw-bench-ftrace rw-bench-ftrace-ext rewire-cli)" >&2; exit 1; }
done

args=()
iters=200000
ext_iters=500000
if [ $quick = 1 ]; then
	args+=(--quick)
	iters=50000
	ext_iters=200000
fi
tmp=$(mktemp -d)
bpid=
cleanup() {
	if [ -n "$bpid" ]; then
		kill -INT "$bpid" 2>/dev/null || true
		wait "$bpid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

part() {
	[ -z "$only" ] || [ "$only" = "$1" ]
}

if part calls; then
echo "== rw-bench-ftrace ${args[*]}"
"$bin" "${args[@]}"
echo
fi

if part strace; then
echo "== strace -f -e trace=membarrier,write rw-bench-ftrace --only attach --cycles 3 --markers"
if command -v strace >/dev/null; then
	strace -f -e trace=membarrier,write -o "$tmp/strace" \
		"$bin" --only attach --cycles 3 --markers >"$tmp/attach.out" 2>&1 ||
		{ cat "$tmp/attach.out" >&2; exit 1; }
	sed -n '/^attach and detach/,$p' "$tmp/attach.out" | grep -v '^load' | sed 's/^/  /'
	# Which membarrier calls each attach and detach made, between the
	# bench's "fb-mark" writes.
	awk '
	/write\(.*"fb-mark / {
		match($0, /"fb-mark [a-z-]*"/)
		state = substr($0, RSTART + 9, RLENGTH - 10)
		if (state == "attach" || state == "detach")
			ops[state]++
		next
	}
	/membarrier\(MEMBARRIER_CMD_/ {
		match($0, /MEMBARRIER_CMD_[A-Z_]*/)
		cmd = substr($0, RSTART + 15, RLENGTH - 15)
		n[state, cmd]++
		cmds[cmd] = 1
		total++
	}
	END {
		printf "  strace: %d membarrier calls in the run; per operation (timed cycles of every row):\n", total
		for (s = 1; s <= 2; s++) {
			st = s == 1 ? "attach" : "detach"
			line = ""
			for (c in cmds)
				if (n[st, c])
					line = line sprintf("  %s %.1f", c, n[st, c] / ops[st])
			printf "    %s (%d):%s\n", st, ops[st], line
		}
		line = ""
		for (c in cmds)
			if (n["warm-up", c] || n["between", c] || n["", c])
				line = line sprintf("  %s %d", c, n["warm-up", c] + n["between", c] + n["", c])
		printf "    elsewhere (warm-up cycles, start, between operations):%s\n", line
	}' "$tmp/strace"
else
	echo "(strace not installed: skipped)"
fi
echo
fi

if part callgrind; then
if command -v valgrind >/dev/null; then
	printf 'callgrind: %s, %s iterations per variant, Ir per iteration (loop + call + probes), each variant set up alone\n' \
		"$(basename "$bin")" "$iters"
	printf '  %-12s %14s %10s %10s  %s\n' variant "Ir total" "Ir/iter" "vs never" entry
	never_ir=
	for v in $("$bin" --list); do
		out=$tmp/callgrind.out.$v
		valgrind --tool=callgrind --smc-check=all \
			--toggle-collect="fb_loop_$v" \
			--callgrind-out-file="$out" \
			"$bin" --callgrind "$v" --iters "$iters" >"$tmp/stdout.$v" 2>"$tmp/log.$v" ||
			{ cat "$tmp/log.$v" >&2; exit 1; }
		ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$out")
		entry=$(sed -n 's/^entry: //p' "$tmp/stdout.$v")
		[ "$v" = never ] && never_ir=$ir
		awk -v v="$v" -v ir="$ir" -v p="${never_ir:-0}" -v n="$iters" -v e="$entry" \
			'BEGIN { d = p ? sprintf("%+10.3f", (ir - p) / n) : sprintf("%10s", "");
				 printf "  %-12s %14d %10.3f %s  %s\n", v, ir, ir / n, d, e }'
	done
else
	echo "callgrind: valgrind not found, skipped"
fi
echo
fi

part ext || exit 0
# --- 4. Against uftrace and a bpftrace uprobe ---------------------------------
echo "== rw-bench-ftrace-ext, $rounds rounds of $ext_iters calls per mode"
modes=(none entry graph)
have_cli=0
if "$cli" trace --help 2>&1 | grep -q -- --function; then
	have_cli=1
	modes+=(cli)
else
	echo "(rewire trace has no --function: no session row)"
fi
if command -v uftrace >/dev/null; then
	modes+=(uftrace)
	uftrace --version | head -1 | sed 's/^/(/; s/$/)/'
else
	echo "(uftrace not installed: apt-get install uftrace; no uftrace row)"
fi
if command -v bpftrace >/dev/null; then
	cp "$ext" "$tmp/ext-uprobe"
	bpftrace -e "uprobe:$tmp/ext-uprobe:fbx_func { @hits = count(); }" \
		>"$tmp/bpftrace.out" 2>&1 &
	bpid=$!
	for _ in $(seq 100); do
		grep -q '^Attaching' "$tmp/bpftrace.out" && break
		kill -0 "$bpid" 2>/dev/null || break
		sleep 0.1
	done
	sleep 0.5
	if kill -0 "$bpid" 2>/dev/null && grep -q '^Attaching' "$tmp/bpftrace.out"; then
		modes+=(uprobe)
		echo "($(bpftrace --version))"
	else
		echo "(bpftrace: the uprobe was refused; no uprobe row:"
		sed 's/^/   /' "$tmp/bpftrace.out"
		echo ")"
		wait "$bpid" 2>/dev/null || true
		bpid=
	fi
else
	echo "(bpftrace not installed: no uprobe row)"
fi

# One run: prints "WALL CPU HITS" (ns per call).
run_mode() {
	local m=$1 line
	case $m in
	none|entry|graph)
		line=$("$ext" --mode "$m" --iters "$ext_iters") ;;
	uprobe)
		line=$("$tmp/ext-uprobe" --mode none --iters "$ext_iters") ;;
	uftrace)
		rm -rf "$tmp/uftrace.data"
		line=$(uftrace record --no-libcall -d "$tmp/uftrace.data" \
			-P fbx_func "$ext" --mode none --iters "$ext_iters" |
			grep '^ns/call') ;;
	cli)
		local pid tpid epid fd in
		coproc EXT { "$ext" --mode cli --iters "$ext_iters"; }
		epid=$EXT_PID
		fd=${EXT[0]}
		in=${EXT[1]}
		read -r _ pid <&"$fd"
		"$cli" trace "$pid" --function fbx_func --ring-size 8M \
			--output /dev/null 2>>"$tmp/cli.log" &
		tpid=$!
		read -r line <&"$fd" || true
		kill -INT "$tpid" 2>/dev/null || true
		wait "$tpid" || true
		echo done >&"$in" || true
		wait "$epid" || true ;;
	esac
	case $line in
	ns/call*) ;;
	*) echo "ftrace.sh: the $m run failed" >&2; exit 1 ;;
	esac
	awk '{ print $2, $4, $8 }' <<<"$line"
}

for ((k = 0; k < rounds; k++)); do
	for ((j = 0; j < ${#modes[@]}; j++)); do
		m=${modes[(j + k) % ${#modes[@]}]}
		echo "$k $m $(run_mode "$m")"
	done
done >"$tmp/ext.txt"

awk -v n="$ext_iters" -v R="$rounds" '
function median(a, cnt,   i, j, t) {
	for (i = 1; i <= cnt; i++)
		for (j = i + 1; j <= cnt; j++)
			if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return a[int((cnt + 1) / 2)]
}
{ wall[$2, $1] = $3; cpu[$2, $1] = $4; hits[$2] += $5; seen[$2] = 1 }
END {
	split("none entry graph cli uftrace uprobe", order, " ")
	label["none"] = "not traced"
	label["entry"] = "rewire entry (record probe)"
	label["graph"] = "rewire graph (record on entry and return)"
	label["cli"] = "rewire trace --function (session)"
	label["uftrace"] = "uftrace record -P (entry and exit)"
	label["uprobe"] = "bpftrace uprobe, count()"
	printf "  %-44s %9s %9s %9s %19s %19s\n", "mode", "wall", "CPU", "+ns CPU",
		"/ rewire entry", "/ rewire graph"
	for (o = 1; o <= 6; o++) {
		m = order[o]
		if (!(m in seen))
			continue
		for (k = 0; k < R; k++) {
			w[k + 1] = wall[m, k]; c[k + 1] = cpu[m, k]
			d[k + 1] = cpu[m, k] - cpu["none", k]
			he = cpu["entry", k] - cpu["none", k]
			hg = cpu["graph", k] - cpu["none", k]
			re[k + 1] = he > 0 ? d[k + 1] / he : 0
			rg[k + 1] = hg > 0 ? d[k + 1] / hg : 0
		}
		mw = median(w, R); mc = median(c, R); md = median(d, R)
		mre = median(re, R); mrg = median(rg, R)
		printf "  %-44s %9.2f %9.2f %+9.2f", label[m], mw, mc, md
		if (m != "none" && m != "entry" && ("entry" in seen))
			printf " %8.1fx [%5.1f, %5.1f]", mre, re[1], re[R]
		else
			printf " %19s", ""
		if (m != "none" && m != "graph" && ("graph" in seen))
			printf " %8.1fx [%5.1f, %5.1f]", mrg, rg[1], rg[R]
		printf "\n"
	}
	printf "  (ns per call, median over rounds; +ns: minus the untraced run of the same round;\n"
	printf "   the ratios: per hit (+ns), per round, median [min, max])\n"
	if ("entry" in seen)
		printf "  records written in the timed calls: entry %d, graph %d (%d runs x %d calls)\n",
			hits["entry"], hits["graph"], R, n
}' "$tmp/ext.txt"

if [ -n "$bpid" ]; then
	kill -INT "$bpid" 2>/dev/null || true
	wait "$bpid" 2>/dev/null || true
	bpid=
	hits=$(awk '/^@hits:/ { print $2 }' "$tmp/bpftrace.out")
	echo "  bpftrace counted ${hits:-?} hits ($rounds runs x $((ext_iters + 300000)) calls, warm-up included)"
fi
if [ -s "$tmp/cli.log" ]; then
	sed 's/^/  rewire trace: /' "$tmp/cli.log" | sort | uniq -c | sed 's/^ */  /'
fi
