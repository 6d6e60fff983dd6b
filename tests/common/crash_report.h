/* SPDX-License-Identifier: MIT */
/*
 * rw_test_crash_report(): a fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE)
 * in the test process prints, on stderr, before the process dies of it as
 * before (ctest still says "SegFault"):
 *   - the signal, its code and fault address, the thread;
 *   - pc, sp (and lr on aarch64), each with the object and offset it falls
 *     in (dladdr) and its line of /proc/self/maps (anonymous memory, a
 *     trampoline page, shows there);
 *   - the backtrace from the handler (glibc's backtrace(), primed at
 *     install so that it does not load libgcc inside the handler);
 *   - the fault address's /proc/self/maps line, or that it is unmapped;
 *   - x86-64: the word at sp, where a call to a bad address left the
 *     return address.
 * A crash that happens once in fifty runs on a CI machine then says where.
 *
 * Not with ASan or TSan: their own reports are better, and they own these
 * signals. The handler runs once (SA_RESETHAND) and returns: the fault
 * happens again with the default action.
 */
#ifndef REWIRE_TEST_CRASH_REPORT_H
#define REWIRE_TEST_CRASH_REPORT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static inline void rw_test__crash_write(const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(2, s, n);

		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static inline void rw_test__crash_puts(const char *s)
{
	rw_test__crash_write(s, strlen(s));
}

/* The lines of /proc/self/maps whose range holds @addr; 0 if none. */
static inline int rw_test__crash_maps(unsigned long addr, const char *what)
{
	char buf[4096], line[512], msg[640];
	size_t used = 0;
	ssize_t n;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC), found = 0;

	if (fd < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			unsigned long lo, hi;

			if (buf[i] != '\n') {
				if (used < sizeof(line) - 1)
					line[used++] = buf[i];
				continue;
			}
			line[used] = '\0';
			used = 0;
			if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
			    addr >= lo && addr < hi) {
				int len = snprintf(msg, sizeof(msg),
						   "  %s in: %s\n", what, line);

				rw_test__crash_write(msg, (size_t)len);
				found = 1;
			}
		}
	}
	close(fd);
	return found;
}

static inline void rw_test__crash_where(const char *what, unsigned long addr)
{
	char msg[640];
	Dl_info info;
	int len;

	if (addr && dladdr((void *)addr, &info) && info.dli_fname) {
		const char *sym = info.dli_sname ? info.dli_sname : "?";
		unsigned long off =
			info.dli_sname ? addr - (unsigned long)info.dli_saddr
				       : 0;

		len = snprintf(msg, sizeof(msg),
			       "  %s %#lx: %s+%#lx (%s+%#lx)\n", what, addr,
			       info.dli_fname,
			       addr - (unsigned long)info.dli_fbase, sym, off);
	} else {
		len = snprintf(msg, sizeof(msg), "  %s %#lx: in no object\n",
			       what, addr);
	}
	rw_test__crash_write(msg, (size_t)len);
	if (addr)
		rw_test__crash_maps(addr, what);
}

/* pc, sp and (aarch64; 0 elsewhere) lr of a signal handler's context. */
static inline void rw_test_uc_regs(const void *ucv, unsigned long *pc,
				   unsigned long *sp, unsigned long *lr)
{
	const ucontext_t *uc = (const ucontext_t *)ucv;

	*pc = *sp = *lr = 0;
#if defined(__aarch64__)
	*pc = uc->uc_mcontext.pc;
	*sp = uc->uc_mcontext.sp;
	*lr = uc->uc_mcontext.regs[30];
#elif defined(__x86_64__)
	*pc = (unsigned long)uc->uc_mcontext.gregs[REG_RIP];
	*sp = (unsigned long)uc->uc_mcontext.gregs[REG_RSP];
#else
	(void)uc;
#endif
}

static inline void rw_test__on_crash(int sig, siginfo_t *si, void *ucv)
{
	unsigned long pc, sp, lr, addr;
	void *bt[48];
	char msg[256];
	int len, n;

	rw_test_uc_regs(ucv, &pc, &sp, &lr);
	addr = (unsigned long)si->si_addr;
	len = snprintf(msg, sizeof(msg),
		       "\n*** crash report: signal %d (%s), code %d, address "
		       "%#lx, thread %ld\n",
		       sig, strsignal(sig), si->si_code, addr,
		       (long)syscall(SYS_gettid));
	rw_test__crash_write(msg, (size_t)len);
	rw_test__crash_where("pc", pc);
	len = snprintf(msg, sizeof(msg), "  sp %#lx\n", sp);
	rw_test__crash_write(msg, (size_t)len);
	if (lr)
		rw_test__crash_where("lr", lr);
	if (sig == SIGSEGV || sig == SIGBUS) {
		if (!rw_test__crash_maps(addr, "address"))
			rw_test__crash_puts("  address: not mapped\n");
	}
	rw_test__crash_puts("  backtrace:\n");
	n = backtrace(bt, 48);
	backtrace_symbols_fd(bt, n, 2);
#if defined(__x86_64__)
	/* A jump to nowhere: the return address a call left at sp. Last, as
	 * a bad sp faults here (and the default action ends it). */
	if (sp && rw_test__crash_maps(sp, "sp"))
		rw_test__crash_where("word at sp", *(const unsigned long *)sp);
#endif
	rw_test__crash_puts("*** end of crash report\n");
}

static inline void rw_test_crash_report(void)
{
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE };
	struct sigaction sa;
	void *prime[2];

	/* backtrace() loads libgcc_s on its first call: not in the
	 * handler. */
	(void)backtrace(prime, 2);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = rw_test__on_crash;
	sa.sa_flags = (int)(SA_SIGINFO | SA_RESETHAND | SA_NODEFER);
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		(void)sigaction(sigs[i], &sa, NULL);
#endif
}

#endif /* REWIRE_TEST_CRASH_REPORT_H */
