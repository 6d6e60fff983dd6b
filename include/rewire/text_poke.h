/* SPDX-License-Identifier: MIT */
/*
 * rewire/text_poke.h - change instructions of the running process safely.
 *
 * This is the primitive that static keys and static calls are built on,
 * usable on its own. A batch of sites is changed with the kernel's int3
 * protocol (arch/x86/kernel/alternative.c, smp_text_poke_batch_finish):
 *
 *   1. sort the sites, reject overlaps, check every site holds its expected
 *      old instruction (else -EILSEQ and nothing is written);
 *   2. write int3 on the first byte of every site, sync every core;
 *   3. write the other bytes of every site, sync;
 *   4. write the first byte of every site, sync;
 *   5. wait until no SIGTRAP handler still uses the batch.
 *
 * A thread that executes a site meanwhile traps into rewire's SIGTRAP
 * handler, which emulates the *new* instruction and returns; any other
 * SIGTRAP goes to the disposition the program installed. "Sync" is
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE): at most three per
 * batch, whatever its size. Code is written through /proc/self/mem, so no
 * mapping ever becomes writable; the mprotect fallback (briefly RWX) is used
 * only if the policy allows it (rw_text_set_policy or
 * REWIRE_TEXT_ALLOW_MPROTECT=1).
 *
 * Example: turn a 5-byte NOP at `site` into a call to `fn`:
 *
 *	struct rw_text_poke p = { .addr = site, .len = 5 };
 *	rw_text_encode(RW_TEXT_NOP, site, NULL, p.old_insn);
 *	rw_text_encode(RW_TEXT_CALL, site, fn, p.new_insn);
 *	int err = rw_text_poke_batch(&p, 1);
 *
 * Caveats:
 * - A site must be exactly one instruction in its old and its new form, one
 *   of the forms in enum rw_text_op, so that a thread is never in the middle
 *   of it and the trap handler can emulate the new one.
 * - Threads must not block SIGTRAP: the kernel kills a thread that hits
 *   int3 with SIGTRAP blocked. rewire interposes sigprocmask,
 *   pthread_sigmask, sigaction, signal, sigsuspend, ppoll, pselect and
 *   epoll_pwait(2) so that SIGTRAP stays unblocked; masks set by raw system
 *   calls, by setcontext() with a hand-made mask or inside glibc itself are
 *   not covered (see doc/TEXT-PATCHING.md).
 * - Not async-signal-safe (it allocates). From a signal handler that
 *   interrupted an update on the same thread it returns -EDEADLK.
 * - The generic backend has no code patching: every call returns -ENOSYS.
 */
#ifndef REWIRE_TEXT_POKE_H
#define REWIRE_TEXT_POKE_H

#include <rewire/common.h>

#include <stddef.h>
#include <stdint.h>

RW_EXTERN_C_BEGIN

/*
 * RW_TEXT_INSN_MAX - the room, in bytes, for one instruction: the size of
 * struct rw_text_poke's old_insn and new_insn, and what rw_text_encode()
 * may write to its @out.
 */
#define RW_TEXT_INSN_MAX 8

/*
 * The instructions a site may hold. On x86-64 all are 5 bytes: RET is c3
 * followed by four int3 bytes of padding that are never executed.
 *
 *	op		bytes			executes as
 *	RW_TEXT_NOP	0f 1f 44 00 00		nothing
 *	RW_TEXT_JMP	e9 rel32		jmp target
 *	RW_TEXT_CALL	e8 rel32		call target
 *	RW_TEXT_RET	c3 cc cc cc cc		ret
 *
 * On aarch64 every one is a single 4-byte instruction at a 4-aligned
 * address: NOP, B target, BL target (the return address goes to x30, not
 * the stack), RET (to x30); B and BL reach +-128 MiB. The trap written
 * first is BRK #0x7277 over the whole site.
 */
enum rw_text_op {
	RW_TEXT_NOP = 1,
	RW_TEXT_JMP,
	RW_TEXT_CALL,
	RW_TEXT_RET,
};

struct rw_text_poke {
	void *addr;			    /* first byte of the site */
	size_t len;			    /* bytes of the site (5, or 4) */
	uint8_t old_insn[RW_TEXT_INSN_MAX]; /* expected current bytes */
	uint8_t new_insn[RW_TEXT_INSN_MAX]; /* bytes to write */
};

/*
 * rw_text_encode - encode instruction @op for a site at @site.
 * @target: branch target for JMP and CALL, ignored otherwise.
 * @out: receives the bytes (RW_TEXT_INSN_MAX bytes of room).
 *
 * Returns the length (5 on x86-64, 4 on aarch64), -EINVAL for an unknown
 * op, a NULL @out, or (aarch64) a site or target not 4-aligned,
 * -RW_ERR_OUT_OF_RANGE if @target is not within reach (x86-64: a rel32
 * displacement; aarch64: +-128 MiB), or -ENOSYS on the generic backend.
 * Async-signal-safe; no locks.
 */
RW_EXPORT int rw_text_encode(enum rw_text_op op, const void *site,
			     const void *target, uint8_t *out);

/*
 * rw_text_poke_batch - change @n sites at once.
 *
 * Returns 0 when every site holds its new instruction (sites that already
 * did are skipped), or, with nothing written:
 *   -EINVAL		@pokes NULL with @n > 0, a NULL address, a length of
 *			0 or above RW_TEXT_INSN_MAX, overlapping sites, a
 *			site not 4-aligned (aarch64);
 *   -RW_ERR_BAD_INSN	old or new bytes that are not an instruction of
 *			enum rw_text_op (this includes a length other than
 *			5 on x86-64, 4 on aarch64): rewire could not
 *			emulate them;
 *   -EFAULT		a site outside readable executable memory (unmapped,
 *			data, or execute-only like [vsyscall]);
 *   -EILSEQ		a site that holds neither its old nor its new bytes;
 *   -EDEADLK		called from a signal handler that interrupted an
 *			update on the same thread;
 *   -ENOMEM		out of memory;
 *   -RW_ERR_TEXT_WRITE	the kernel refuses writes to code (/proc/self/mem)
 *			and the policy forbids the mprotect fallback; with
 *			the fallback allowed, the error of mprotect;
 *   -RW_ERR_NO_PROC, -RW_ERR_NOT_DUMPABLE, -EMFILE, -ENFILE, -EACCES
 *			/proc/self/mem cannot be opened (and the policy
 *			forbids the fallback): no /proc; the process dropped
 *			privileges and the descriptor rewire opened when it
 *			was loaded is gone; out of descriptors; refused by a
 *			security module;
 *   -RW_ERR_BREAKPOINT	a site holds another tool's breakpoint (int3: a
 *			uprobe, a debugger) where its old instruction has
 *			none (instead of -EILSEQ);
 *   -ENOSYS		the generic backend (no code patching), for @n > 0.
 * A write that fails after the first one restores the sites written so
 * far before returning its error.
 *
 * Takes rewire's text lock (the same lock as static key and static call
 * updates; it nests inside nothing). Orders like a full memory barrier in
 * every thread: when it returns, every thread executes the new code.
 */
RW_EXPORT int rw_text_poke_batch(const struct rw_text_poke *pokes, size_t n);

/* Policy flags for rw_text_set_policy(). */
enum {
	/* Where /proc/self/mem writes are refused, make the page RWX for the
	 * write and restore it. Off by default. */
	RW_TEXT_ALLOW_MPROTECT = 1u << 0,
	/* Test and diagnosis only: skip /proc/self/mem and always use the
	 * mprotect path (requires RW_TEXT_ALLOW_MPROTECT). */
	RW_TEXT_FORCE_MPROTECT = 1u << 1,
};

/*
 * rw_text_set_policy - choose how code is written; returns the previous
 * flags. Initial value from REWIRE_TEXT_ALLOW_MPROTECT=1 (and
 * REWIRE_TEXT_FORCE_MPROTECT=1). Takes the text lock.
 */
RW_EXPORT unsigned rw_text_set_policy(unsigned flags);

struct rw_text_stats {
	uint64_t batches;	 /* batches that wrote at least one site */
	uint64_t sites_patched;	 /* sites changed */
	uint64_t sites_skipped;	 /* sites that already held the new bytes */
	uint64_t syncs;		 /* membarrier SYNC_CORE calls (or fallbacks) */
	uint64_t writes;	 /* write operations on code */
	uint64_t traps_emulated; /* int3 hits emulated by the handler */
	uint64_t traps_replayed; /* int3 hits that found the site finished */
	uint64_t mprotect_writes; /* writes done by the mprotect fallback */
	/* core syncs that failed: membarrier refused and a thread did not
	 * answer the fallback signal in 10 s (the batch still succeeded) */
	uint64_t sync_failures;
};

/* rw_text_get_stats - counters since the process started. Lock-free. */
RW_EXPORT void rw_text_get_stats(struct rw_text_stats *out);

RW_EXTERN_C_END

#endif /* REWIRE_TEXT_POKE_H */
