/* SPDX-License-Identifier: MIT */
/* test_lp_badinput: a function of an object that is not loaded
 * (RW_ERR_SYMBOL). */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 1000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("liblpb_not_loaded.so.1", "f", 0, new_func),
};
RW_PATCH(lpb_noobj, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
