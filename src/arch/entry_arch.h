/* SPDX-License-Identifier: MIT */
/*
 * Private: the layout of a patchable function entry, per architecture
 * (src/entry.c, src/ftrace.c). The layout is a property of the code the
 * compiler emits for the machine, not of the backend: the generic backend
 * on x86-64 lists the same entries (and cannot patch them).
 *
 *			x86-64			aarch64
 *	flag		-fpatchable-function-	-fpatchable-function-
 *			entry=5			entry=2
 *	landing pad	endbr64 (f3 0f 1e fa)	BTI C / BTI JC
 *	entry (sled)	5 one-byte NOPs, or	NOP; NOP
 *			one 5-byte NOP
 *	patched site	the whole sled (5)	the first NOP (4)
 *	traced		jmp trampoline		B trampoline
 *	live patched	jmp T			B T
 *	continuation	sled + 5		sled + 8
 *
 * aarch64: only the first instruction ever changes, NOP <-> B, one of the
 * pairs the architecture allows to be swapped while other cores execute
 * them (CMODX: B, BL, NOP, BRK). A B keeps the link register, so the
 * trampoline finds the caller's return address in X30 as x86-64 finds it
 * on the stack, and the second NOP is never written: a thread that ran
 * the first one before it became a B just goes on untraced (there is no
 * run of NOPs to be in the middle of, unlike x86's one-byte NOPs). The
 * kernel's arm64 ftrace writes MOV X9, X30 then BL instead because its
 * trampoline is shared and learns the function from the BL; rewire's
 * trampolines are per function. Programs built with -mbranch-protection
 * have BTI C first (GCC puts the NOPs after it) and PACIASP after them:
 * the return address is signed after the trampoline ran, so a return the
 * trampoline redirected is signed as it is.
 *
 * RW__ENTRY_GRAPH: whether graph tracing (return hijacking, src/ftrace.c)
 * is available: x86-64 and aarch64 (src/arch/aarch64/trace.c: how).
 *
 * RW__ENTRY_KEY(slot): the key of a traced call's frame in the shadow
 * stacks (src/ftrace.c), from the slot the entry trampoline gives the
 * tracer: the address just below the stack pointer the function returns
 * with (its CFA - 8). On x86-64 that is the slot itself (the return
 * address the call pushed); on aarch64 the slot is a word of the
 * trampoline's frame (src/arch/aarch64/trace.c: 240 bytes below the entry
 * SP, X30 at +8), and the key is entry SP - 8, a name for the frame that
 * is never read or written. The return trampoline computes the same key
 * from the SP after the return (sp - 8), as live patching's stack checks
 * do (rw__entry_real_return()).
 */
#ifndef REWIRE_ENTRY_ARCH_H
#define REWIRE_ENTRY_ARCH_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)

#define RW__ENTRY_LEN 5	      /* bytes of the entry's NOPs */
#define RW__ENTRY_SITE_LEN 5  /* bytes of the patched instruction */
#define RW__ENTRY_PAD_MAX 4   /* the landing pad before the NOPs */
#define RW__ENTRY_TRAP_STEP 1 /* a breakpoint may sit on every byte */
#define RW__ENTRY_DESC "five NOPs"
#define RW__ENTRY_GRAPH 1 /* graph tracing (return hijacking) works */
#define RW__ENTRY_KEY(slot) ((uintptr_t)(slot))

/* Where the NOPs of the function at @func are: after an endbr64. */
static inline uintptr_t rw__entry_sled_of(uintptr_t func)
{
	const uint8_t *b = (const uint8_t *)func;

	return b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa
		       ? func + 4
		       : func;
}

/* Five one-byte NOPs as GCC emits them, or one five-byte NOP as
 * rewire-entries writes. */
static inline bool rw__entry_nops(const uint8_t *b)
{
	static const uint8_t nop5[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };

	if (memcmp(b, nop5, 5) == 0)
		return true;
	for (int i = 0; i < 5; i++)
		if (b[i] != 0x90)
			return false;
	return true;
}

/* Does the original entry @orig consist of instructions a thread can be
 * between (one-byte NOPs)? Then a batch that writes a jump over it moves
 * such threads to its end (src/entry.c). */
static inline bool rw__entry_nop_run(const uint8_t *orig)
{
	return orig[0] == 0x90;
}

/* A breakpoint instruction (int3) begins at @b. */
static inline bool rw__entry_trap_at(const uint8_t *b)
{
	return b[0] == 0xcc;
}

/* The entry's patched site holds a jump (ours or another tool's). */
static inline bool rw__entry_jump_at(const uint8_t *b)
{
	return b[0] == 0xe9;
}

#elif defined(__aarch64__)

#define RW__ENTRY_LEN 8
#define RW__ENTRY_SITE_LEN 4
#define RW__ENTRY_PAD_MAX 4
#define RW__ENTRY_TRAP_STEP 4
#define RW__ENTRY_DESC "two NOPs"
/* The shadow stacks key a frame by its entry SP (its CFA), and find
 * where its return address was saved by unwinding when they must write
 * it back (src/arch/aarch64/trace.c, src/ftrace.c). */
#define RW__ENTRY_GRAPH 1
/* &frame.x30 in rw__trace_caller's 240-byte frame: entry SP - 232. */
#define RW__ENTRY_KEY(slot) ((uintptr_t)(slot) + 224)

static inline uint32_t rw__entry_word(const uint8_t *b)
{
	uint32_t w;

	memcpy(&w, b, 4);
	return w;
}

/* After BTI C or BTI JC (hint #34, #38); BTI J is not a function's. */
static inline uintptr_t rw__entry_sled_of(uintptr_t func)
{
	uint32_t w = rw__entry_word((const uint8_t *)func);

	return w == 0xd503245fu || w == 0xd50324dfu ? func + 4 : func;
}

static inline bool rw__entry_nops(const uint8_t *b)
{
	return rw__entry_word(b) == 0xd503201fu &&
	       rw__entry_word(b + 4) == 0xd503201fu;
}

static inline bool rw__entry_nop_run(const uint8_t *orig)
{
	(void)orig;
	return false;
}

/* Any BRK: rewire's trap, a debugger's or a uprobe's breakpoint. */
static inline bool rw__entry_trap_at(const uint8_t *b)
{
	return (rw__entry_word(b) & 0xffe0001fu) == 0xd4200000u;
}

/* B imm26. */
static inline bool rw__entry_jump_at(const uint8_t *b)
{
	return (rw__entry_word(b) & 0xfc000000u) == 0x14000000u;
}

#else

/* Another machine (the generic backend): no entry is patchable. */
#define RW__ENTRY_LEN 8
#define RW__ENTRY_SITE_LEN 8
#define RW__ENTRY_PAD_MAX 0
#define RW__ENTRY_TRAP_STEP 8
#define RW__ENTRY_DESC "patchable NOPs"
#define RW__ENTRY_GRAPH 0
#define RW__ENTRY_KEY(slot) ((uintptr_t)(slot))

static inline uintptr_t rw__entry_sled_of(uintptr_t func)
{
	return func;
}

static inline bool rw__entry_nops(const uint8_t *b)
{
	(void)b;
	return false;
}

static inline bool rw__entry_nop_run(const uint8_t *orig)
{
	(void)orig;
	return false;
}

static inline bool rw__entry_trap_at(const uint8_t *b)
{
	(void)b;
	return false;
}

static inline bool rw__entry_jump_at(const uint8_t *b)
{
	(void)b;
	return false;
}

#endif

/* The room for an entry's bytes. */
#define RW__ENTRY_MAX 8
_Static_assert(RW__ENTRY_LEN <= RW__ENTRY_MAX, "entry room");

#endif /* REWIRE_ENTRY_ARCH_H */
