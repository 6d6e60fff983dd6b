/* SPDX-License-Identifier: MIT */
/*
 * test_ftc_transition: replaces ftc_outer and ftc_inner together (ftc.h):
 * new inner is x + 1001, new outer adds 20 and has the same slow path.
 */
#include <rewire/patch.h>

#include "ftc.h"

__attribute__((noinline)) static int inner_new(int x)
{
	return x + 1001;
}

__attribute__((noinline)) static int outer_new(int x)
{
	if (x < 0) {
		ftc_wait();
		return ftc_inner(-x) + 20;
	}
	return ftc_inner(x) + 20;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("libftc_lib.so", "ftc_outer", 0, outer_new),
	RW_PATCH_FUNC("libftc_lib.so", "ftc_inner", 0, inner_new),
};
RW_PATCH(ftc_pair, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
