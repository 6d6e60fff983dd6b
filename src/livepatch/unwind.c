/* SPDX-License-Identifier: MIT */
/*
 * Stack checks of live patching: is any function of a patch on a thread's
 * stack? The kernel's klp_check_stack() for user space.
 *
 * Two ways to look at a stack:
 *
 *  - rw__lp_check_self(): the thread unwinds its own stack, in the handler
 *    of rewire's cross-thread signal (or in the calling thread), with the
 *    local libunwind. This file.
 *  - rw__lp_check_blocked(): another thread unwinds the stack of a thread
 *    that sleeps in a system call, from the registers the kernel shows in
 *    /proc/self/task/TID/syscall, with the generic libunwind
 *    (unwind_remote.c). The sleeper is not disturbed.
 *
 * Which frames count: the first frame (the interrupted instruction, or the
 * one after the system call) and any frame right after a signal frame are
 * checked at their exact address; the other frames at return address - 1,
 * the call instruction, so that a call at the very end of a function is
 * charged to that function and not to the next one.
 *
 * When is a stack reliable: only if libunwind followed DWARF call frame
 * information (or a signal frame, or a PLT entry) from the first frame to
 * one whose return address the CFI marks undefined (clone3/clone for
 * threads, _start for the main thread). Without CFI for an address,
 * libunwind 1.6 guesses with the frame pointer chain, and can even end the
 * walk on a null %rbp; such a guess could skip the frame that matters. A
 * guessed step forgets every callee-saved register, which no CFI step
 * does, so after each step we ask unw_get_save_loc() about them: if %rbx
 * and %r12-%r15 are all unknown, the step was a guess and the stack is
 * RW__LP_UNWIND_FAILED ("not safe yet", retried later). On aarch64 a
 * frame whose CFI libunwind cannot parse (code built with pac-ret, which
 * libunwind 1.6 refuses) is stepped by our own CFI step instead
 * (rw__lp_cfi_step(), unwind_cfi.c), and libunwind goes on from the
 * caller; CFI that step does not take fails the check too.
 *
 * Async-signal-safety of the local unwind (libunwind 1.6.2):
 *
 *  - The caching policy of the local address space is set to
 *    UNW_CACHE_NONE once, by the constructor below, which also runs one
 *    unwind so that libunwind's lazy initialization (tdep_init(): a lock,
 *    its memory pools) is done before any signal handler needs it. With no
 *    cache there is neither the global cache's lock nor a per-thread cache
 *    that a nested unwind in the same thread would corrupt. (A program that
 *    sets another policy on unw_local_addr_space later takes that back.)
 *  - No malloc: libunwind parses CFI into its own mmap'ed pools
 *    (remembered states of DW_CFA_remember_state, CIE info). Those pools
 *    have a lock, taken with all signals masked through sigprocmask(); and
 *    dl_iterate_phdr() takes the loader's recursive lock, also with
 *    signals masked. rewire's sigprocmask() keeps its own signal
 *    deliverable, so the handler may run while its own thread is inside
 *    libunwind. For rewire's own unwinds this is excluded by a per-thread
 *    flag: a nested check returns RW__LP_UNWIND_FAILED at once. A program
 *    that itself unwinds with the local libunwind can still be interrupted
 *    holding a pool lock; its check would deadlock (documented caveat).
 *  - libunwind's sigprocmask() calls go through rewire's interposed one,
 *    which leaves rewire's signal unblocked when it restores the handler's
 *    mask; rw__lp_check_self() therefore restores the mask it found with a
 *    raw system call before returning.
 *  - Memory other than the stack and the objects' code and CFI is read
 *    only through rw__lp_peek() (system calls that fail instead of
 *    faulting), or directly when it is on the page of code that libunwind
 *    just found CFI for.
 *  - Stack use: about 10 KiB measured for rw__lp_check_self(NULL) (the
 *    context, the cursor, libunwind's state records, dl_iterate_phdr),
 *    and 2.5 KiB more where a frame is stepped by rw__lp_cfi_step(); a
 *    handler on a SIGSTKSZ-sized alternate stack does not have that.
 */
#define UNW_LOCAL_ONLY

#include "../entry.h"

#include <fcntl.h>
#include <libunwind.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "unwind_remote.h" /* after <libunwind.h> */

/* Ranges and the frame classification. */

/* Index of the range holding @addr, or -1. */
static long range_find(const struct rw__lp_range *r, size_t n, uintptr_t addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (addr < r[mid].start)
			hi = mid;
		else if (addr >= r[mid].end)
			lo = mid + 1;
		else
			return (long)mid;
	}
	return -1;
}

int rw__lp_classify(struct rw__lp_check *c, uintptr_t addr)
{
	long i;

	if (c->nbusy && range_find(c->busy, c->nbusy, addr) >= 0) {
		c->hit_ip = addr;
		return RW__LP_BUSY;
	}
	if (c->nfuncs) {
		i = range_find(c->funcs, c->nfuncs, addr);
		if (i >= 0) {
			c->hit_ip = addr;
			c->hit_index = (size_t)i;
			return RW__LP_ON_STACK;
		}
	}
	return -1;
}

/* Reading memory without faulting. */

/*
 * 0 until process_vm_readv() was refused (seccomp, old kernel), then the
 * /proc/self/mem descriptor, or -1 if that cannot be opened either.
 */
static _Atomic int mem_fd;

static int peek_procmem(uintptr_t addr, void *buf, size_t len)
{
	int fd = atomic_load(&mem_fd);
	ssize_t n;

	if (fd == 0) {
		/* open() is async-signal-safe; a racing opener's descriptor
		 * is closed again. */
		fd = open("/proc/thread-self/mem", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fd = -1;
		int expect = 0;
		if (!atomic_compare_exchange_strong(&mem_fd, &expect, fd)) {
			if (fd >= 0)
				close(fd);
			fd = expect;
		}
	}
	if (fd < 0)
		return -EFAULT;
	n = pread(fd, buf, len, (off_t)addr);
	return n == (ssize_t)len ? 0 : -EFAULT;
}

int rw__lp_peek(uintptr_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len };
	struct iovec remote = { (void *)addr, len };
	ssize_t n;

	if (RW_UNLIKELY(atomic_load_explicit(&mem_fd, memory_order_relaxed)))
		return peek_procmem(addr, buf, len);
	n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	if (n < 0 && (errno == ENOSYS || errno == EPERM))
		return peek_procmem(addr, buf, len);
	return -EFAULT;
}

#ifdef RW_BACKEND_AARCH64
/* The vDSO's __kernel_rt_sigreturn, the restorer glibc gives the kernel:
 * d2801168  mov x8, #139 (rt_sigreturn);  d4000001  svc #0 */
#define SIGRETURN_LEN 8
static const uint8_t sigreturn_seq[SIGRETURN_LEN] = { 0x68, 0x11, 0x80, 0xd2,
						      0x01, 0x00, 0x00, 0xd4 };
#else
/* 48 c7 c0 0f 00 00 00  mov $0xf, %rax;  0f 05  syscall */
#define SIGRETURN_LEN 9
static const uint8_t sigreturn_seq[SIGRETURN_LEN] = { 0x48, 0xc7, 0xc0,
						      0x0f, 0x00, 0x00,
						      0x00, 0x0f, 0x05 };
#endif

bool rw__lp_is_sigreturn(uintptr_t ip)
{
	const uint8_t *seq = sigreturn_seq;
	uint8_t code[SIGRETURN_LEN];

	if (rw__lp_peek(ip, code, sizeof(code)))
		return false;
	return memcmp(code, seq, SIGRETURN_LEN) == 0;
}

/* The local unwind. */

/*
 * rw__lp_is_sigreturn() for a frame that libunwind just stepped over:
 * @addr, the address we checked, lies in code that libunwind found CFI
 * for (or read itself), so it is mapped; if the 9 bytes at @ip are on the
 * same page, read them directly instead of with a system call.
 */
static bool stepped_is_sigreturn(uintptr_t ip, uintptr_t addr)
{
	const uint8_t *seq = sigreturn_seq;
	uint8_t code[SIGRETURN_LEN];

	if ((addr >> 12) != ((ip + sizeof(code) - 1) >> 12) || ip < addr)
		return rw__lp_is_sigreturn(ip);
	memcpy(code, (const void *)ip, sizeof(code));
	return memcmp(code, seq, SIGRETURN_LEN) == 0;
}

#ifdef RW_BACKEND_AARCH64
/*
 * A fresh cursor over @ctx at @pc with @sp, and the callee-saved x19-x29
 * as @cur has them (every one must be known: a fresh cursor has no
 * "unknown"). 0, or -1.
 */
static int restart_at(unw_cursor_t *cur, unw_context_t *ctx, uintptr_t pc,
		      unw_word_t sp)
{
	unw_word_t v;

	memset(ctx, 0, sizeof(*ctx));
	for (int i = UNW_AARCH64_X19; i <= UNW_AARCH64_X29; i++) {
		if (unw_get_reg(cur, i, &v) < 0)
			return -1;
		ctx->uc_mcontext.regs[i - UNW_AARCH64_X0] = v;
	}
	ctx->uc_mcontext.pc = pc;
	ctx->uc_mcontext.sp = sp;
	return unw_init_local(cur, ctx) < 0 ? -1 : 0;
}
#else
/* x86-64: the same with rbx, rbp and r12-r15 (an unknown one reads 0). */
static int restart_at(unw_cursor_t *cur, unw_context_t *ctx, uintptr_t pc,
		      unw_word_t sp)
{
	static const struct {
		unw_regnum_t unw;
		int greg;
	} keep[] = {
		{ UNW_X86_64_RBX, REG_RBX }, { UNW_X86_64_RBP, REG_RBP },
		{ UNW_X86_64_R12, REG_R12 }, { UNW_X86_64_R13, REG_R13 },
		{ UNW_X86_64_R14, REG_R14 }, { UNW_X86_64_R15, REG_R15 },
	};
	ucontext_t *uc = (ucontext_t *)ctx;
	unw_word_t v;

	memset(ctx, 0, sizeof(*ctx));
	for (size_t i = 0; i < sizeof(keep) / sizeof(*keep); i++)
		if (unw_get_reg(cur, keep[i].unw, &v) == 0)
			uc->uc_mcontext.gregs[keep[i].greg] = (greg_t)v;
	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)pc;
	uc->uc_mcontext.gregs[REG_RSP] = (greg_t)sp;
	return unw_init_local(cur, ctx) < 0 ? -1 : 0;
}
#endif

/*
 * A return address that graph tracing replaced with its return trampoline
 * (src/ftrace.c): go on from the real one, with the registers the
 * trampoline would have returned with (the callee-saved ones and sp as
 * this step computed them), in a fresh cursor over @ctx. The shadow stack
 * names a hooked frame by the caller's sp after the return minus 8: the
 * return address's slot on x86-64, the function's CFA minus 8 on aarch64
 * (its sp at entry). 0, or -1 if the real address is unknown (then the
 * frame counts as busy, the trampoline being part of the busy ranges).
 */
static int through_tramp(unw_cursor_t *cur, unw_context_t *ctx)
{
	unw_word_t sp;
	uintptr_t real;

	if (unw_get_reg(cur, UNW_REG_SP, &sp) < 0)
		return -1;
	real = rw__entry_real_return(rw__gettid(), sp - sizeof(uintptr_t));
	if (!real)
		return -1;
	return restart_at(cur, ctx, real, sp);
}

#ifdef RW_BACKEND_AARCH64
/* @addr is the first instruction of a dispatcher slot (c->dpages). */
static bool at_dispatch_entry(const struct rw__lp_check *c, uintptr_t addr)
{
	for (size_t i = 0; i < c->ndpages; i++)
		if (addr >= c->dpages[i] && addr - c->dpages[i] < 4096 &&
		    (addr - c->dpages[i]) % RW__ARCH_DISPATCH_SIZE == 0)
			return true;
	return false;
}

/*
 * The interrupted frame is at a dispatcher's first instruction: nothing
 * of it has run (src/arch/aarch64/dispatch.c: the slow path's retry goes
 * back there with the entry's registers), so the thread has read no
 * generation yet and is, as far as the patch is concerned, at the call
 * of the function whose entry branched there. The frame steps to that
 * call's return address, @x30 (the function's own entry has not run
 * either: x30 is the caller's, sp and x19-x29 unchanged), in a fresh
 * cursor over @ctx. 0, or -1 if it cannot.
 */
static int dispatch_entry_step(unw_cursor_t *cur, unw_context_t *ctx,
			       uintptr_t x30)
{
	unw_word_t sp;

	x30 = rw__lp_strip_pac(x30);
	if (!x30 || unw_get_reg(cur, UNW_REG_SP, &sp) < 0)
		return -1;
	return restart_at(cur, ctx, x30, sp);
}

/*
 * libunwind ended the walk on a frame whose x29 reads 0 (see
 * rw__lp_end_guessed()): @prev is the cursor before that step. If the
 * step followed CFI (@prev's frame has some), go on from the return
 * address libunwind did not report, in a fresh cursor over @ctx with the
 * callee-saved registers the step computed, and x29 = 0 as read. That
 * frame is checked like any other, and its own CFI decides whether the
 * stack ends there (_start and clone's thread_start mark x30 undefined).
 * 0, or -1 if the walk cannot go on (then it failed).
 */
static int past_fp_end(unw_cursor_t *cur, unw_cursor_t *prev,
		       unw_context_t *ctx)
{
	unw_proc_info_t pi;
	unw_word_t ra, sp, v;

	if (unw_get_proc_info(prev, &pi) < 0 ||
	    unw_get_reg(cur, UNW_AARCH64_X30, &ra) < 0 ||
	    unw_get_reg(cur, UNW_REG_SP, &sp) < 0)
		return -1;
	ra = rw__lp_strip_pac(ra);
	if (!ra)
		return -1;
	memset(ctx, 0, sizeof(*ctx));
	for (int i = UNW_AARCH64_X19; i <= UNW_AARCH64_X28; i++)
		if (unw_get_reg(cur, i, &v) == 0)
			ctx->uc_mcontext.regs[i - UNW_AARCH64_X0] = v;
	ctx->uc_mcontext.pc = ra;
	ctx->uc_mcontext.sp = sp;
	return unw_init_local(cur, ctx) < 0 ? -1 : 0;
}
/*
 * A frame libunwind cannot step (rw__lp_step_unchecked()): step it by its
 * CFI with rw__lp_cfi_step() (pac-ret code, whose CFI libunwind 1.6
 * refuses), then go on from the caller in a fresh cursor over @ctx, with
 * the callee-saved registers the step computed. A frame checked at its
 * exact address (the interrupted one, or one right after a signal frame)
 * has x0-x29 in libunwind's cursor, and x30 from @x30 (the interrupted
 * one's; libunwind gives its pc for x30: see rw__lp_cfi_step_cursor());
 * another, x19-x29 and sp.
 * The local walk needs every one of x19-x29 known afterwards (a fresh
 * cursor has no "unknown"). 1 stepped, 0 end of the stack, -1 failed
 * (no CFI, as for a PLT entry, or CFI the step does not take).
 */
static int cfi_step(unw_cursor_t *cur, unw_context_t *ctx, bool exact,
		    uintptr_t x30)
{
	struct rw__lp_frame f;
	int r = rw__lp_cfi_step_cursor(cur, exact, x30, &f);

	if (r <= 0)
		return r;
	if ((f.known & 0x3ff80000u) != 0x3ff80000u) /* x19-x29 */
		return -1;
	memset(ctx, 0, sizeof(*ctx));
	for (int i = 19; i <= 30; i++)
		ctx->uc_mcontext.regs[i] = f.reg[i];
	ctx->uc_mcontext.pc = f.pc;
	ctx->uc_mcontext.sp = f.reg[31];
	return unw_init_local(cur, ctx) < 0 ? -1 : 1;
}
#endif

#ifdef RW_BACKEND_AARCH64
/*
 * x30 of the context a signal interrupted, read from the kernel's signal
 * frame at @tramp's sp (the sigreturn trampoline's frame: struct
 * rt_sigframe, a siginfo then the ucontext, where libunwind reads the
 * other registers). libunwind's cursor has no x30 of its own (see
 * rw__lp_cfi_step_cursor()). 0 if it cannot be read.
 */
static uintptr_t sigframe_x30(unw_cursor_t *tramp)
{
	unw_word_t sp;
	uint64_t v;

	if (unw_get_reg(tramp, UNW_REG_SP, &sp) < 0 ||
	    rw__lp_peek(sp + sizeof(siginfo_t) +
				offsetof(ucontext_t, uc_mcontext.regs[30]),
			&v, sizeof(v)))
		return 0;
	return (uintptr_t)v;
}
#endif

/*
 * @x30: the interrupted frame's x30 when @exact and the cursor is at a
 * signal handler's ucontext (aarch64: libunwind does not give it), else 0.
 * A frame a signal interrupted further up the stack (exact again after a
 * sigreturn trampoline) gets its x30 from its signal frame the same way:
 * a thread interrupted in a function's patchable entry, or at a
 * dispatcher's first instruction, while it ran a signal handler (rewire's
 * SIGTRAP handler emulating that entry's BRK, for one) is stepped there
 * from x30 too.
 */
static int walk(unw_cursor_t *cur, struct rw__lp_check *c, bool exact,
		uintptr_t x30)
{
	uintptr_t tramp = rw__entry_return_tramp();
	unw_context_t ctx; /* for cursors restarted past a trampoline */
#ifdef RW_BACKEND_AARCH64
	unw_cursor_t prev;
#endif
	int n, r;

#ifndef RW_BACKEND_AARCH64
	(void)x30;
#endif
	for (n = 0; n < RW__LP_MAX_FRAMES; n++) {
		unw_word_t ip, addr;
		bool sig;

		if (unw_get_reg(cur, UNW_REG_IP, &ip) < 0 || ip == 0)
			return RW__LP_UNWIND_FAILED;
		ip = rw__lp_strip_pac(ip);
		if (!exact && tramp && ip == tramp &&
		    through_tramp(cur, &ctx) == 0 &&
		    unw_get_reg(cur, UNW_REG_IP, &ip) < 0)
			return RW__LP_UNWIND_FAILED;
		addr = exact ? ip : ip - 1;
#ifdef RW_BACKEND_AARCH64
		if (exact && x30 && c->ndpages && at_dispatch_entry(c, addr)) {
			if (dispatch_entry_step(cur, &ctx, x30) < 0) {
				c->hit_ip = addr;
				return RW__LP_BUSY;
			}
			exact = false;
			continue;
		}
#endif
		r = rw__lp_classify(c, addr);
		if (r >= 0)
			return r;
#ifdef RW_BACKEND_AARCH64
		if (rw__lp_step_unchecked(cur)) {
			r = cfi_step(cur, &ctx, exact, exact ? x30 : 0);
			if (r < 0)
				return RW__LP_UNWIND_FAILED;
			if (r == 0)
				return RW__LP_SAFE;
			exact = false;
			continue;
		}
		prev = *cur;
#endif
		r = unw_step(cur);
		if (r < 0 || rw__lp_step_guessed(cur))
			return RW__LP_UNWIND_FAILED;
		if (r == 0 && !rw__lp_end_guessed(cur))
			return RW__LP_SAFE;
#ifdef RW_BACKEND_AARCH64
		if (r == 0) {
			if (past_fp_end(cur, &prev, &ctx) < 0)
				return RW__LP_UNWIND_FAILED;
			exact = false;
			continue;
		}
#endif
		sig = stepped_is_sigreturn(ip, addr);
		/* A return address of 0 ends the chain as well. */
		if (unw_get_reg(cur, UNW_REG_IP, &ip) == 0 && ip == 0)
			return RW__LP_SAFE;
		exact = sig;
#ifdef RW_BACKEND_AARCH64
		x30 = sig ? sigframe_x30(&prev) : 0;
#endif
	}
	return RW__LP_UNWIND_FAILED;
}

/* Set while this thread unwinds its own stack (nested checks fail). */
static __thread volatile sig_atomic_t in_check
	__attribute__((tls_model("initial-exec")));

/* Kept apart so that the caller's frame holds the context it captured. */
static __attribute__((noinline)) int check_from_context(unw_context_t *ctx,
							struct rw__lp_check *c)
{
	unw_cursor_t cur;

	if (unw_init_local(&cur, ctx) < 0)
		return RW__LP_UNWIND_FAILED;
	return walk(&cur, c, false, 0);
}

int rw__lp_check_self(void *uc, struct rw__lp_check *c)
{
	int saved_errno = errno, ret;
	uint64_t mask;
	bool masked;

	c->hit_ip = 0;
	c->hit_index = 0;
	if (in_check)
		return RW__LP_UNWIND_FAILED;
	in_check = 1;
	atomic_signal_fence(memory_order_seq_cst);
	masked = syscall(SYS_rt_sigprocmask, SIG_SETMASK, NULL, &mask,
			 sizeof(mask)) == 0;
	if (uc) {
		unw_cursor_t cur;

		/* On x86-64, unw_context_t is ucontext_t; on aarch64 it is
		 * the leading part of the kernel's ucontext (flags, link,
		 * stack, the 128-byte mask, then the 16-aligned
		 * sigcontext). */
		uintptr_t x30 = 0;

#ifdef RW_BACKEND_AARCH64
		x30 = ((ucontext_t *)uc)->uc_mcontext.regs[30];
#endif
		if (unw_init_local2(&cur, (unw_context_t *)uc,
				    UNW_INIT_SIGNAL_FRAME) < 0)
			ret = RW__LP_UNWIND_FAILED;
		else
			ret = walk(&cur, c, true, x30);
	} else {
		unw_context_t ctx;

		if (unw_getcontext(&ctx) < 0)
			ret = RW__LP_UNWIND_FAILED;
		else
			ret = check_from_context(&ctx, c);
	}
	if (masked)
		syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL,
			sizeof(mask));
	atomic_signal_fence(memory_order_seq_cst);
	in_check = 0;
	errno = saved_errno;
	return ret;
}

/*
 * Before any signal handler may unwind: no cache, and libunwind's lazy
 * initialization done (see the top of the file).
 */
__attribute__((constructor)) static void unwind_init(void)
{
	unw_context_t ctx;
	unw_cursor_t cur;

	unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_NONE);
	if (unw_getcontext(&ctx) == 0 && unw_init_local(&cur, &ctx) == 0)
		unw_step(&cur);
}

/* Blocked threads, from /proc/self/task/TID. */

int rw__lp_thread_syscall(pid_t tid, long *nr)
{
	char buf[256];
	ssize_t n;
	char *end;

	n = rw__task_read(tid, "syscall", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	if (strncmp(buf, "running", 7) == 0)
		return 0;
	errno = 0;
	*nr = strtol(buf, &end, 10);
	if (end == buf || errno)
		return -EIO;
	return 1;
}

/*
 * How the switch count is read: 0 not decided, 1 the third field of
 * schedstat (times run on a CPU), 2 the sum of the context switch counts
 * of status (when the kernel keeps no sched_info).
 */
static _Atomic int count_mode;

static unsigned long long field_after(const char *s, const char *key)
{
	const char *p = strstr(s, key);

	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static int switch_count(pid_t tid, int mode, unsigned long long *out)
{
	char buf[2048];
	unsigned long long v[3];
	ssize_t n;
	char *s, *end;
	int i;

	if (mode == 2) {
		n = rw__task_read(tid, "status", buf, sizeof(buf));
		if (n < 0)
			return (int)n;
		*out = field_after(buf, "\nvoluntary_ctxt_switches:") +
		       field_after(buf, "\nnonvoluntary_ctxt_switches:");
		return 0;
	}
	n = rw__task_read(tid, "schedstat", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	s = buf;
	for (i = 0; i < 3; i++) {
		v[i] = strtoull(s, &end, 10);
		if (end == s)
			return -EIO;
		s = end;
	}
	*out = v[2];
	return 0;
}

static int count_mode_get(void)
{
	int mode = atomic_load(&count_mode);
	unsigned long long v = 0;

	if (mode)
		return mode;
	/* We are running: with sched_info our own count is not 0. */
	mode = switch_count(rw__gettid(), 1, &v) == 0 && v > 0 ? 1 : 2;
	atomic_store(&count_mode, mode);
	return mode;
}

/*
 * The protocol:
 *
 * 1. Read the switch count, then the syscall file. Running: RUNNING.
 * 2. Unwind from its sp and pc (unwind_remote.c).
 * 3. Read the syscall file, then the switch count, again. The kernel shows
 *    the registers of an inactive thread only; a thread that ran after
 *    step 1 was put on a CPU, which counts, so equal counts and equal
 *    files mean the stack we read was the stack of a sleeping thread.
 *    Otherwise RW__LP_MOVED (check again, or signal it).
 *
 * A thread that exits on the way gives -ESRCH.
 */
int rw__lp_check_blocked(pid_t tid, struct rw__lp_check *c)
{
	char s1[256], s2[256];
	unsigned long long n1, n2;
	uintptr_t sp, pc;
	ssize_t l1, l2;
	int mode = count_mode_get(), r, ret;

	c->hit_ip = 0;
	c->hit_index = 0;
	r = switch_count(tid, mode, &n1);
	if (r < 0)
		return r;
	l1 = rw__task_read(tid, "syscall", s1, sizeof(s1));
	if (l1 < 0)
		return (int)l1;
	r = rw__parse_syscall(s1, &sp, &pc);
	if (r < 0)
		return r;
	if (r == 1)
		return RW__LP_RUNNING;
	ret = rw__lp_unwind_remote(tid, pc, sp, c);
	l2 = rw__task_read(tid, "syscall", s2, sizeof(s2));
	if (l2 < 0)
		return (int)l2;
	r = switch_count(tid, mode, &n2);
	if (r < 0)
		return r;
	if (l1 != l2 || memcmp(s1, s2, (size_t)l1) != 0 || n1 != n2) {
		c->hit_ip = 0;
		c->hit_index = 0;
		return RW__LP_MOVED;
	}
	return ret;
}
