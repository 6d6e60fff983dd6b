/* SPDX-License-Identifier: MIT */
/* test_lp_relocs: a PC32 to the program's counter_var, which the dynamic
 * linker maps far (more than 2 GiB) from the patch: out of range. */
#include "lpr.h"

LPR_PATCH(lpr_far, { .where = (void *)&far_field,
		     .name = "counter_var",
		     .type = RW_PATCH_RELOC_PC32 });
