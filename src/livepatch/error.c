/* SPDX-License-Identifier: MIT */
/* The message of the last failed rw_patch_* call, per thread. */
#include "lp.h"

#include <stdio.h>

static __thread char last_error[RW__LP_ERRLEN];

void rw__lp_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	rw__log("%s", last_error);
}

RW_EXPORT const char *rw_patch_last_error(void)
{
	return last_error[0] ? last_error : "no error";
}
