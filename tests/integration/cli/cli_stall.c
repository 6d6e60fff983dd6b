/* SPDX-License-Identifier: MIT */
/*
 * cli_stall.so: a live patch of cli_target's cli_hold(), which the holder
 * thread never leaves: the transition stays open, with the holder named
 * as the thread that blocks it, until it is reverted or forced.
 */
#include <rewire/patch.h>

#include <unistd.h>

static void cli_hold_new(int fd)
{
	char c;

	while (read(fd, &c, 1) != 0)
		;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "cli_hold", 0, cli_hold_new),
};
RW_PATCH(cli_stall, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
