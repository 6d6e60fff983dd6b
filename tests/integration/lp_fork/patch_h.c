/* SPDX-License-Identifier: MIT */
/* Patch "fork_h": lpf_h() of liblpf_lib.so returns 20. */
#include <rewire/patch.h>

#include "lpf.h"

static int lpf_h_new(void)
{
	return LPF_H_NEW;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("liblpf_lib.so", "lpf_h", 0, lpf_h_new),
};
RW_PATCH(fork_h, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
