/* SPDX-License-Identifier: MIT */
/* test_lp_badinput: both "helper"s, by position: loads; 1 is the test
 * file's, 2 is helper2.c's (link order). */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 1000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "helper", 1, new_func),
	RW_PATCH_FUNC(NULL, "helper", 2, new_func),
};
RW_PATCH(lpb_ambig_pos, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
