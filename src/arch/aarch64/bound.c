/* SPDX-License-Identifier: MIT */
/*
 * aarch64 bound stubs (tracepoints): not ported yet. Tracepoints fall back
 * to what the generic backend does without bound stubs (-EOPNOTSUPP).
 */
#include "a64.h"

int rw__arch_bound_stub_alloc(uintptr_t near, void *func, void *data,
			      void **stub)
{
	(void)near;
	(void)func;
	(void)data;
	*stub = NULL;
	return -EOPNOTSUPP;
}

void rw__arch_bound_stub_free(void *stub)
{
	(void)stub;
}
