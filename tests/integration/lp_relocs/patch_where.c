/* SPDX-License-Identifier: MIT */
/* test_lp_relocs: the last entry would write into the program's own
 * compute() (which the program exports), not into the patch. */
#include "lpr.h"

int compute(int x);

LPR_PATCH(lpr_where, { .where = (void *)compute,
		       .target = &internal_value,
		       .type = RW_PATCH_RELOC_ABS64 });
