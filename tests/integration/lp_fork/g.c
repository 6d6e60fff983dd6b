/* SPDX-License-Identifier: MIT */
/*
 * lpf_g.so: dlopen'ed (and dlclose'd) by test_lp_fork_dlclose,
 * patchable (lpf.h).
 */
#include "lpf.h"

int lpf_g(void);

__attribute__((noipa)) int lpf_g(void)
{
	return LPF_G_OLD;
}
