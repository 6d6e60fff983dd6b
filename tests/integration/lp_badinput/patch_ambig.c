/* SPDX-License-Identifier: MIT */
/* test_lp_badinput: "helper" has two symbols in the program and no position
 * is given (RW_ERR_AMBIGUOUS). */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 1000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "helper", 0, new_func),
};
RW_PATCH(lpb_ambig, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
