#!/usr/bin/env bash
# Install rewire into a temporary prefix, then build and run a small
# consumer twice: against the shared library (pkg-config) and against
# librewire.a (pkg-config --static). Checks the installed headers, the
# generated config.h and rewire.pc.
set -euo pipefail

: "${REWIRE_BUILD_DIR:?set by CTest}"
: "${REWIRE_SOURCE_DIR:?set by CTest}"
cc=${REWIRE_CC:-cc}
cmake=${REWIRE_CMAKE:-cmake}

if ! command -v pkg-config >/dev/null 2>&1; then
	echo "SKIP: pkg-config not installed"
	exit 77
fi

# Inside the build tree, so that nothing is left outside build/.
tmp=$(mktemp -d "$REWIRE_BUILD_DIR/install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$cmake" --install "$REWIRE_BUILD_DIR" --prefix "$tmp/prefix" >"$tmp/install.log"

pc=$(find "$tmp/prefix" -name rewire.pc -path '*/pkgconfig/*' | head -n 1)
if [ -z "$pc" ]; then
	echo "FAIL: rewire.pc was not installed"
	exit 1
fi
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir rewire)
for v in patchable_cflags live_patching_cflags; do
	[ -n "$(pkg-config --variable=$v rewire)" ] ||
		{ echo "FAIL: rewire.pc has no $v"; exit 1; }
done
for f in "$libdir/librewire.a" "$libdir/librewire.so" \
	"$tmp/prefix/include/rewire/config.h" \
	"$tmp/prefix/include/rewire/common.h"; do
	if [ ! -e "$f" ]; then
		echo "FAIL: $f was not installed"
		exit 1
	fi
done
find "$tmp/prefix" -name rewireConfig.cmake | grep -q . ||
	{ echo "FAIL: rewireConfig.cmake was not installed"; exit 1; }
# The Ansible collection, where Ansible looks for collections under the
# prefix (share/ansible/collections), loadable by ansible-doc when it is
# installed.
coll=$tmp/prefix/share/ansible/collections/ansible_collections/rewire/fleet
for f in galaxy.yml meta/runtime.yml plugins/modules/rewire_patch.py \
	playbooks/rollout.yml; do
	[ -f "$coll/$f" ] || { echo "FAIL: $coll/$f was not installed"; exit 1; }
done
if command -v ansible-doc >/dev/null 2>&1; then
	HOME=$tmp ANSIBLE_COLLECTIONS_PATH=$tmp/prefix/share/ansible/collections \
		ansible-doc rewire.fleet.rewire_patch >"$tmp/ansible-doc.txt" 2>&1 &&
		grep -q "^> REWIRE.FLEET.REWIRE_PATCH" "$tmp/ansible-doc.txt" ||
		{ cat "$tmp/ansible-doc.txt"; echo "FAIL: ansible-doc of the installed collection"; exit 1; }
fi

header=rewire/common.h
if [ -f "$tmp/prefix/include/rewire/rewire.h" ]; then
	header=rewire/rewire.h
fi

cat >"$tmp/consumer.c" <<C
#include <$header>
#include <stdio.h>
#include <string.h>

int main(void)
{
	const char *v = rw_version();

	printf("rewire %s\n", v);
	return strcmp(v, RW_VERSION_STRING) == 0 ? 0 : 1;
}
C

# A sanitized librewire needs a sanitized consumer.
san=()
if [ -n "${REWIRE_SANITIZE:-}" ]; then
	san=(-fsanitize="$REWIRE_SANITIZE" -fno-omit-frame-pointer)
fi

# shellcheck disable=SC2046
"$cc" -std=gnu17 -Wall -Werror "${san[@]}" "$tmp/consumer.c" \
	-o "$tmp/consumer-shared" $(pkg-config --cflags --libs rewire)
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
	"$tmp/consumer-shared"

# -lrewire becomes -l:librewire.a so the linker cannot pick the .so.
static_libs=$(pkg-config --static --libs rewire | sed 's/-lrewire\b/-l:librewire.a/')
# shellcheck disable=SC2046,SC2086
"$cc" -std=gnu17 -Wall -Werror "${san[@]}" "$tmp/consumer.c" \
	-o "$tmp/consumer-static" $(pkg-config --static --cflags rewire) $static_libs
if ldd "$tmp/consumer-static" 2>/dev/null | grep -q librewire; then
	echo "FAIL: consumer-static depends on librewire.so"
	exit 1
fi
"$tmp/consumer-static"

# The CMake package: find_package(rewire) and both exported targets.
mkdir -p "$tmp/cmake-consumer"
cp "$tmp/consumer.c" "$tmp/cmake-consumer/consumer.c"
cat >"$tmp/cmake-consumer/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(rewire 0.1 REQUIRED)
add_executable(consumer-shared consumer.c)
target_link_libraries(consumer-shared PRIVATE rewire::rewire)
add_executable(consumer-static consumer.c)
target_link_libraries(consumer-static PRIVATE rewire::rewire_static)
CM
"$cmake" -S "$tmp/cmake-consumer" -B "$tmp/cmake-consumer/build" \
	-DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_COMPILER="$cc" \
	-DCMAKE_C_FLAGS="${san[*]}" >"$tmp/cmake-consumer.log" 2>&1 ||
	{ cat "$tmp/cmake-consumer.log"; echo "FAIL: find_package(rewire)"; exit 1; }
"$cmake" --build "$tmp/cmake-consumer/build" >>"$tmp/cmake-consumer.log" 2>&1 ||
	{ cat "$tmp/cmake-consumer.log"; echo "FAIL: CMake consumer build"; exit 1; }
"$tmp/cmake-consumer/build/consumer-shared"
"$tmp/cmake-consumer/build/consumer-static"
echo "install test: ok"
