# shellcheck shell=bash
# Shared by scripts/aarch64/*.sh (sourced, not run).
#
# REWIRE_AARCH64_CACHE: where fetch.sh keeps Debian's arm64 kernel, the
# packages and the guest's root file system, outside any build tree and
# reused by every run (default /var/cache/rewire-aarch64 when writable,
# else ~/.cache/rewire-aarch64).

rw_aarch64_cache() {
	if [ -n "${REWIRE_AARCH64_CACHE:-}" ]; then
		echo "$REWIRE_AARCH64_CACHE"
	elif mkdir -p /var/cache/rewire-aarch64 2>/dev/null &&
		[ -w /var/cache/rewire-aarch64 ]; then
		echo /var/cache/rewire-aarch64
	else
		echo "${XDG_CACHE_HOME:-$HOME/.cache}/rewire-aarch64"
	fi
}

# Print a message and exit 77 (CTest's and test.sh's "skipped").
rw_skip() {
	echo "aarch64: SKIP: $*" >&2
	exit 77
}

rw_log() {
	echo "aarch64: $*" >&2
}
