/* SPDX-License-Identifier: MIT */
/*
 * Patch "fork_g": lpf_g() of the dlopen'ed lpf_g.so, named by the
 * object's base name, returns 200.
 */
#include <rewire/patch.h>

#include "lpf.h"

static int lpf_g_new(void)
{
	return LPF_G_NEW;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("lpf_g.so", "lpf_g", 0, lpf_g_new),
};
RW_PATCH(fork_g, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
