/* SPDX-License-Identifier: MIT */
/*
 * test_lp_pieces: the new lpp_refd calls lpp_ref_triple() of lpp_refdso.so,
 * a library the program dlopen'ed, through a reference: 3 * x + 1.
 */
#include <rewire/patch.h>

#include "lpp.h"

static int (*triple)(int);

__attribute__((noinline)) static int refd_new(int x)
{
	return triple(x) + 1;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("liblpp_lib.so", "lpp_refd", 0, refd_new),
};
RW_PATCH_REFS(refs) = {
	RW_PATCH_REF("lpp_refdso.so", "lpp_ref_triple", 0, &triple),
};
RW_PATCH(lpp_ref, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs), .refs = refs,
	 .nrefs = RW_PATCH_COUNT(refs));
