/* SPDX-License-Identifier: MIT */
/*
 * test_lp_breakpoint: replaces bp_plain() (no endbr64) and, with
 * LP_BP_CET, bp_cet() (an endbr64 before its NOPs). Old functions return
 * x + 1000, the new ones x + 2000.
 */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 2000;
}

#ifdef LP_BP_CET
#define LP_BP_OLD "bp_cet"
#define LP_BP_PATCH lp_bp_cet
#else
#define LP_BP_OLD "bp_plain"
#define LP_BP_PATCH lp_bp_plain
#endif

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, LP_BP_OLD, 0, new_func),
};
RW_PATCH(LP_BP_PATCH, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
