/* SPDX-License-Identifier: MIT */
/*
 * Patch "stack_ref": the new lps_k(x) adds x to the program's static
 * variable "secret" and returns secret_fn(secret), secret_fn being a
 * static function of the program. Neither is exported: the loader finds
 * both in the program's symbol table and fills in the pointers.
 */
#include <rewire/patch.h>

static int *secret;
static int (*secret_fn)(int);

static int lps_k_ref(int x)
{
	*secret += x;
	return secret_fn(*secret);
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "lps_k", 0, lps_k_ref),
};
RW_PATCH_REFS(refs) = {
	RW_PATCH_REF(NULL, "secret", 0, &secret),
	RW_PATCH_REF(NULL, "secret_fn", 0, &secret_fn),
};
RW_PATCH(stack_ref, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs),
	 .refs = refs, .nrefs = RW_PATCH_COUNT(refs));
