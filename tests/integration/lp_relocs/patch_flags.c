/* SPDX-License-Identifier: MIT */
/* test_lp_relocs: an entry with a flag this loader does not know. */
#include "lpr.h"

LPR_PATCH(lpr_flags, { .where = (void *)&far_field,
		       .target = &internal_value,
		       .type = RW_PATCH_RELOC_PC32,
		       .flags = 1 });
