#!/usr/bin/env bash
# The aarch64 suite: cross-build with a preset (default aarch64), then boot
# the aarch64 VM once (vm.sh) and run in it the kernel check (guest-check.c)
# and ctest with the same preset's filters (CMakePresets.json: the test
# presets aarch64 and generic-aarch64 exclude lint, checked on the host,
# not_aarch64, and host_compile: the tests that only run the compiler
# (or read files under user-mode qemu: test_bp_diff; memcached's cross
# build), which run here on the host with the cross compiler before the
# VM boots, 20 times faster than emulated). Torture tests run their short defaults
# unless REWIRE_TORTURE_LONG is set (vm.sh passes REWIRE_* variables on).
#
#   scripts/aarch64/test.sh [--preset NAME] [--no-build] [-- CTEST_ARGS...]
#     e.g. scripts/aarch64/test.sh -- -R static_key
#
# Exit status: ctest's (0: all passed), 77 when the cross toolchain, qemu
# or the packages are missing (with a message), 124 on timeout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

preset=aarch64 build_it=1
while [ $# -gt 0 ]; do
	case $1 in
	--preset) preset=$2; shift 2 ;;
	--no-build) build_it=0; shift ;;
	--) shift; break ;;
	-h | --help) sed -n '2,14p' "$0"; exit 0 ;;
	*) echo "test.sh: unknown option $1" >&2; exit 2 ;;
	esac
done

for t in aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ qemu-system-aarch64 cmake ninja; do
	command -v "$t" >/dev/null || rw_skip "$t not found (scripts/deps.sh installs the cross toolchain and qemu)"
done
for pc in liburcu-bp libunwind libelf libdw; do
	[ -f "/usr/lib/aarch64-linux-gnu/pkgconfig/$pc.pc" ] ||
		rw_skip "arm64 $pc.pc missing (scripts/deps.sh installs the :arm64 -dev packages)"
done
"$here/fetch.sh"

cd "$src"
build=$src/build/$preset
t0=$SECONDS
if [ "$build_it" = 1 ]; then
	cmake --preset "$preset" >/dev/null
	cmake --build --preset "$preset" -j "${REWIRE_JOBS:-2}"
fi
[ -f "$build/CTestTestfile.cmake" ] || { echo "test.sh: $build is not built" >&2; exit 2; }
mkdir -p "$build/aarch64-vm"
aarch64-linux-gnu-gcc -O2 -Wall -Wextra -Werror -o "$build/aarch64-vm/guest-check" \
	"$here/guest-check.c"
rw_log "build: $((SECONDS - t0))s"

# The compile-only tests, on the host (the same cross compiler the guest
# would run, emulated; memcached_cross_build leaves memcached and its
# patch in the build tree for the guest's tests). Their failure fails the step; the VM runs anyway.
status=0
t1=$SECONDS
ctest --test-dir "$build" -L '^host_compile$' --output-on-failure \
	--timeout 600 "$@" || status=$?
rw_log "host_compile tests on the host: exit $status, $((SECONDS - t1))s"

# In the guest (guest-suite.sh): the kernel check, then the suite, the
# tests' timeouts scaled for emulation (REWIRE_VM_TIMEOUT_SCALE). ctest's
# own --timeout is for tests without a TIMEOUT property; the VM's bounds
# everything.
vm_status=0
"$here/vm.sh" --build "$build" --cwd "$src" \
	--timeout "${REWIRE_VM_TIMEOUT:-3000}" \
	--env REWIRE_AARCH64_VM=1 -- \
	bash "$here/guest-suite.sh" "$build" --preset "$preset" --timeout 600 "$@" ||
	vm_status=$?
rw_log "suite ($preset): exit $vm_status, $((SECONDS - t0))s in all"
[ "$vm_status" = 0 ] || exit "$vm_status"
exit "$status"
