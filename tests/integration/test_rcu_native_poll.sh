#!/usr/bin/env bash
# The polled grace-period API on liburcu's own implementation (0.14+).
#
# Debian 12 ships liburcu 0.13, so the normal build uses rewire's counter
# and test_rcu runs that. This test fetches a newer liburcu from Debian's
# archive (trixie's liburcu-dev, with apt's state kept in the build tree:
# the machine's apt configuration is not touched), builds rewire's sources
# and tests/unit/test_rcu.c against its static libraries with
# RW_HAVE_URCU_POLL, and runs the test on both implementations.
#
# Skips (77) when the installed liburcu already has the API (test_rcu then
# covers it), under sanitizers (the sanitizer presets cover the counter),
# or when the archive cannot be reached.
set -euo pipefail

: "${REWIRE_BUILD_DIR:?set by CTest}"
: "${REWIRE_SOURCE_DIR:?set by CTest}"
cc=${REWIRE_CC:-cc}
src=$REWIRE_SOURCE_DIR

if [ -n "${REWIRE_SANITIZE:-}" ]; then
	echo "SKIP: not under sanitizers (REWIRE_SANITIZE=$REWIRE_SANITIZE)"
	exit 77
fi
if grep -q urcu_bp_start_poll_synchronize_rcu \
	"$(pkg-config --variable=includedir liburcu-bp)"/urcu/map/urcu-bp.h \
	/usr/include/*/urcu/map/urcu-bp.h 2>/dev/null; then
	echo "SKIP: the installed liburcu has the polled API; test_rcu runs it"
	exit 77
fi

work=$REWIRE_BUILD_DIR/urcu-native
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/root"
apt=(apt-get -q -o Dir::Etc::sourcelist="$work/sources.list"
	-o Dir::Etc::sourceparts=- -o Dir::State::lists="$work/lists"
	-o Dir::Cache="$work/cache" -o Debug::NoLocking=1)
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
	"http://deb.debian.org/debian trixie main" >"$work/sources.list"

if ! ls "$work"/liburcu-dev_*.deb >/dev/null 2>&1; then
	echo "fetching liburcu from Debian trixie into $work"
	if ! (cd "$work" && timeout 120 "${apt[@]}" update >"$work/apt.log" 2>&1 &&
		timeout 120 "${apt[@]}" download liburcu-dev >>"$work/apt.log" 2>&1); then
		echo "SKIP: could not fetch liburcu-dev from Debian trixie"
		tail -n 5 "$work/apt.log"
		exit 77
	fi
fi
deb=$(ls "$work"/liburcu-dev_*.deb | head -n 1)
dpkg-deb -x "$deb" "$work/root"
lib=$(dirname "$(find "$work/root" -name liburcu-bp.a | head -n 1)")
inc="$work/root/usr/include"
if ! grep -rq urcu_bp_start_poll_synchronize_rcu "$inc"; then
	echo "FAIL: $(basename "$deb") has no polled grace-period API"
	exit 1
fi

# The library's sources as CMakeLists.txt globs them (less src/ctl/, which
# test_rcu does not need): the backend's directory, and for a patching
# backend what the patching backends share.
arch=generic
arch_srcs=()
if grep -q 'define RW_BACKEND_X86_64' "$REWIRE_BUILD_DIR/include/rewire/config.h"; then
	arch=x86_64
	arch_srcs=("$src"/src/arch/patching/*.c)
fi

# liburcu was built against glibc 2.38+, whose C23 strtol names are not in
# Debian 12's glibc: forward them to the classic ones.
cat >"$work/isoc23.c" <<'EOF'
#include <stdlib.h>
long __isoc23_strtol(const char *s, char **end, int base);
unsigned long __isoc23_strtoul(const char *s, char **end, int base);
long __isoc23_strtol(const char *s, char **end, int base)
{
	return strtol(s, end, base);
}
unsigned long __isoc23_strtoul(const char *s, char **end, int base)
{
	return strtoul(s, end, base);
}
EOF

"$cc" -std=gnu17 -O1 -g -D_GNU_SOURCE -DRW_HAVE_URCU_POLL=1 \
	-I"$inc" -I"$inc/x86_64-linux-gnu" \
	-I"$src/include" -I"$REWIRE_BUILD_DIR/include" -I"$src/src" \
	-I"$src/tests/common" \
	"$src"/src/*.c "$src"/src/livepatch/*.c "$src/src/arch/$arch"/*.c "${arch_srcs[@]}" \
	"$src/src/ctl/fileid.c" \
	"$src/tests/unit/test_rcu.c" "$work/isoc23.c" \
	"$lib/liburcu-cds.a" "$lib/liburcu-bp.a" "$lib/liburcu-common.a" \
	$(pkg-config --libs libunwind libunwind-generic libelf libdw) \
	-lpthread -ldl -o "$work/test_rcu_native" 2>"$work/cc.log" || {
	echo "FAIL: build against $(basename "$deb")"
	cat "$work/cc.log"
	exit 1
}

out=$("$work/test_rcu_native")
echo "$out"
grep -q 'polled grace periods: liburcu' <<<"$out" ||
	{ echo "FAIL: liburcu's implementation was not used"; exit 1; }
out=$(REWIRE_RCU_POLL=counter "$work/test_rcu_native")
echo "$out"
grep -q 'polled grace periods: counter' <<<"$out" ||
	{ echo "FAIL: REWIRE_RCU_POLL=counter was ignored"; exit 1; }
echo "test_rcu passed on liburcu $(basename "$deb" .deb | cut -d_ -f2)," \
	"both implementations"
