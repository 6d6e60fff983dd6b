/* SPDX-License-Identifier: MIT */
/*
 * Bound stubs on aarch64 (tracepoints, DESIGN.md 7; the contract is in
 * src/arch/arch.h): immutable code that puts @data in x0, the first
 * argument, and tail-jumps to @func with every other argument register,
 * the stack and the link register untouched. One 32-byte slot of a pool of
 * read-only executable pages within B reach of the static call slot that
 * jumps to it (src/arch/aarch64/a64.h):
 *
 *	+0	LDR  X0, +16		data, from the literal at +16
 *	+4	B    func		func within +-128 MiB of +4
 *	+8	BRK  #0x7277		padding, never executed
 *	+12	BRK  #0x7277
 *	+16	.quad data
 *	+24	.quad func
 * or, when func is out of reach:
 *	+4	LDR  X16, +20		func, from the literal at +24
 *	+8	BR   X16
 *
 * x16 (IP0) is the intra-procedure-call scratch register: the AAPCS64 lets
 * any branch between a caller and its callee clobber it (as PLT stubs and
 * veneers do), so a probe cannot expect it to hold anything. BTI: the stub
 * is reached by a B from the static call slot (BTYPE 00: no landing pad
 * needed, and the pool's pages are not guarded anyway); BR X16 lands on
 * @func with BTYPE 01, which the "BTI c" or "PACIASP" that starts a
 * function compiled with -mbranch-protection accepts (a BR through x16 or
 * x17 is the one indirect jump those pads take besides a call). The
 * literals are 8-byte aligned (slots are 16-byte aligned), so each LDR is
 * a single-copy atomic load, not that it matters: the stub never changes
 * while anything can run it.
 *
 * Publication, step by step, as the architecture's rules for modifying
 * code ("concurrent modification and execution") ask:
 *
 *   1. The slot is free: no static call jumps to it, and none has since a
 *      grace period that began after the last one stopped (the caller's
 *      rw_rcu_call(); src/tracepoint.c, step 7).
 *   2. a64_code_write() writes the 32 bytes through the text writer, then
 *      cleans the data cache to the point of unification and invalidates
 *      the instruction cache over them (DC CVAU, DSB ISH, IC IVAU, DSB ISH,
 *      ISB): the broadcast invalidation is complete when it returns, so no
 *      core's instruction cache still holds the old bytes.
 *   3. rw__arch_sync_cores(): membarrier(SYNC_CORE), a context
 *      synchronization event on every core running a thread of the
 *      process, so that no core keeps old instructions of this address
 *      that it fetched ahead before step 2 (a core may prefetch any
 *      executable address at any time; the kernel's flush_icache_range()
 *      kicks every CPU for the same reason before a BPF program is
 *      published).
 *   4. Only then does the caller make the static call jump here (a B -> B
 *      change of the slot: a CMODX-safe single-instruction write, followed
 *      by its own sync). A core that executes the new B therefore fetches
 *      the new stub.
 *
 * TCG (the emulator that runs the aarch64 tests) never shows stale
 * instructions, so these steps are right by construction, not by test.
 *
 * bound_pool is protected by the text lock.
 */
#include "../arch.h"
#include "a64.h"

#include <string.h>

#define BOUND_SIZE 32
#define BOUND_WORDS (BOUND_SIZE / 4)

static struct a64_pool bound_pool = A64_POOL_INIT(BOUND_SIZE);

/* The stub at @at that calls @func with @data (as laid out above). */
static void bound_encode(uintptr_t at, uintptr_t func, uintptr_t data,
			 uint32_t code[BOUND_WORDS])
{
	for (unsigned i = 0; i < BOUND_WORDS; i++)
		code[i] = A64_BRK_RW;
	code[0] = a64_ldr_lit(0, 16);
	if (a64_b_reach(at + 4, func)) {
		code[1] = a64_b(at + 4, func);
	} else {
		code[1] = a64_ldr_lit(16, 20);
		code[2] = a64_br(16);
	}
	memcpy(&code[4], &data, 8);
	memcpy(&code[6], &func, 8);
}

int rw__arch_bound_stub_alloc(uintptr_t near, void *func, void *data,
			      void **stub)
{
	uint32_t code[BOUND_WORDS];
	uintptr_t at;
	int err;

	if (!func || !stub)
		return -EINVAL;
	err = a64_pool_alloc(&bound_pool, near, &at);
	if (err)
		return err;
	bound_encode(at, (uintptr_t)func, (uintptr_t)data, code);
	/* Steps 2 and 3. */
	err = a64_code_write(at, code, sizeof(code));
	if (!err)
		err = rw__arch_sync_cores();
	if (err) {
		a64_pool_free(&bound_pool, at);
		return err;
	}
	*stub = (void *)at;
	rw__log("bound stub %p: %p(%p)", (void *)at, func, data);
	return 0;
}

void rw__arch_bound_stub_free(void *stub)
{
	if (stub)
		a64_pool_free(&bound_pool, (uintptr_t)stub);
}
