/* SPDX-License-Identifier: MIT */
/* test_lp_relocs: the good patch, every field filled by the loader. */
#include "lpr.h"

LPR_PATCH(lpr_good);
