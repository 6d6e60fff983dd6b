/* SPDX-License-Identifier: MIT */
/* test_lp_relocs: an entry of an unknown type. */
#include "lpr.h"

LPR_PATCH(lpr_type, { .where = (void *)&far_field,
		      .target = &internal_value,
		      .type = 7 });
