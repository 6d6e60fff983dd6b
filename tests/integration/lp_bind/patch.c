/* SPDX-License-Identifier: MIT */
/* test_lp_bind: compute() fixed; built once per program it is bound to. */
#include <rewire/patch.h>

__attribute__((noinline)) static int compute_fixed(int x)
{
	return x * 3 + 2;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "compute", 0, compute_fixed),
};
RW_PATCH(lpbd_fix, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
