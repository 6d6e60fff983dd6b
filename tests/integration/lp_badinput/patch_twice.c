/* SPDX-License-Identifier: MIT */
/* test_lp_badinput: compute() twice, once by name and once by position
 * (-EINVAL). */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 1000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "compute", 0, new_func),
	RW_PATCH_FUNC(NULL, "compute", 1, new_func),
};
RW_PATCH(lpb_twice, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
