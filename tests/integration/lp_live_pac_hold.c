/* SPDX-License-Identifier: MIT */
/*
 * test_lp_live_pac: the new pac_hold(), which adds 1000 to the byte it
 * reads (the old one returns the byte). Built with
 * -mbranch-protection=standard by test_lp_live_pac.cmake: it calls, so it
 * signs its return address.
 */
#include <rewire/patch.h>

#include <unistd.h>

__attribute__((noinline)) static int pac_hold_new(int fd)
{
	char b;

	if (read(fd, &b, 1) != 1)
		return -1;
	return 1000 + b;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "pac_hold", 0, pac_hold_new),
};
RW_PATCH(lp_pac_hold, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
