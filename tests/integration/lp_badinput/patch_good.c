/* SPDX-License-Identifier: MIT */
/* test_lp_badinput: a good patch of compute(), with a reference to the
 * program's static "counter". */
#include <rewire/patch.h>

static int *counter_p;

__attribute__((noinline)) static int compute_fixed(int x)
{
	if (counter_p)
		__atomic_add_fetch(counter_p, 1, __ATOMIC_RELAXED);
	return x * 3 + 1;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "compute", 0, compute_fixed),
};
RW_PATCH_REFS(refs) = {
	RW_PATCH_REF(NULL, "counter", 0, &counter_p),
};
RW_PATCH(lpb_good, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs),
	 .refs = refs, .nrefs = RW_PATCH_COUNT(refs));
