#!/usr/bin/env bash
# Install rewire into a temporary prefix, then build and run a small
# consumer twice: against the shared library (pkg-config) and against
# librewire.a (pkg-config --static). Checks the installed headers, the
# generated config.h, rewire.pc, the documentation (doc/*.md, README.md,
# LICENSE, CHANGELOG.md in share/doc/rewire) and the autoconf macros
# (share/aclocal/rewire.m4).
#
# The private dependencies (libunwind, libunwind-generic, libelf,
# liburcu-cds, libdw) matter only for static linking: a dynamic consumer
# builds, with pkg-config and with the CMake package, where only
# liburcu-bp's .pc file is present (as when their -dev packages are not
# installed), while the static one gets them and the CMake package names
# the missing .pc file when find_package(rewire COMPONENTS static) cannot
# find it.
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

# The documentation and the autoconf macros.
docdir=$tmp/prefix/share/doc/rewire
for f in README.md LICENSE CHANGELOG.md; do
	[ -f "$docdir/$f" ] || { echo "FAIL: $docdir/$f was not installed"; exit 1; }
done
for md in "$REWIRE_SOURCE_DIR"/doc/*.md; do
	f=$docdir/$(basename "$md")
	[ -f "$f" ] || { echo "FAIL: $f was not installed"; exit 1; }
done
# The man page points to the installed guides (/usr/share/doc/rewire/X,
# here $docdir/X), not to the source tree's doc/X.md.
man1=$REWIRE_SOURCE_DIR/doc/rewire.1
if grep -nE '(^|[^/a-z])doc/[A-Za-z_\-]+\.md' "$man1"; then
	echo "FAIL: doc/rewire.1 names guides by their path in the sources"
	exit 1
fi
named=$(grep -oE '/usr/share/doc/rewire/[A-Za-z_.\\-]*' "$man1" |
	sed -e 's|^/usr/share/doc/rewire/||' -e 's/\\-/-/g' | sort -u)
[ -n "$named" ] || { echo "FAIL: doc/rewire.1 does not name /usr/share/doc/rewire"; exit 1; }
for f in $named; do
	[ -e "$docdir/$f" ] ||
		{ echo "FAIL: doc/rewire.1 names /usr/share/doc/rewire/$f, not installed"; exit 1; }
done
[ -f "$tmp/prefix/share/aclocal/rewire.m4" ] ||
	{ echo "FAIL: share/aclocal/rewire.m4 was not installed"; exit 1; }

# A pkg-config search path with rewire.pc (the prefix's pkgconfig
# directory: rewire.pc finds the prefix from its own directory) and
# liburcu-bp.pc only: the private dependencies' .pc files are missing.
[ "$(ls "$(dirname "$pc")")" = rewire.pc ] ||
	{ echo "FAIL: $(dirname "$pc") holds more than rewire.pc"; exit 1; }
mkdir "$tmp/pc-min"
ln -s "$(pkg-config --variable=pcfiledir liburcu-bp)/liburcu-bp.pc" \
	"$tmp/pc-min/liburcu-bp.pc"
pc_min=$(dirname "$pc"):$tmp/pc-min
min_flags=$(PKG_CONFIG_LIBDIR=$pc_min PKG_CONFIG_PATH='' \
	pkg-config --cflags --libs rewire 2>"$tmp/pc-min.err") || {
	cat "$tmp/pc-min.err"
	echo "FAIL: pkg-config --cflags --libs rewire needs more than liburcu-bp.pc"
	exit 1
}
# The static link names the private libraries.
static_all=$(pkg-config --static --libs rewire)
for l in -lunwind -lunwind-generic -lelf -ldw -lurcu-cds; do
	case " $static_all " in
	*" $l "*) ;;
	*) echo "FAIL: pkg-config --static --libs rewire lacks $l: $static_all"; exit 1 ;;
	esac
done

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

# shellcheck disable=SC2086
"$cc" -std=gnu17 -Wall -Werror "${san[@]}" "$tmp/consumer.c" \
	-o "$tmp/consumer-shared" $min_flags
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
	"$tmp/consumer-shared"

# -lrewire becomes -l:librewire.a so the linker cannot pick the .so.
static_libs=$(pkg-config --static --libs rewire | sed 's/-lrewire\b/-l:librewire.a/')
# shellcheck disable=SC2046,SC2086
"$cc" -std=gnu17 -Wall -Werror "${san[@]}" "$tmp/consumer.c" \
	-o "$tmp/consumer-static" $(pkg-config --static --cflags rewire) $static_libs
if ldd "$tmp/consumer-static" 2>/dev/null | grep librewire >/dev/null; then
	echo "FAIL: consumer-static depends on librewire.so"
	exit 1
fi
"$tmp/consumer-static"

# The CMake package: find_package(rewire) and both exported targets.
# cmake_consumer NAME FIND_PACKAGE_ARGS TARGET...: a project that links
# consumer.c once to each target, configured and built in $tmp/NAME.
cmake_consumer() {
	local name=$1 args=$2 t
	shift 2
	mkdir -p "$tmp/$name"
	cp "$tmp/consumer.c" "$tmp/$name/consumer.c"
	{
		echo "cmake_minimum_required(VERSION 3.25)"
		echo "project(consumer C)"
		echo "find_package(rewire $args)"
		for t in "$@"; do
			echo "add_executable(consumer-$t consumer.c)"
			echo "target_link_libraries(consumer-$t PRIVATE rewire::$t)"
		done
	} >"$tmp/$name/CMakeLists.txt"
	"$cmake" -S "$tmp/$name" -B "$tmp/$name/build" \
		-DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_COMPILER="$cc" \
		-DCMAKE_C_FLAGS="${san[*]}" >"$tmp/$name.log" 2>&1 || return 1
	"$cmake" --build "$tmp/$name/build" >>"$tmp/$name.log" 2>&1 ||
		{ cat "$tmp/$name.log"; echo "FAIL: CMake consumer $name build"; exit 1; }
	for t in "$@"; do
		"$tmp/$name/build/consumer-$t" ||
			{ echo "FAIL: CMake consumer $name: consumer-$t"; exit 1; }
	done
}
cmake_consumer cmake-consumer "0.1 REQUIRED COMPONENTS static" \
	rewire rewire_static ||
	{ cat "$tmp/cmake-consumer.log"; echo "FAIL: find_package(rewire)"; exit 1; }
# The shared library needs only liburcu-bp's .pc file.
PKG_CONFIG_LIBDIR=$pc_min PKG_CONFIG_PATH='' \
	cmake_consumer cmake-shared-min "0.1 REQUIRED" rewire || {
	cat "$tmp/cmake-shared-min.log"
	echo "FAIL: find_package(rewire) needs more than liburcu-bp.pc for rewire::rewire"
	exit 1
}
# The static library's private dependencies are missing: the error names
# the first .pc file pkg-config cannot find.
if PKG_CONFIG_LIBDIR=$pc_min PKG_CONFIG_PATH='' \
	cmake_consumer cmake-static-min "0.1 REQUIRED COMPONENTS static" \
		rewire_static; then
	echo "FAIL: find_package(rewire COMPONENTS static) succeeded without libunwind.pc"
	exit 1
fi
grep -q "libunwind\.pc" "$tmp/cmake-static-min.log" || {
	cat "$tmp/cmake-static-min.log"
	echo "FAIL: the error of find_package(rewire COMPONENTS static) does not name libunwind.pc"
	exit 1
}
# Without the component, the same missing files are named when a target
# links rewire::rewire_static (the package's deferred check), instead of
# CMake's error about a PkgConfig:: target.
if PKG_CONFIG_LIBDIR=$pc_min PKG_CONFIG_PATH='' \
	cmake_consumer cmake-static-lazy "0.1 REQUIRED" rewire_static; then
	echo "FAIL: rewire::rewire_static was usable without libunwind.pc"
	exit 1
fi
# CMake wraps its messages: one line, single spaces.
tr -s ' \n' '  ' <"$tmp/cmake-static-lazy.log" >"$tmp/lazy.flat"
if ! grep -q "consumer-rewire_static links rewire::rewire_static" \
	"$tmp/lazy.flat" || ! grep -q "libunwind\.pc" "$tmp/lazy.flat"; then
	cat "$tmp/cmake-static-lazy.log"
	echo "FAIL: linking rewire::rewire_static without libunwind.pc does not say what is missing"
	exit 1
fi
echo "install test: ok"
