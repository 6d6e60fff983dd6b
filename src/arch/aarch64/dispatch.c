/* SPDX-License-Identifier: MIT */
/*
 * Live patching dispatchers on aarch64 (src/livepatch/core.c, the
 * contract in src/arch/arch.h). One RW__ARCH_DISPATCH_SIZE slot each, in
 * an a64_pool within B reach of the function entry that jumps to it:
 *
 *	again:	mrs   x16, tpidr_el0
 *		movz  x17, #off[15:0]		(movn for a negative offset)
 *		movk  x17, #off[31:16], lsl #16
 *		add   x16, x16, x17		x16 = &thread_gen
 *		ldr   w17, [x16]
 *		tbnz  w17, #31, slow
 *		movz  w16, #gen_i[15:0]			} per arm
 *		movk  w16, #gen_i[31:16], lsl #16	}
 *		cmp   w17, w16				}
 *		b.eq  thunk(target_i)			}
 *		b     thunk(dflt)
 *	slow:	(x16 still holds &thread_gen)
 *	   LSE:	movz  w17, #0x8000, lsl #16
 *		ldclral w17, w17, [x16]		atomic clear of bit 31
 *		b     again
 *	or:	str   x0, [sp, #-16]!		a status register for stlxr
 *	1:	ldaxr w17, [x16]
 *		and   w17, w17, #0x7fffffff
 *		stlxr w0, w17, [x16]
 *		cbnz  w0, 1b
 *		ldr   x0, [sp], #16
 *		b     again
 *	thunk:	b     target			when within +-128 MiB
 *	    or:	ldr   x16, lit ; br x16		(lit: the 8-byte target)
 *		brk padding, then the literals
 *
 * One thunk per distinct target (core.c passes two: each side of the
 * transition), so six arms fit in 256 bytes; an encoding that does not
 * fit is refused with -E2BIG.
 *
 * Registers: x16 and x17 (IP0/IP1, the intra-procedure-call scratch
 * registers: AAPCS64 lets any veneer between a call and the callee's entry
 * clobber them) and the flags; nothing else, and sp and x30 as the call
 * left them, so that the function reached still signs x30 with the sp of
 * its caller (PACIASP) and its frame is where the caller expects. The
 * LL/SC fallback spills x0 below sp for three instructions (sp stays 16
 * aligned: SCTLR_EL1.SA0); a signal arriving there sees an ordinary stack
 * and returns into the loop, whose exclusive monitor it cleared: the
 * store then fails and the loop retries.
 *
 * Atomics. LDCLRAL (ARMv8.1 LSE) when HWCAP_ATOMICS says the CPU has it,
 * else the LDAXR/STLXR loop: both are full barriers around the clear, as
 * x86's lock btr is. The fast path's plain LDR is single-copy atomic and
 * coherent with the checker's compare-and-swap on the same word, which is
 * all the protocol asks of it (transition.pml).
 *
 * Branch targets. A direct B never needs a landing pad. A BR through x16
 * sets PSTATE.BTYPE 01 (x16 or x17): a guarded page's target must start
 * with BTI c, BTI jc or PACIASP (an implicit BTI c). Far targets are a
 * patch's new functions: a patch compiled with -mbranch-protection=bti or
 * =standard has its pages guarded and every function whose address is
 * taken (RW_PATCH_FUNC takes it) starting with BTI c or PACIASP; a patch
 * compiled without it has unguarded pages. The original body (the
 * instruction after the entry's B, a NOP, no landing pad) is near the
 * dispatcher by construction (the pool's slot is within B reach of the
 * entry): it is always reached by B.
 *
 * Publication. The slot is written by a64_code_write (DC CVAU / DSB ISH /
 * IC IVAU / DSB ISH / ISB on this core) before its address is given out;
 * other cores first reach it through the entry's B written by a patch
 * batch, which runs membarrier(SYNC_CORE) after the write (every thread
 * then executes a context synchronization event), so no core can fetch
 * stale bytes of the slot. TCG never shows stale instructions: this is by
 * construction, not by test.
 *
 * dispatch_pool is protected by the text lock.
 */
#include "../arch.h"
#include "a64.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/auxv.h>

#ifndef HWCAP_ATOMICS
#define HWCAP_ATOMICS (1ul << 8)
#endif

#define DISPATCH_SIZE RW__ARCH_DISPATCH_SIZE
#define NINSN (DISPATCH_SIZE / 4)

static struct a64_pool dispatch_pool = A64_POOL_INIT(DISPATCH_SIZE);

/*
 * -1: LSE if the CPU has it (HWCAP_ATOMICS); 0: always the LDAXR/STLXR
 * loop; 1: always LDCLRAL. Tests set it to cover both encodings on one
 * machine (tests/unit/test_lp_dispatch_a64.c).
 */
int rw__a64_dispatch_lse = -1;

static bool use_lse(void)
{
	if (rw__a64_dispatch_lse >= 0)
		return rw__a64_dispatch_lse;
	return (getauxval(AT_HWCAP) & HWCAP_ATOMICS) != 0;
}

/* Encoders for the few instructions only dispatchers use (a64.h has the
 * branches, literal loads and BR). Registers are 0..31. */
static uint32_t movz_x(unsigned rd, uint16_t imm, unsigned hw)
{
	return 0xd2800000u | hw << 21 | (uint32_t)imm << 5 | rd;
}

static uint32_t movn_x(unsigned rd, uint16_t imm, unsigned hw)
{
	return 0x92800000u | hw << 21 | (uint32_t)imm << 5 | rd;
}

static uint32_t movk_x(unsigned rd, uint16_t imm, unsigned hw)
{
	return 0xf2800000u | hw << 21 | (uint32_t)imm << 5 | rd;
}

static uint32_t movz_w(unsigned rd, uint16_t imm, unsigned hw)
{
	return 0x52800000u | hw << 21 | (uint32_t)imm << 5 | rd;
}

static uint32_t movk_w(unsigned rd, uint16_t imm, unsigned hw)
{
	return 0x72800000u | hw << 21 | (uint32_t)imm << 5 | rd;
}

#define MRS_X16_TPIDR_EL0 0xd53bd050u
#define ADD_X16_X16_X17 0x8b110210u /* add x16, x16, x17 */
#define LDR_W17_X16 0xb9400211u	    /* ldr w17, [x16] */
#define CMP_W17_W16 0x6b10023fu	    /* subs wzr, w17, w16 */
#define LDCLRAL_W17 0xb8f11211u	    /* ldclral w17, w17, [x16] */
#define STR_X0_PRE 0xf81f0fe0u	    /* str x0, [sp, #-16]! */
#define LDAXR_W17 0x885ffe11u	    /* ldaxr w17, [x16] */
#define AND_W17_31 0x12007a31u	    /* and w17, w17, #0x7fffffff */
#define STLXR_W0 0x8800fe11u	    /* stlxr w0, w17, [x16] */
#define LDR_X0_POST 0xf84107e0u	    /* ldr x0, [sp], #16 */

/* Branches inside the slot: word indices, forward or back. */
static uint32_t tbnz_w31(unsigned rt, long from, long to)
{
	return 0x37f80000u | ((uint32_t)(to - from) & 0x3fff) << 5 | rt;
}

static uint32_t b_cond(unsigned cond, long from, long to)
{
	return 0x54000000u | ((uint32_t)(to - from) & 0x7ffff) << 5 | cond;
}

static uint32_t cbnz_w(unsigned rt, long from, long to)
{
	return 0x35000000u | ((uint32_t)(to - from) & 0x7ffff) << 5 | rt;
}

static uint32_t b_local(long from, long to)
{
	return 0x14000000u | ((uint32_t)(to - from) & 0x3ffffff);
}

#define COND_EQ 0

/*
 * Encode the dispatcher for the slot at @at into @code (NINSN words).
 * Returns 0, or -E2BIG if it does not fit.
 */
static int dispatch_encode(uintptr_t at, int32_t off,
			   const struct rw__arch_arm *arms, size_t narms,
			   uintptr_t dflt, uint32_t code[NINSN])
{
	uintptr_t tgt[RW__ARCH_DISPATCH_ARMS + 1];
	long beq[RW__ARCH_DISPATCH_ARMS + 1], thunk[RW__ARCH_DISPATCH_ARMS + 1];
	size_t arm_tgt[RW__ARCH_DISPATCH_ARMS + 1], ntgt = 0, nlit = 0;
	long n = 0, again = 0, tbnz_at, slow;
	uint32_t uoff = (uint32_t)off;
	bool lse = use_lse();

	for (size_t i = 0; i < NINSN; i++)
		code[i] = A64_BRK_RW;
	/* Distinct targets: arm i (i == narms: the default) uses
	 * tgt[arm_tgt[i]]. */
	for (size_t i = 0; i <= narms; i++) {
		uintptr_t t = i < narms ? arms[i].target : dflt;
		size_t k = 0;

		while (k < ntgt && tgt[k] != t)
			k++;
		if (k == ntgt)
			tgt[ntgt++] = t;
		arm_tgt[i] = k;
	}
	/* again: the address of the generation, then the generation. */
	code[n++] = MRS_X16_TPIDR_EL0;
	if (off >= 0)
		code[n++] = movz_x(17, (uint16_t)uoff, 0);
	else
		code[n++] = movn_x(17, (uint16_t)~uoff, 0);
	code[n++] = movk_x(17, (uint16_t)(uoff >> 16), 1);
	code[n++] = ADD_X16_X16_X17;
	code[n++] = LDR_W17_X16;
	tbnz_at = n++;
	for (size_t i = 0; i < narms; i++) {
		code[n++] = movz_w(16, (uint16_t)arms[i].gen, 0);
		code[n++] = movk_w(16, (uint16_t)(arms[i].gen >> 16), 1);
		code[n++] = CMP_W17_W16;
		beq[i] = n++;
	}
	beq[narms] = n++; /* b thunk(dflt) */
	slow = n;
	code[tbnz_at] = tbnz_w31(17, tbnz_at, slow);
	if (lse) {
		code[n++] = movz_w(17, 0x8000, 1);
		code[n++] = LDCLRAL_W17;
	} else {
		long loop;

		code[n++] = STR_X0_PRE;
		loop = n;
		code[n++] = LDAXR_W17;
		code[n++] = AND_W17_31;
		code[n++] = STLXR_W0;
		code[n] = cbnz_w(0, n, loop);
		n++;
		code[n++] = LDR_X0_POST;
	}
	code[n] = b_local(n, again);
	n++;
	/* Thunks, then the literals from the end of the slot down (8-byte
	 * aligned: the slot is 16-aligned and NINSN even). */
	for (size_t k = 0; k < ntgt; k++) {
		uintptr_t pc = at + 4 * (uintptr_t)n;
		long lit = NINSN - 2 * (long)(nlit + 1);

		thunk[k] = n;
		if (a64_b_reach(pc, tgt[k])) {
			if (n + 1 > NINSN - 2 * (long)nlit)
				return -E2BIG;
			code[n++] = a64_b(pc, tgt[k]);
			continue;
		}
		if (n + 2 > lit)
			return -E2BIG;
		code[n] = a64_ldr_lit(16, (int32_t)(4 * (lit - n)));
		n++;
		code[n++] = a64_br(16);
		memcpy(&code[lit], &tgt[k], 8);
		nlit++;
	}
	for (size_t i = 0; i < narms; i++)
		code[beq[i]] = b_cond(COND_EQ, beq[i], thunk[arm_tgt[i]]);
	code[beq[narms]] = b_local(beq[narms], thunk[arm_tgt[narms]]);
	return 0;
}

int rw__arch_dispatch_alloc(uintptr_t near, int32_t tls_off,
			    const struct rw__arch_arm *arms, size_t narms,
			    uintptr_t dflt, void **stub)
{
	uint32_t code[NINSN];
	uintptr_t at;
	int err;

	*stub = NULL;
	if (narms > RW__ARCH_DISPATCH_ARMS)
		return -E2BIG;
	err = a64_pool_alloc(&dispatch_pool, near, &at);
	if (err)
		return err;
	err = dispatch_encode(at, tls_off, arms, narms, dflt, code);
	if (!err)
		err = a64_code_write(at, code, sizeof(code));
	if (err) {
		a64_pool_free(&dispatch_pool, at);
		return err;
	}
	*stub = (void *)at;
	rw__log("dispatcher %p: %zu arms, default %p (%s)", (void *)at, narms,
		(void *)dflt, use_lse() ? "lse" : "ll/sc");
	return 0;
}

size_t rw__arch_dispatch_pages(uintptr_t *out, size_t max)
{
	size_t n = 0;

	for (struct a64_pool_page *pg = dispatch_pool.pages; pg;
	     pg = pg->next) {
		if (n < max)
			out[n] = pg->base;
		n++;
	}
	return n;
}

void rw__arch_dispatch_free(void *stub)
{
	a64_pool_free(&dispatch_pool, (uintptr_t)stub);
}
