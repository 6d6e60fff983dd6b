/* SPDX-License-Identifier: MIT */
/* Patch "fork_f": lpf_f() of liblpf_lib.so returns 2 and never blocks. */
#include <rewire/patch.h>

#include "lpf.h"

static int lpf_f_new(int fd)
{
	(void)fd;
	return LPF_F_NEW;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("liblpf_lib.so", "lpf_f", 0, lpf_f_new),
};
RW_PATCH(fork_f, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
