/* SPDX-License-Identifier: MIT */
/* test_lp_relocs: the last entry names a symbol the program lacks. */
#include "lpr.h"

LPR_PATCH(lpr_missing, { .where = (void *)&far_field,
			 .name = "no_such_symbol",
			 .type = RW_PATCH_RELOC_PC32 });
