#!/usr/bin/env bash
# The failed tests of a ctest run, each with the last lines of its output,
# for the end of a long log (scripts/test.sh prints it under its summary,
# where a CI log that keeps only its head and tail still shows why).
#
#   scripts/failed-tests.sh BUILD_DIR [LINES]   LINES per test (default 25)
#
# Reads BUILD_DIR/Testing/Temporary/LastTestsFailed.log and LastTest.log;
# prints nothing when no test failed. Exit status 0.
set -uo pipefail

dir=${1:?usage: failed-tests.sh BUILD_DIR [LINES]}
lines=${2:-25}
failed=$dir/Testing/Temporary/LastTestsFailed.log
log=$dir/Testing/Temporary/LastTest.log
[ -s "$failed" ] || exit 0

while IFS=: read -r _ name; do
	[ -n "$name" ] || continue
	echo "--- $name (last $lines lines of its output) ---"
	if [ -f "$log" ]; then
		# The block of this test: from "N/M Testing: NAME" to the
		# "<end of output>" after it.
		awk -v name="$name" '
			$0 ~ /^[0-9]+\/[0-9]+ Testing: / {
				split($0, w, "Testing: ")
				on = (w[2] == name)
				out = 0
				next
			}
			on && /^Output:/ { out = 1; next }
			on && /^<end of output>/ { on = 0; next }
			on && out && !/^-+$/ { print }
		' "$log" | tail -n "$lines"
	else
		echo "(no $log)"
	fi
done <"$failed"
