/* SPDX-License-Identifier: MIT */
/*
 * test_lp_force: two patches from one source (test_lp_force.cmake builds
 * it twice). With LP_FORCE_SPIN, lp_force_spin.so replaces spin_func();
 * otherwise lp_force_q.so replaces q_func(). The old functions return
 * x + 1000, the new ones x + 2000.
 */
#include <rewire/patch.h>

#ifdef LP_FORCE_SPIN
#define LP_FORCE_OLD "spin_func"
#define LP_FORCE_PATCH lp_force_spin
#else
#define LP_FORCE_OLD "q_func"
#define LP_FORCE_PATCH lp_force_q
#endif

/* The new spin_func(x, spin) or q_func(x, hold). */
__attribute__((noinline)) static int new_func(int x, int unused)
{
	(void)unused;
	return x + 2000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, LP_FORCE_OLD, 0, new_func),
};
RW_PATCH(LP_FORCE_PATCH, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
