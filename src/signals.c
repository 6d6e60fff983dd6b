/* SPDX-License-Identifier: MIT */
/*
 * Keeping SIGTRAP deliverable, and passing on the SIGTRAPs that are not
 * rewire's.
 *
 * A thread that executes int3 with SIGTRAP blocked is killed: the kernel
 * forces the default action. rewire therefore interposes the libc
 * functions that set signal masks (sigprocmask, pthread_sigmask,
 * sigsuspend, ppoll, pselect, epoll_pwait, epoll_pwait2 and the sa_mask of
 * sigaction) and removes SIGTRAP, and rewire's cross-thread signal, from
 * the masks they install. It also interposes every libc entry point that
 * installs a handler (sigaction, __sigaction, signal, bsd_signal, ssignal,
 * __sysv_signal, which is what signal() is in strict C, sysv_signal,
 * sigset, sigignore and siginterrupt: glibc implements each with its
 * internal sigaction, which the interposed sigaction does not see) for
 * SIGTRAP itself: once rewire's handler is installed, a program's SIGTRAP
 * handler is recorded as the one to chain to, and reported back as the
 * current disposition, so debuggers' and programs' own uses of SIGTRAP
 * keep working. sigset and sighold also block signals with glibc's
 * internal sigprocmask: theirs go through the interposed one.
 *
 * What no interposer sees, a raw rt_sigaction system call, is caught
 * before each batch is armed (rw__signals_check_trap): the batch is refused
 * rather than left to kill the program at its first int3.
 *
 * Not covered (documented in doc/TEXT-PATCHING.md): masks set by raw
 * system calls, by glibc internally (it runs no patched code while they are
 * in force), by setcontext/swapcontext with a hand-made uc_sigmask, by
 * sigpause/sigblock/sigsetmask, and signalfd/sigwait users who expect
 * SIGTRAP queued.
 */
#include "text.h"

#include <rewire/threads.h>

#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef int (*sigmask_fn)(int, const sigset_t *, sigset_t *);
typedef int (*sigsuspend_fn)(const sigset_t *);
typedef int (*ppoll_fn)(struct pollfd *, nfds_t, const struct timespec *,
			const sigset_t *);
typedef int (*pselect_fn)(int, fd_set *, fd_set *, fd_set *,
			  const struct timespec *, const sigset_t *);
typedef int (*epoll_pwait_fn)(int, struct epoll_event *, int, int,
			      const sigset_t *);
typedef int (*epoll_pwait2_fn)(int, struct epoll_event *, int,
			       const struct timespec *, const sigset_t *);

/* Resolved once (constructor, or first use); read-only afterwards. */
static struct {
	_Atomic int ready;
	sigaction_fn sigaction;
	sigmask_fn sigprocmask;
	sigmask_fn pthread_sigmask;
	sigsuspend_fn sigsuspend;
	ppoll_fn ppoll;
	pselect_fn pselect;
	epoll_pwait_fn epoll_pwait;
	epoll_pwait2_fn epoll_pwait2;
} real;

static void *next_sym(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static void resolve(void)
{
	if (atomic_load_explicit(&real.ready, memory_order_acquire))
		return;
	real.sigaction = (sigaction_fn)next_sym("sigaction");
	real.sigprocmask = (sigmask_fn)next_sym("sigprocmask");
	real.pthread_sigmask = (sigmask_fn)next_sym("pthread_sigmask");
	real.sigsuspend = (sigsuspend_fn)next_sym("sigsuspend");
	real.ppoll = (ppoll_fn)next_sym("ppoll");
	real.pselect = (pselect_fn)next_sym("pselect");
	real.epoll_pwait = (epoll_pwait_fn)next_sym("epoll_pwait");
	real.epoll_pwait2 = (epoll_pwait2_fn)next_sym("epoll_pwait2");
	atomic_store_explicit(&real.ready, 1, memory_order_release);
}

__attribute__((constructor)) static void signals_init(void)
{
	resolve();
}

/*
 * The program's view of SIGTRAP once rewire's handler is installed: the
 * disposition to chain to. Each change publishes a new immutable copy; the
 * handler reads the pointer once. Old copies stay on the retired list (a
 * program changes its SIGTRAP handler a handful of times), so a handler
 * never reads freed memory. Written under trap_lock.
 */
struct trap_disp {
	struct sigaction sa;
	struct trap_disp *retired;
};
static _Atomic bool trap_ours;
/* The handler rw__signals_install_trap() installed; set once, under it. */
static void (*trap_handler)(int, siginfo_t *, void *);
static struct trap_disp *_Atomic trap_prev;
static struct rw__lock trap_lock = RW__LOCK_INIT;

static void trap_prev_read(struct sigaction *out)
{
	struct trap_disp *d = atomic_load(&trap_prev);

	if (d) {
		*out = d->sa;
	} else {
		memset(out, 0, sizeof(*out));
		out->sa_handler = SIG_DFL;
	}
}

/* trap_lock held. */
static int trap_prev_write(const struct sigaction *in)
{
	struct trap_disp *d = malloc(sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->sa = *in;
	d->retired = atomic_load(&trap_prev);
	atomic_store(&trap_prev, d);
	return 0;
}

int rw__signals_install_trap(void (*handler)(int, siginfo_t *, void *))
{
	struct sigaction sa, old;
	int err = 0;

	resolve();
	if (rw__lock_acquire(&trap_lock))
		return -EDEADLK;
	if (atomic_load(&trap_ours))
		goto out;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART | SA_ONSTACK;
	if (real.sigaction(SIGTRAP, &sa, &old)) {
		err = -errno;
		goto out;
	}
	err = trap_prev_write(&old);
	if (err) {
		real.sigaction(SIGTRAP, &old, NULL);
		goto out;
	}
	trap_handler = handler;
	atomic_store(&trap_ours, true);
	rw__log("SIGTRAP handler installed");
out:
	rw__lock_release(&trap_lock);
	return err;
}

/* The kernel's struct sigaction (rt_sigaction), not libc's. */
struct kernel_sigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

int rw__signals_check_trap(void)
{
	struct kernel_sigaction k;

	if (!atomic_load(&trap_ours))
		return 0;
	/*
	 * The kernel's disposition, read with the raw system call: libc's
	 * sigaction is interposed (ours answers with the program's view),
	 * and a sanitizer's may keep a table of its own.
	 */
	if (syscall(SYS_rt_sigaction, SIGTRAP, NULL, &k, sizeof(k.mask)))
		return -errno;
	if (k.handler == (void *)trap_handler && (k.flags & SA_SIGINFO))
		return 0;
	rw__log("SIGTRAP handler replaced behind rewire's back (now %p); "
		"refusing to patch",
		k.handler);
	return -RW_ERR_TRAP_REPLACED;
}

/* Die the way the kernel would have killed us without rewire. */
static void trap_default(int sig)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	real.sigaction(sig, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	real.pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
}

void rw__signals_chain_trap(int sig, siginfo_t *si, void *uc)
{
	struct sigaction prev;

	trap_prev_read(&prev);
	if (prev.sa_flags & SA_SIGINFO) {
		if (prev.sa_sigaction) {
			prev.sa_sigaction(sig, si, uc);
			return;
		}
	} else if (prev.sa_handler == SIG_IGN) {
		/* The kernel ignores no breakpoint trap: it forces SIG_DFL. */
		if (si && si->si_code == SI_KERNEL)
			trap_default(sig);
		return;
	} else if (prev.sa_handler != SIG_DFL) {
		prev.sa_handler(sig);
		return;
	}
	trap_default(sig);
}

/*
 * The interposed functions. Only the patching backend needs them: the
 * generic backend never executes int3 (and sanitizer runtimes, which call
 * sigaction before they are initialized, must not meet instrumented code).
 */
#ifdef RW_BACKEND_PATCHING

/* Remove the signals rewire needs deliverable from a mask. */
static const sigset_t *sanitize(const sigset_t *in, sigset_t *buf)
{
	int rt = rw_threads_signal();

	if (!in)
		return NULL;
	if (!sigismember(in, SIGTRAP) && (rt <= 0 || !sigismember(in, rt)))
		return in;
	*buf = *in;
	sigdelset(buf, SIGTRAP);
	if (rt > 0)
		sigdelset(buf, rt);
	return buf;
}

RW_EXPORT int sigaction(int sig, const struct sigaction *act,
			struct sigaction *oact)
{
	struct sigaction copy;
	sigset_t m;

	resolve();
	if (sig == SIGTRAP && atomic_load(&trap_ours)) {
		if (rw__lock_acquire(&trap_lock)) {
			errno = EDEADLK;
			return -1;
		}
		if (oact)
			trap_prev_read(oact);
		if (act) {
			copy = *act;
			copy.sa_mask = *sanitize(&act->sa_mask, &m);
			if (trap_prev_write(&copy)) {
				rw__lock_release(&trap_lock);
				errno = ENOMEM;
				return -1;
			}
		}
		rw__lock_release(&trap_lock);
		return 0;
	}
	if (act) {
		copy = *act;
		copy.sa_mask = *sanitize(&act->sa_mask, &m);
		act = &copy;
	}
	return real.sigaction(sig, act, oact);
}

/* Exported by glibc, declared by no header in this mode. */
int __sigaction(int sig, const struct sigaction *act, struct sigaction *oact);
__sighandler_t bsd_signal(int sig, __sighandler_t handler);

RW_EXPORT int __sigaction(int sig, const struct sigaction *act,
			  struct sigaction *oact)
{
	return sigaction(sig, act, oact);
}

/*
 * Install handler with flags through the interposed sigaction; the mask
 * holds sig itself when self_mask is set. The old handler, or SIG_ERR. As
 * glibc's signal functions do, SIG_ERR and bad signal numbers are EINVAL.
 */
static __sighandler_t set_handler(int sig, __sighandler_t handler, int flags,
				  bool self_mask)
{
	struct sigaction sa, old;

	if (handler == SIG_ERR || sig < 1 || sig >= NSIG) {
		errno = EINVAL;
		return SIG_ERR;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	if (self_mask)
		sigaddset(&sa.sa_mask, sig);
	sa.sa_flags = flags;
	if (sigaction(sig, &sa, &old))
		return SIG_ERR;
	return old.sa_handler;
}

/* BSD semantics: glibc's signal() outside strict C, and its aliases. */
RW_EXPORT __sighandler_t signal(int sig, __sighandler_t handler)
{
	return set_handler(sig, handler, SA_RESTART, true);
}

RW_EXPORT __sighandler_t bsd_signal(int sig, __sighandler_t handler)
{
	return set_handler(sig, handler, SA_RESTART, true);
}

RW_EXPORT __sighandler_t ssignal(int sig, __sighandler_t handler)
{
	return set_handler(sig, handler, SA_RESTART, true);
}

/*
 * System V semantics: one-shot, not blocked while it runs, no restart.
 * signal() compiled as strict C (-std=c11) is __sysv_signal.
 */
RW_EXPORT __sighandler_t __sysv_signal(int sig, __sighandler_t handler)
{
	return set_handler(sig, handler, SA_RESETHAND | SA_NODEFER, false);
}

RW_EXPORT __sighandler_t sysv_signal(int sig, __sighandler_t handler)
{
	return set_handler(sig, handler, SA_RESETHAND | SA_NODEFER, false);
}

RW_EXPORT int sigignore(int sig)
{
	return set_handler(sig, SIG_IGN, 0, false) == SIG_ERR ? -1 : 0;
}

RW_EXPORT int siginterrupt(int sig, int interrupt)
{
	struct sigaction sa;

	if (sigaction(sig, NULL, &sa))
		return -1;
	if (interrupt)
		sa.sa_flags &= ~SA_RESTART;
	else
		sa.sa_flags |= SA_RESTART;
	return sigaction(sig, &sa, NULL);
}

/* glibc's sigset and sighold, with the interposed sigaction and
 * sigprocmask instead of glibc's internal ones. */
RW_EXPORT __sighandler_t sigset(int sig, __sighandler_t disp)
{
	struct sigaction sa, old;
	sigset_t set, oset;

	if (sig < 1 || sig >= NSIG) {
		errno = EINVAL;
		return SIG_ERR;
	}
	sigemptyset(&set);
	sigaddset(&set, sig);
	if (disp == SIG_HOLD) {
		if (sigprocmask(SIG_BLOCK, &set, &oset) < 0)
			return SIG_ERR;
		if (sigismember(&oset, sig))
			return SIG_HOLD;
		if (sigaction(sig, NULL, &old) < 0)
			return SIG_ERR;
		return old.sa_handler;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = disp;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, &old) < 0)
		return SIG_ERR;
	if (sigprocmask(SIG_UNBLOCK, &set, &oset) < 0)
		return SIG_ERR;
	return sigismember(&oset, sig) ? SIG_HOLD : old.sa_handler;
}

RW_EXPORT int sighold(int sig)
{
	sigset_t set;

	if (sig < 1 || sig >= NSIG) {
		errno = EINVAL;
		return -1;
	}
	sigemptyset(&set);
	sigaddset(&set, sig);
	return sigprocmask(SIG_BLOCK, &set, NULL);
}

RW_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	sigset_t m;

	resolve();
	if (how != SIG_UNBLOCK)
		set = sanitize(set, &m);
	return real.sigprocmask(how, set, old);
}

RW_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	sigset_t m;

	resolve();
	if (how != SIG_UNBLOCK)
		set = sanitize(set, &m);
	return real.pthread_sigmask(how, set, old);
}

RW_EXPORT int sigsuspend(const sigset_t *set)
{
	sigset_t m;

	resolve();
	return real.sigsuspend(sanitize(set, &m));
}

RW_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
		    const sigset_t *set)
{
	sigset_t m;

	resolve();
	return real.ppoll(fds, n, ts, sanitize(set, &m));
}

RW_EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e,
		      const struct timespec *ts, const sigset_t *set)
{
	sigset_t m;

	resolve();
	return real.pselect(n, r, w, e, ts, sanitize(set, &m));
}

RW_EXPORT int epoll_pwait(int fd, struct epoll_event *ev, int max, int ms,
			  const sigset_t *set)
{
	sigset_t m;

	resolve();
	return real.epoll_pwait(fd, ev, max, ms, sanitize(set, &m));
}

RW_EXPORT int epoll_pwait2(int fd, struct epoll_event *ev, int max,
			   const struct timespec *ts, const sigset_t *set)
{
	sigset_t m;

	resolve();
	if (!real.epoll_pwait2) {
		errno = ENOSYS;
		return -1;
	}
	return real.epoll_pwait2(fd, ev, max, ts, sanitize(set, &m));
}
#endif /* RW_BACKEND_PATCHING */
