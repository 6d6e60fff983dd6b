#!/usr/bin/env bash
# Run a command in an aarch64 full-system VM: qemu-system-aarch64 (TCG),
# Debian's arm64 kernel, an initramfs with busybox, the arm64 run-time
# packages (fetch.sh), this source tree and the cross build tree at the
# same absolute paths as here (ctest's CTestTestfile.cmake names them).
# One boot per call; every wait is bounded.
#
#   scripts/aarch64/vm.sh [OPTIONS] -- CMD [ARG...]
#     --build DIR      the cross build tree to put in the guest (default:
#                      none; only the source tree)
#     --cwd DIR        the command's directory (default: the current one)
#     --env VAR=VALUE  set in the guest (repeatable; REWIRE_* variables of
#                      this environment are passed on too)
#     --add PATH       another host file or directory for the guest, at
#                      the same path (repeatable)
#     --timeout SEC    the whole boot, command included (default 1200)
#     --smp N --mem SIZE   (default 2, 3G)
#     --log FILE       keep the console log there
#     --icount         exact instruction counts: qemu -icount, so that the
#                      PMU's instructions event (perf_event_open) counts
#                      the guest's instructions (benchmarks; no MTTCG)
#     --quiet          print the console log only when the command fails
#                      (otherwise it is printed as it comes)
#
# Exit status: the command's, or 124 when the VM did not finish in time,
# 125 when it stopped without reporting one, 77 when the VM cannot be had
# (no qemu-system-aarch64, no packages: see fetch.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

build="" cwd=$PWD timeout_s=${REWIRE_VM_TIMEOUT:-1200} smp=2 mem=3G
log="" quiet=0 icount=0
envs=() adds=()
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$(cd "$2" && pwd); shift 2 ;;
	--cwd) cwd=$2; shift 2 ;;
	--env) envs+=("$2"); shift 2 ;;
	--add) adds+=("$(realpath "$2")"); shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	--quiet) quiet=1; shift ;;
	--icount) icount=1; shift ;;
	--) shift; break ;;
	-h | --help) sed -n '2,26p' "$0"; exit 0 ;;
	*) echo "vm.sh: unknown option $1 (the command goes after --)" >&2; exit 2 ;;
	esac
done
[ $# -gt 0 ] || { echo "vm.sh: no command (vm.sh [OPTIONS] -- CMD...)" >&2; exit 2; }

command -v qemu-system-aarch64 >/dev/null ||
	rw_skip "qemu-system-aarch64 not found (Debian's qemu-system-arm; scripts/deps.sh)"
img=$("$here/fetch.sh" --print)

work=$(mktemp -d "${TMPDIR:-/tmp}/rewire-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
ov=$work/overlay
mkdir -p "$ov/rewire"
cp "$here/init" "$ov/init"

# The command, quoted for bash, run in its directory with the environment.
{
	echo 'set -u'
	for v in $(compgen -e | grep -E '^REWIRE_' | grep -v '^REWIRE_AARCH64_CACHE$' || true); do
		printf 'export %s=%q\n' "$v" "${!v}"
	done
	for e in "${envs[@]}"; do
		printf 'export %q\n' "$e"
	done
	printf 'cd %q || exit 126\n' "$cwd"
	printf 'exec'
	printf ' %q' "$@"
	echo
} >"$ov/rewire/cmd"

# The host paths the guest gets, with every parent directory (the
# kernel's initramfs unpacker creates no missing parents).
list=$work/list
: >"$list"
add_parents() {
	local p=$1 acc=""
	IFS=/ read -ra parts <<<"${p#/}"
	for c in "${parts[@]::${#parts[@]}-1}"; do
		acc=$acc/$c
		echo "${acc#/}" >>"$list"
	done
}
add_tree() { # DIR [find exclusions...]
	local d=$1
	shift
	add_parents "$d"
	(cd / && find "${d#/}" "$@" -print) >>"$list"
}
add_tree "$src" \( -path "${src#/}/build" -o -path "${src#/}/build-*" \
	-o -path "${src#/}/.git" -o -name '*.o' \) -prune -o
if [ -n "$build" ]; then
	# Objects and ninja's state are never needed in the guest.
	add_tree "$build" \( -name '*.o' -o -name '*.o.d' -o -name '.ninja_*' \
		-o -name '*.gcno' \) -prune -o
fi
for a in "${adds[@]}"; do
	add_tree "$a"
done
LC_ALL=C sort -u "$list" -o "$list"
(cd / && cpio -o -H newc --owner=0:0 --quiet <"$list") >"$work/host.cpio"
(cd "$ov" && find . -mindepth 1 | cpio -o -H newc --owner=0:0 --quiet) >"$work/init.cpio"
touch "$img"
cat "$img/base.cpio" "$work/host.cpio" "$work/init.cpio" >"$work/initrd"

# --icount: exact instruction counts (qemu's icount; the PMU's
# INST_RETIRED event counts only then), one host thread for every vCPU.
if [ "$icount" = 1 ]; then
	accel=(-accel tcg -icount shift=0)
else
	# shellcheck disable=SC2054 # one option value
	accel=(-accel tcg,thread=multi)
fi
[ -n "$log" ] || log=$work/console.log
rw_log "booting ($(du -h "$work/initrd" | cut -f1) initramfs, -smp $smp -m $mem, timeout ${timeout_s}s): $*"
start=$SECONDS
status=0
: >"$log"
timeout --kill-after=10 "$timeout_s" qemu-system-aarch64 \
	-M virt -cpu max,pauth-impdef=on -smp "$smp" -m "$mem" \
	"${accel[@]}" \
	-display none -monitor none -serial "file:$log" -no-reboot \
	-kernel "$img/kernel/vmlinuz" -initrd "$work/initrd" \
	-append "console=ttyAMA0 rdinit=/init panic=-1 quiet loglevel=3" \
	</dev/null >"$work/qemu.out" 2>&1 &
qpid=$!
tpid=""
if [ "$quiet" = 0 ]; then
	# The console as it comes (tail ends within a second of qemu).
	tail -n +1 -f --pid="$qpid" "$log" | tr -d '\r' &
	tpid=$!
fi
wait "$qpid" || status=$?
[ -z "$tpid" ] || wait "$tpid" || true
elapsed=$((SECONDS - start))

# The console uses CRLF.
sed -i 's/\r$//' "$log"
rc=$(sed -n 's/^@@REWIRE-VM-EXIT \([0-9]*\)@@$/\1/p' "$log" | tail -n1)
if [ -z "$rc" ]; then
	[ "$quiet" = 0 ] || cat "$log" >&2
	cat "$work/qemu.out" >&2
	if [ "$status" = 124 ] || [ "$status" = 137 ]; then
		rw_log "the VM did not finish in ${timeout_s}s"
		exit 124
	fi
	rw_log "the VM stopped without the command's status (qemu exit $status, ${elapsed}s)"
	exit 125
fi
if [ "$quiet" = 1 ] && [ "$rc" != 0 ]; then
	# The command's output: from the boot marker to the exit marker.
	sed -n '/^@@REWIRE-VM-BOOTED/,/^@@REWIRE-VM-EXIT/p' "$log"
fi
rw_log "exit $rc after ${elapsed}s"
exit "$rc"
