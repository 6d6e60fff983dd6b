#!/usr/bin/env bash
# librewire.so's ABI against the committed baseline of the last release
# (abi/librewire.so.0.abi): scripts/abi-check.sh fails on an incompatible
# change that is not announced (doc/ABI.md) and reports additions. Then
# its self-test: the broken copies of the library that test_abi.cmake
# builds (a public struct grown, a symbol removed, a symbol added in an old
# node, a SONAME bump not yet announced) must fail the check, a compatible
# addition pass. Skipped (77) without abigail-tools, under sanitizers, on
# the generic backend and without debug information.
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"
: "${REWIRE_SOURCE_DIR:?set by CTest}"

if [ -n "${REWIRE_SANITIZE:-}" ]; then
	echo "SKIP: sanitizer build ($REWIRE_SANITIZE): its instrumented library is not the released ABI"
	exit 77
fi
check=$REWIRE_SOURCE_DIR/scripts/abi-check.sh
rc=0
bash "$check" --build-dir "$REWIRE_BUILD_DIR" || rc=$?
case $rc in
0) ;;
77) exit 77 ;;
*)
	echo "FAIL: the ABI check failed (status $rc)"
	exit 1
	;;
esac
echo "--- self-test"
rc=0
bash "$check" --build-dir "$REWIRE_BUILD_DIR" --self-test || rc=$?
case $rc in
0) echo "PASS" ;;
77) exit 77 ;;
*)
	echo "FAIL: the ABI check's self-test failed (status $rc)"
	exit 1
	;;
esac
