/* SPDX-License-Identifier: MIT */
/*
 * test_lp_entries on aarch64: a patch of one function of the program
 * whose entry rewire refuses (LPE_TARGET, a string: le_pre42, ...), built
 * once per such function as lpe_refuse_NAME.so.
 */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 2000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, LPE_TARGET, 0, new_func),
};
RW_PATCH(lpe_refuse, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
