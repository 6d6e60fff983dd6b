/* SPDX-License-Identifier: MIT */
/*
 * The message of the calling thread's last rw_patch_* call, per thread:
 * every call that can set one clears it first, so that a message never
 * outlives the call it belongs to (like dlerror).
 */
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

void rw__lp_clear_error(void)
{
	last_error[0] = '\0';
}

RW_EXPORT const char *rw_patch_last_error(void)
{
	return last_error[0] ? last_error : "no error";
}
