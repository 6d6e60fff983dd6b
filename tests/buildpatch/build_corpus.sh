#!/usr/bin/env bash
# The fixture of the build-patch corpus tests: copies tests/buildpatch/corpus
# to <build>/tests/buildpatch/tree and builds its two programs there the
# way a distribution builds a package (Debian's flags, see lib.sh), each
# with its own build system:
#   bpt    the plain Makefile under `bear -- make`: tree/compile_commands.json
#   bptxx  the CMake project (CMAKE_EXPORT_COMPILE_COMMANDS) in
#          tree/build-cxx: tree/build-cxx/compile_commands.json
# Skips (77) when bear or a C++ compiler is missing.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

command -v bear >/dev/null || skip "bear is missing (scripts/deps.sh)"
command -v make >/dev/null || skip "make is missing"
cmake=${REWIRE_CMAKE:-cmake}

rm -rf "$tree"
mkdir -p "$(dirname "$tree")"
cp -r "$bp_src/corpus" "$tree"
bp_flags "$tree"
echo "CFLAGS: $CFLAGS"
step "bpt: bear -- make"
(cd "$tree" && bear -- make CC="${REWIRE_CC:-cc}" CFLAGS="$CFLAGS" \
	CPPFLAGS="$CPPFLAGS" LDFLAGS="$LDFLAGS" >"$tmp/make.log" 2>&1) ||
	fail "bpt did not build: $(tail -20 "$tmp/make.log")"
[ -s "$tree/compile_commands.json" ] || fail "bear wrote no compile_commands.json"
step "bptxx: cmake"
(cd "$tree" && "$cmake" -S . -B build-cxx -DCMAKE_BUILD_TYPE=None \
	-DCMAKE_C_FLAGS="$CPPFLAGS $CFLAGS" \
	-DCMAKE_CXX_FLAGS="$CPPFLAGS $CXXFLAGS" \
	-DCMAKE_EXE_LINKER_FLAGS="$LDFLAGS" >"$tmp/cmake.log" 2>&1 &&
	"$cmake" --build build-cxx >>"$tmp/cmake.log" 2>&1) ||
	fail "bptxx did not build: $(tail -20 "$tmp/cmake.log")"
# GCC made the pieces the cases are about.
nm "$tree/bpt" | grep -q ' bp_cold.cold$' || fail "no bp_cold.cold in bpt"
nm "$tree/bpt" | grep -q ' t fold_bits$' || fail "fold_bits is not out of line"
for p in bpt build-cxx/bptxx; do
	"$tree/$p" --print >"$tmp/print" || fail "$p --print"
	echo "$p: $(tr '\n' ' ' <"$tmp/print")"
done
echo PASS
