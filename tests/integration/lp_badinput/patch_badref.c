/* SPDX-License-Identifier: MIT */
/* test_lp_badinput: a good function, a reference to a variable the program
 * does not have (RW_ERR_SYMBOL). */
#include <rewire/patch.h>

static int *missing_p;

__attribute__((noinline)) static int compute_fixed(int x)
{
	return x * 3 + 1 + (missing_p ? 0 : 0);
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "compute", 0, compute_fixed),
};
RW_PATCH_REFS(refs) = {
	RW_PATCH_REF(NULL, "no_such_variable", 0, &missing_p),
};
RW_PATCH(lpb_badref, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs),
	 .refs = refs, .nrefs = RW_PATCH_COUNT(refs));
