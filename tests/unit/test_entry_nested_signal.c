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
 *
 * aarch64: the entry is two 4-byte NOPs and only the first becomes a B,
 * so there is no run to be inside of: the interrupted context is made to
 * call nested_fn() as if it had executed the first NOP, and resumes at the
 * second when the handler returns, after the first became a B: it runs
 * the body untraced and returns where the signal came (only the main
 * thread's call is traced).
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("needs a backend that patches code (x86_64, aarch64)");
}
#else

#include <rewire/ftrace.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(RW_BACKEND_X86_64)
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
#else
/*
 * Two NOPs (-fpatchable-function-entry=2), then RET. The worker spins in
 * spin() (X0 = &stop, only X1 used); the handler sends the interrupted
 * context to nested_fn + 4 with X30 at resume(), which puts X30 back and
 * jumps where the signal came, through X16 (unused by spin()).
 */
void nested_fn(void);
void spin(_Atomic int *stop);
void spin_end(void);
void resume(void);
uintptr_t saved_pc, saved_x30;
__asm__(".text\n"
	".globl nested_fn\n"
	".type nested_fn, %function\n"
	"nested_fn:\n"
	"	nop\n	nop\n"
	"	ret\n"
	".size nested_fn, .-nested_fn\n"
	".globl spin\n"
	".type spin, %function\n"
	"spin:\n"
	"1:	ldar w1, [x0]\n"
	"	cbz w1, 1b\n"
	"	ret\n"
	".globl spin_end\n"
	"spin_end:\n"
	".size spin, .-spin\n"
	".globl resume\n"
	".type resume, %function\n"
	"resume:\n"
	"	adrp x16, saved_x30\n"
	"	ldr x30, [x16, #:lo12:saved_x30]\n"
	"	adrp x16, saved_pc\n"
	"	ldr x16, [x16, #:lo12:saved_pc]\n"
	"	br x16\n"
	".size resume, .-resume\n");

static _Atomic int in_handler, attached, stop, spinning, missed;

static void on_usr1(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	mcontext_t *m = &uc->uc_mcontext;

	(void)sig;
	(void)si;
	if (m->pc < (uintptr_t)spin || m->pc >= (uintptr_t)spin_end) {
		atomic_store(&missed, 1); /* not in spin() yet: again */
		return;
	}
	/* Call nested_fn as if its first NOP had run. */
	saved_pc = m->pc;
	saved_x30 = m->regs[30];
	m->regs[30] = (uintptr_t)resume;
	m->pc = (uintptr_t)nested_fn + 4;
	atomic_store(&in_handler, 1);
	while (!atomic_load(&attached))
		;
}

static void *worker(void *arg)
{
	(void)arg;
	atomic_store(&spinning, 1);
	spin(&stop);
	return NULL;
}
#endif

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
#if defined(RW_BACKEND_AARCH64)
	while (!atomic_load(&spinning))
		usleep(1000);
	do {
		atomic_store(&missed, 0);
		CHECK(pthread_kill(th, SIGUSR1) == 0);
		while (!atomic_load(&in_handler) && !atomic_load(&missed))
			usleep(1000);
	} while (!atomic_load(&in_handler));
#else
	CHECK(pthread_kill(th, SIGUSR1) == 0);
	while (!atomic_load(&in_handler))
		usleep(1000);
#endif
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
#if defined(RW_BACKEND_AARCH64)
	puts("a thread past the first NOP under a signal handler went on "
	     "untraced: ok");
#else
	puts("a thread in a NOP run under a signal handler was moved: ok");
#endif
	return 0;
}
#endif
