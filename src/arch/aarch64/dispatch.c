/* SPDX-License-Identifier: MIT */
/*
 * aarch64 live patching dispatchers: not ported yet (-EOPNOTSUPP, as on
 * the generic backend).
 */
#include "a64.h"

int rw__arch_dispatch_alloc(uintptr_t near, int32_t tls_off,
			    const struct rw__arch_arm *arms, size_t narms,
			    uintptr_t dflt, void **stub)
{
	(void)near;
	(void)tls_off;
	(void)arms;
	(void)narms;
	(void)dflt;
	*stub = NULL;
	return -EOPNOTSUPP;
}

void rw__arch_dispatch_free(void *stub)
{
	(void)stub;
}
