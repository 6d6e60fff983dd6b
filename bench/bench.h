/* SPDX-License-Identifier: MIT */
/*
 * rw-bench: the loops under measurement and their callees.
 *
 * Every loop is its own noinline function so that the timer in bench.c
 * and callgrind's --toggle-collect both see exactly one loop. Callees live
 * in callee.c, a separate translation unit (no LTO), so that no loop can
 * inline or hoist them: (a) stays a "call <fn>", (b) a call to the static
 * call trampoline, (c) "call *%reg" and (d) a call to a retpoline thunk.
 * doc/BENCHMARKS.md says how the shape was checked with objdump.
 */
#ifndef REWIRE_BENCH_H
#define REWIRE_BENCH_H

#include <rewire/rewire.h>

typedef long bench_fn(long x);

/* callee.c */
bench_fn bench_target;
long bench_slow(long x);
extern volatile int bench_flag;

/* loops.c: calls, each returns the sum of bench_target(i), i < n. */
long bench_loop_direct(long n);
long bench_loop_static_call(long n);
long bench_loop_indirect(long n, bench_fn *fp);
RW_DECLARE_STATIC_CALL(bench_sc, bench_target);

/* retpoline.c: bench_loop_indirect built with -mindirect-branch=thunk. */
long bench_loop_retpoline(long n, bench_fn *fp);

/* loops.c: the same light loop bare, behind a disabled static key, and
 * behind "if (volatile flag)". */
long bench_loop_plain(long n);
long bench_loop_key(long n);
long bench_loop_flag(long n);
/* key_layout.c: the same three at the default loop alignment. */
long bench_loop_plain_default(long n);
long bench_loop_key_default(long n);
long bench_loop_flag_default(long n);
/* loops.c: the natural form "if (key) acc += slow(i)", with acc only read
 * by the loop's barrier, and with acc rewritten by it (bench/loops.c). */
long bench_loop_plain_natural(long n);
long bench_loop_key_natural(long n);
long bench_loop_key_natural_rw(long n);
RW_DECLARE_STATIC_KEY_FALSE(bench_key);

/* sites.c: functions holding 1, 100 and 10,000 sites of one key each;
 * each returns how many of its sites took the branch. */
long bench_sites_1(void);
long bench_sites_100(void);
long bench_sites_10k(void);
RW_DECLARE_STATIC_KEY_FALSE(bench_key_1);
RW_DECLARE_STATIC_KEY_FALSE(bench_key_100);
RW_DECLARE_STATIC_KEY_FALSE(bench_key_10k);

#endif /* REWIRE_BENCH_H */
