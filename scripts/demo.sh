#!/usr/bin/env bash
# Build rewire and run the demo: a multithreaded key-value server, under
# load from its load generator, is traced, has a static call switched and a
# bug live-patched and reverted by the `rewire` command while it serves;
# the report shows requests, errors (zero) and latency in each phase.
# Arguments are passed to examples/kv/demo.sh (--phase-seconds N, --keep).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh
cmake --preset default
cmake --build --preset default

exec examples/kv/demo.sh build/default "$@"
