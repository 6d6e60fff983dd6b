/* SPDX-License-Identifier: MIT */
/*
 * test_lp_badinput: a descriptor without the ELF note (not built with
 * RW_PATCH). Its constructor aborts (lpb.h): the loader must refuse it from
 * the file, before anything of it runs.
 */
#include <rewire/patch.h>

#include <stdlib.h>

#include "lpb.h"

LPB_HANDMADE_PATCH("lpb_nonote", RW_PATCH_ABI_VERSION);
