/* SPDX-License-Identifier: MIT */
/*
 * The traced code of the coexistence tests of function tracing
 * (test_ftc_*, issue 13 point 4): libftc_lib.so, linked to each test, and
 * ftc_dl.so, dlopen'ed by test_ftc_dlopen. Both are built as Debian builds
 * a package (-O2 and dpkg-buildflags' hardening, -fcf-protection) with
 * rewire_target_patchable(): see ftc.cmake.
 */
#ifndef FTC_H
#define FTC_H

#include <rewire/static_call.h>
#include <rewire/tracepoint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- test_ftc_patch: one function, live patched (patch_leaf.c) -------- */

/* Old: 3 * x + 1. Patched (ftc_patch_leaf.so): 3 * x + 2. */
int ftc_leaf(int x);

/* ---- test_ftc_transition: two functions patched together ------------- */

/*
 * patch_pair.c replaces ftc_outer and ftc_inner together. Old inner is
 * x + 1, new inner x + 1001; old outer adds 10 to inner(|x|), new outer
 * adds 20. One invocation therefore returns x + 11 when all of it ran old,
 * x + 1021 when all of it ran new, and x + 1011 or x + 21 when a thread ran
 * the two bodies of different sides (the consistency model broken).
 * x < 0 takes the slow path of either outer: ftc_wait() first, which
 * blocks in read() on ftc_fd, then inner(-x).
 */
extern int ftc_fd;
int ftc_inner(int x);
int ftc_outer(int x);
/* Not patched: reads one byte from ftc_fd; returns the byte. */
int ftc_wait(void);

/* ---- test_ftc_sets: three functions, two overlapping probe sets ------- */

int ftc_set_a(int x);
int ftc_set_b(int x);
int ftc_set_c(int x);

/* ---- test_ftc_tp_sc: a tracepoint and a static call in a traced
 * function ------------------------------------------------------------- */

RW_DECLARE_TRACEPOINT(ftc_event, (int, x), (int, seq));
int ftc_op_double(int x);
int ftc_op_square(int x);
RW_DECLARE_STATIC_CALL(ftc_op, ftc_op_double);
/* Fires ftc_event(x, seq) and returns rw_static_call(ftc_op)(x). */
int ftc_tp_sc(int x, int seq);

/* ---- test_ftc_fork ---------------------------------------------------- */

/* x + 7. */
int ftc_fork_fn(int x);
/* fork(): the child returns from a function it did not enter. */
int ftc_fork_call(void);

/* ---- test_ftc_dlopen: ftc_dl.so --------------------------------------- */

/* In ftc_dl.so: 5 * x, and 5 * x + 1 (calls ftc_dl_fn). */
int ftc_dl_fn(int x);
int ftc_dl_caller(int x);

#ifdef __cplusplus
}
#endif

#endif
