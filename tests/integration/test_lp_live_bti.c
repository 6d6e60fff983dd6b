/* SPDX-License-Identifier: MIT */
/*
 * Integration: test_lp_live with branch target identification (aarch64).
 * The program and the patch are built with -mbranch-protection=bti, the
 * patch marked BTI (test_lp_live_bti.cmake) so that its code is mapped
 * guarded: every function begins with BTI c and the entry is the NOP
 * after it; a dispatcher or a far stub reaches the patch's function with
 * BR X16, which must land on its BTI c, else SIGILL. Same oracle as
 * test_lp_live otherwise. (The way back into the original body, after
 * the entry's B, is a direct B by construction; Debian 12's start files
 * lack the BTI note, so the program itself is not mapped guarded here.)
 */
#if defined(__aarch64__)
#include "test_lp_live.c"
#else
#include "check.h"

int main(void)
{
	SKIP("branch target identification is aarch64's (x86-64 runs "
	     "test_lp_live)");
}
#endif
