/* SPDX-License-Identifier: MIT */
/*
 * aarch64: instruction encoders and the pools of generated code, shared by
 * the files of the backend (arch.c: sites, static calls, far stubs;
 * bound.c: tracepoint stubs; dispatch.c: live patching dispatchers;
 * trace.c: function tracing trampolines).
 *
 * Every instruction is 4 bytes, little-endian, 4-aligned. The Arm ARM's
 * concurrent modification rules (B2.2.5, "CMODX"): a 4-byte instruction
 * may be changed while other cores run it only when both the old and the
 * new one are B, BL, NOP, BRK (or BRK's kin HVC/SMC/SVC/ISB, unused
 * here); any other change goes through BRK (old -> BRK -> new, each step
 * followed by the cache maintenance and the cross-core sync).
 */
#ifndef REWIRE_ARCH_A64_H
#define REWIRE_ARCH_A64_H

#include "../arch.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define A64_NOP 0xd503201fu
#define A64_RET 0xd65f03c0u
#define A64_BTI_C 0xd503245fu  /* hint #34 */
#define A64_BTI_J 0xd503249fu  /* hint #36 */
#define A64_BTI_JC 0xd50324dfu /* hint #38 */
#define A64_PACIASP 0xd503233fu
#define A64_AUTIASP 0xd50323bfu
#define A64_BRK_IMM 0x7277u /* "rw" */
#define A64_BRK_RW (0xd4200000u | A64_BRK_IMM << 5)

/* The reach of B and BL: a signed 26-bit word offset, +-128 MiB. */
#define A64_B_REACH (128l << 20)

bool a64_b_reach(uintptr_t pc, uintptr_t target);
/* B / BL at @pc to @target; the caller checked a64_b_reach(). */
uint32_t a64_b(uintptr_t pc, uintptr_t target);
uint32_t a64_bl(uintptr_t pc, uintptr_t target);
bool a64_is_b(uint32_t insn);
bool a64_is_bl(uint32_t insn);
bool a64_is_brk(uint32_t insn);
/* The target of the B or BL @insn at @pc. */
uintptr_t a64_branch_target(uint32_t insn, uintptr_t pc);
/* LDR Xt, <pc + off> (off a multiple of 4 within +-1 MiB). */
uint32_t a64_ldr_lit(unsigned xt, int32_t off);
uint32_t a64_br(unsigned xn);
uint32_t a64_blr(unsigned xn);
/* MOV Xd, Xm (ORR Xd, XZR, Xm); neither may be 31 (SP). */
uint32_t a64_mov_reg(unsigned xd, unsigned xm);

/*
 * Make [p, p + len) fetchable by this core: clean the data cache to the
 * point of unification, DSB ISH, invalidate the instruction cache to the
 * point of unification, DSB ISH, ISB (the CTR_EL0 line sizes; skipped
 * where CTR_EL0.IDC/DIC say the hardware needs none). This is the
 * architecture's rule for self-modifying code, followed by construction:
 * the emulator cannot show a stale line. Other cores then need a context
 * synchronization event (rw__arch_sync_cores: membarrier SYNC_CORE).
 */
void a64_flush(uintptr_t p, size_t len);

/*
 * Write generated code at @at (a slot of a pool page) through the text
 * writer (never W+X), then a64_flush. Does not sync other cores: code is
 * published by a patch batch (which syncs) before any thread can reach it.
 */
int a64_code_write(uintptr_t at, const void *code, size_t len);

/*
 * Pools of fixed-size slots of generated code in read-only executable
 * pages, each page wholly within B reach (+-128 MiB) of the sites that
 * branch to its slots. A slot is written while unused, then marked used;
 * freeing only marks it unused (callers free a slot only once no thread
 * can be in it). Declare `static struct a64_pool p = A64_POOL_INIT(32);`
 * (slot size a multiple of 16 dividing 4096). Every pool links itself
 * into a list on its first allocation, and rw__arch_stub_ranges() lists
 * the pages of every pool. Text lock held for all of it.
 */
#define A64_PAGE 4096u
#define A64_POOL_MAX_SLOTS (A64_PAGE / 16u)
struct a64_pool_page {
	uintptr_t base;
	uint8_t used[A64_POOL_MAX_SLOTS];
	unsigned nused;
	struct a64_pool_page *next;
};
struct a64_pool {
	size_t size;
	struct a64_pool_page *pages;
	struct a64_pool *next_pool;
	bool linked;
};
#define A64_POOL_INIT(sz)    \
	{                    \
		.size = (sz) \
	}

int a64_pool_alloc(struct a64_pool *pool, uintptr_t near, uintptr_t *slot);
void a64_pool_free(struct a64_pool *pool, uintptr_t slot);

#endif /* REWIRE_ARCH_A64_H */
