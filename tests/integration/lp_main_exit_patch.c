/* SPDX-License-Identifier: MIT */
/*
 * test_lp_main_exit: replaces me_func(); the old one returns x + 1000, the
 * new one x + 2000.
 */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 2000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "me_func", 0, new_func),
};
RW_PATCH(lp_main_exit, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
