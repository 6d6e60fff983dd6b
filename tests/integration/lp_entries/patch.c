/* SPDX-License-Identifier: MIT */
/*
 * test_lp_entries: replaces the four functions of the test, each with
 * x + 2000: le_plain() and le_cet() of the program (rewritten entries,
 * without and with an endbr64), lpe_keep_fn() (five 1-byte NOPs) and
 * lpe_fix_fn() (rewritten) of the two libraries.
 */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 2000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "le_plain", 0, new_func),
	RW_PATCH_FUNC(NULL, "le_cet", 0, new_func),
	RW_PATCH_FUNC("liblpe_keep.so", "lpe_keep_fn", 0, new_func),
	RW_PATCH_FUNC("liblpe_fix.so", "lpe_fix_fn", 0, new_func),
};
RW_PATCH(lp_entries, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
