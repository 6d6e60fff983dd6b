#!/usr/bin/env bash
# README's main job, run as a test: examples/kv/demo.sh against this build
# tree, with one-second phases. It fails when a request fails, when the
# trace, funclatency, call, patch or unpatch step fails, or when the patch
# does not remove every wrong answer while applied (the script checks its
# report).
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"
: "${REWIRE_SOURCE_DIR:?set by CTest}"

if [ ! -x "$REWIRE_BUILD_DIR/examples/kv/rw-kvserver" ]; then
	echo "SKIP: the kv example is not built (REWIRE_BUILD_EXAMPLES off?)"
	exit 77
fi
# Under ASan the server is instrumented, but `rewire run` puts librewire
# ahead of the ASan runtime in LD_PRELOAD; the runtime is loaded all the
# same (librewire needs it), so only its order check is in the way.
if [[ "${REWIRE_SANITIZE:-}" == *address* ]]; then
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
fi
# 200 s, times the machine's scale.
bound=$((200 * ${REWIRE_TEST_TIME_SCALE:-1}))
args=(--phase-seconds 1)
# The emulated aarch64 machine (scripts/aarch64/vm.sh) runs the demo's
# build-patch step, two compilations, in about 3 minutes: there the demo
# applies the fix the build made (patches/fix_value.c), and test_bp_kv
# builds fix_value.diff into a patch and applies it under load.
if [ -n "${REWIRE_AARCH64_VM:-}" ]; then
	args+=(--patch "$REWIRE_BUILD_DIR/examples/kv/fix_value.so")
fi
out=$(timeout "$bound" "$REWIRE_SOURCE_DIR/examples/kv/demo.sh" \
	"$REWIRE_BUILD_DIR" "${args[@]}" 2>&1) || {
	echo "$out"
	echo "FAIL: the demo failed (or did not end in $bound s)"
	exit 1
}
echo "$out"
grep -Eq "[1-9][0-9]* events? printed, [0-9]+ dropped" <<<"$out" ||
	{ echo "FAIL: the trace printed no events or no summary"; exit 1; }
grep -Eq "^\[[0-9]+K?, [0-9]+K?\) +[1-9][0-9]* \|@+ *\|" <<<"$out" &&
	grep -Eq "avg = [0-9]+ ns, total: [0-9]+ ns, count: [1-9][0-9]*" <<<"$out" ||
	{ echo "FAIL: funclatency drew no histogram of crc32c_bytewise"; exit 1; }
grep -q "kv_checksum: crc32c_bytewise -> crc32c_hw" <<<"$out" ||
	{ echo "FAIL: the static call was not switched"; exit 1; }
echo PASS
