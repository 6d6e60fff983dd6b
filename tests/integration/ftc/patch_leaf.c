/* SPDX-License-Identifier: MIT */
/* test_ftc_patch: ftc_leaf() returns 3 * x + 2 instead of 3 * x + 1. */
#include <rewire/patch.h>

__attribute__((noinline)) static int leaf_new(int x)
{
	return 3 * x + 2;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("libftc_lib.so", "ftc_leaf", 0, leaf_new),
};
RW_PATCH(ftc_leaf_fix, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
