#!/usr/bin/env bash
# A real uprobe on a live-patched function (issue 12, point 8(c)).
#
# Each program (lp_entries/uprobe_target.c) patches its own lpe_up_fn()
# and waits; the test puts a uprobe on lpe_up_fn+0 through tracefs (what
# `perf probe -x BIN lpe_up_fn` and bpftrace's uprobe:BIN:lpe_up_fn do)
# and lets it call the function 100,000 times (10,000 in the aarch64 VM).
# The kernel runs the instruction the FILE has at the probe, out of line,
# and resumes after it (doc/LIVEPATCH.md, "Uprobes"):
#   - x86-64, lpe_up_fix (entries rewritten by rewire-entries: one 5-byte
#     NOP in the file) must finish, every call returning the new or the
#     old result, and the probe must have fired. The calls that hit the
#     probe run the OLD body: the kernel runs the file's 5-byte NOP and
#     resumes after rewire's jmp: no crash, but not the patch either;
#   - x86-64, lpe_up_keep (GCC's five 1-byte NOPs) is the old layout: the
#     kernel runs the file's first NOP and resumes inside rewire's jmp.
#     Its fate is printed (it dies of SIGILL or SIGSEGV on the kernels
#     tried, or loops until the test kills it after 60 s), not required;
#   - aarch64, lpe_up_plain (no branch protection: the probe is on the
#     NOP that rewire made a B): every call runs the OLD body (the kernel
#     steps the file's NOP and resumes at the second NOP);
#   - aarch64, lpe_up_bti (-mbranch-protection=standard: the probe is on
#     the BTI c before the entry): every call runs the NEW body (the
#     kernel steps the BTI and resumes at rewire's B).
# Needs root and tracefs with uprobe events (CONFIG_UPROBE_EVENTS); when
# tracefs is not mounted, the test mounts it in a mount namespace of its
# own. Skips with 77 otherwise. test_lp_entries checks the same property
# without the kernel.
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"
: "${LPE_UP_DIR:?set by CTest}"

: "${LPE_UP_VARIANTS?set by CTest}"

if [ -z "$LPE_UP_VARIANTS" ]; then
	echo "SKIP: the generic backend does not live patch"
	exit 77
fi
# Without tracefs mounted (as in CI), mount it in a private mount
# namespace of this test, so that nothing is left mounted on the machine.
if [ -z "${RW_UPROBE_NS:-}" ] && [ "$(id -u)" -eq 0 ] &&
	[ ! -e /sys/kernel/tracing/uprobe_events ] &&
	[ ! -e /sys/kernel/debug/tracing/uprobe_events ] &&
	command -v unshare >/dev/null &&
	unshare -m --propagation private true 2>/dev/null; then
	RW_UPROBE_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
if [ -n "${RW_UPROBE_NS:-}" ] && [ ! -e /sys/kernel/tracing/uprobe_events ]; then
	mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
tfs=
for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do
	if [ -w "$d/uprobe_events" ] && [ -d "$d/instances" ]; then
		tfs=$d
		break
	fi
done
if [ -z "$tfs" ]; then
	echo "SKIP: uprobes not available here: no tracefs with a writable" \
		"uprobe_events (mount tracefs on /sys/kernel/tracing, run as" \
		"root, kernel with CONFIG_UPROBE_EVENTS)"
	exit 77
fi
command -v readelf >/dev/null || { echo "SKIP: readelf not installed"; exit 77; }

# 10,000 calls in the emulated aarch64 VM, where 100,000 uprobe hits took
# 20 s a program.
calls=100000
[ -z "${REWIRE_AARCH64_VM:-}" ] || calls=10000
group=rwtest$$
inst=$tfs/instances/$group
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for e in "$inst"/events/"$group"/*/enable; do
		[ -e "$e" ] && echo 0 >"$e" 2>/dev/null || true
	done
	rmdir "$inst" 2>/dev/null || true
	for w in $LPE_UP_VARIANTS; do
		echo "-:$group/$w" >>"$tfs/uprobe_events" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# The file offset of FUNC in BIN: its address, through the PT_LOAD that
# holds it.
file_offset() { # BIN FUNC
	local addr type off va pa fs rest
	addr=$(readelf -sW "$1" | awk -v f="$2" '$8 == f && $4 == "FUNC" { print $2; exit }')
	[ -n "$addr" ] || { echo "FAIL: $2 not in $1" >&2; return 1; }
	addr=$((16#$addr))
	while read -r type off va pa fs rest; do
		[ "$type" = LOAD ] || continue
		if ((addr >= va && addr < va + fs)); then
			printf '0x%x\n' $((addr - va + off))
			return 0
		fi
	done < <(readelf -lW "$1")
	echo "FAIL: $2 is in no PT_LOAD of $1" >&2
	return 1
}

# The probes of an earlier run that was killed before its cleanup (a
# timeout) stay in the kernel, and a probe on lpe_up_fn would make this
# run's patch refused: remove those whose test is gone.
while read -r def _; do
	ev=${def#*:}
	g=${ev%%/*}
	[[ $g =~ ^rwtest([0-9]+)$ ]] || continue
	[ ! -e "/proc/${BASH_REMATCH[1]}" ] || continue
	for e in "$tfs/instances/$g/events/$g"/*/enable; do
		[ -e "$e" ] && echo 0 >"$e" 2>/dev/null || true
	done
	rmdir "$tfs/instances/$g" 2>/dev/null || true
	echo "-:$ev" >>"$tfs/uprobe_events" 2>/dev/null || true
	echo "removed the stale uprobe $ev of an earlier run"
done < <(cat "$tfs/uprobe_events")

mkdir "$inst"
status=0
for which in $LPE_UP_VARIANTS; do
	bin=$LPE_UP_DIR/lpe_up_$which
	off=$(file_offset "$bin" lpe_up_fn) || exit 1
	mkfifo "$tmp/in.$which"
	# Bounded: the old layout may also spin for ever (seen once in CI,
	# where the test then hit its 300 s timeout).
	timeout -s KILL 60 "$bin" "$LPE_UP_DIR/lpe_up_patch.so" "$calls" \
		<"$tmp/in.$which" >"$tmp/out.$which" 2>&1 &
	pid=$!
	pids+=("$pid")
	exec 3>"$tmp/in.$which"
	for _ in $(seq 100); do
		grep -q ready "$tmp/out.$which" && break
		sleep 0.1
	done
	grep -q ready "$tmp/out.$which" || { echo "FAIL: lpe_up_$which did not patch itself"; cat "$tmp/out.$which"; exit 1; }
	echo "p:$group/$which $bin:$off" >>"$tfs/uprobe_events"
	echo 1 >"$inst/events/$group/$which/enable"
	echo go >&3
	exec 3>&-
	rc=0
	wait "$pid" || rc=$?
	echo 0 >"$inst/events/$group/$which/enable"
	hits=$(grep -c " $which:" "$inst/trace" || true)
	echo "lpe_up_$which: uprobe at lpe_up_fn ($bin:$off) fired $hits time(s); exit status $rc"
	sed 's/^/	/' "$tmp/out.$which"
	if [ "$which" != keep ]; then
		if [ "$rc" -ne 0 ] || ! grep -q done "$tmp/out.$which"; then
			echo "FAIL: the patched entry did not survive the uprobe"
			status=1
		elif [ "$hits" -eq 0 ]; then
			echo "FAIL: the uprobe never fired: the test proved nothing"
			status=1
		fi
		# Every call enters through the probe: one body for all.
		case $which in
		fix | plain) want="0 calls ran the new function, $calls the old" ;;
		bti) want="$calls calls ran the new function, 0 the old" ;;
		*) want= ;;
		esac
		if [ -n "$want" ] && ! grep -q "done: $want" "$tmp/out.$which"; then
			echo "FAIL: lpe_up_$which: expected \"$want\""
			status=1
		fi
	elif [ "$rc" -eq 137 ] && ! grep -q done "$tmp/out.$which"; then
		echo "note: five 1-byte NOPs: still running after 60 s (killed):" \
			"the old layout can also loop"
	elif [ "$rc" -gt 128 ]; then
		echo "note: five 1-byte NOPs: killed by signal $((rc - 128))," \
			"as expected of the old layout"
	else
		echo "note: five 1-byte NOPs survived here (exit $rc)"
	fi
	echo "-:$group/$which" >>"$tfs/uprobe_events"
done
[ "$status" -eq 0 ] && echo "uprobe on a patched function: the programs that must survive it did"
exit "$status"
