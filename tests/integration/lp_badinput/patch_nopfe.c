/* SPDX-License-Identifier: MIT */
/* test_lp_badinput: a function built without a patchable entry
 * (RW_ERR_NOT_PATCHABLE). */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 1000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "not_patchable", 0, new_func),
};
RW_PATCH(lpb_nopfe, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
