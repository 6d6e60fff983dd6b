#!/usr/bin/env bash
# One version everywhere: the project's version (CMakeLists.txt project())
# is what rw_version() returns, what `rewire --version` prints, the newest
# release of CHANGELOG.md, the upstream part of debian/changelog's newest
# entry (when debian/ exists), the version of rewire.pc, of the CMake
# package, and of the man page rewire(1). doc/RELEASE.md lists where to
# change it. The check also runs once on a CHANGELOG.md whose newest release
# differs, and must fail there.
set -euo pipefail

: "${REWIRE_BUILD_DIR:?set by CTest}"
: "${REWIRE_SOURCE_DIR:?set by CTest}"
cc=${REWIRE_CC:-cc}
src=$REWIRE_SOURCE_DIR
bld=$REWIRE_BUILD_DIR

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

project=$(sed -nE 's/^project\(rewire VERSION ([0-9]+\.[0-9]+\.[0-9]+).*/\1/p' \
	"$src/CMakeLists.txt")
if [ -z "$project" ]; then
	echo "FAIL: no project(rewire VERSION X.Y.Z) in CMakeLists.txt"
	exit 1
fi

# rw_version() of the library that was built.
san=()
if [ -n "${REWIRE_SANITIZE:-}" ]; then
	san=(-fsanitize="$REWIRE_SANITIZE" -fno-omit-frame-pointer)
fi
cat >"$tmp/v.c" <<'C'
#include <rewire/common.h>
#include <stdio.h>

int main(void)
{
	puts(rw_version());
	return 0;
}
C
"$cc" -std=gnu17 "${san[@]}" -I"$src/include" -I"$bld/include" "$tmp/v.c" \
	-o "$tmp/v" "$bld/librewire.so" -Wl,-rpath,"$bld"
library=$("$tmp/v")

cli=$bld/tools/rewire
[ -x "$cli" ] || { echo "FAIL: $cli not built"; exit 1; }
command=$("$cli" --version | sed -nE 's/^rewire ([^ ]+).*/\1/p')

pc=$(sed -nE 's/^Version: *//p' "$bld/rewire.pc")
cmake_pkg=$(sed -nE 's/^set\(PACKAGE_VERSION "([^"]+)"\)/\1/p' \
	"$bld/rewireConfigVersion.cmake" | head -n 1)
man=$(sed -nE 's/^\.TH REWIRE 1 .*"rewire ([^"]+)".*/\1/p' "$src/doc/rewire.1")

# check CHANGELOG: compares everything with the project's version.
check() {
	local changelog=$1 bad=0 newest deb name value
	newest=$(sed -nE 's/^## \[([0-9][^]]*)\].*/\1/p' "$changelog" | head -n 1)
	if [ -f "$src/debian/changelog" ]; then
		# "rewire (EPOCH:UPSTREAM-REVISION) ..." -> UPSTREAM
		deb=$(sed -nE '1s/^[^ ]+ \(([^)]+)\).*/\1/p' "$src/debian/changelog" |
			sed -E 's/^[0-9]+://; s/-[^-]*$//')
	else
		deb=$project
		echo "note: no debian/changelog: its version is not compared"
	fi
	for name in "rw_version()=$library" "rewire --version=$command" \
		"CHANGELOG.md's newest release=$newest" \
		"debian/changelog's upstream version=$deb" \
		"rewire.pc=$pc" "rewireConfigVersion.cmake=$cmake_pkg" \
		"rewire(1) .TH=$man"; do
		value=${name##*=}
		if [ "$value" != "$project" ]; then
			echo "version mismatch: ${name%=*} is '$value', project() is '$project'"
			bad=1
		fi
	done
	return $bad
}

if ! check "$src/CHANGELOG.md"; then
	echo "FAIL: the versions disagree (doc/RELEASE.md lists where each is set)"
	exit 1
fi
# The check notices a release missing from the changelog.
sed -E "0,/^## \[[0-9]/s/^## \[[0-9][^]]*\]/## [9.9.9]/" "$src/CHANGELOG.md" \
	>"$tmp/CHANGELOG.md"
if check "$tmp/CHANGELOG.md" >"$tmp/self.log"; then
	echo "FAIL: a CHANGELOG.md whose newest release is 9.9.9 passed the check"
	exit 1
fi
grep -q "CHANGELOG.md's newest release is '9.9.9'" "$tmp/self.log" ||
	{ cat "$tmp/self.log"; echo "FAIL: the mismatch was not named"; exit 1; }
echo "version: $project everywhere"
