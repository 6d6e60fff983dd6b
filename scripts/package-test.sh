#!/usr/bin/env bash
# The Debian packages, built and used as a user would (debian/, issue 18):
#
#   1. build: a clean copy of the source (the files git knows, with their
#      uncommitted changes: nothing ignored, no build tree) in
#      build/package/rewire-VERSION, then `dpkg-buildpackage -us -uc -b`
#      there (DEB_BUILD_OPTIONS="nocheck parallel=2" unless set). The .deb
#      files land in build/package/; the source tree is not written to.
#   2. lintian on the .changes: errors fail, warnings are printed.
#   3. install (root only): `apt-get install ./*.deb` of librewire0,
#      librewire-dev, rewire and rewire-ansible. Refused when a rewire
#      package is installed already. A trap purges them, and whatever
#      apt installed with them, even on failure: the machine is left with
#      the packages it had.
#   4. consumers, from the installed files only (no build or source tree):
#      a program built with `pkg-config --cflags --libs rewire`, one with
#      CMake find_package(rewire) against rewire::rewire, one against
#      rewire::rewire_static; each runs.
#   5. documentation and the autotools macro: `man rewire`,
#      `man rewire-entries`, `man 3 rw_static_call_update`, the guides in
#      /usr/share/doc/rewire, share/aclocal/rewire.m4 and a consumer built
#      by a configure.ac with REWIRE_CHECK (skipped with a message without
#      autoconf and automake),
#      `ansible-doc rewire.fleet.rewire_patch`.
#   6. the demo (examples/kv/demo.sh --installed): the key-value server
#      built alone against the installed package (rewire_target_patchable,
#      rewire_add_patch, rewire_build_patch), changed while it serves by
#      the installed `rewire` command.
#
#   scripts/package-test.sh [--no-install] [--keep]
#
# --no-install stops after lintian; --keep keeps the consumers' directory.
# Exit status: 0 passed, 1 failed, 77 skipped (a tool is missing, not root,
# or a rewire package is already installed; the message says which and what
# ran before). Each stage prints its time. scripts/test.sh runs this after
# its workflows, never inside ctest: it installs packages system-wide.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

install=1
keep=0
for arg in "$@"; do
	case "$arg" in
	--no-install) install=0 ;;
	--keep) keep=1 ;;
	-h | --help)
		sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "package-test: unknown argument: $arg" >&2
		exit 2
		;;
	esac
done

skip() {
	echo "package-test: SKIPPED: $*"
	exit 77
}
fail() {
	echo "package-test: FAILED: $*" >&2
	exit 1
}

declare -a stage_names=() stage_secs=()
stage_start=0
stage_name=
stage() {
	stage_end
	stage_name=$1
	stage_start=$SECONDS
	printf '\n=== package-test: %s ===\n' "$1"
}
stage_end() {
	if [ -n "$stage_name" ]; then
		stage_names+=("$stage_name")
		stage_secs+=($((SECONDS - stage_start)))
		stage_name=
	fi
}
report_times() {
	stage_end
	[ ${#stage_names[@]} -gt 0 ] || return 0
	echo
	echo "=== package-test: time per stage ==="
	local i
	for i in "${!stage_names[@]}"; do
		printf '%-12s %5ss\n' "${stage_names[$i]}" "${stage_secs[$i]}"
	done
	stage_names=()
}

for t in git dpkg-buildpackage dh dpkg-checkbuilddeps lintian fakeroot \
	 cmake ninja pkg-config cc man; do
	command -v "$t" >/dev/null 2>&1 ||
		skip "$t is missing (scripts/deps.sh installs debhelper," \
		     "lintian, dpkg-dev, fakeroot, man-db, cmake, ninja-build, gcc)"
done
git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
	skip "not a git work tree: the clean copy of the source is made" \
	     "from the files git knows"
dpkg-checkbuilddeps debian/control >/dev/null 2>&1 ||
	skip "the build dependencies are missing:" \
	     "$(dpkg-checkbuilddeps debian/control 2>&1 | tail -1)"

version=$(dpkg-parsechangelog -l debian/changelog -S Version)
upstream=${version%-*}
arch=$(dpkg --print-architecture)
out=$top/build/package
src=$out/rewire-$upstream
pkgs=(librewire0 librewire-dev rewire rewire-ansible)

# --- 1. build ---------------------------------------------------------------
stage build
rm -rf "$out"
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do
		# Files deleted in the work tree but not in the index.
		if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
	done | tar -cf - --null -T - | tar -xf - -C "$src"
export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-nocheck parallel=2}
echo "package-test: dpkg-buildpackage -us -uc -b in $src" \
     "(DEB_BUILD_OPTIONS=$DEB_BUILD_OPTIONS; log: $out/build.log)"
if ! (cd "$src" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log" >&2
	fail "dpkg-buildpackage failed (log: $out/build.log)"
fi
grep -E 'dpkg-gensymbols|^dpkg-deb: building' "$out/build.log" || true
debs=()
for p in "${pkgs[@]}"; do
	f=$(ls "$out/${p}_${version}_"{"$arch",all}.deb 2>/dev/null | head -1 || true)
	[ -n "$f" ] || fail "no package $p was built"
	debs+=("$f")
done

# --- 2. lintian ---------------------------------------------------------------
stage lintian
changes=$out/rewire_${version}_${arch}.changes
lintian_out=$(lintian "$changes" 2>&1) || true
if [ -n "$lintian_out" ]; then
	echo "$lintian_out"
else
	echo "package-test: lintian: no tags"
fi
if grep -q '^E:' <<<"$lintian_out"; then
	fail "lintian reports errors (above)"
fi
echo "package-test: lintian: $(grep -c '^W:' <<<"$lintian_out" || true)" \
     "warnings, no errors"

if [ "$install" = 0 ]; then
	report_times
	echo "package-test: built and checked; not installed (--no-install)"
	exit 0
fi

# --- 3. install ---------------------------------------------------------------
if [ "$(id -u)" != 0 ]; then
	report_times
	skip "built and checked with lintian; the install test needs root" \
	     "(it installs the packages system-wide and purges them again)"
fi
present=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${pkgs[@]}" \
	  2>/dev/null | awk '$1 != "un" { print $2 }' || true)
if [ -n "$present" ]; then
	report_times
	skip "built and checked with lintian; not installed because" \
	     "$(echo "$present" | tr "\n" " ")is already installed (or has its configuration" \
	     "left): this test does not replace or remove what it did not install"
fi

stage install
installed_list() {
	dpkg-query -W -f='${db:Status-Abbrev} ${Package}:${Architecture}\n' |
		awk '$1 ~ /^[ih]i/ { print $2 }' | sed 's/:all$//' | sort
}
before=$(mktemp /tmp/rewire-pkgtest-before.XXXXXX)
installed_list >"$before"
work=$(mktemp -d /tmp/rewire-pkgtest.XXXXXX)
cleanup() {
	local status=$? added
	trap - EXIT INT TERM
	report_times
	echo
	echo "=== package-test: purging what the test installed ==="
	added=$(installed_list | comm -13 "$before" - | tr '\n' ' ')
	if [ -n "$added" ]; then
		echo "package-test: apt-get purge $added"
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -q $added \
			>"$out/purge.log" 2>&1 ||
			{ cat "$out/purge.log" >&2; status=1; }
	fi
	if [ -n "$(installed_list | comm -3 "$before" -)" ]; then
		echo "package-test: the installed packages differ from before:" >&2
		installed_list | comm -3 "$before" - >&2
		status=1
	fi
	rm -f "$before"
	if [ "$keep" = 1 ]; then echo "package-test: kept $work"; else rm -rf "$work"; fi
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "package-test: apt-get install ${debs[*]##*/}"
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	--no-install-recommends "${debs[@]}" >"$out/install.log" 2>&1; then
	cat "$out/install.log" >&2
	fail "apt-get install failed"
fi
grep -E '^(Setting up|The following NEW)' "$out/install.log" || true

# From here on only the installed files: the standard PATH, no variable
# that points pkg-config, CMake, the compiler or the loader elsewhere.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
unset PKG_CONFIG_PATH PKG_CONFIG_LIBDIR CMAKE_PREFIX_PATH rewire_DIR \
      CPATH C_INCLUDE_PATH LIBRARY_PATH LD_LIBRARY_PATH LD_PRELOAD \
      REWIRE_LIB REWIRE_INCLUDE_DIR
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libso=/usr/lib/$multiarch/librewire.so.0

# Fails when a command line or a file names the source or build tree.
no_tree() {
	if grep -F -e "$top" -e "$src" "$@" >/dev/null 2>&1; then
		grep -F -e "$top" -e "$src" "$@" | head -5 >&2
		fail "$* names the source or build tree"
	fi
}
# Fails unless the program loads the installed librewire.so.0.
uses_installed() {
	local l
	l=$(ldd "$1" | awk '$1 == "librewire.so.0" { print $3 }')
	[ "$(realpath "$l")" = "$(realpath "$libso")" ] ||
		fail "$1 loads librewire from '$l', not $libso"
}

# --- 4. consumers ---------------------------------------------------------------
stage consumers
cat >"$work/consumer.c" <<'EOF'
/* A consumer of the installed package: a static call switched at run time. */
#include <rewire/rewire.h>

#include <stdio.h>
#include <string.h>

static int one(void)
{
	return 1;
}

static int two(void)
{
	return 2;
}

RW_DEFINE_STATIC_CALL(pick, one);

int main(int argc, char **argv)
{
	int before = rw_static_call(pick)(), err, after;

	err = rw_static_call_update(pick, two);
	after = rw_static_call(pick)();
	printf("%s: rewire %s, static call %d -> %d (%s)\n", argv[0],
	       rw_version(), before, after, err ? rw_strerror(err) : "ok");
	if (argc > 1 && strcmp(rw_version(), argv[1]))
		return 2;
	return err || before != 1 || after != 2;
}
EOF
echo "package-test: pkg-config: $(pkg-config --cflags --libs rewire)"
cmd="cc -O2 -o $work/consumer-pkgconfig $work/consumer.c $(pkg-config --cflags --libs rewire)"
echo "$cmd" | tee "$work/pkgconfig.cmd"
no_tree "$work/pkgconfig.cmd"
$cmd
uses_installed "$work/consumer-pkgconfig"
"$work/consumer-pkgconfig" "$upstream"

mkdir "$work/cmake"
cat >"$work/cmake/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.25)
project(rewire_consumer C)
find_package(rewire 0.1 REQUIRED)
add_executable(consumer-cmake ../consumer.c)
target_link_libraries(consumer-cmake PRIVATE rewire::rewire)
add_executable(consumer-cmake-static ../consumer.c)
target_link_libraries(consumer-cmake-static PRIVATE rewire::rewire_static)
EOF
cmake -S "$work/cmake" -B "$work/cmake/build" -G Ninja \
	-DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$work/cmake.log" 2>&1 ||
	{ cat "$work/cmake.log" >&2; fail "cmake find_package(rewire) failed"; }
grep -E 'rewire|Found' "$work/cmake.log" || true
cmake --build "$work/cmake/build" >>"$work/cmake.log" 2>&1 ||
	{ cat "$work/cmake.log" >&2; fail "the CMake consumer did not build"; }
no_tree "$work/cmake/build/compile_commands.json" \
	"$work/cmake/build/build.ninja"
uses_installed "$work/cmake/build/consumer-cmake"
if ldd "$work/cmake/build/consumer-cmake-static" | grep librewire >/dev/null; then
	fail "consumer-cmake-static loads librewire.so (rewire::rewire_static)"
fi
"$work/cmake/build/consumer-cmake" "$upstream"
"$work/cmake/build/consumer-cmake-static" "$upstream"

# --- 5. documentation ---------------------------------------------------------------
stage docs
export MANPAGER=cat MANWIDTH=80
for page in rewire rewire-entries; do
	man "$page" >"$work/man.txt" 2>"$work/man.err" ||
		{ cat "$work/man.err" >&2; fail "man $page failed"; }
	[ ! -s "$work/man.err" ] ||
		{ cat "$work/man.err" >&2; fail "man $page warned"; }
	echo "package-test: man $page: $(wc -l <"$work/man.txt") lines"
done
man 3 rw_static_call_update >"$work/man.txt" 2>"$work/man.err" ||
	{ cat "$work/man.err" >&2; fail "man 3 rw_static_call_update failed"; }
grep -q rw_static_call_update "$work/man.txt" ||
	fail "man 3 rw_static_call_update does not name the function"
echo "package-test: man 3 rw_static_call_update:" \
     "$(wc -l <"$work/man.txt") lines;" \
     "$(dpkg -L librewire-dev | grep -c '/man3/.*\.3') man3 pages"
[ -e /usr/share/doc/rewire/README.md ] ||
	fail "no guides in /usr/share/doc/rewire"
echo "package-test: guides in /usr/share/doc/rewire:" \
     "$(cd /usr/share/doc/rewire && echo *.md)"
[ -e /usr/share/aclocal/rewire.m4 ] ||
	fail "rewire.m4 is not installed as /usr/share/aclocal/rewire.m4"
# The autotools macro (REWIRE_CHECK) in a consumer's configure.ac.
if command -v aclocal >/dev/null && command -v autoconf >/dev/null &&
   command -v make >/dev/null; then
	mkdir "$work/autotools"
	cp "$work/consumer.c" "$work/autotools/"
	cat >"$work/autotools/configure.ac" <<'EOF'
AC_INIT([rewire-consumer], [1])
AC_PROG_CC
REWIRE_CHECK([0.1])
AC_CONFIG_FILES([Makefile])
AC_OUTPUT
EOF
	printf '%s\n' 'consumer: consumer.c' \
		'	$(CC) -O2 @REWIRE_PATCHABLE_CFLAGS@ @REWIRE_CFLAGS@ -o $@ consumer.c @REWIRE_LIBS@' \
		'	rewire-entries $@' >"$work/autotools/Makefile.in"
	(cd "$work/autotools" && aclocal && autoconf && ./configure -q &&
	 make -s) >"$work/autotools.log" 2>&1 ||
		{ cat "$work/autotools.log" >&2; fail "the autotools consumer (REWIRE_CHECK) did not build"; }
	no_tree "$work/autotools/Makefile"
	uses_installed "$work/autotools/consumer"
	"$work/autotools/consumer" "$upstream"
else
	echo "package-test: SKIP the autotools consumer: no aclocal" \
	     "(automake), autoconf or make"
fi
if command -v ansible-doc >/dev/null 2>&1; then
	ansible-doc rewire.fleet.rewire_patch >"$work/ansible-doc.txt" 2>&1 ||
		{ cat "$work/ansible-doc.txt" >&2; fail "ansible-doc rewire.fleet.rewire_patch failed"; }
	echo "package-test: ansible-doc rewire.fleet.rewire_patch:" \
	     "$(wc -l <"$work/ansible-doc.txt") lines (the collection is found)"
fi

# --- 6. the demo ---------------------------------------------------------------
stage demo-build
cmake -S "$src/examples/kv" -B "$work/kv" -G Ninja >"$work/kv.log" 2>&1 ||
	{ cat "$work/kv.log" >&2; fail "cmake of examples/kv failed"; }
cmake --build "$work/kv" >>"$work/kv.log" 2>&1 ||
	{ cat "$work/kv.log" >&2; fail "examples/kv did not build"; }
# Headers from /usr/include only (the source copy holds examples/kv).
if grep -E -e "-I *$src/(include|src)" "$work/kv/compile_commands.json"; then
	fail "examples/kv was compiled with the source tree's headers"
fi
uses_installed "$work/kv/rw-kvserver"
stage demo
"$src/examples/kv/demo.sh" "$work/kv" --installed --phase-seconds 2 ||
	fail "the demo failed against the installed packages"

report_times
echo "package-test: passed"
