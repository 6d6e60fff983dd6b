/* SPDX-License-Identifier: MIT */
/*
 * The generic backend: no code patching. Static keys are flags and static
 * calls are function pointers (see the RW_BACKEND_GENERIC parts of the
 * public headers), so nothing here is ever asked to patch a site.
 */
#include "../arch.h"

bool rw__arch_can_patch(void)
{
	return false;
}

size_t rw__arch_trap_len(void)
{
	return 1;
}

void rw__arch_trap_insn(uint8_t *out)
{
	out[0] = 0;
}

bool rw__arch_is_trap(const uint8_t *b)
{
	(void)b;
	return false;
}

uintptr_t rw__arch_tramp_slot(uintptr_t tramp)
{
	return tramp;
}

void rw__arch_flush_icache(uintptr_t start, size_t len)
{
	(void)start;
	(void)len;
}

int rw__arch_encode(const struct rw__insn *insn, uintptr_t site, uint8_t *out)
{
	(void)insn;
	(void)site;
	(void)out;
	return -ENOSYS;
}

int rw__arch_decode(const uint8_t *bytes, size_t len, uintptr_t site,
		    struct rw__insn *out)
{
	(void)bytes;
	(void)len;
	(void)site;
	(void)out;
	return -ENOSYS;
}

bool rw__arch_trap_is_breakpoint(const siginfo_t *si)
{
	(void)si;
	return false;
}

uintptr_t rw__arch_trap_addr(const void *uc)
{
	(void)uc;
	return 0;
}

void rw__arch_set_ip(void *uc, uintptr_t ip)
{
	(void)uc;
	(void)ip;
}

bool rw__arch_site_insn(uintptr_t site, struct rw__insn *out)
{
	(void)site;
	(void)out;
	return false;
}

void rw__arch_emulate(void *uc, uintptr_t site, const struct rw__insn *insn)
{
	(void)uc;
	(void)site;
	(void)insn;
}

void rw__arch_jump_insn(bool jump, uintptr_t site, uintptr_t target,
			struct rw__insn *out)
{
	(void)jump;
	(void)site;
	(void)target;
	out->op = 0;
	out->len = 0;
	out->target = 0;
}

int rw__arch_tramp_insn(uintptr_t tramp, void *func, struct rw__insn *out)
{
	(void)tramp;
	(void)func;
	(void)out;
	return -ENOSYS;
}

void rw__arch_sync_prepare(void)
{
}

int rw__arch_sync_cores(void)
{
	return 0;
}

void rw__arch_sync_after_fork(void)
{
}

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

size_t rw__arch_dispatch_pages(uintptr_t *out, size_t max)
{
	(void)out;
	(void)max;
	return 0;
}

size_t rw__arch_stub_ranges(uintptr_t (*out)[2], size_t max)
{
	(void)out;
	(void)max;
	return 0;
}

uintptr_t rw__arch_ip(const void *uc)
{
	(void)uc;
	return 0;
}

intptr_t rw__arch_tls_offset(const void *var)
{
	(void)var;
	return 0;
}

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

size_t rw__arch_outer_contexts(void *uc, void **out, size_t max)
{
	(void)uc;
	(void)out;
	(void)max;
	return 0;
}

bool rw__arch_tsc_present(void)
{
	return false;
}

bool rw__arch_tsc_invariant(void)
{
	return false;
}

uint64_t rw__arch_tsc_hz(void)
{
	return 0;
}
