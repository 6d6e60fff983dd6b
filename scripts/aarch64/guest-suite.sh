#!/bin/bash
# Runs in the aarch64 VM (scripts/aarch64/test.sh): the kernel check, then
# ctest with the given arguments in the build tree BUILD.
#
#   guest-suite.sh BUILD CTEST_ARGS...
#
# The tests' TIMEOUT properties are for native speed: emulated, a test
# runs several times slower, so they are multiplied by
# REWIRE_VM_TIMEOUT_SCALE (default 2) in the guest's copy of the build
# tree (CTestTestfile.cmake; the host's is untouched), up to 900 s (the
# torture tests' own: a hung test must not eat the VM's whole time). The
# VM's own timeout (vm.sh) still bounds the whole run. The tests' own
# waits for an outcome (a transition, a thread reaching a system call)
# are multiplied by REWIRE_TEST_TIME_SCALE (default 4 here; 1 natively;
# tests/common/check.h, rw_test_time_scale()).
set -u
export REWIRE_TEST_TIME_SCALE=${REWIRE_TEST_TIME_SCALE:-4}
build=$1
shift
"$build/aarch64-vm/guest-check" || exit 1
scale=${REWIRE_VM_TIMEOUT_SCALE:-2}
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
exec ctest "$@"
