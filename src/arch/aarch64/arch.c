/* SPDX-License-Identifier: MIT */
/*
 * aarch64: instruction encodings, BRK emulation, cache maintenance, core
 * synchronization, static call slots and far stubs, and the pools of
 * generated code (a64.h) that the other files of the backend use.
 *
 * The rules followed, as the kernel's arm64 text patching follows them
 * (arch/arm64/kernel/patching.c, insn.c, jump_label.c):
 * - A site is one 4-byte instruction, written with one aligned 4-byte
 *   store (single-copy atomic), so a thread fetches the old or the new
 *   instruction, never a mix.
 * - The batch protocol of text_poke.c writes BRK first (the trap), then
 *   the new instruction: every step exchanges two instructions of the
 *   CMODX set (B, BL, NOP, BRK), or BRK and the final instruction, which
 *   the architecture allows while other cores execute the site.
 * - After each write: DC CVAU, DSB ISH, IC IVAU, DSB ISH, ISB over the
 *   written bytes (rw__arch_flush_icache, called by the text writer), then
 *   membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE): every other
 *   thread of the process executes a context synchronization event
 *   (exception return) before it runs user code again, so no core keeps
 *   a prefetched old instruction. Full-system emulation (TCG) never shows
 *   a stale instruction, so the tests cannot prove this part; it holds by
 *   construction.
 */
#include "a64.h"
#include "../patching/patching.h"
#include "../../text.h"
#include <rewire/static_call.h>
#include <rewire/threads.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* --- Encoders (a64.h) ---------------------------------------------------- */

bool a64_b_reach(uintptr_t pc, uintptr_t target)
{
	int64_t d = (int64_t)(target - pc);

	return !(d & 3) && d >= -A64_B_REACH && d < A64_B_REACH;
}

static uint32_t branch(uint32_t op, uintptr_t pc, uintptr_t target)
{
	int64_t d = (int64_t)(target - pc) >> 2;

	return op | ((uint32_t)d & 0x03ffffffu);
}

uint32_t a64_b(uintptr_t pc, uintptr_t target)
{
	return branch(0x14000000u, pc, target);
}

uint32_t a64_bl(uintptr_t pc, uintptr_t target)
{
	return branch(0x94000000u, pc, target);
}

bool a64_is_b(uint32_t insn)
{
	return (insn & 0xfc000000u) == 0x14000000u;
}

bool a64_is_bl(uint32_t insn)
{
	return (insn & 0xfc000000u) == 0x94000000u;
}

bool a64_is_brk(uint32_t insn)
{
	return (insn & 0xffe0001fu) == 0xd4200000u;
}

uintptr_t a64_branch_target(uint32_t insn, uintptr_t pc)
{
	/* Sign-extend imm26, then scale by 4. */
	int64_t imm = (int64_t)((uint64_t)(insn & 0x03ffffffu) << 38) >> 36;

	return pc + (uintptr_t)imm;
}

uint32_t a64_ldr_lit(unsigned xt, int32_t off)
{
	return 0x58000000u | (((uint32_t)(off >> 2) & 0x7ffffu) << 5) |
	       (xt & 31u);
}

uint32_t a64_br(unsigned xn)
{
	return 0xd61f0000u | (xn & 31u) << 5;
}

uint32_t a64_blr(unsigned xn)
{
	return 0xd63f0000u | (xn & 31u) << 5;
}

uint32_t a64_mov_reg(unsigned xd, unsigned xm)
{
	return 0xaa0003e0u | (xm & 31u) << 16 | (xd & 31u);
}

/*
 * libgcc's __aarch64_sync_cache_range, behind __builtin___clear_cache:
 * DC CVAU per data cache line (or DSB ISH alone when CTR_EL0.IDC says the
 * clean is not required), DSB ISH, IC IVAU per instruction cache line
 * (skipped when CTR_EL0.DIC), DSB ISH, ISB. EL0 may run these: Linux sets
 * SCTLR_EL1.UCI, or traps and emulates them (erratum workarounds).
 */
void a64_flush(uintptr_t p, size_t len)
{
	if (!len)
		return;
	__builtin___clear_cache((char *)p, (char *)(p + len));
}

void rw__arch_flush_icache(uintptr_t start, size_t len)
{
	a64_flush(start, len);
}

int a64_code_write(uintptr_t at, const void *code, size_t len)
{
	/* rw__text_write flushes (rw__arch_flush_icache) after writing. */
	return rw__text_write((void *)at, code, len);
}

/* --- Sites ---------------------------------------------------------------- */

bool rw__arch_can_patch(void)
{
	return true;
}

size_t rw__arch_trap_len(void)
{
	return 4;
}

void rw__arch_trap_insn(uint8_t *out)
{
	uint32_t brk = A64_BRK_RW;

	memcpy(out, &brk, 4);
}

bool rw__arch_is_trap(const uint8_t *b)
{
	uint32_t insn = *(volatile const uint32_t *)(const void *)b;

	return a64_is_brk(insn);
}

static void put32(uint8_t *out, uint32_t v)
{
	memcpy(out, &v, 4);
}

int rw__arch_encode(const struct rw__insn *insn, uintptr_t site, uint8_t *out)
{
	if (site & 3)
		return -EINVAL;
	switch (insn->op) {
	case RW_TEXT_NOP:
		put32(out, A64_NOP);
		return 4;
	case RW_TEXT_RET:
		put32(out, A64_RET);
		return 4;
	case RW_TEXT_JMP:
	case RW_TEXT_CALL:
		if (insn->target & 3)
			return -EINVAL;
		if (!a64_b_reach(site, insn->target))
			return -RW_ERR_OUT_OF_RANGE;
		put32(out, insn->op == RW_TEXT_JMP
				   ? a64_b(site, insn->target)
				   : a64_bl(site, insn->target));
		return 4;
	default:
		return -EINVAL;
	}
}

int rw__arch_decode(const uint8_t *b, size_t len, uintptr_t site,
		    struct rw__insn *out)
{
	uint32_t insn;

	if (site & 3)
		return -EINVAL; /* not where an instruction can be */
	if (len != 4)
		return -RW_ERR_BAD_INSN;
	memcpy(&insn, b, 4);
	out->len = 4;
	out->target = 0;
	if (insn == A64_NOP) {
		out->op = RW_TEXT_NOP;
		return 0;
	}
	if (insn == A64_RET) {
		out->op = RW_TEXT_RET;
		return 0;
	}
	if (a64_is_b(insn) || a64_is_bl(insn)) {
		out->op = a64_is_b(insn) ? RW_TEXT_JMP : RW_TEXT_CALL;
		out->target = a64_branch_target(insn, site);
		return 0;
	}
	return -RW_ERR_BAD_INSN;
}

/*
 * BRK in user mode: the kernel's brk_handler sends SIGTRAP with si_code
 * TRAP_BRKPT and si_addr at the BRK, and the saved pc still points at it.
 * kill()/tgkill() use SI_USER/SI_TKILL, single-step TRAP_TRACE, hardware
 * breakpoints TRAP_HWBKPT.
 */
bool rw__arch_trap_is_breakpoint(const siginfo_t *si)
{
	return si && si->si_signo == SIGTRAP && si->si_code == TRAP_BRKPT;
}

uintptr_t rw__arch_trap_addr(const void *ucv)
{
	const ucontext_t *uc = ucv;

	return (uintptr_t)uc->uc_mcontext.pc;
}

void rw__arch_set_ip(void *ucv, uintptr_t ip)
{
	ucontext_t *uc = ucv;

	uc->uc_mcontext.pc = ip;
}

uintptr_t rw__arch_ip(const void *ucv)
{
	const ucontext_t *uc = ucv;

	return (uintptr_t)uc->uc_mcontext.pc;
}

/* BL writes the link register (x30), RET (x30) reads it: no stack. */
void rw__arch_emulate(void *ucv, uintptr_t site, const struct rw__insn *insn)
{
	ucontext_t *uc = ucv;
	mcontext_t *m = &uc->uc_mcontext;

	switch (insn->op) {
	case RW_TEXT_NOP:
		m->pc = site + 4;
		break;
	case RW_TEXT_JMP:
		m->pc = insn->target;
		break;
	case RW_TEXT_CALL:
		m->regs[30] = site + 4;
		m->pc = insn->target;
		break;
	case RW_TEXT_RET:
		m->pc = m->regs[30];
		break;
	}
}

bool rw__arch_site_insn(uintptr_t site, struct rw__insn *out)
{
	uint32_t insn = *(volatile const uint32_t *)site;
	/* imm26, sign-extended, in instructions */
	int64_t off = (int64_t)((uint64_t)(insn & 0x03ffffffu) << 38) >> 36;

	out->len = 4;
	out->target = 0;
	if (insn == A64_NOP) {
		out->op = RW_TEXT_NOP;
		return true;
	}
	if ((insn & 0x7c000000u) != 0x14000000u) /* neither B nor BL */
		return false;
	out->op = insn & 0x80000000u ? RW_TEXT_CALL : RW_TEXT_JMP;
	out->target = site + (uintptr_t)off;
	return true;
}

void rw__arch_jump_insn(bool jump, uintptr_t site, uintptr_t target,
			struct rw__insn *out)
{
	(void)site;
	out->op = jump ? RW_TEXT_JMP : RW_TEXT_NOP;
	out->len = 4;
	out->target = jump ? target : 0;
}

/* --- Pools of generated code ------------------------------------------- */

static struct a64_pool *pools; /* text lock */

static bool page_reachable(uintptr_t near, uintptr_t base)
{
	return a64_b_reach(near, base) &&
	       a64_b_reach(near, base + A64_PAGE - 4);
}

/* A new read-only executable page within B reach of @near, or 0:
 * 1 MiB steps on both sides, nearest first, up to 120 MiB. */
static uintptr_t map_near(uintptr_t near)
{
	return rw__arch_map_near(near, A64_PAGE, 120ul << 20, page_reachable);
}

int a64_pool_alloc(struct a64_pool *pool, uintptr_t near, uintptr_t *slot)
{
	size_t per = A64_PAGE / pool->size;
	struct a64_pool_page *pg;

	if (!pool->size || pool->size % 16 || A64_PAGE % pool->size)
		return -EINVAL;
	for (pg = pool->pages; pg; pg = pg->next) {
		if (pg->nused == per || !page_reachable(near, pg->base))
			continue;
		for (size_t i = 0; i < per; i++) {
			if (!pg->used[i]) {
				pg->used[i] = 1;
				pg->nused++;
				*slot = pg->base + i * pool->size;
				return 0;
			}
		}
	}
	pg = calloc(1, sizeof(*pg));
	if (!pg)
		return -ENOMEM;
	pg->base = map_near(near);
	if (!pg->base) {
		free(pg);
		return -ENOMEM;
	}
	pg->next = pool->pages;
	pool->pages = pg;
	if (!pool->linked) {
		pool->linked = true;
		pool->next_pool = pools;
		pools = pool;
	}
	pg->used[0] = 1;
	pg->nused = 1;
	*slot = pg->base;
	return 0;
}

void a64_pool_free(struct a64_pool *pool, uintptr_t slot)
{
	for (struct a64_pool_page *pg = pool->pages; pg; pg = pg->next) {
		size_t i;

		if (slot < pg->base || slot >= pg->base + A64_PAGE)
			continue;
		i = (slot - pg->base) / pool->size;
		if (pg->used[i]) {
			pg->used[i] = 0;
			pg->nused--;
		}
		return;
	}
}

size_t rw__arch_stub_ranges(uintptr_t (*out)[2], size_t max)
{
	uintptr_t ts, te;
	size_t n = 0;

	for (struct a64_pool *p = pools; p; p = p->next_pool) {
		for (struct a64_pool_page *pg = p->pages; pg; pg = pg->next) {
			if (n < max) {
				out[n][0] = pg->base;
				out[n][1] = pg->base + A64_PAGE;
			}
			n++;
		}
	}
	rw__arch_trace_code(&ts, &te);
	if (ts != te) {
		if (n < max) {
			out[n][0] = ts;
			out[n][1] = te;
		}
		n++;
	}
	return n;
}

/* --- Static call trampolines --------------------------------------------
 * The layout (rewire/static_call.h):
 *	tramp + 0	BTI C			landing pad for indirect calls
 *	tramp + 4	B <target>		the slot
 *	tramp + 8	RET			NULL target
 *	tramp + 12	MOV X0, #0; RET		RET0 target
 * The slot is always a B: to the function when it is within +-128 MiB,
 * else to a far stub "LDR X16, #8; BR X16; .quad target" in a pool page
 * within reach (allocated once per target and region, never freed). X16
 * (IP0) is the register the AAPCS64 gives veneers; BR X16 lands on a
 * BTI C or PACIASP landing pad, which every function that can be called
 * indirectly in a BTI program begins with. Every update is then B -> B,
 * a CMODX pair: one store, no BRK needed (the batch writes BRK anyway).
 */
#define TRAMP_SLOT 4
#define TRAMP_RET 8
#define TRAMP_RET0 12

uintptr_t rw__arch_tramp_slot(uintptr_t tramp)
{
	return tramp + TRAMP_SLOT;
}

#define FAR_SIZE 16
static struct a64_pool far_pool = A64_POOL_INIT(FAR_SIZE);

struct far_stub {
	uintptr_t at, target;
	struct far_stub *next;
};
static struct far_stub *far_stubs; /* text lock */

static int far_stub_for(uintptr_t site, uintptr_t target, uintptr_t *stub)
{
	uint32_t code[4];
	struct far_stub *fs;
	uintptr_t at;
	int err;

	for (fs = far_stubs; fs; fs = fs->next) {
		if (fs->target == target && a64_b_reach(site, fs->at)) {
			*stub = fs->at;
			return 0;
		}
	}
	fs = malloc(sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	err = a64_pool_alloc(&far_pool, site, &at);
	if (err) {
		free(fs);
		return err;
	}
	code[0] = a64_ldr_lit(16, 8);
	code[1] = a64_br(16);
	memcpy(&code[2], &target, 8);
	err = a64_code_write(at, code, sizeof(code));
	if (err) {
		a64_pool_free(&far_pool, at);
		free(fs);
		return err;
	}
	fs->at = at;
	fs->target = target;
	fs->next = far_stubs;
	far_stubs = fs;
	*stub = at;
	rw__log("far stub %p -> %p", (void *)at, (void *)target);
	return 0;
}

int rw__arch_tramp_insn(uintptr_t tramp, void *func, struct rw__insn *out)
{
	uintptr_t slot = tramp + TRAMP_SLOT, target = (uintptr_t)func;
	int err;

	out->op = RW_TEXT_JMP;
	out->len = 4;
	if (!func)
		target = tramp + TRAMP_RET;
	else if (func == (void *)&rw_static_call_return0)
		target = tramp + TRAMP_RET0;
	if (!a64_b_reach(slot, target)) {
		err = far_stub_for(slot, target, &target);
		if (err)
			return err;
	}
	out->target = target;
	return 0;
}

/* --- Signal frames ------------------------------------------------------
 * The kernel's arm64 signal frame (arch/arm64/kernel/signal.c): struct
 * rt_sigframe { siginfo (128 bytes); ucontext } at a 16-byte aligned
 * address below the interrupted stack pointer (or on the alternate
 * stack), its records in uc_mcontext.__reserved beginning with the FP/SIMD
 * record (magic 0x46508001, 528 bytes), and a frame record {x29, x30}
 * above it. From the interrupted stack pointer upwards, the first 16-byte
 * aligned address that holds such a ucontext, whose saved stack pointer
 * lies above it and whose siginfo names a signal, is the frame of the
 * signal whose handler was interrupted. SIGTRAP frames (rewire's BRK
 * emulation, or a debugger's) are skipped but walked past, as on x86-64.
 */
#define OUTER_SCAN (64 * 1024)
#define SIGINFO_SIZE 128
#define FPSIMD_MAGIC_ 0x46508001u
#define FPSIMD_SIZE_ 528u

static bool plausible_uc(uintptr_t c, int *signo)
{
	uint32_t head[2];
	uint64_t osp;
	int sig;

	if (!rw__peek(c + offsetof(ucontext_t, uc_mcontext.__reserved), head,
		      sizeof(head)) ||
	    head[0] != FPSIMD_MAGIC_ || head[1] != FPSIMD_SIZE_)
		return false;
	if (!rw__peek(c + offsetof(ucontext_t, uc_mcontext.sp), &osp,
		      sizeof(osp)) ||
	    osp <= c)
		return false;
	if (!rw__peek(c - SIGINFO_SIZE, &sig, sizeof(sig)) || sig <= 0 ||
	    sig > 64)
		return false;
	*signo = sig;
	return true;
}

size_t rw__arch_outer_contexts(void *ucv, void **out, size_t max)
{
	ucontext_t *uc = ucv;
	uintptr_t sp = (uintptr_t)uc->uc_mcontext.sp;
	size_t n = 0;

	for (size_t frames = 0; n < max && frames < 2 * max; frames++) {
		uintptr_t start = (sp + 15) & ~(uintptr_t)15, found = 0;
		int signo = 0;

		for (uintptr_t c = start + SIGINFO_SIZE; c < start + OUTER_SCAN;
		     c += 16) {
			if (plausible_uc(c, &signo)) {
				found = c;
				break;
			}
		}
		if (!found)
			break;
		if (signo != SIGTRAP)
			out[n++] = (void *)found;
		sp = (uintptr_t)((ucontext_t *)found)->uc_mcontext.sp;
	}
	return n;
}

/* TLS variant I: the thread pointer (TPIDR_EL0) points at the TCB, and an
 * initial-exec variable is at a fixed offset from it in every thread. */
intptr_t rw__arch_tls_offset(const void *var)
{
	uintptr_t tp;

	__asm__("mrs %0, tpidr_el0" : "=r"(tp));
	return (intptr_t)((uintptr_t)var - tp);
}

/* Core synchronization (membarrier SYNC_CORE): src/arch/patching/sync.c. */
