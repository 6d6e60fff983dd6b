/* SPDX-License-Identifier: MIT */
/*
 * test_lp_entries on aarch64: replaces the functions whose entry layout
 * rewire takes, each with x + 2000: le_plain() (NOP; NOP), le_bti() (BTI
 * C first), le_pac() (PACIASP after the NOPs), le_nop3() (three NOPs) of
 * the program, and lpe_keep_fn() and lpe_fix_fn() of the two libraries.
 * The test reads the new functions in this order.
 */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 2000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "le_plain", 0, new_func),
	RW_PATCH_FUNC(NULL, "le_bti", 0, new_func),
	RW_PATCH_FUNC(NULL, "le_pac", 0, new_func),
	RW_PATCH_FUNC(NULL, "le_nop3", 0, new_func),
	RW_PATCH_FUNC("liblpe_keep.so", "lpe_keep_fn", 0, new_func),
	RW_PATCH_FUNC("liblpe_fix.so", "lpe_fix_fn", 0, new_func),
};
RW_PATCH(lp_entries, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
