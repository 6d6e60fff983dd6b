#!/usr/bin/env bash
# Build rewire and run the demo: a multithreaded program whose static keys
# and static calls are flipped while its threads run. Arguments are passed
# to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh
cmake --preset default
cmake --build --preset default

demo=build/default/examples/rw-example-demo
if [ ! -x "$demo" ]; then
	echo "demo.sh: $demo was not built (is examples/demo.c there, and" \
	     "REWIRE_BUILD_EXAMPLES on?)" >&2
	exit 1
fi
exec "$demo" "$@"
