# rewire.m4 - autoconf macros for programs that use rewire.  -*- Autoconf -*-
# SPDX-License-Identifier: MIT
#
# Installed to share/aclocal, where aclocal finds it. Needs pkg.m4
# (pkg-config's autoconf macros).
#
# REWIRE_CHECK([MIN-VERSION], [ACTION-IF-FOUND], [ACTION-IF-NOT-FOUND])
# -----------------------------------------------------------------------
# Looks for rewire (MIN-VERSION or later) with pkg-config and substitutes
#   REWIRE_CFLAGS, REWIRE_LIBS   the flags to compile with and to link
#                                librewire.so (PKG_CHECK_MODULES);
#   REWIRE_PATCHABLE_CFLAGS      the flags of code that rewire patches:
#                                patchable function entries (doc/LIVEPATCH.md,
#                                doc/FTRACE.md), rewire.pc's
#                                patchable_cflags;
#   REWIRE_LIVE_PATCHING_CFLAGS  rewire.pc's live_patching_cflags (GCC: no
#                                clones, no inlining of non-static
#                                functions, so that a live patch replaces
#                                every copy), empty when the C compiler
#                                does not accept it (clang).
# Without ACTION-IF-NOT-FOUND, a missing or too old rewire stops configure
# with pkg-config's message.
AC_DEFUN([REWIRE_CHECK],
[AC_REQUIRE([PKG_PROG_PKG_CONFIG])dnl
AC_REQUIRE([AC_PROG_CC])dnl
PKG_CHECK_MODULES([REWIRE], [rewire]m4_ifval([$1], [ >= $1]),
[REWIRE_PATCHABLE_CFLAGS=`$PKG_CONFIG --variable=patchable_cflags rewire`
REWIRE_LIVE_PATCHING_CFLAGS=`$PKG_CONFIG --variable=live_patching_cflags rewire`
AC_MSG_CHECKING([whether $CC accepts $REWIRE_LIVE_PATCHING_CFLAGS])
rewire_save_CFLAGS=$CFLAGS
CFLAGS="$CFLAGS $REWIRE_LIVE_PATCHING_CFLAGS -Werror"
AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
	[AC_MSG_RESULT([yes])],
	[AC_MSG_RESULT([no])
	 REWIRE_LIVE_PATCHING_CFLAGS=])
CFLAGS=$rewire_save_CFLAGS
$2], [$3])
AC_SUBST([REWIRE_PATCHABLE_CFLAGS])
AC_SUBST([REWIRE_LIVE_PATCHING_CFLAGS])
])
