/* SPDX-License-Identifier: MIT */
/*
 * x86-64: instruction encodings, int3 emulation, core serialization and
 * far-branch stubs.
 */
#include "../arch.h"
#include "../patching/patching.h"
#include "../../text.h"
#include <rewire/static_call.h>
#include <rewire/threads.h>

#include <cpuid.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

static const uint8_t nop5[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
#define OP_JMP32 0xe9
#define OP_CALL32 0xe8
#define OP_RET 0xc3
#define OP_INT3 0xcc

bool rw__arch_can_patch(void)
{
	return true;
}

size_t rw__arch_trap_len(void)
{
	return 1;
}

void rw__arch_trap_insn(uint8_t *out)
{
	out[0] = OP_INT3;
}

bool rw__arch_is_trap(const uint8_t *b)
{
	return *(volatile const uint8_t *)b == OP_INT3;
}

uintptr_t rw__arch_tramp_slot(uintptr_t tramp)
{
	return tramp;
}

/* Instruction caches are coherent with stores on x86-64: the cross-modify
 * rules ask only for the serializing instruction (the core sync). */
void rw__arch_flush_icache(uintptr_t start, size_t len)
{
	(void)start;
	(void)len;
}

static bool rel32_ok(uintptr_t from, uintptr_t to)
{
	int64_t d = (int64_t)(to - from);

	return d >= INT32_MIN && d <= INT32_MAX;
}

int rw__arch_encode(const struct rw__insn *insn, uintptr_t site, uint8_t *out)
{
	int32_t rel;

	switch (insn->op) {
	case RW_TEXT_NOP:
		memcpy(out, nop5, 5);
		return 5;
	case RW_TEXT_RET:
		out[0] = OP_RET;
		memset(out + 1, OP_INT3, 4);
		return 5;
	case RW_TEXT_JMP:
	case RW_TEXT_CALL:
		if (!rel32_ok(site + 5, insn->target))
			return -RW_ERR_OUT_OF_RANGE;
		rel = (int32_t)(int64_t)(insn->target - (site + 5));
		out[0] = insn->op == RW_TEXT_JMP ? OP_JMP32 : OP_CALL32;
		memcpy(out + 1, &rel, 4);
		return 5;
	default:
		return -EINVAL;
	}
}

int rw__arch_decode(const uint8_t *b, size_t len, uintptr_t site,
		    struct rw__insn *out)
{
	int32_t rel;

	if (len != 5)
		return -RW_ERR_BAD_INSN;
	out->len = 5;
	out->target = 0;
	if (!memcmp(b, nop5, 5)) {
		out->op = RW_TEXT_NOP;
		return 0;
	}
	if (b[0] == OP_RET && b[1] == OP_INT3 && b[2] == OP_INT3 &&
	    b[3] == OP_INT3 && b[4] == OP_INT3) {
		out->op = RW_TEXT_RET;
		return 0;
	}
	if (b[0] == OP_JMP32 || b[0] == OP_CALL32) {
		memcpy(&rel, b + 1, 4);
		out->op = b[0] == OP_JMP32 ? RW_TEXT_JMP : RW_TEXT_CALL;
		out->target = site + 5 + (uintptr_t)(intptr_t)rel;
		return 0;
	}
	return -RW_ERR_BAD_INSN;
}

bool rw__arch_trap_is_breakpoint(const siginfo_t *si)
{
	/* int3 in user mode is reported with si_code SI_KERNEL; signals sent
	 * with kill()/tgkill() and single-step traps have other codes. */
	return si && si->si_code == SI_KERNEL;
}

uintptr_t rw__arch_trap_addr(const void *ucv)
{
	const ucontext_t *uc = ucv;

	return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP] - 1;
}

void rw__arch_set_ip(void *ucv, uintptr_t ip)
{
	ucontext_t *uc = ucv;

	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)ip;
}

/*
 * CALL pushes onto the interrupted stack. The kernel put the signal frame
 * below the 128-byte red zone, and a call instruction itself writes at
 * rsp - 8, so nothing live is there.
 */
bool rw__arch_site_insn(uintptr_t site, struct rw__insn *out)
{
	/* Run again: the kernel's int3 protocol, and no machine or
	 * emulator seen to keep a stale int3 after the core sync. */
	(void)site;
	(void)out;
	return false;
}

void rw__arch_emulate(void *ucv, uintptr_t site, const struct rw__insn *insn)
{
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	uint64_t *sp;

	switch (insn->op) {
	case RW_TEXT_NOP:
		g[REG_RIP] = (greg_t)(site + insn->len);
		break;
	case RW_TEXT_JMP:
		g[REG_RIP] = (greg_t)insn->target;
		break;
	case RW_TEXT_CALL:
		sp = (uint64_t *)g[REG_RSP] - 1;
		*sp = site + insn->len;
		g[REG_RSP] = (greg_t)sp;
		g[REG_RIP] = (greg_t)insn->target;
		break;
	case RW_TEXT_RET:
		sp = (uint64_t *)g[REG_RSP];
		g[REG_RIP] = (greg_t)*sp;
		g[REG_RSP] = (greg_t)(sp + 1);
		break;
	}
}

void rw__arch_jump_insn(bool jump, uintptr_t site, uintptr_t target,
			struct rw__insn *out)
{
	(void)site;
	out->op = jump ? RW_TEXT_JMP : RW_TEXT_NOP;
	out->len = 5;
	out->target = jump ? target : 0;
}

/*
 * Far stubs: "jmp *0(%rip)" followed by the absolute target, 16 bytes each,
 * in read-only executable pages mapped within reach of the trampolines.
 * A stub is written once (through the text writer) before any jump to it
 * is published, and never changes or goes away, so no thread can ever
 * run a stub that is being written or freed.
 *
 * stub_pages is protected by the text lock.
 */
#define STUB_SIZE 16
#define STUB_PAGE 4096
#define STUBS_PER_PAGE (STUB_PAGE / STUB_SIZE)
struct stub_page {
	uintptr_t base;
	unsigned used;
	uintptr_t targets[STUBS_PER_PAGE];
	struct stub_page *next;
};
static struct stub_page *stub_pages;

static bool stub_reachable(uintptr_t from_site, uintptr_t stub)
{
	return rel32_ok(from_site + 5, stub) &&
	       rel32_ok(from_site + 5, stub + STUB_PAGE);
}

/* A new read-only executable page within rel32 reach of @site, or 0:
 * 1 MiB steps on both sides, nearest first, up to ~1.9 GiB. */
static uintptr_t map_near(uintptr_t site)
{
	return rw__arch_map_near(site, STUB_PAGE, 1900ul << 20, stub_reachable);
}

static struct stub_page *stub_page_new(uintptr_t site)
{
	struct stub_page *sp = calloc(1, sizeof(*sp));

	if (!sp)
		return NULL;
	sp->base = map_near(site);
	if (!sp->base) {
		free(sp);
		return NULL;
	}
	sp->next = stub_pages;
	stub_pages = sp;
	return sp;
}

static int stub_for(uintptr_t site, uintptr_t target, uintptr_t *stub)
{
	uint8_t code[STUB_SIZE] = { 0xff, 0x25, 0, 0, 0, 0 };
	struct stub_page *sp;
	uintptr_t addr;
	int err;

	for (sp = stub_pages; sp; sp = sp->next) {
		if (!stub_reachable(site, sp->base))
			continue;
		for (unsigned i = 0; i < sp->used; i++) {
			if (sp->targets[i] == target) {
				*stub = sp->base + i * STUB_SIZE;
				return 0;
			}
		}
	}
	for (sp = stub_pages; sp; sp = sp->next)
		if (sp->used < STUBS_PER_PAGE && stub_reachable(site, sp->base))
			break;
	if (!sp)
		sp = stub_page_new(site);
	if (!sp)
		return -ENOMEM;
	addr = sp->base + sp->used * STUB_SIZE;
	memcpy(code + 6, &target, 8);
	memset(code + 14, OP_INT3, 2);
	err = rw__text_write((void *)addr, code, sizeof(code));
	if (err)
		return err;
	sp->targets[sp->used++] = target;
	*stub = addr;
	rw__log("far stub %p -> %p", (void *)addr, (void *)target);
	return 0;
}

/* Trampoline layout (see rewire/static_call.h): slot, xor+ret, padding. */
#define TRAMP_RET0_OFFSET 5

int rw__arch_tramp_insn(uintptr_t tramp, void *func, struct rw__insn *out)
{
	uintptr_t target = (uintptr_t)func;
	int err;

	out->len = 5;
	out->target = 0;
	if (!func) {
		out->op = RW_TEXT_RET;
		return 0;
	}
	out->op = RW_TEXT_JMP;
	if (func == (void *)&rw_static_call_return0)
		target = tramp + TRAMP_RET0_OFFSET;
	if (!rel32_ok(tramp + 5, target)) {
		err = stub_for(tramp, target, &target);
		if (err)
			return err;
	}
	out->target = target;
	return 0;
}

/*
 * Bound stubs (tracepoints, DESIGN.md 7): "movabs $data, %rdi" then a jump
 * to the probe, 32 bytes each, in read-only executable pages within reach
 * of the trampolines that jump to them:
 *
 *	48 bf <data:8>		movabs $data, %rdi
 *	e9 <rel32>		jmp probe		(probe within reach)
 *	ff 25 00000000 <probe:8>	jmp *0(%rip)	(otherwise)
 *	cc ...			padding
 *
 * A stub is written before any jump to it is published and is immutable
 * while in use. The caller frees it only after a grace period that began
 * once no trampoline jumped to it any more, so rewriting a freed slot for
 * a new binding never races with a thread running the old one; the batch
 * that publishes the new slot syncs every core before any thread can reach
 * it.
 *
 * bound_pool is protected by the text lock.
 */
#define BOUND_SIZE 32

/*
 * Pages of fixed-size slots of generated code (bound stubs, dispatchers),
 * each page within rel32 reach of the sites that jump to its slots. A slot
 * is written while unused, then marked used; freeing only marks it unused
 * (the callers free a slot only once no thread can be in it). Text lock.
 */
#define POOL_MAX_SLOTS (STUB_PAGE / BOUND_SIZE)
struct slot_page {
	uintptr_t base;
	uint8_t used[POOL_MAX_SLOTS];
	unsigned nused;
	struct slot_page *next;
};
struct slot_pool {
	size_t size; /* slot size, a divisor of STUB_PAGE, >= BOUND_SIZE */
	struct slot_page *pages;
};

/* A free slot within reach of @near (a new page if needed), or 0. */
static uintptr_t pool_find(struct slot_pool *pool, uintptr_t near,
			   struct slot_page **page)
{
	unsigned per_page = (unsigned)(STUB_PAGE / pool->size), i = 0;
	struct slot_page *sp;

	for (sp = pool->pages; sp; sp = sp->next)
		if (sp->nused < per_page && stub_reachable(near, sp->base))
			break;
	if (!sp) {
		sp = calloc(1, sizeof(*sp));
		if (!sp)
			return 0;
		sp->base = map_near(near);
		if (!sp->base) {
			free(sp);
			return 0;
		}
		sp->next = pool->pages;
		pool->pages = sp;
	}
	while (sp->used[i])
		i++;
	*page = sp;
	return sp->base + i * pool->size;
}

/* Write @code (pool->size bytes) into the free slot @at and take it. */
static int pool_fill(struct slot_pool *pool, struct slot_page *sp, uintptr_t at,
		     const uint8_t *code)
{
	int err = rw__text_write((void *)at, code, pool->size);

	if (err)
		return err;
	sp->used[(at - sp->base) / pool->size] = 1;
	sp->nused++;
	return 0;
}

static void pool_put(struct slot_pool *pool, uintptr_t at)
{
	for (struct slot_page *sp = pool->pages; sp; sp = sp->next) {
		if (at < sp->base || at >= sp->base + STUB_PAGE)
			continue;
		size_t i = (at - sp->base) / pool->size;

		if (sp->used[i]) {
			sp->used[i] = 0;
			sp->nused--;
		}
		return;
	}
}

static struct slot_pool bound_pool = { .size = BOUND_SIZE };

static void bound_encode(uintptr_t at, uintptr_t func, uintptr_t data,
			 uint8_t code[BOUND_SIZE])
{
	memset(code, OP_INT3, BOUND_SIZE);
	code[0] = 0x48;
	code[1] = 0xbf;
	memcpy(code + 2, &data, 8);
	if (rel32_ok(at + 15, func)) {
		int32_t rel = (int32_t)(int64_t)(func - (at + 15));

		code[10] = OP_JMP32;
		memcpy(code + 11, &rel, 4);
	} else {
		code[10] = 0xff;
		code[11] = 0x25;
		memset(code + 12, 0, 4);
		memcpy(code + 16, &func, 8);
	}
}

int rw__arch_bound_stub_alloc(uintptr_t near, void *func, void *data,
			      void **stub)
{
	uint8_t code[BOUND_SIZE];
	struct slot_page *sp;
	uintptr_t at = pool_find(&bound_pool, near, &sp);
	int err;

	if (!at)
		return -ENOMEM;
	bound_encode(at, (uintptr_t)func, (uintptr_t)data, code);
	err = pool_fill(&bound_pool, sp, at, code);
	if (err)
		return err;
	*stub = (void *)at;
	rw__log("bound stub %p: %p(%p)", (void *)at, func, data);
	return 0;
}

void rw__arch_bound_stub_free(void *stub)
{
	pool_put(&bound_pool, (uintptr_t)stub);
}

/*
 * Live patching dispatchers, one 256-byte slot each:
 *
 *	again:	mov   %fs:OFF, %r11d		64 44 8b 1c 25 <OFF>
 *		test  %r11d, %r11d		45 85 db
 *		js    slow			0f 88 <rel32>
 *		cmp   $gen_i, %r11d		41 81 fb <gen_i>     } per arm
 *		je    thunk_i			0f 84 <rel32>        }
 *		jmp   *dflt(%rip)		ff 25 <rel32>
 *	slow:	lock btrl $31, %fs:OFF		64 f0 0f ba 34 25 <OFF> 1f
 *		jmp   again			e9 <rel32>
 *	thunk_i: jmp  *target_i(%rip)		ff 25 <rel32>
 *		int3 padding, then the 8-byte targets
 *
 * Targets are reached through absolute addresses: a patch object is
 * usually farther than 2 GiB from the program it patches. The slow path
 * serves the outside check of a blocked thread (core.c): the checker sets
 * bit 31 of the thread's generation, and a thread that runs a dispatcher
 * meanwhile clears it, which tells the checker the thread moved.
 */
#define DISPATCH_SIZE RW__ARCH_DISPATCH_SIZE
static struct slot_pool dispatch_pool = { .size = DISPATCH_SIZE };

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put_rel32(uint8_t *code, size_t at_end, size_t to)
{
	put32(code + at_end - 4,
	      (uint32_t)(int32_t)((int64_t)to - (int64_t)at_end));
}

static void dispatch_encode(int32_t off, const struct rw__arch_arm *arms,
			    size_t narms, uintptr_t dflt,
			    uint8_t code[DISPATCH_SIZE])
{
	size_t at = 0, js_end, je_end[RW__ARCH_DISPATCH_ARMS], dflt_at, slow,
	       thunk[RW__ARCH_DISPATCH_ARMS],
	       tab = DISPATCH_SIZE - 8 * (narms + 1);

	memset(code, OP_INT3, DISPATCH_SIZE);
	/* mov %fs:OFF, %r11d */
	memcpy(code + at, "\x64\x44\x8b\x1c\x25", 5);
	put32(code + at + 5, (uint32_t)off);
	at += 9;
	memcpy(code + at, "\x45\x85\xdb", 3); /* test %r11d, %r11d */
	at += 3;
	memcpy(code + at, "\x0f\x88", 2); /* js slow */
	at += 6;
	js_end = at;
	for (size_t i = 0; i < narms; i++) {
		memcpy(code + at, "\x41\x81\xfb", 3); /* cmp $gen, %r11d */
		put32(code + at + 3, arms[i].gen);
		at += 7;
		memcpy(code + at, "\x0f\x84", 2); /* je thunk_i */
		at += 6;
		je_end[i] = at;
	}
	dflt_at = at; /* jmp *tab[narms](%rip) */
	memcpy(code + at, "\xff\x25", 2);
	at += 6;
	put_rel32(code, at, tab + 8 * narms);
	slow = at; /* lock btrl $31, %fs:OFF */
	memcpy(code + at, "\x64\xf0\x0f\xba\x34\x25", 6);
	put32(code + at + 6, (uint32_t)off);
	code[at + 10] = 0x1f;
	at += 11;
	code[at] = OP_JMP32; /* jmp again */
	at += 5;
	put_rel32(code, at, 0);
	put_rel32(code, js_end, slow);
	for (size_t i = 0; i < narms; i++) {
		thunk[i] = at;
		memcpy(code + at, "\xff\x25", 2);
		at += 6;
		put_rel32(code, at, tab + 8 * i);
		put_rel32(code, je_end[i], thunk[i]);
	}
	(void)dflt_at;
	for (size_t i = 0; i < narms; i++)
		memcpy(code + tab + 8 * i, &arms[i].target, 8);
	memcpy(code + tab + 8 * narms, &dflt, 8);
}

int rw__arch_dispatch_alloc(uintptr_t near, int32_t tls_off,
			    const struct rw__arch_arm *arms, size_t narms,
			    uintptr_t dflt, void **stub)
{
	uint8_t code[DISPATCH_SIZE];
	struct slot_page *sp;
	uintptr_t at;
	int err;

	*stub = NULL;
	if (narms > RW__ARCH_DISPATCH_ARMS)
		return -E2BIG;
	at = pool_find(&dispatch_pool, near, &sp);
	if (!at)
		return -ENOMEM;
	dispatch_encode(tls_off, arms, narms, dflt, code);
	err = pool_fill(&dispatch_pool, sp, at, code);
	if (err)
		return err;
	*stub = (void *)at;
	rw__log("dispatcher %p: %zu arms, default %p", (void *)at, narms,
		(void *)dflt);
	return 0;
}

void rw__arch_dispatch_free(void *stub)
{
	pool_put(&dispatch_pool, (uintptr_t)stub);
}

/*
 * Function tracing (src/entry.c). A trampoline, one 32-byte slot per
 * traced function:
 *
 *	movabs $rec, %r11		49 bb <rec>
 *	jmp    *caller(%rip)		ff 25 00 00 00 00
 *	caller:	.quad rw__trace_caller
 *
 * %r11 is free at a function entry (neither an argument nor preserved).
 * rw__trace_caller keeps the stack as a function entry left it, so the
 * traced function's frame will be exactly where its caller expects:
 *
 *	sub  $200, %rsp		(%rsp was 8 mod 16: now 0 mod 16)
 *	save %xmm0-7, %rdi, %rsi, %rdx, %rcx, %r8, %r9, %rax, %r10, %r11
 *	call *enter(rec->data, &return address)
 *	restore, %r11 = rec->cont (read after the call)
 *	add  $200, %rsp
 *	jmp  *%r11
 *
 * %rax carries the number of vector registers of a variadic call, %r10 a
 * nested function's static chain. The vector registers are saved with
 * unaligned moves: hand-written code may call with a misaligned stack.
 * The return trampoline keeps its saves below the slot the return came
 * through, which still holds the trampoline's address until ret() has
 * taken the shadow element: a signal handler that runs a traced call in
 * between (on an alternate stack) must see the element as live. rw__trace_return is where a hijacked
 * return goes: %rsp is 0 mod 16 there; it saves %rax, %rdx, %xmm0 and
 * %xmm1 (the return registers), calls ret(%rsp) and jumps to its answer.
 * Its CFI says the return address is undefined: an unwinder that reaches
 * it stops there instead of following a wrong address (rewire puts the
 * real addresses back before the unwinders it knows run).
 */
void (*rw__trace_enter_fn)(void *data, uintptr_t *slot)
	__attribute__((visibility("hidden")));
uintptr_t (*rw__trace_ret_fn)(uintptr_t sp)
	__attribute__((visibility("hidden")));
void rw__trace_caller(void) __attribute__((visibility("hidden")));
void rw__trace_return(void) __attribute__((visibility("hidden")));
void rw__trace_code_end(void) __attribute__((visibility("hidden")));

__asm__(".text\n"
	".p2align 4\n"
	".type rw__trace_caller, @function\n"
	"rw__trace_caller:\n"
	".cfi_startproc\n"
	"	subq $200, %rsp\n"
	".cfi_adjust_cfa_offset 200\n"
	"	movups %xmm0, 0(%rsp)\n"
	"	movups %xmm1, 16(%rsp)\n"
	"	movups %xmm2, 32(%rsp)\n"
	"	movups %xmm3, 48(%rsp)\n"
	"	movups %xmm4, 64(%rsp)\n"
	"	movups %xmm5, 80(%rsp)\n"
	"	movups %xmm6, 96(%rsp)\n"
	"	movups %xmm7, 112(%rsp)\n"
	"	movq %rdi, 128(%rsp)\n"
	"	movq %rsi, 136(%rsp)\n"
	"	movq %rdx, 144(%rsp)\n"
	"	movq %rcx, 152(%rsp)\n"
	"	movq %r8, 160(%rsp)\n"
	"	movq %r9, 168(%rsp)\n"
	"	movq %rax, 176(%rsp)\n"
	"	movq %r10, 184(%rsp)\n"
	"	movq %r11, 192(%rsp)\n"
	"	movq 0(%r11), %rdi\n"
	"	leaq 200(%rsp), %rsi\n"
	"	call *rw__trace_enter_fn(%rip)\n"
	"	movq 192(%rsp), %r11\n"
	"	movq 8(%r11), %r11\n"
	"	movups 0(%rsp), %xmm0\n"
	"	movups 16(%rsp), %xmm1\n"
	"	movups 32(%rsp), %xmm2\n"
	"	movups 48(%rsp), %xmm3\n"
	"	movups 64(%rsp), %xmm4\n"
	"	movups 80(%rsp), %xmm5\n"
	"	movups 96(%rsp), %xmm6\n"
	"	movups 112(%rsp), %xmm7\n"
	"	movq 128(%rsp), %rdi\n"
	"	movq 136(%rsp), %rsi\n"
	"	movq 144(%rsp), %rdx\n"
	"	movq 152(%rsp), %rcx\n"
	"	movq 160(%rsp), %r8\n"
	"	movq 168(%rsp), %r9\n"
	"	movq 176(%rsp), %rax\n"
	"	movq 184(%rsp), %r10\n"
	"	addq $200, %rsp\n"
	".cfi_adjust_cfa_offset -200\n"
	"	jmp *%r11\n"
	".cfi_endproc\n"
	".size rw__trace_caller, .-rw__trace_caller\n"
	".p2align 4\n"
	".cfi_startproc\n"
	".cfi_undefined rip\n"
	"	nop\n"
	".type rw__trace_return, @function\n"
	"rw__trace_return:\n"
	"	subq $64, %rsp\n"
	".cfi_adjust_cfa_offset 64\n"
	"	movups %xmm0, 0(%rsp)\n"
	"	movups %xmm1, 16(%rsp)\n"
	"	movq %rax, 32(%rsp)\n"
	"	movq %rdx, 40(%rsp)\n"
	"	leaq 64(%rsp), %rdi\n"
	"	call *rw__trace_ret_fn(%rip)\n"
	"	movq %rax, %r11\n"
	"	movups 0(%rsp), %xmm0\n"
	"	movups 16(%rsp), %xmm1\n"
	"	movq 32(%rsp), %rax\n"
	"	movq 40(%rsp), %rdx\n"
	"	addq $64, %rsp\n"
	".cfi_adjust_cfa_offset -64\n"
	"	jmp *%r11\n"
	".cfi_endproc\n"
	".size rw__trace_return, .-rw__trace_return\n"
	".type rw__trace_code_end, @function\n"
	"rw__trace_code_end:\n"
	"	int3\n"
	".size rw__trace_code_end, .-rw__trace_code_end\n");

#define TRACE_TRAMP_SIZE 32
static struct slot_pool trace_pool = { .size = TRACE_TRAMP_SIZE };

int rw__arch_trace_tramp_alloc(uintptr_t near, void *rec, void **tramp)
{
	uint8_t code[TRACE_TRAMP_SIZE];
	uintptr_t caller = (uintptr_t)rw__trace_caller;
	struct slot_page *sp;
	uintptr_t at = pool_find(&trace_pool, near, &sp);
	int err;

	if (!at)
		return -ENOMEM;
	memset(code, OP_INT3, sizeof(code));
	code[0] = 0x49;
	code[1] = 0xbb;
	memcpy(code + 2, &rec, 8);
	code[10] = 0xff;
	code[11] = 0x25;
	memset(code + 12, 0, 4);
	memcpy(code + 16, &caller, 8);
	err = pool_fill(&trace_pool, sp, at, code);
	if (err)
		return err;
	*tramp = (void *)at;
	return 0;
}

void rw__arch_trace_set(void (*enter)(void *data, uintptr_t *slot),
			uintptr_t (*ret)(uintptr_t sp))
{
	__atomic_store_n(&rw__trace_enter_fn, enter, __ATOMIC_RELEASE);
	__atomic_store_n(&rw__trace_ret_fn, ret, __ATOMIC_RELEASE);
}

uintptr_t rw__arch_trace_return_addr(void)
{
	return (uintptr_t)rw__trace_return;
}

void rw__arch_trace_code(uintptr_t *start, uintptr_t *end)
{
	*start = (uintptr_t)rw__trace_caller;
	*end = (uintptr_t)rw__trace_code_end;
}

/* Natively a thread moves on from a dispatcher's first instruction
 * (arch.h): not used here. */
size_t rw__arch_dispatch_pages(uintptr_t *out, size_t max)
{
	(void)out;
	(void)max;
	return 0;
}

size_t rw__arch_stub_ranges(uintptr_t (*out)[2], size_t max)
{
	size_t n = 0;

#define RW__ADD_PAGE(b)                              \
	do {                                         \
		if (n < max) {                       \
			out[n][0] = (b);             \
			out[n][1] = (b) + STUB_PAGE; \
		}                                    \
		n++;                                 \
	} while (0)
	for (struct stub_page *sp = stub_pages; sp; sp = sp->next)
		RW__ADD_PAGE(sp->base);
	for (struct slot_page *bp = bound_pool.pages; bp; bp = bp->next)
		RW__ADD_PAGE(bp->base);
	for (struct slot_page *dp = dispatch_pool.pages; dp; dp = dp->next)
		RW__ADD_PAGE(dp->base);
	for (struct slot_page *tp = trace_pool.pages; tp; tp = tp->next)
		RW__ADD_PAGE(tp->base);
	if (n < max) {
		out[n][0] = (uintptr_t)rw__trace_caller;
		out[n][1] = (uintptr_t)rw__trace_code_end;
	}
	n++;
#undef RW__ADD_PAGE
	return n;
}

/*
 * A signal frame on x86-64 (the kernel's struct rt_sigframe): the
 * restorer's address, where the handler returns, then the ucontext. From
 * the interrupted stack pointer upwards, the first word equal to the
 * restorer whose ucontext is plausible (its saved stack pointer above it)
 * is the frame of the signal whose handler was interrupted. The kernel's
 * siginfo follows the kernel's ucontext (304 bytes: flags, link, stack,
 * sigcontext, mask): a SIGTRAP frame is rewire's int3 emulation (or a
 * debugger's), whose handler goes by the trap address itself: it is not
 * returned, but the walk goes on past it.
 */
#define OUTER_SCAN (64 * 1024)
#define KERNEL_UCONTEXT_SIZE 304
size_t rw__arch_outer_contexts(void *ucv, void **out, size_t max)
{
	ucontext_t *uc = ucv;
	uintptr_t restorer, sp;
	size_t n = 0;

	if (!rw__peek((uintptr_t)uc - 8, &restorer, 8) || !restorer)
		return 0;
	sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
	for (size_t frames = 0; n < max && frames < 2 * max; frames++) {
		int signo = 0;
		uintptr_t chunk[64], found = 0;

		for (uintptr_t at = sp & ~(uintptr_t)7;
		     !found && at < (sp & ~(uintptr_t)7) + OUTER_SCAN;
		     at += sizeof(chunk)) {
			if (!rw__peek(at, chunk, sizeof(chunk)))
				break;
			for (size_t i = 0; i < 64; i++) {
				ucontext_t *c;
				greg_t osp;

				if (chunk[i] != restorer)
					continue;
				c = (ucontext_t *)(at + i * 8 + 8);
				if (!rw__peek((uintptr_t)&c->uc_mcontext
						      .gregs[REG_RSP],
					      &osp, sizeof(osp)) ||
				    (uintptr_t)osp <= (uintptr_t)c)
					continue;
				found = (uintptr_t)c;
				break;
			}
		}
		if (!found)
			break;
		if (rw__peek(found + KERNEL_UCONTEXT_SIZE, &signo,
			     sizeof(signo)) &&
		    signo != SIGTRAP)
			out[n++] = (void *)found;
		sp = (uintptr_t)((ucontext_t *)found)
			     ->uc_mcontext.gregs[REG_RSP];
	}
	return n;
}

uintptr_t rw__arch_ip(const void *ucv)
{
	const ucontext_t *uc = ucv;

	return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
}

intptr_t rw__arch_tls_offset(const void *var)
{
	uintptr_t tp;

	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return (intptr_t)((uintptr_t)var - tp);
}

/* Core serialization: src/arch/patching/sync.c. */

/* --- Time-stamp counter ----------------------------------------------------
 * Probed once (pthread_once): CPUID, then /proc/cpuinfo's flags, which the
 * kernel sets from CPUID too but also on hypervisors that hide the leaf
 * (the guest kernel knows the TSC is stable from the paravirtual clock).
 */
static bool tsc_inv;
static uint64_t tsc_freq;
static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;

/* Whether the space-separated @line names @word. */
static bool has_word(const char *line, const char *word)
{
	size_t n = strlen(word);

	for (const char *w = line; (w = strstr(w, word)) != NULL; w += n)
		if ((w == line || w[-1] == ' ' || w[-1] == '\t') &&
		    (w[n] == ' ' || w[n] == '\n' || w[n] == '\0'))
			return true;
	return false;
}

/* Whether /proc/cpuinfo's first "flags" line names @a and @b. */
static bool cpuinfo_flags(const char *a, const char *b)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[8192];
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) == 0) {
			found = has_word(line, a) && has_word(line, b);
			break;
		}
	}
	fclose(f);
	return found;
}

static void tsc_probe(void)
{
	unsigned a, b, c, d, max;

	max = __get_cpuid_max(0x80000000u, NULL);
	if (max >= 0x80000007u && __get_cpuid(0x80000007u, &a, &b, &c, &d))
		tsc_inv = (d >> 8) & 1;
	if (!tsc_inv)
		tsc_inv = cpuinfo_flags("constant_tsc", "nonstop_tsc");
	/* Leaf 0x15: TSC = crystal (ecx Hz) * ebx / eax. */
	if (__get_cpuid_max(0, NULL) >= 0x15 &&
	    __get_cpuid(0x15, &a, &b, &c, &d) && a && b && c)
		tsc_freq = (uint64_t)c * b / a;
	/* A hypervisor's timing leaf (CPUID.1:ECX bit 31 says there is
	 * one): eax is the TSC's frequency in kHz. */
	if (!tsc_freq && __get_cpuid(1, &a, &b, &c, &d) && (c >> 31) & 1) {
		__cpuid(0x40000000u, max, b, c, d);
		if (max >= 0x40000010u && max < 0x40010000u) {
			__cpuid(0x40000010u, a, b, c, d);
			tsc_freq = (uint64_t)a * 1000;
		}
	}
}

bool rw__arch_tsc_present(void)
{
	return true;
}

bool rw__arch_tsc_invariant(void)
{
	pthread_once(&tsc_once, tsc_probe);
	return tsc_inv;
}

uint64_t rw__arch_tsc_hz(void)
{
	pthread_once(&tsc_once, tsc_probe);
	return tsc_freq;
}
