#!/bin/bash
# Runs in the aarch64 VM (scripts/aarch64/test.sh): the kernel check, then
# ctest with the given arguments in the build tree BUILD.
#
#   guest-suite.sh BUILD CTEST_ARGS...
#
# The tests' TIMEOUT properties are for native speed: emulated, a test
# runs several times slower, so they are multiplied by
# REWIRE_VM_TIMEOUT_SCALE (default 4) in the guest's copy of the build
# tree (CTestTestfile.cmake; the host's is untouched), up to 900 s (the
# torture tests' own: a hung test must not eat the VM's whole time). The
# VM's own timeout (vm.sh) still bounds the whole run. The tests' own
# waits for an outcome (a transition, a thread reaching a system call)
# are multiplied by REWIRE_TEST_TIME_SCALE (default 4 here; 1 natively;
# tests/common/check.h, rw_test_time_scale()). Tests that fail run once
# more, and are named (REWIRE_VM_RERUN=0: not).
set -u
export REWIRE_TEST_TIME_SCALE=${REWIRE_TEST_TIME_SCALE:-4}
build=$1
shift
"$build/aarch64-vm/guest-check" || exit 1
scale=${REWIRE_VM_TIMEOUT_SCALE:-4}
find "$build" -name CTestTestfile.cmake | while read -r f; do
	awk -v s="$scale" -v cap=900 '{
		out = ""
		while (match($0, /TIMEOUT "[0-9]+"/)) {
			t = substr($0, RSTART + 9, RLENGTH - 10)
			n = t * s
			if (n > cap)
				n = t > cap ? t : cap
			out = out substr($0, 1, RSTART - 1) "TIMEOUT \"" n "\""
			$0 = substr($0, RSTART + RLENGTH)
		}
		print out $0
	}' "$f" >"$f.scaled" && mv "$f.scaled" "$f"
done

# A hang shows its threads: every 15 s, a test program (a process whose
# executable is in the build tree) that has run for REWIRE_VM_HANG_REPORT
# seconds (default 300; a test has run for minutes only when something
# is wrong, and ctest's scaled timeouts are 480 s and more) gets each
# thread's state, wait channel, syscall line (pc, sp) and kernel stack
# printed once, with its maps, before ctest's timeout kills it without a
# word. The scan reads /proc with bash's own read: a process started per
# process per scan (awk, readlink) cost the emulated machine seconds.
hang_after=${REWIRE_VM_HANG_REPORT:-300}
(
	hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
	declare -A told
	while sleep 15; do
		read -r up _ </proc/uptime
		up=${up%.*}
		for d in /proc/[0-9]*; do
			pid=${d#/proc/}
			[ -z "${told[$pid]:-}" ] || continue
			read -r stat 2>/dev/null <"$d/stat" || continue
			# The fields after "(comm) ": state is the first,
			# starttime (field 22) the twentieth.
			read -r -a f <<<"${stat##*) }"
			start=${f[19]:-}
			[[ $start =~ ^[0-9]+$ ]] || continue
			age=$((up - start / hz))
			[ "$age" -ge "$hang_after" ] || continue
			told[$pid]=1
			exe=$(readlink "$d/exe" 2>/dev/null) || continue
			case $exe in "$build"/*) ;; *) continue ;; esac
			{
				echo "=== guest-suite: $exe (pid $pid) running for ${age}s:"
				for t in "$d"/task/*; do
					echo "  thread ${t##*/} $(cat "$t/comm" 2>/dev/null)" \
						"state $(awk '{print $3}' "$t/stat" 2>/dev/null)" \
						"wchan $(cat "$t/wchan" 2>/dev/null)"
					echo "    syscall $(cat "$t/syscall" 2>/dev/null)"
					sed 's/^/    kstack /' "$t/stack" 2>/dev/null | head -8
				done
				grep ' r-xp ' "$d/maps" 2>/dev/null | sed 's/^/  map /'
			} >&2
		done
	done
) &
watcher=$!
ctest "$@"
status=$?
# The failed tests run once more (REWIRE_VM_RERUN=0: not): the emulated
# machine's timing is not a real machine's, and a test that fails twice
# fails the step. Which tests needed the second run is printed either way,
# to be looked at, never hidden.
failed_log=$(find "$build" -path '*/Testing/Temporary/LastTestsFailed.log' 2>/dev/null | head -n1)
if [ "$status" != 0 ] && [ "${REWIRE_VM_RERUN:-1}" = 1 ] && [ -s "$failed_log" ]; then
	first=$(cut -d: -f2 "$failed_log" | tr '\n' ' ')
	echo "=== guest-suite: failed in the first run: $first; running them once more"
	ctest "$@" --rerun-failed
	status=$?
	if [ "$status" = 0 ]; then
		echo "=== guest-suite: passed on the second run (flaky under emulation, to be looked at): $first"
	else
		echo "=== guest-suite: failed twice: $(cut -d: -f2 "$failed_log" | tr '\n' ' ')"
	fi
fi
kill "$watcher" 2>/dev/null
exit $status
