/* SPDX-License-Identifier: MIT */
/* test_lp_badinput: compute() with a size it does not have
 * (RW_ERR_NOT_PATCHABLE). */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 1000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC_SIZED(NULL, "compute", 0, 3, new_func),
};
RW_PATCH(lpb_sized, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
