#!/usr/bin/env bash
# Boot the aarch64 VM once and check that its kernel gives rewire what it
# needs (guest-check.c: membarrier SYNC_CORE, /proc/self/mem writes to
# text, BRK -> SIGTRAP). Exit 77 when the VM cannot be had.
#
#   scripts/aarch64/check.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
command -v aarch64-linux-gnu-gcc >/dev/null ||
	rw_skip "aarch64-linux-gnu-gcc not found (scripts/deps.sh)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rewire-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
aarch64-linux-gnu-gcc -O2 -Wall -Wextra -Werror -o "$tmp/guest-check" \
	"$here/guest-check.c"
"$here/vm.sh" --timeout 300 --add "$tmp" -- "$tmp/guest-check"
