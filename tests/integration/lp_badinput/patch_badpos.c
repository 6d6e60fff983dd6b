/* SPDX-License-Identifier: MIT */
/* test_lp_badinput: "helper" at a position that does not exist
 * (RW_ERR_SYMBOL). */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 1000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "helper", 3, new_func),
};
RW_PATCH(lpb_badpos, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
