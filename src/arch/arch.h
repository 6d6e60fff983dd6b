/* SPDX-License-Identifier: MIT */
/*
 * The arch boundary. Only src/arch/ knows instruction bytes and register
 * layouts; the rest of rewire asks it to "make this site execute this
 * instruction" and to emulate an instruction for a thread that trapped.
 */
#ifndef REWIRE_ARCH_H
#define REWIRE_ARCH_H

#include "../internal.h"

#include <rewire/text_poke.h>

#include <signal.h>

/* A decoded site instruction: op is an enum rw_text_op. */
struct rw__insn {
	uint8_t op;
	uint8_t len;
	uintptr_t target; /* JMP and CALL */
};

/* True if this backend patches code (false on the generic backend). */
bool rw__arch_can_patch(void);

/*
 * RW__ARCH_INSN_LEN - the length of every site (text poke, static key,
 * static call slot): one instruction. x86-64: 5 (NOPL, JMP/CALL rel32,
 * RET + int3 padding); aarch64: 4 (every instruction).
 */
#if defined(RW_BACKEND_AARCH64)
#define RW__ARCH_INSN_LEN 4
#else
#define RW__ARCH_INSN_LEN 5
#endif

/*
 * RW__ARCH_COALESCE_WRITES - whether one write of a batch step may cover
 * several sites and the unchanged bytes between them (text_poke.c).
 * x86-64: yes; a step changes only bytes that no thread executes (tails
 * under int3) or one byte per site (int3, the first byte), which no copy
 * can tear. aarch64: no; every step replaces whole instructions that
 * other threads may be fetching (NOP -> BRK, BRK -> B), so each must be
 * stored by one single-copy-atomic 4-byte store. The kernel's copy for a
 * /proc/self/mem write of 4 bytes at a 4-aligned address is that (its
 * memcpy copies 4 to 7 bytes with 32-bit loads and stores); a longer copy
 * uses 16-byte and unaligned stores, which may tear an instruction under
 * a running thread (seen as SIGILL under TCG before this was per site).
 */
#if defined(RW_BACKEND_AARCH64)
#define RW__ARCH_COALESCE_WRITES 0
#else
#define RW__ARCH_COALESCE_WRITES 1
#endif

/*
 * The trap: the instruction that is written first on every site of a
 * batch (its first rw__arch_trap_len() bytes), whose SIGTRAP the handler
 * turns into the new instruction. x86-64: int3 (1 byte, then the tail of
 * the site is written under it); aarch64: BRK #0x7277 (4 bytes: the whole
 * site, so the tail is empty). rw__arch_trap_insn() writes it to @out;
 * rw__arch_is_trap() says whether @b (at least rw__arch_trap_len() bytes)
 * begins with a trap or breakpoint instruction of anyone (int3 / any
 * BRK: a debugger's or a uprobe's included). Async-signal-safe.
 */
size_t rw__arch_trap_len(void);
void rw__arch_trap_insn(uint8_t *out);
bool rw__arch_is_trap(const uint8_t *b);

/* The slot of the static call trampoline at @tramp: the instruction that
 * rw__arch_tramp_insn() answers for (x86-64: the trampoline's first
 * instruction; aarch64: the second, after the BTI landing pad). */
uintptr_t rw__arch_tramp_slot(uintptr_t tramp);

/*
 * Make written code visible to instruction fetch on this core before the
 * cross-core sync: nothing on x86-64 (coherent instruction caches);
 * aarch64: DC CVAU over the range, DSB ISH, IC IVAU, DSB ISH, ISB.
 * Called after every write of code (text_poke, generated stubs).
 */
void rw__arch_flush_icache(uintptr_t start, size_t len);

/* Encode @insn at @site into @out; returns the length or a negative error
 * (-RW_ERR_OUT_OF_RANGE when the target is not reachable). */
int rw__arch_encode(const struct rw__insn *insn, uintptr_t site, uint8_t *out);

/* Decode the @len bytes at @bytes as an instruction located at @site;
 * 0 or -RW_ERR_BAD_INSN. */
int rw__arch_decode(const uint8_t *bytes, size_t len, uintptr_t site,
		    struct rw__insn *out);

/* Signal-handler side. All async-signal-safe. */
bool rw__arch_trap_is_breakpoint(const siginfo_t *si);
uintptr_t rw__arch_trap_addr(const void *uc);
void rw__arch_set_ip(void *uc, uintptr_t ip);
/* Make the interrupted context behave as if @insn had run at @site. */
void rw__arch_emulate(void *uc, uintptr_t site, const struct rw__insn *insn);
/*
 * For a trap at @site whose batch has finished: the instruction @site now
 * holds, as an @out that rw__arch_emulate() runs, when the backend can
 * (aarch64: NOP, B, BL); false: run it again from @site. Emulating it
 * does not depend on the thread fetching the new instruction: a CPU (or
 * an emulator) that kept fetching the trap would otherwise trap forever.
 */
bool rw__arch_site_insn(uintptr_t site, struct rw__insn *out);

/* Static key sites: the instruction for a site in state @jump. */
void rw__arch_jump_insn(bool jump, uintptr_t site, uintptr_t target,
			struct rw__insn *out);

/*
 * Static call trampolines: the slot instruction that makes a call of the
 * trampoline at @tramp run @func (NULL: return, RET0: return 0). A far
 * @func gets a stub within reach (allocated once per target and region,
 * never freed); may return -ENOMEM. Called with the text lock held.
 */
int rw__arch_tramp_insn(uintptr_t tramp, void *func, struct rw__insn *out);

/*
 * Bound stubs (tracepoints): immutable code that calls @func with @data as
 * its first argument and the other arguments untouched (a tail jump),
 * placed within rel32 reach of @near. Text lock held for both. Free only
 * after a grace period that began when nothing jumped to the stub any more.
 * The generic backend has none: -EOPNOTSUPP.
 */
int rw__arch_bound_stub_alloc(uintptr_t near, void *func, void *data,
			      void **stub);
void rw__arch_bound_stub_free(void *stub);

/*
 * Live patching dispatchers (src/livepatch/core.c). A dispatcher is
 * immutable code, placed within rel32 reach of @near, that reads the
 * calling thread's 32-bit patch generation at %fs:@tls_off and jumps to
 * the target of the arm whose gen matches, else to @dflt. A generation
 * with bit 31 set ("being decided" by another thread) is cleared with a
 * locked instruction first, then read again. Clobbers r11 and the flags
 * only (free at a function entry). Text lock held; free only once no
 * thread can be inside (its address is in rw__arch_stub_ranges until
 * then). The generic backend has none: -EOPNOTSUPP.
 */
#define RW__ARCH_DISPATCH_ARMS 6
#define RW__ARCH_DISPATCH_SIZE 256
struct rw__arch_arm {
	uint32_t gen;
	uintptr_t target;
};
int rw__arch_dispatch_alloc(uintptr_t near, int32_t tls_off,
			    const struct rw__arch_arm *arms, size_t narms,
			    uintptr_t dflt, void **stub);
void rw__arch_dispatch_free(void *stub);
/*
 * The pages of dispatcher slots, up to @max (a slot begins every
 * RW__ARCH_DISPATCH_SIZE bytes from a page's start); returns how many
 * there are. A thread at a slot's first instruction has run nothing of
 * the dispatcher yet (the slow path's retry goes back there with the
 * entry's registers): the live patching checks step it to its caller
 * (src/livepatch/unwind.c). aarch64 only, where emulators deliver
 * signals there (on branches between pages) so often that such a thread
 * was never found outside; 0 elsewhere. Text lock held.
 */
size_t rw__arch_dispatch_pages(uintptr_t *out, size_t max);

/*
 * Function tracing (src/entry.c). A trampoline is immutable code, placed
 * within rel32 reach of @near, that loads @rec (a struct rw__entry: the
 * tracer's data, then the continuation) and jumps to the common entry
 * code, which saves the argument registers, calls @enter(data, slot) (slot:
 * the address of the return address), restores them and jumps to the
 * continuation read after the call. The return trampoline, where a
 * hijacked return goes, saves the return registers, calls @ret(sp) and
 * jumps where it answers. The common code is part of every busy range
 * (rw__arch_stub_ranges). Trampolines are never freed. Text lock held for
 * alloc. The generic backend has none: -EOPNOTSUPP, and 0.
 */
int rw__arch_trace_tramp_alloc(uintptr_t near, void *rec, void **tramp);
void rw__arch_trace_set(void (*enter)(void *data, uintptr_t *slot),
			uintptr_t (*ret)(uintptr_t sp));
uintptr_t rw__arch_trace_return_addr(void);
/* The common code's [*start, *end) (empty on the generic backend). */
void rw__arch_trace_code(uintptr_t *start, uintptr_t *end);

/*
 * The pages holding rewire's generated code (far-jump stubs, bound stubs,
 * dispatchers, trampolines) and the common code of function tracing, as
 * [start, end) pairs, up to @max; returns how many there
 * are. Text lock held.
 */
size_t rw__arch_stub_ranges(uintptr_t (*out)[2], size_t max);

/*
 * The contexts of the signals whose handlers were running when @uc's
 * signal came (a handler interrupted by another signal), innermost first,
 * up to @max, in @out; returns how many were found. Found on the stack:
 * each signal frame begins with the handler's return address (glibc's
 * restorer), which is also the word before @uc. A frame's saved registers
 * may be changed through the pointer (sigreturn restores them). Reads are
 * checked (never fault). Async-signal-safe. The generic backend: 0.
 */
size_t rw__arch_outer_contexts(void *uc, void **out, size_t max);

/* The instruction pointer of a signal context. */
uintptr_t rw__arch_ip(const void *uc);

/* The offset of the thread-local @var from the thread pointer (the same
 * for every thread for initial-exec TLS). */
intptr_t rw__arch_tls_offset(const void *var);

/*
 * Serialize instruction fetch on every core running a thread of this
 * process (membarrier SYNC_CORE). Registers on first use and again after
 * fork. Returns 0 or a negative errno.
 */
int rw__arch_sync_cores(void);
/* Register for core sync ahead of time (first batch), outside any window
 * in which a site holds int3. */
void rw__arch_sync_prepare(void);
void rw__arch_sync_after_fork(void);

/*
 * The time-stamp counter: `rewire trace`'s cheap clock (src/ctl/ring.h,
 * RW_TRACE_CLOCK_TSC). rw__arch_tsc_present(): whether rw__arch_tsc()
 * reads a counter at all (x86-64 and aarch64: true; the generic backend
 * has none). rw__arch_tsc_invariant(): whether it ticks at one rate in
 * every power state and alike on every core, so that its ticks can be
 * turned into nanoseconds with one calibration (x86-64: CPUID 0x80000007
 * EDX bit 8, or /proc/cpuinfo's constant_tsc and nonstop_tsc; aarch64:
 * always, the generic timer's count, src/arch/aarch64/clock.c).
 * rw__arch_tsc_hz(): its frequency when the machine says it (CPUID leaf
 * 0x15, or the hypervisor's leaf 0x40000010; aarch64: CNTFRQ_EL0), else
 * 0. The three are computed once.
 * rw__arch_tsc(): one read, inline (no call, no fence: the counter is not
 * ordered with the loads and stores around it, which a timestamp does not
 * need); async-signal-safe. 0 without a counter.
 */
bool rw__arch_tsc_present(void);
bool rw__arch_tsc_invariant(void);
uint64_t rw__arch_tsc_hz(void);
#ifdef RW_BACKEND_X86_64
static inline __attribute__((always_inline)) uint64_t rw__arch_tsc(void)
{
	uint64_t lo, hi; /* rdtsc zeroes the upper halves */

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return hi << 32 | lo;
}
#elif defined(RW_BACKEND_AARCH64)
static inline __attribute__((always_inline)) uint64_t rw__arch_tsc(void)
{
	uint64_t t; /* the virtual count: CNTPCT_EL0 less CNTVOFF */

	__asm__ volatile("mrs %0, cntvct_el0" : "=r"(t));
	return t;
}
#else
static inline uint64_t rw__arch_tsc(void)
{
	return 0;
}
#endif

#endif /* REWIRE_ARCH_H */
