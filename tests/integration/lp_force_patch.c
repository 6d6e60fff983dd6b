/* SPDX-License-Identifier: MIT */
/*
 * test_lp_force: two patches from one source (test_lp_force.cmake builds
 * it twice). With LP_FORCE_SPIN, lp_force_spin.so replaces spin_func();
 * otherwise lp_force_q.so replaces q_func(). The old functions return
 * x + 1000, the new ones x + 2000.
 */
#include <rewire/patch.h>

#ifdef LP_FORCE_SPIN
__attribute__((noinline)) static int spin_func_new(int x, int spin)
{
	(void)spin;
	return x + 2000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "spin_func", 0, spin_func_new),
};
RW_PATCH(lp_force_spin, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
#else
__attribute__((noinline)) static int q_func_new(int x, int hold)
{
	(void)hold;
	return x + 2000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "q_func", 0, q_func_new),
};
RW_PATCH(lp_force_q, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
#endif
