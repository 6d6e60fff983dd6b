/* SPDX-License-Identifier: MIT */
/*
 * Patch "stack_cb": lps_h() returns 7; every callback counts its calls in
 * the program's lps_cb_calls[] (lps.h).
 */
#include <rewire/patch.h>

#include "lps.h"

static int *calls;

static int lps_h_cb(int hold)
{
	(void)hold;
	return 7;
}

static int pre_patch(void)
{
	__atomic_add_fetch(&calls[LPS_PRE_PATCH], 1, __ATOMIC_SEQ_CST);
	return 0;
}

static void post_patch(void)
{
	__atomic_add_fetch(&calls[LPS_POST_PATCH], 1, __ATOMIC_SEQ_CST);
}

static void pre_unpatch(void)
{
	__atomic_add_fetch(&calls[LPS_PRE_UNPATCH], 1, __ATOMIC_SEQ_CST);
}

static void post_unpatch(void)
{
	__atomic_add_fetch(&calls[LPS_POST_UNPATCH], 1, __ATOMIC_SEQ_CST);
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "lps_h", 0, lps_h_cb),
};
RW_PATCH_REFS(refs) = {
	RW_PATCH_REF(NULL, "lps_cb_calls", 0, &calls),
};
RW_PATCH(stack_cb, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs),
	 .refs = refs, .nrefs = RW_PATCH_COUNT(refs),
	 .callbacks = { pre_patch, post_patch, pre_unpatch, post_unpatch });
