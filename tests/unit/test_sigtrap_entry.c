/* SPDX-License-Identifier: MIT */
/*
 * A program that installs a SIGTRAP handler, or blocks SIGTRAP, through
 * each libc entry point, and through a raw rt_sigaction system call, after
 * (and for some, before) rewire installed its own handler.
 *
 * Each case runs in a child. A runner thread calls a static key's branch
 * in a loop while the child flips the key FLIPS times, so that the runner
 * meets armed int3 sites. Through a libc entry point, every flip must
 * succeed (the interposer kept rewire's handler) and the program's handler
 * must still get the program's own SIGTRAPs (raise), or be ignored for
 * SIG_IGN. Through the raw system call, which no interposer sees, the
 * first flip must be refused with -RW_ERR_TRAP_REPLACED and leave the key
 * and the code as they were. Never a crash: before the interposers and the
 * check, every one of these killed the child with SIGILL, SIGSEGV or
 * SIGTRAP.
 */
#include <rewire/config.h>

#include "check.h"
#include "wait_child.h"

#ifndef RW_BACKEND_PATCHING
int main(void)
{
	SKIP("SIGTRAP handling matters only on the patching backends");
}
#else

#include <rewire/rewire.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLIPS 200
#define MIN_FLIPS 20
#define FLIP_NS 2000000000ull

/* Exported by glibc, declared by no header with _GNU_SOURCE. */
extern __sighandler_t bsd_signal(int sig, __sighandler_t handler);
extern int __sigaction(int sig, const struct sigaction *act,
		       struct sigaction *oact);
/* sigtrap_strict.c: signal() compiled as strict C, __sysv_signal. */
void (*strict_signal(int sig, void (*handler)(int)))(int);

/* sigset, sighold and sigignore are deprecated, and what programs use. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

RW_DEFINE_STATIC_KEY_FALSE(key);

__attribute__((noinline)) static int branch(void)
{
	if (rw_static_branch_unlikely(key))
		return 1;
	return 0;
}

enum entry {
	E_SIGACTION,
	E___SIGACTION,
	E_SIGNAL,
	E_SIGNAL_STRICT,
	E_SYSV_SIGNAL,
	E_BSD_SIGNAL,
	E_SSIGNAL,
	E_SIGSET,
	E_SIGIGNORE,
	E_SIGINTERRUPT,
	E_SIGSET_HOLD, /* blocks SIGTRAP in the runner */
	E_SIGHOLD,     /* the same */
	E_RAW,
	NENTRIES
};

static const char *const names[NENTRIES] = {
	[E_SIGACTION] = "sigaction",
	[E___SIGACTION] = "__sigaction",
	[E_SIGNAL] = "signal",
	[E_SIGNAL_STRICT] = "signal (strict C: __sysv_signal)",
	[E_SYSV_SIGNAL] = "sysv_signal",
	[E_BSD_SIGNAL] = "bsd_signal",
	[E_SSIGNAL] = "ssignal",
	[E_SIGSET] = "sigset",
	[E_SIGIGNORE] = "sigignore",
	[E_SIGINTERRUPT] = "siginterrupt",
	[E_SIGSET_HOLD] = "sigset(SIG_HOLD)",
	[E_SIGHOLD] = "sighold",
	[E_RAW] = "raw rt_sigaction",
};

static _Atomic int traps, stop, runner_ready, runner_bad;
static _Atomic long runs;

static void on_trap(int sig)
{
	(void)sig;
	atomic_fetch_add(&traps, 1);
}

/* The kernel's struct sigaction, for the raw system call. */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static void install(enum entry e)
{
	struct sigaction sa;
	struct ksigaction k;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_trap;
	sigemptyset(&sa.sa_mask);
	switch (e) {
	case E_SIGACTION:
		CHECK(sigaction(SIGTRAP, &sa, NULL) == 0);
		break;
	case E___SIGACTION:
		CHECK(__sigaction(SIGTRAP, &sa, NULL) == 0);
		break;
	case E_SIGNAL:
		CHECK(signal(SIGTRAP, on_trap) != SIG_ERR);
		break;
	case E_SIGNAL_STRICT:
		CHECK(strict_signal(SIGTRAP, on_trap) != SIG_ERR);
		break;
	case E_SYSV_SIGNAL:
		CHECK(sysv_signal(SIGTRAP, on_trap) != SIG_ERR);
		break;
	case E_BSD_SIGNAL:
		CHECK(bsd_signal(SIGTRAP, on_trap) != SIG_ERR);
		break;
	case E_SSIGNAL:
		CHECK(ssignal(SIGTRAP, on_trap) != SIG_ERR);
		break;
	case E_SIGSET:
		CHECK(sigset(SIGTRAP, on_trap) != SIG_ERR);
		break;
	case E_SIGIGNORE:
		CHECK(sigignore(SIGTRAP) == 0);
		break;
	case E_SIGINTERRUPT:
		CHECK(sigaction(SIGTRAP, &sa, NULL) == 0);
		CHECK(siginterrupt(SIGTRAP, 1) == 0);
		break;
	case E_RAW:
		/* Keep libc's restorer (SA_RESTORER): the kernel needs one
		 * to return from the handler. */
		CHECK(syscall(SYS_rt_sigaction, SIGTRAP, NULL, &k,
			      sizeof(k.mask)) == 0);
		k.handler = (void *)on_trap;
		k.flags &= ~(unsigned long)SA_SIGINFO;
		k.mask = 0;
		CHECK(syscall(SYS_rt_sigaction, SIGTRAP, &k, NULL,
			      sizeof(k.mask)) == 0);
		break;
	default:
		break;
	}
}

static void *runner(void *p)
{
	enum entry e = (enum entry)(intptr_t)p;
	sigset_t cur;

	/* The masks are per thread: the thread that meets the int3. */
	if (e == E_SIGSET_HOLD)
		CHECK(sigset(SIGTRAP, SIG_HOLD) != SIG_ERR);
	if (e == E_SIGHOLD)
		CHECK(sighold(SIGTRAP) == 0);
	CHECK(pthread_sigmask(SIG_SETMASK, NULL, &cur) == 0);
	if (sigismember(&cur, SIGTRAP))
		atomic_store(&runner_bad, 1);
	atomic_store(&runner_ready, 1);
	while (!atomic_load(&stop)) {
		int r = branch();

		if (r != 0 && r != 1)
			atomic_store(&runner_bad, 1);
		atomic_fetch_add(&runs, 1);
	}
	return NULL;
}

static int child(enum entry e, bool before)
{
	uint64_t t0 = rw_test_now_ns();
	pthread_t t;
	int err = 0;

	if (before)
		install(e);
	/* The first batch installs rewire's SIGTRAP handler. */
	CHECK_OK(rw_static_key_enable(&key));
	CHECK_OK(rw_static_key_disable(&key));
	if (!before)
		install(e);
	CHECK(pthread_create(&t, NULL, runner, (void *)(intptr_t)e) == 0);
	while (!atomic_load(&runner_ready))
		sched_yield();
	/* FLIPS flips, or fewer (at least MIN_FLIPS) where they are slow:
	 * every flip is up to six core syncs, which cost milliseconds under
	 * emulation (the aarch64 suite) and on a loaded machine. */
	for (int i = 0; i < FLIPS && !err &&
			(i < MIN_FLIPS || rw_test_now_ns() - t0 < FLIP_NS);
	     i++) {
		err = rw_static_key_enable(&key);
		if (!err)
			err = rw_static_key_disable(&key);
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	CHECK(!atomic_load(&runner_bad));
	CHECK(!rw_static_key_enabled(&key));
	CHECK_EQ(branch(), 0);
	if (e == E_RAW) {
		CHECK_EQ(err, -RW_ERR_TRAP_REPLACED);
		CHECK(strstr(rw_strerror(err), "SIGTRAP handler replaced"));
		/* The program's handler is the kernel's now. */
		raise(SIGTRAP);
		CHECK_EQ(atomic_load(&traps), 1);
		return 0;
	}
	CHECK_OK(err);
	/* The program's own SIGTRAPs reach its handler (or are ignored). */
	if (e != E_SIGSET_HOLD && e != E_SIGHOLD) {
		raise(SIGTRAP);
		CHECK_EQ(atomic_load(&traps), e == E_SIGIGNORE ? 0 : 1);
	}
	return 0;
}

static bool run_case(enum entry e, bool before)
{
	char what[128];
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(child(e, before));
	/* A case takes about 2 s (FLIP_NS); a hang is reported with the
	 * child's threads. */
	snprintf(what, sizeof(what), "%s %s rewire's handler", names[e],
		 before ? "before" : "after");
	if (rw_test_wait_child(pid, &status, 60000, what))
		return false;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return true;
	fprintf(stderr, "%s %s rewire's handler: %s %d\n", names[e],
		before ? "before" : "after",
		WIFSIGNALED(status) ? "killed by signal" : "exit",
		WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	return false;
}

int main(void)
{
	int failed = 0;

	for (int e = 0; e < NENTRIES; e++) {
		failed += !run_case((enum entry)e, false);
		if (e != E_RAW && e != E_SIGSET_HOLD && e != E_SIGHOLD)
			failed += !run_case((enum entry)e, true);
	}
	CHECK_EQ(failed, 0);
	printf("test_sigtrap_entry: ok (%d entry points)\n", NENTRIES);
	return 0;
}
#endif
