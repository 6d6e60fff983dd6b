/* SPDX-License-Identifier: MIT */
/*
 * Unwinding the stack of another thread of this process that sleeps in a
 * system call, with the generic ("remote") libunwind: see unwind.c for
 * the rules, and rw__lp_check_blocked() there for the protocol around it.
 *
 * The address space is libunwind's local one (same objects, same CFI;
 * its find_proc_info walks dl_iterate_phdr() and then reads the tables
 * through our accessors), with these accessors replaced:
 *
 *	access_mem    reads through rw__lp_peek(), so that a stack that is
 *	              unmapped meanwhile (the thread woke and exited) gives
 *	              an error instead of a fault; writes are refused.
 *	              Reads go through a small per-unwind cache of 256-byte
 *	              lines: the CFI parser reads word by word.
 *	access_reg    rip and rsp only (pc and sp on aarch64), from
 *	              /proc/.../syscall; any other register is
 *	              -UNW_EBADREG, so a frame whose CFA or return address
 *	              needs, say, %rbp that no inner frame saved fails the
 *	              unwind (RW__LP_UNWIND_FAILED: the thread is then
 *	              checked in its signal handler instead). On aarch64
 *	              the return address of a leaf function is in x30,
 *	              which the kernel does not show: a thread blocked in a
 *	              leaf system call wrapper is checked in its handler.
 *	              A cursor started again at the caller of a frame that
 *	              rw__lp_cfi_step() stepped (pac-ret code, aarch64)
 *	              also has the x19-x29 that step computed.
 *	access_fpreg, resume   refused.
 *
 * The address space caches decoded CFI globally (UNW_CACHE_GLOBAL: we
 * never run in a signal handler). The cache is keyed by address, so it is
 * flushed whenever objects were loaded or unloaded since the last unwind
 * (dl_iterate_phdr's dlpi_adds and dlpi_subs counters).
 */

#include "../entry.h"

#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <string.h>

#include "unwind_remote.h" /* after <libunwind.h> */

#define LINE_SIZE 256 /* divides the page size: a line is one page's */
#define NLINES 8

struct remote_arg {
	unw_word_t pc, sp;
#ifdef RW_BACKEND_AARCH64
	/* x0-x30 where bit i of known is set: a cursor started again
	 * after rw__lp_cfi_step() (pac-ret frames). */
	unw_word_t x[31];
	uint32_t known;
#endif
	/* Read cache: line i holds LINE_SIZE bytes at base[i] if valid. */
	uintptr_t base[NLINES];
	bool valid[NLINES];
	unsigned next;
	uint8_t data[NLINES][LINE_SIZE];
};

static int remote_read(struct remote_arg *ra, uintptr_t addr, void *out,
		       size_t len)
{
	uintptr_t base = addr & ~(uintptr_t)(LINE_SIZE - 1);
	unsigned i;

	if (addr + len - base > LINE_SIZE) /* straddles two lines */
		return rw__lp_peek(addr, out, len);
	for (i = 0; i < NLINES; i++) {
		if (ra->valid[i] && ra->base[i] == base)
			goto hit;
	}
	i = ra->next;
	ra->next = (ra->next + 1) % NLINES;
	ra->valid[i] = false;
	if (rw__lp_peek(base, ra->data[i], LINE_SIZE))
		return -EFAULT;
	ra->base[i] = base;
	ra->valid[i] = true;
hit:
	memcpy(out, &ra->data[i][addr - base], len);
	return 0;
}

static int access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val,
		      int write, void *arg)
{
	(void)as;
	if (write)
		return -UNW_EINVAL;
	if (remote_read(arg, addr, val, sizeof(*val)))
		return -UNW_EINVAL;
	return 0;
}

static int access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val,
		      int write, void *arg)
{
	struct remote_arg *ra = arg;

	(void)as;
	if (write)
		return -UNW_EREADONLYREG;
	switch (reg) {
#ifdef RW_BACKEND_AARCH64
	case UNW_AARCH64_PC:
		*val = ra->pc;
		return 0;
	case UNW_AARCH64_SP:
		*val = ra->sp;
		return 0;
	case UNW_AARCH64_X0 ... UNW_AARCH64_X30:
		if (!(ra->known >> (reg - UNW_AARCH64_X0) & 1))
			return -UNW_EBADREG;
		*val = ra->x[reg - UNW_AARCH64_X0];
		return 0;
#else
	case UNW_X86_64_RIP:
		*val = ra->pc;
		return 0;
	case UNW_X86_64_RSP:
		*val = ra->sp;
		return 0;
#endif
	default:
		return -UNW_EBADREG;
	}
}

static int access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val,
			int write, void *arg)
{
	(void)as;
	(void)reg;
	(void)val;
	(void)write;
	(void)arg;
	return -UNW_EBADREG;
}

static int resume(unw_addr_space_t as, unw_cursor_t *cur, void *arg)
{
	(void)as;
	(void)cur;
	(void)arg;
	return -UNW_EINVAL;
}

/* Created once; NULL if libunwind could not allocate it. */
static unw_addr_space_t remote_as;
static pthread_once_t remote_once = PTHREAD_ONCE_INIT;

static void remote_as_create(void)
{
	unw_accessors_t acc = *unw_get_accessors(unw_local_addr_space);

	acc.access_mem = access_mem;
	acc.access_reg = access_reg;
	acc.access_fpreg = access_fpreg;
	acc.resume = resume;
	remote_as = unw_create_addr_space(&acc, 0);
	if (remote_as)
		unw_set_caching_policy(remote_as, UNW_CACHE_GLOBAL);
}

/* Loads and unloads seen by the last flush check. */
static _Atomic unsigned long long dl_seen_adds, dl_seen_subs;

struct dl_counts {
	unsigned long long adds, subs;
	bool ok;
};

static int dl_counts_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	struct dl_counts *d = data;

	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) +
			    sizeof(info->dlpi_subs)) {
		d->adds = info->dlpi_adds;
		d->subs = info->dlpi_subs;
		d->ok = true;
	}
	return 1; /* the counters are global: the first object is enough */
}

static void flush_if_objects_changed(void)
{
	struct dl_counts d = { 0, 0, false };

	dl_iterate_phdr(dl_counts_cb, &d);
	if (d.ok && d.adds == atomic_load(&dl_seen_adds) &&
	    d.subs == atomic_load(&dl_seen_subs))
		return;
	unw_flush_cache(remote_as, 0, 0);
	atomic_store(&dl_seen_adds, d.adds);
	atomic_store(&dl_seen_subs, d.subs);
}

#ifdef RW_BACKEND_AARCH64
/*
 * A frame libunwind cannot step (rw__lp_step_unchecked(): pac-ret code,
 * or no CFI): step it with rw__lp_cfi_step() and start a fresh cursor at
 * the caller, which knows pc, sp and the registers of x19-x29 the step
 * computed (x30 is left out: libunwind looks the fresh cursor's CFI up
 * at pc itself, and for a return address at the very end of a function
 * that is the next function's entry, whose rule for the return address
 * is x30; unknown, it fails the walk instead of looping). 1 stepped,
 * 0 end of the stack, -1 failed.
 */
static int cfi_step(unw_cursor_t *cur, struct remote_arg *ra, bool exact)
{
	struct rw__lp_frame f;
	int r = rw__lp_cfi_step_cursor(cur, exact, 0, &f);

	if (r <= 0)
		return r;
	memset(ra->valid, 0, sizeof(ra->valid));
	ra->pc = f.pc;
	ra->sp = f.reg[31];
	ra->known = f.known & 0x3ff80000u; /* x19-x29 */
	for (int i = 19; i <= 29; i++)
		ra->x[i] = f.reg[i];
	return unw_init_remote(cur, remote_as, ra) < 0 ? -1 : 1;
}
#endif

int rw__lp_unwind_remote(pid_t tid, uintptr_t pc, uintptr_t sp,
			 struct rw__lp_check *c)
{
	uintptr_t tramp = rw__entry_return_tramp();
	struct remote_arg ra;
	unw_cursor_t cur;
#ifdef RW_BACKEND_AARCH64
	unw_cursor_t prev;
#endif
	bool exact = true;
	int n, r;

	pthread_once(&remote_once, remote_as_create);
	if (!remote_as)
		return RW__LP_UNWIND_FAILED;
	flush_if_objects_changed();
	memset(ra.valid, 0, sizeof(ra.valid));
	ra.next = 0;
	ra.pc = pc;
	ra.sp = sp;
#ifdef RW_BACKEND_AARCH64
	ra.known = 0;
#endif
	if (unw_init_remote(&cur, remote_as, &ra) < 0)
		return RW__LP_UNWIND_FAILED;
	for (n = 0; n < RW__LP_MAX_FRAMES; n++) {
		unw_word_t ip;
		bool sig;

		if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0 || ip == 0)
			return RW__LP_UNWIND_FAILED;
		ip = rw__lp_strip_pac(ip);
		if (!exact && tramp && ip == tramp) {
			/* Graph tracing's return trampoline (src/ftrace.c):
			 * go on from the real return address. */
			unw_word_t csp;
			uintptr_t real;

			if (unw_get_reg(&cur, UNW_REG_SP, &csp) == 0 &&
			    (real = rw__entry_real_return(
				     tid, csp - sizeof(uintptr_t)))) {
				memset(ra.valid, 0, sizeof(ra.valid));
				ra.pc = real;
				ra.sp = csp;
#ifdef RW_BACKEND_AARCH64
				ra.known = 0;
#endif
				if (unw_init_remote(&cur, remote_as, &ra) < 0)
					return RW__LP_UNWIND_FAILED;
				ip = real;
			}
		}
		r = rw__lp_classify(c, exact ? ip : ip - 1);
		if (r >= 0)
			return r;
		sig = rw__lp_is_sigreturn(ip);
#ifdef RW_BACKEND_AARCH64
		if (rw__lp_step_unchecked(&cur)) {
			r = cfi_step(&cur, &ra, exact);
			if (r < 0)
				return RW__LP_UNWIND_FAILED;
			if (r == 0)
				return RW__LP_SAFE;
			exact = false;
			continue;
		}
		prev = cur;
#endif
		r = unw_step(&cur);
		if (r < 0 || rw__lp_step_guessed(&cur))
			return RW__LP_UNWIND_FAILED;
		if (r == 0 && !rw__lp_end_guessed(&cur))
			return RW__LP_SAFE;
#ifdef RW_BACKEND_AARCH64
		if (r == 0) {
			/* libunwind stopped on x29 == 0: go on from the
			 * return address it did not report, as unwind.c's
			 * past_fp_end() does (registers: pc and sp only). */
			unw_proc_info_t pi;
			unw_word_t ra_, sp_;

			if (unw_get_proc_info(&prev, &pi) < 0 ||
			    unw_get_reg(&cur, UNW_AARCH64_X30, &ra_) < 0 ||
			    unw_get_reg(&cur, UNW_REG_SP, &sp_) < 0 ||
			    !(ra_ = rw__lp_strip_pac(ra_)))
				return RW__LP_UNWIND_FAILED;
			memset(ra.valid, 0, sizeof(ra.valid));
			ra.pc = ra_;
			ra.sp = sp_;
			ra.known = 0;
			if (unw_init_remote(&cur, remote_as, &ra) < 0)
				return RW__LP_UNWIND_FAILED;
			exact = false;
			continue;
		}
#endif
		if (unw_get_reg(&cur, UNW_REG_IP, &ip) == 0 && ip == 0)
			return RW__LP_SAFE;
		exact = sig;
	}
	return RW__LP_UNWIND_FAILED;
}
