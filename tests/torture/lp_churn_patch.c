/* SPDX-License-Identifier: MIT */
/*
 * torture_lp_churn: the new churn_func() (3x + 2 instead of 3x + 1).
 * Built with rewire_add_patch() by torture_lp_churn.cmake.
 */
#include <rewire/patch.h>

__attribute__((noinline)) static long churn_func_new(long x, int hold)
{
	(void)hold;
	return 3 * x + 2;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "churn_func", 0, churn_func_new),
};
RW_PATCH(lp_churn, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
