/* SPDX-License-Identifier: MIT */
/*
 * aarch64 function tracing trampolines: not ported yet (-EOPNOTSUPP, as on
 * the generic backend).
 */
#include "a64.h"

int rw__arch_trace_tramp_alloc(uintptr_t near, void *rec, void **tramp)
{
	(void)near;
	(void)rec;
	(void)tramp;
	return -EOPNOTSUPP;
}

void rw__arch_trace_set(void (*enter)(void *data, uintptr_t *slot),
			uintptr_t (*ret)(uintptr_t sp))
{
	(void)enter;
	(void)ret;
}

uintptr_t rw__arch_trace_return_addr(void)
{
	return 0;
}

void rw__arch_trace_code(uintptr_t *start, uintptr_t *end)
{
	*start = *end = 0;
}
