/* SPDX-License-Identifier: MIT */
/*
 * Patch "stack_fail": its pre_patch callback refuses, so it can never be
 * enabled. Every callback counts its calls in the program's
 * lps_fail_calls[] (lps.h), so the test sees that only pre_patch ran.
 */
#include <rewire/patch.h>

#include "lps.h"

static int *calls;

static int lps_u_fail(void)
{
	return 5;
}

static int pre_patch(void)
{
	__atomic_add_fetch(&calls[LPS_PRE_PATCH], 1, __ATOMIC_SEQ_CST);
	return -1;
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
	RW_PATCH_FUNC(NULL, "lps_u", 0, lps_u_fail),
};
RW_PATCH_REFS(refs) = {
	RW_PATCH_REF(NULL, "lps_fail_calls", 0, &calls),
};
RW_PATCH(stack_fail, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs),
	 .refs = refs, .nrefs = RW_PATCH_COUNT(refs),
	 .callbacks = { pre_patch, post_patch, pre_unpatch, post_unpatch });
