#!/usr/bin/env bash
# The whole test suite: the ci workflow (warnings as errors, unit, torture,
# integration, format), then ASan+UBSan, then TSan on the generic backend,
# then the Debian packages (scripts/package-test.sh: built, lintian,
# installed, used and purged again; alone, never inside the parallel
# ctest runs, because it installs packages system-wide; skipped with a
# message when not root or a tool is missing).
# Then the aarch64 suite (scripts/aarch64/test.sh: the cross build with
# the aarch64 preset, the compile-only tests on the host, every other test
# in an aarch64 full-system VM, qemu TCG, booted once; doc/AARCH64.md);
# skipped with a message when the cross toolchain, qemu or the arm64
# packages cannot be had.
# A failing step does not stop the later ones; the exit status is 1 if
# any failed.
#
#   ./scripts/test.sh              all of it: three workflows, the
#                                  packages, aarch64
#   ./scripts/test.sh --quick      the ci workflow only
#   ./scripts/test.sh --aarch64    the aarch64 step only
#   ./scripts/test.sh --no-aarch64 all but the aarch64 step (also
#                                  REWIRE_AARCH64=0 in the environment)
#
# REWIRE_TORTURE_LONG=1 asks the torture tests for long runs.
set -euo pipefail
cd "$(dirname "$0")/.."

workflows=(ci asan tsan)
package=1
aarch64=1
for arg in "$@"; do
	case "$arg" in
	--quick)
		workflows=(ci)
		package=0
		aarch64=0
		;;
	--aarch64)
		workflows=()
		package=0
		aarch64=1
		;;
	--no-aarch64)
		aarch64=0
		;;
	--all)
		# As before the aarch64 step was in the default.
		aarch64=1
		;;
	-h | --help)
		sed -n '2,23p' "$0"
		exit 0
		;;
	*)
		echo "test.sh: unknown argument: $arg" >&2
		exit 2
		;;
	esac
done

if [ "$aarch64" = 1 ]; then
	./scripts/deps.sh --aarch64
else
	./scripts/deps.sh
fi

if [ -n "${REWIRE_TORTURE_LONG:-}" ]; then
	export REWIRE_TORTURE_LONG
	echo "test.sh: REWIRE_TORTURE_LONG=$REWIRE_TORTURE_LONG"
fi

declare -A result elapsed
failed=0
for w in "${workflows[@]}"; do
	echo "=== workflow $w ==="
	start=$SECONDS
	if cmake --workflow --preset "$w"; then
		result[$w]=ok
	else
		result[$w]=FAILED
		failed=1
	fi
	elapsed[$w]=$((SECONDS - start))
	echo "=== workflow $w: ${result[$w]} (${elapsed[$w]}s) ==="
done

steps=("${workflows[@]}")
if [ "$package" = 1 ]; then
	steps+=(package)
	echo "=== package ==="
	start=$SECONDS
	status=0
	./scripts/package-test.sh || status=$?
	case $status in
	0) result[package]=ok ;;
	77) result[package]=skipped ;;
	*)
		result[package]=FAILED
		failed=1
		;;
	esac
	elapsed[package]=$((SECONDS - start))
	echo "=== package: ${result[package]} (${elapsed[package]}s) ==="
fi

if [ "${REWIRE_AARCH64:-1}" = 0 ]; then
	echo "test.sh: REWIRE_AARCH64=0: the aarch64 step is skipped"
	aarch64=0
fi
if [ "$aarch64" = 1 ]; then
	steps+=(aarch64)
	echo "=== aarch64 ==="
	start=$SECONDS
	status=0
	./scripts/aarch64/test.sh || status=$?
	case $status in
	0) result[aarch64]=ok ;;
	77) result[aarch64]=skipped ;;
	*)
		result[aarch64]=FAILED
		failed=1
		;;
	esac
	elapsed[aarch64]=$((SECONDS - start))
	echo "=== aarch64: ${result[aarch64]} (${elapsed[aarch64]}s) ==="
fi

echo
echo "=== summary ==="
for w in "${steps[@]}"; do
	printf '%-8s %-7s %5ss\n' "$w" "${result[$w]}" "${elapsed[$w]}"
done
# Why each failed test failed, here at the end where a log cut to its
# head and tail still shows it.
for w in "${workflows[@]}"; do
	if [ "${result[$w]}" = FAILED ] && [ -d "build/$w" ]; then
		echo
		echo "=== $w: failed tests (build/$w, its last ctest run) ==="
		./scripts/failed-tests.sh "build/$w" 25
	fi
done
exit $failed
