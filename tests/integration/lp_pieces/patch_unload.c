/* SPDX-License-Identifier: MIT */
/*
 * test_lp_pieces: three functions. The new lpp_f1 tail-calls a helper of
 * the patch that blocks (read from lpp_fd2): a thread there has no frame
 * of any replacement, yet runs the patch's code. The new lpp_f2 blocks in
 * its own .cold piece (read from lpp_fd3). The new lpp_f3 is plain.
 */
#include <rewire/patch.h>

#include <unistd.h>

#include "lpp.h"

__attribute__((noinline)) static int hold(int x)
{
	char c;

	if (read(lpp_fd2, &c, 1) != 1)
		lpp_note("hold: short read\n");
	return x + 1000;
}

/* A tail call (jmp): checked in the test, which sees this function's
 * transition end while a thread sits in hold(). */
__attribute__((noinline)) static int f1_new(int x)
{
	return hold(x + 1);
}

__attribute__((noinline)) static int f2_new(int x)
{
	if (x < 0) {
		char c;

		lpp_note("f2: slow path\n");
		if (read(lpp_fd3, &c, 1) != 1)
			lpp_note("f2: short read\n");
		return -x + 2000;
	}
	return x + 2000;
}

__attribute__((noinline)) static int f3_new(int x)
{
	return x + 3000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("liblpp_lib.so", "lpp_f1", 0, f1_new),
	RW_PATCH_FUNC("liblpp_lib.so", "lpp_f2", 0, f2_new),
	RW_PATCH_FUNC("liblpp_lib.so", "lpp_f3", 0, f3_new),
};
RW_PATCH(lpp_unload, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
