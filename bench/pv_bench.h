/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-pv: what reading a provider costs (rw_provider_read(),
 * rewire/provider.h) against loading the current provider from a plain
 * pointer and calling its read function. The loops live in pv_loops.c
 * (noinline, aligned to 64 bytes, one per variant, so that the timer and
 * callgrind's --toggle-collect see exactly one loop); the read function
 * lives in pv_read.c, another translation unit, so that every variant
 * makes a real call to it.
 */
#ifndef REWIRE_BENCH_PV_H
#define REWIRE_BENCH_PV_H

#include <rewire/rewire.h>

/* pv_read.c: the provider, its set, and the plain pointer to it. */
extern struct rw_provider pvb_provider;
extern struct rw_provider_set pvb_set;
extern const struct rw_provider *pvb_plain;
/* The read function: ++*(long *)out; return 0. */
int pvb_read(const struct rw_provider *p, void *out);
/* The read path of rewire before issue 17, out of line as the exported
 * function was: liburcu-bp's read side around the latch, on the set's
 * layout of then. */
struct pvb_old_latch {
	const struct rw_provider *provider;
	unsigned generation;
};
struct pvb_old_set {
	unsigned seq;
	struct pvb_old_latch latch[2];
};
extern struct pvb_old_set pvb_old_set;
int pvb_read_urcu(const struct pvb_old_set *set, void *out,
		  unsigned *generation);

/* pv_loops.c: each returns the sum of what the read function counted. */
long pvb_loop_plain(long n);
long pvb_loop_read(long n);
long pvb_loop_read_gen(long n);
long pvb_loop_read_call(long n);
long pvb_loop_read_urcu(long n);

#endif /* REWIRE_BENCH_PV_H */
