/* SPDX-License-Identifier: MIT */
/*
 * test_lp_pieces: replaces lpp_outer and lpp_inner together. The new
 * lpp_outer has a slow path in a .cold piece of its own, like the old one:
 * new inner is x + 1001, new outer adds 20. An invocation that mixes old
 * outer and new inner returns x + 1011; all old x + 11, all new x + 1021.
 */
#include <rewire/patch.h>

#include <unistd.h>

#include "lpp.h"

__attribute__((noinline)) static int inner_new(int x)
{
	return x + 1001;
}

__attribute__((noinline)) static int outer_new(int x)
{
	if (x < 0) {
		char c;

		lpp_note("new outer: slow path\n");
		if (x == -1) {
			if (read(lpp_fd, &c, 1) != 1)
				lpp_note("new outer: short read\n");
		} else {
			while (!__atomic_load_n(&lpp_go, __ATOMIC_ACQUIRE))
#if defined(__aarch64__)
				__asm__ volatile("yield");
#else
				__builtin_ia32_pause();
#endif
		}
		return lpp_inner(-x) + 20;
	}
	return lpp_inner(x) + 20;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("liblpp_lib.so", "lpp_outer", 0, outer_new),
	RW_PATCH_FUNC("liblpp_lib.so", "lpp_inner", 0, inner_new),
};
RW_PATCH(lpp_cold, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
