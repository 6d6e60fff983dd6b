/* SPDX-License-Identifier: MIT */
/*
 * A thread inside a run of one-byte NOPs when that entry becomes a jump is
 * moved past the run (src/entry.c), also when the thread is running a
 * signal handler that interrupted it there: the context that resumes when
 * the handler returns is the one to move (found on the thread's stack,
 * rw__arch_outer_contexts), not only the handler's own.
 *
 * The worker spins; its SIGUSR1 handler makes the interrupted context call
 * nested_fn() as if it had executed the first two of nested_fn's five
 * one-byte NOPs, then waits while the main thread attaches function
 * tracing to nested_fn (the batch's move runs in rewire's signal, nested
 * on top of that handler). When the handler returns the worker must resume
 * past the jump; resuming at +2, inside it, crashes.
 */
#include <rewire/config.h>

#include "check.h"

#ifndef RW_BACKEND_X86_64
int main(void)
{
	SKIP("needs the x86_64 backend");
}
#else

#include <rewire/ftrace.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

/* Five one-byte NOPs (a patchable entry as GCC makes it), then ret: it
 * keeps every register, so that the interrupted loop can go on. */
void nested_fn(void);
__asm__(".text\n"
	".globl nested_fn\n"
	".type nested_fn, @function\n"
	"nested_fn:\n"
	"	nop\n	nop\n	nop\n	nop\n	nop\n"
	"	ret\n"
	".size nested_fn, .-nested_fn\n");

static _Atomic int in_handler, attached, stop;

static void on_usr1(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;

	(void)sig;
	(void)si;
	/* Resume in nested_fn after two of its NOPs, returning to where the
	 * signal came. */
	g[REG_RSP] -= 8;
	*(greg_t *)g[REG_RSP] = g[REG_RIP];
	g[REG_RIP] = (greg_t)((uintptr_t)nested_fn + 2);
	atomic_store(&in_handler, 1);
	while (!atomic_load(&attached))
		;
}

static void *worker(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		__asm__ volatile("" ::: "memory");
	return NULL;
}

static _Atomic long hits;

static void on_entry(void *data, const struct rw_ftrace_func *f,
		     uintptr_t caller, unsigned depth)
{
	(void)data;
	(void)f;
	(void)caller;
	(void)depth;
	atomic_fetch_add(&hits, 1);
}

int main(void)
{
	struct sigaction sa;
	const char *pat[] = { "nested_fn" };
	struct rw_ftrace_probe probe = { on_entry, NULL, NULL };
	struct rw_ftrace *t;
	pthread_t th;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	CHECK(pthread_create(&th, NULL, worker, NULL) == 0);
	CHECK(pthread_kill(th, SIGUSR1) == 0);
	while (!atomic_load(&in_handler))
		usleep(1000);
	CHECK_OK(rw_ftrace_attach(pat, 1, &probe, 0, &t));
	atomic_store(&attached, 1);
	/* The worker returns from its handler, runs the rest of
	 * nested_fn and spins again. */
	usleep(100000);
	nested_fn();
	CHECK_EQ(atomic_load(&hits), 1);
	atomic_store(&stop, 1);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_OK(rw_ftrace_detach(t));
	puts("a thread in a NOP run under a signal handler was moved: ok");
	return 0;
}
#endif
