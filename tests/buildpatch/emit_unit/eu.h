/* SPDX-License-Identifier: MIT */
/*
 * The target of test_bp_emit: unit.c (patched by unit_after.c) and
 * other.c are built into the test program with Debian's flags; cxx.cc
 * (patched by cxx_after.cc) into libeu_cxx.so.
 */
#ifndef EU_H
#define EU_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* unit.c: writes a word for k into buf and returns a number; k < 0 takes
 * the cold path (a message on stderr). Every call counts in eu_count(). */
int eu_work(int k, char *buf, size_t len);
long eu_count(void);

/* other.c: a global function of another file. */
int eu_other(int k);

/* cxx.cc: EuBox{v}.get(k), -1 when it throws; the number of EuGuard
 * destructors run. */
int eu_cxx_get(int v, int k);
int eu_cxx_cleanups(void);

#ifdef __cplusplus
}
#endif

#endif
