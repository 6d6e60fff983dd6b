/* SPDX-License-Identifier: MIT */
/*
 * Private to the stack checks: unwind.c (the local libunwind, signal
 * handlers) and unwind_remote.c (the generic libunwind, blocked threads).
 * The two cannot share a file: <libunwind.h> with UNW_LOCAL_ONLY renames
 * every unw_* function to the local library's. Never installed.
 */
#ifndef REWIRE_LP_UNWIND_REMOTE_H
#define REWIRE_LP_UNWIND_REMOTE_H

#include "lp.h"

/* Deeper stacks are RW__LP_UNWIND_FAILED. */
#define RW__LP_MAX_FRAMES 256

/*
 * Look @addr up in c->busy, then in c->funcs (binary searches; the ranges
 * are sorted and disjoint). Returns RW__LP_BUSY or RW__LP_ON_STACK with
 * c->hit_ip (and c->hit_index) set, or -1 if @addr is in no range.
 * Async-signal-safe.
 */
int rw__lp_classify(struct rw__lp_check *c, uintptr_t addr);

/*
 * Copy @len bytes of this process's memory at @addr without faulting:
 * process_vm_readv() on our own pid (pread of /proc/self/mem where that
 * system call is refused). 0, or -EFAULT if any byte is unreadable.
 * Async-signal-safe.
 */
int rw__lp_peek(uintptr_t addr, void *buf, size_t len);

/*
 * Whether the code at @ip is the x86-64 Linux signal return sequence
 * (mov $15, %rax; syscall), i.e. whether the frame whose address is @ip
 * is a signal frame. Reads with rw__lp_peek(). Async-signal-safe.
 */
bool rw__lp_is_sigreturn(uintptr_t ip);

/*
 * Unwind a stack from @pc and @sp alone with the generic libunwind, reading
 * memory with rw__lp_peek(). The frame at @pc is checked at its exact
 * address, the callers at return address - 1. Returns what
 * rw__lp_check_blocked() returns before its before/after comparison:
 * RW__LP_SAFE, RW__LP_ON_STACK, RW__LP_BUSY or RW__LP_UNWIND_FAILED (also
 * when a frame's unwind rule needs a register other than rip and rsp that
 * no inner frame saved on the stack). Not async-signal-safe (it may take
 * libunwind's locks and allocate once).
 */
int rw__lp_unwind_remote(pid_t tid, uintptr_t pc, uintptr_t sp,
			 struct rw__lp_check *c);

#ifdef RW_BACKEND_AARCH64
/*
 * A frame for rw__lp_cfi_step(): reg[0..30] x0-x30, reg[31] sp, and pc
 * (stripped of any pointer authentication code); bit i of @known is set
 * when reg[i] is known.
 */
struct rw__lp_frame {
	uintptr_t reg[32];
	uintptr_t pc;
	uint32_t known;
};

/*
 * Step @f to its caller by the DWARF CFI of the code at @f->pc (at
 * @f->pc itself if @exact, else at @f->pc - 1: a return address), found
 * through _dl_find_object() and the object's .eh_frame_hdr
 * (unwind_cfi.c). For the frames libunwind 1.6 refuses: code built with
 * pac-ret, whose CFI holds DW_CFA_AARCH64_negate_ra_state. The caller's
 * frame gets sp = the CFA, pc = the return address (stripped when the
 * CFI says it was signed), x19-x30 as the rules give them, and no x0-x18
 * (a call does not keep them).
 *
 * Returns 1 (stepped), 0 (the return address is undefined: the end of
 * the stack), -ENOENT (no CFI for the address), -EOPNOTSUPP (CFI this
 * evaluator does not take, or a rule that needs a register @f does not
 * know), -EFAULT (unreadable CFI or stack), -EINVAL (malformed CFI).
 * Never guesses. Async-signal-safe: no allocation, no lock, every read
 * through rw__lp_peek().
 */
int rw__lp_cfi_step(struct rw__lp_frame *f, bool exact);
#endif

/*
 * Whether the last step lost every callee-saved register: a frame guessed
 * from %rbp, not one computed from CFI (see the top of unwind.c). Static
 * inline because each file compiles it against its own libunwind: include
 * <libunwind.h> (local or generic) before this header.
 */
#ifdef UNW_VERSION_MAJOR
static inline bool rw__lp_step_guessed(unw_cursor_t *cur)
{
#ifdef RW_BACKEND_AARCH64
	/* AAPCS64's callee-saved x19-x28 (x29 is the frame pointer that a
	 * guess follows). */
	static const int regs[] = { UNW_AARCH64_X19, UNW_AARCH64_X20,
				    UNW_AARCH64_X21, UNW_AARCH64_X22,
				    UNW_AARCH64_X23, UNW_AARCH64_X24,
				    UNW_AARCH64_X25, UNW_AARCH64_X26,
				    UNW_AARCH64_X27, UNW_AARCH64_X28 };
#else
	static const int regs[] = { UNW_X86_64_RBX, UNW_X86_64_R12,
				    UNW_X86_64_R13, UNW_X86_64_R14,
				    UNW_X86_64_R15 };
#endif
	unw_save_loc_t loc;

	for (size_t i = 0; i < RW_ARRAY_SIZE(regs); i++) {
		if (unw_get_save_loc(cur, regs[i], &loc) < 0)
			return true;
		if (loc.type != UNW_SLT_NONE)
			return false;
	}
	return true;
}

/*
 * Would unw_step() from this frame guess? On aarch64, libunwind 1.6 falls
 * back, for a frame without usable CFI, to the frame pointer chain or to
 * x30, and the x30 guess keeps every callee-saved register's location,
 * so rw__lp_step_guessed() cannot see it; it can even end the walk there
 * (a guessed x30 of 0). So a frame must have CFI that libunwind can parse
 * (unw_get_proc_info() succeeds) or be a signal frame, else the walks
 * step it with rw__lp_cfi_step() instead, or fail. libunwind 1.6 does not parse the
 * CFI of code built with -mbranch-protection=pac-ret|standard
 * (DW_CFA_AARCH64_negate_ra_state: -UNW_EINVAL), which rw__lp_cfi_step()
 * does; later libunwinds parse it (their addresses are stripped:
 * rw__lp_strip_pac()). A PLT entry, which libunwind steps by its shape
 * and which has no CFI, fails the check (retried later). x86-64: false
 * (rw__lp_step_guessed() sees every guess there).
 */
static inline bool rw__lp_step_unchecked(unw_cursor_t *cur)
{
#ifdef RW_BACKEND_AARCH64
	unw_proc_info_t pi;

	if (unw_is_signal_frame(cur) > 0)
		return false;
	return unw_get_proc_info(cur, &pi) < 0;
#else
	(void)cur;
	return false;
#endif
}

/*
 * unw_step() returned 0: is that the end of the stack, or libunwind's
 * guess? A real end is a frame whose return address the CFI marks
 * undefined (clone's thread_start, _start): libunwind then has no
 * location for the return address register. On aarch64, libunwind 1.6
 * also ends the walk, after a successful CFI step or a failed one, when
 * the new frame's x29 reads 0 (AAPCS64's end of the frame record chain),
 * and code built without frame pointers may hold 0 in x29 anywhere: that
 * end would skip every frame above, so it is refused: the return
 * address register (x30) still has a location there. On x86-64 a 0 step
 * is always the CFI's (or a null frame pointer guess, which
 * rw__lp_step_guessed() catches): false.
 */
static inline bool rw__lp_end_guessed(unw_cursor_t *cur)
{
#ifdef RW_BACKEND_AARCH64
	unw_save_loc_t loc;

	if (unw_get_save_loc(cur, UNW_AARCH64_X30, &loc) < 0)
		return true;
	return loc.type != UNW_SLT_NONE;
#else
	(void)cur;
	return false;
#endif
}
#endif

/*
 * A return address as code: without the pointer authentication code that
 * PACIASP put into its upper bits on aarch64 (XPACLRI, a hint: a NOP on
 * a CPU without pointer authentication, where no address is signed). The
 * same keys sign every thread of the process, so a blocked thread's
 * addresses are stripped alike. Identity on x86-64. Async-signal-safe.
 */
static inline uintptr_t rw__lp_strip_pac(uintptr_t ip)
{
#ifdef RW_BACKEND_AARCH64
	register uintptr_t x30 __asm__("x30") = ip;

	__asm__("hint #7" /* xpaclri */ : "+r"(x30));
	return x30;
#else
	return ip;
#endif
}

#if defined(UNW_VERSION_MAJOR) && defined(RW_BACKEND_AARCH64)
/*
 * Step the frame at @cur with rw__lp_cfi_step() (@exact: at its pc, else
 * at pc - 1): @f gets the caller's pc, sp and x19-x30 as the CFI gives
 * them. What the cursor knows goes in: x0-x29 when @exact (the innermost
 * frame), else x19-x29, and sp and pc. Not x30: libunwind's aarch64 port
 * numbers its IP register UNW_AARCH64_X30 (UNW_TDEP_IP), so
 * unw_get_reg(X30) gives the frame's pc, never the register. @x30 is the
 * register's value where the caller knows it (the interrupted frame of a
 * signal handler's ucontext), else 0: unknown, and a step that needs it
 * fails instead of taking the pc for the return address. 1 stepped, 0 end
 * of the stack, -1 failed (no CFI, as for a PLT entry, or CFI the step
 * does not take). The caller restarts libunwind at @f.
 */
static inline int rw__lp_cfi_step_cursor(unw_cursor_t *cur, bool exact,
					 uintptr_t x30, struct rw__lp_frame *f)
{
	unw_word_t v;
	int r;

	memset(f, 0, sizeof(*f));
	for (int i = exact ? 0 : 19; i < 30; i++) {
		if (unw_get_reg(cur, UNW_AARCH64_X0 + i, &v) == 0) {
			f->reg[i] = v;
			f->known |= 1u << i;
		}
	}
	if (exact && x30) {
		f->reg[30] = x30;
		f->known |= 1u << 30;
	}
	if (unw_get_reg(cur, UNW_REG_SP, &v) < 0)
		return -1;
	f->reg[31] = v;
	f->known |= 1u << 31;
	if (unw_get_reg(cur, UNW_REG_IP, &v) < 0)
		return -1;
	f->pc = rw__lp_strip_pac(v);
	r = rw__lp_cfi_step(f, exact);
	return r <= 0 ? (r == 0 ? 0 : -1) : 1;
}
#endif

#endif /* REWIRE_LP_UNWIND_REMOTE_H */
