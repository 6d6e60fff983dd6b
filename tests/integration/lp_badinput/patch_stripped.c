/* SPDX-License-Identifier: MIT */
/* test_lp_badinput: a function of a stripped object (RW_ERR_STRIPPED). */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 1000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("lpb_dso_stripped.so", "lpb_dso_func", 0, new_func),
};
RW_PATCH(lpb_stripped, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
