/* SPDX-License-Identifier: MIT */
/* test_lp_bind: a patch of lpbd_lib.so, bound to it. */
#include <rewire/patch.h>

__attribute__((noinline)) static int lib_func_fixed(int x)
{
	return x + 2;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("lpbd_lib.so", "lpbd_lib_func", 0, lib_func_fixed),
};
RW_PATCH(lpbd_lib_fix, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
