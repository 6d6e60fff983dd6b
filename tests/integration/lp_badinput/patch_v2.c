/* SPDX-License-Identifier: MIT */
/*
 * test_lp_badinput: a patch built for another descriptor version (4),
 * written by hand (RW_PATCH writes version 3). Its constructor aborts
 * (lpb.h): the loader must refuse it from the file's note, before anything
 * of it runs.
 */
#include <rewire/patch.h>

#include <stdlib.h>

#include "lpb.h"

__asm__(".pushsection .note.rewire,\"a\",@note\n"
	".balign 4\n"
	".long 7\n"
	".long 4\n"
	".long 1\n"
	".asciz \"rewire\"\n"
	".balign 4\n"
	".long 4\n" /* version 4 */
	".balign 4\n"
	".popsection\n");

/* Version 4 in the descriptor too. */
LPB_HANDMADE_PATCH("lpb_v2", 4);
