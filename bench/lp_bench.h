/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-lp (bench/lp_bench.c): what a call of a live-patched function
 * costs before, during and after a transition, and how long transitions
 * take.
 *
 * Every measured function has the same body, (x >> 3) ^ x for the old
 * versions and (x >> 2) ^ x for the new ones (same instructions, another
 * result, so that every loop checks which side ran):
 *   lpb_func      librwbench_lp_target.so, patchable (lp_target.c); patched
 *   lpb_ref       the same, never patched (5 NOPs at its entry)
 *   lpb_plain     the same without a patchable entry (lp_plain.c): the
 *                 function's own instructions
 *   lpb_func_exe  in the program (lp_exe.c), patchable; patched (its entry
 *                 ends as a jump to a far stub: a PIE program is more than
 *                 2 GiB away from the patch)
 *   lpb_run(fn, arg)  calls fn(arg); patched (by an identical function),
 *                 so that a thread inside it keeps a transition open
 * The patch (lp_patch.c) is rwbench_lp_patch.so, next to the executable.
 */
#ifndef REWIRE_BENCH_LP_H
#define REWIRE_BENCH_LP_H

typedef long lpb_fn(long x);

long lpb_func(long x);
long lpb_ref(long x);
long lpb_plain(long x);
long lpb_func_exe(long x);
void lpb_run(void (*fn)(void *), void *arg);

/* Sides, for the checks. */
static inline long lpb_old(long x)
{
	return (x >> 3) ^ x;
}

static inline long lpb_new(long x)
{
	return (x >> 2) ^ x;
}

/* One loop per variant (lp_loops.c), all identical: n indirect calls of
 * fn(i), results summed. Separate names for callgrind's --toggle-collect. */
#define LPB_VARIANTS(X)   \
	X(plain)          \
	X(ref)            \
	X(before)         \
	X(exe_before)     \
	X(during_new)     \
	X(exe_during_new) \
	X(during_old)     \
	X(exe_during_old) \
	X(after)          \
	X(exe_after)

#define LPB_DECLARE_LOOP(v) long lpb_loop_##v(lpb_fn *fn, long n);
LPB_VARIANTS(LPB_DECLARE_LOOP)
#undef LPB_DECLARE_LOOP

#endif /* REWIRE_BENCH_LP_H */
