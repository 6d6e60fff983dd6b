#!/usr/bin/env bash
# Install the Debian packages rewire needs to build, test and benchmark.
# Idempotent: prints one line and does nothing when all are present.
set -euo pipefail

# One list; append here when the project gains a dependency. clang and
# libclang-rt-14-dev (libFuzzer's runtime) build the fuzz targets for the
# fuzz_*_libfuzzer tests (tests/fuzz/run_libfuzzer.sh). libevent-dev and
# dpkg-dev build Debian's memcached for test_memcached_ftrace. python3
# checks the --json reports of the build-patch tests (tests/buildpatch/).
# babeltrace2 and python3-bt2 read the CTF traces of test_trace_formats.
# ansible-core runs the rewire.fleet collection's module and playbook in
# test_fleet_ansible. spin checks the Promela models of the protocols
# (src/*.pml, tests/models/). abigail-tools (abidw, abidiff) checks
# librewire.so's ABI against abi/ (test_abi, scripts/abi-check.sh).
# python3 also generates the man3 pages (scripts/gen-man3.py);
# groff-base and man-db check them (test_man3).
REWIRE_DEPS="cmake ninja-build gcc g++ make pkg-config clang-format valgrind libc6-dev liburcu-dev liblttng-ust-dev systemtap-sdt-dev libunwind-dev libelf-dev libdw-dev clang libclang-rt-14-dev libevent-dev dpkg-dev libjson-c-dev bear patch python3 babeltrace2 python3-bt2 ansible-core spin abigail-tools groff-base man-db"
# autoconf and automake: tests only, test_consumer_autotools builds an
# autotools program against an installed rewire with REWIRE_CHECK
# (cmake/rewire.m4).
REWIRE_DEPS="$REWIRE_DEPS autoconf automake"
# The Debian packages (scripts/package-test.sh): debhelper, fakeroot and
# lintian (with dpkg-dev) build and check them, man-db reads their man pages.
REWIRE_DEPS+=" debhelper fakeroot lintian"

# The aarch64 step (scripts/aarch64/, doc/AARCH64.md): the cross toolchain,
# the arm64 -dev packages of the dependencies (multiarch, after dpkg
# --add-architecture arm64), qemu-system-aarch64 (qemu-system-arm) to boot
# the VM, qemu-user to run the cross-built build tools on files during the
# cross build, cpio for the VM's initramfs. Best effort: when they cannot
# be installed the aarch64 step is skipped (exit 77), the rest goes on.
# (memcached_cross_build fetches libevent's arm64 packages itself:
# libevent-dev:arm64 would replace the host's libevent-dev.)
REWIRE_CROSS_DEPS="gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu qemu-system-arm qemu-user cpio liburcu-dev:arm64 libunwind-dev:arm64 libelf-dev:arm64 libdw-dev:arm64 libjson-c-dev:arm64"

# Only when asked (`deps.sh --aarch64`, as `scripts/test.sh` does unless
# --quick or --no-aarch64): these packages are large, and the demo and the
# x86-64 workflows do not need them.
cross_deps() {
	local p status cmissing=()
	for p in $REWIRE_CROSS_DEPS; do
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		case "$status" in
		*"install ok installed"*) ;;
		*) cmissing+=("$p") ;;
		esac
	done
	[ ${#cmissing[@]} -eq 0 ] && return 0
	echo "deps: aarch64: missing: ${cmissing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: aarch64: not root; the aarch64 step will be skipped. As root:" >&2
		echo "  dpkg --add-architecture arm64 && apt-get update && apt-get install -y --no-install-recommends ${cmissing[*]}" >&2
		return 0
	fi
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		dpkg --add-architecture arm64
	fi
	export DEBIAN_FRONTEND=noninteractive
	if apt-get update -q >/dev/null &&
		apt-get install -y -q --no-install-recommends "${cmissing[@]}"; then
		echo "deps: aarch64: installed ${cmissing[*]}"
	else
		echo "deps: aarch64: could not install them; the aarch64 step will be skipped" >&2
	fi
}
for arg in "$@"; do
	case "$arg" in
	--aarch64) cross_deps ;;
	*)
		echo "deps.sh: unknown argument: $arg (--aarch64)" >&2
		exit 2
		;;
	esac
done

missing=()
for p in $REWIRE_DEPS; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing+=("$p") ;;
	esac
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all present"
	exit 0
fi

echo "deps: missing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" -eq 0 ]; then
	apt-get update
	apt-get install -y --no-install-recommends "${missing[@]}"
elif command -v sudo >/dev/null 2>&1; then
	sudo apt-get update
	sudo DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${missing[@]}"
else
	echo "deps: not root and no sudo; run as root:" >&2
	echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi
echo "deps: installed ${missing[*]}"
