#!/usr/bin/env bash
# The whole test suite: the ci workflow (warnings as errors, unit, torture,
# integration, format), then ASan+UBSan, then TSan on the generic backend.
# A failing workflow does not stop the later ones; the exit status is 1 if
# any failed.
#
#   ./scripts/test.sh           all three workflows
#   ./scripts/test.sh --quick   the ci workflow only
#
# REWIRE_TORTURE_LONG=1 asks the torture tests for long runs.
set -euo pipefail
cd "$(dirname "$0")/.."

workflows=(ci asan tsan)
for arg in "$@"; do
	case "$arg" in
	--quick) workflows=(ci) ;;
	-h | --help)
		sed -n '2,10p' "$0"
		exit 0
		;;
	*)
		echo "test.sh: unknown argument: $arg" >&2
		exit 2
		;;
	esac
done

./scripts/deps.sh

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

echo
echo "=== summary ==="
for w in "${workflows[@]}"; do
	printf '%-8s %-7s %5ss\n' "$w" "${result[$w]}" "${elapsed[$w]}"
done
exit $failed
