/* SPDX-License-Identifier: MIT */
/*
 * fix_average.so: the live patch of examples/livepatch_basic.c. Built by
 * rewire_add_patch(fix_average ...) in examples/CMakeLists.txt, or by
 * hand: cc -O2 -fPIC -shared -Iinclude -o fix_average.so fix_average.c
 */
#include <rewire/patch.h>

static int average_fixed(const int *v, int n)
{
	long sum = 0;

	for (int i = 0; i < n; i++)
		sum += v[i];
	return n ? (int)(sum / n) : 0;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "average", 0, average_fixed),
};
RW_PATCH(fix_average, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
