#!/usr/bin/env bash
# An autoconf/automake program that uses rewire as distributions build such
# programs: installed into a temporary prefix, found by REWIRE_CHECK
# (cmake/rewire.m4, installed to share/aclocal) through pkg-config, built
# with the patchable-entry flags the macro substitutes
# (REWIRE_PATCHABLE_CFLAGS, REWIRE_LIVE_PATCHING_CFLAGS) and Debian's
# dpkg-buildflags when present, then run: it flips a static key and
# compares rw_version() with the version configure found. A too-new
# minimum version must stop configure.
set -euo pipefail

: "${REWIRE_BUILD_DIR:?set by CTest}"
: "${REWIRE_SOURCE_DIR:?set by CTest}"
cc=${REWIRE_CC:-cc}
cmake=${REWIRE_CMAKE:-cmake}

for t in autoreconf autoconf automake aclocal pkg-config make readelf; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "SKIP: $t not installed (scripts/deps.sh: autoconf, automake)"
		exit 77
	fi
done
pkgm4=$(aclocal --print-ac-dir)/pkg.m4
if [ ! -f "$pkgm4" ]; then
	echo "SKIP: $pkgm4 (pkg-config's autoconf macros) not installed"
	exit 77
fi
fail() {
	echo "FAIL: $*"
	exit 1
}

tmp=$(mktemp -d "$REWIRE_BUILD_DIR/autotools-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$cmake" --install "$REWIRE_BUILD_DIR" --prefix "$tmp/prefix" >"$tmp/install.log"
m4dir=$tmp/prefix/share/aclocal
[ -f "$m4dir/rewire.m4" ] || fail "share/aclocal/rewire.m4 was not installed"
pc=$(find "$tmp/prefix" -name rewire.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || fail "rewire.pc was not installed"
libdir=$(dirname "$(dirname "$pc")")
version=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --modversion rewire)

src=$tmp/hello
mkdir "$src"
cat >"$src/configure.ac" <<'AC'
AC_INIT([hello-rewire], [1.0])
AC_CONFIG_SRCDIR([hello.c])
AC_CONFIG_AUX_DIR([build-aux])
AM_INIT_AUTOMAKE([foreign -Wall -Werror])
AC_PROG_CC
REWIRE_CHECK([0.1])
AC_DEFINE_UNQUOTED([REWIRE_FOUND_VERSION], ["`$PKG_CONFIG --modversion rewire`"],
	[The rewire version configure found.])
AC_CONFIG_HEADERS([config.h])
AC_CONFIG_FILES([Makefile])
AC_OUTPUT
AC
cat >"$src/Makefile.am" <<'AM'
bin_PROGRAMS = hello
hello_SOURCES = hello.c
hello_CFLAGS = $(REWIRE_CFLAGS) $(REWIRE_PATCHABLE_CFLAGS) \
	$(REWIRE_LIVE_PATCHING_CFLAGS)
hello_LDADD = $(REWIRE_LIBS)
AM
cat >"$src/hello.c" <<'C'
#include "config.h"
#include <rewire/rewire.h>
#include <stdio.h>
#include <string.h>

RW_DEFINE_STATIC_KEY_FALSE(loud);

static int greet(void)
{
	return rw_static_branch_unlikely(loud) ? 2 : 1;
}

int main(void)
{
	int before = greet(), after;

	if (rw_static_key_enable(&loud) < 0)
		return 3;
	after = greet();
	printf("rewire %s (configure found %s): %d -> %d\n", rw_version(),
	       REWIRE_FOUND_VERSION, before, after);
	return before == 1 && after == 2 &&
			       !strcmp(rw_version(), REWIRE_FOUND_VERSION) ?
		       0 :
		       1;
}
C
grep -q 'rw_static_branch_unlikely(&' "$REWIRE_SOURCE_DIR/README.md" ||
	sed -i 's/rw_static_branch_unlikely(loud)/rw_static_branch_unlikely(loud)/' \
		"$src/hello.c"

# Built as Debian builds packages, when dpkg-buildflags is there.
cflags="-O2 -g"
ldflags=""
if command -v dpkg-buildflags >/dev/null 2>&1; then
	cflags=$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CFLAGS)
	ldflags=$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get LDFLAGS)
fi
if [ -n "${REWIRE_SANITIZE:-}" ]; then
	cflags="$cflags -fsanitize=$REWIRE_SANITIZE -fno-omit-frame-pointer"
	ldflags="$ldflags -fsanitize=$REWIRE_SANITIZE"
fi

(
	cd "$src"
	ACLOCAL_PATH=$m4dir autoreconf -fi >"$tmp/autoreconf.log" 2>&1 ||
		{ cat "$tmp/autoreconf.log"; fail "autoreconf"; }
	PKG_CONFIG_PATH=$(dirname "$pc") ./configure CC="$cc" CFLAGS="$cflags" \
		LDFLAGS="$ldflags" >"$tmp/configure.log" 2>&1 ||
		{ cat "$tmp/configure.log"; fail "configure"; }
	grep -q '^REWIRE_PATCHABLE_CFLAGS = -fpatchable-function-entry=' Makefile ||
		fail "configure did not substitute REWIRE_PATCHABLE_CFLAGS: $(grep '^REWIRE_' Makefile)"
	grep -q '^REWIRE_LIVE_PATCHING_CFLAGS = ' Makefile ||
		fail "configure did not substitute REWIRE_LIVE_PATCHING_CFLAGS"
	make >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; fail "make"; }
	# The patchable entries are there: rewire can trace and live patch it.
	readelf -SW hello | grep __patchable_function_entries >/dev/null ||
		fail "hello has no __patchable_function_entries"
	LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ./hello ||
		fail "hello"
	# A minimum version above the installed one stops configure, naming it.
	sed -i 's/REWIRE_CHECK(\[0.1\])/REWIRE_CHECK([99.0])/' configure.ac
	# Only configure changes: autoconf, not the whole autoreconf.
	ACLOCAL_PATH=$m4dir autoconf >>"$tmp/autoreconf.log" 2>&1 ||
		{ cat "$tmp/autoreconf.log"; fail "autoconf (99.0)"; }
	if PKG_CONFIG_PATH=$(dirname "$pc") ./configure CC="$cc" \
		>"$tmp/configure99.log" 2>&1; then
		fail "configure accepted rewire $version for REWIRE_CHECK([99.0])"
	fi
	grep -q "rewire >= 99.0" "$tmp/configure99.log" ||
		{ cat "$tmp/configure99.log"; fail "configure's error does not name rewire >= 99.0"; }
)
echo "autotools consumer: ok (rewire $version)"
