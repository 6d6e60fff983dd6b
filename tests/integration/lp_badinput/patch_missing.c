/* SPDX-License-Identifier: MIT */
/* test_lp_badinput: a function the program does not have (RW_ERR_SYMBOL). */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 1000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "no_such_function", 0, new_func),
};
RW_PATCH(lpb_missing, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
