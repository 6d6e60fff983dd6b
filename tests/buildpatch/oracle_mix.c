/* SPDX-License-Identifier: MIT */
/*
 * oracle_mix.so: a deliberately wrong patch of the corpus's bpt, for
 * test_bp_oracle.sh. cases/const.diff changes bp_const and its callee
 * bp_const_inner; this patch replaces bp_const alone, so that a thread
 * runs the new bp_const with the old bp_const_inner: 6012, a mix of old
 * and new that the oracle (corpus/main.c) must report.
 */
#include <rewire/patch.h>

static long bp_const_inner_old(long x)
{
	return x > 1000 ? 0 : 601;
}

static long bp_const_new(long x)
{
	return bp_const_inner_old(x) * 10 + 2;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "bp_const", 0, bp_const_new),
};
RW_PATCH(oracle_mix, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
