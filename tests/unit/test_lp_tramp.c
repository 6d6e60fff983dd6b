/* SPDX-License-Identifier: MIT */
/*
 * Live patching's check of a thread's own stack (rw__lp_check_self, the
 * check a running thread makes in rewire's signal handler) sees through
 * graph tracing's return trampoline, as the kernel's unwinder does with
 * ftrace_graph_ret_addr(): a graph-traced function's return address is the
 * trampoline's, and the frame beyond it is found from the shadow stack.
 *
 * lpt_outer (its own section: the "patched function" range) calls
 * lpt_traced, which is graph-traced, which calls lpt_check:
 *   1. lpt_check runs rw__lp_check_self(NULL) itself;
 *   2. lpt_check spins until a signal's handler ran rw__lp_check_self(uc)
 *      on the interrupted context (the path of a transition's check).
 * Oracle: both find lpt_outer on the stack (RW__LP_ON_STACK, the hit in
 * its range). Without the walk through the trampoline the frame above
 * lpt_traced is the trampoline, which is busy (RW__LP_BUSY): a transition
 * would wait for the thread to leave every traced function. The same walk
 * with lpt_outer not asked for is SAFE, and the traced function's returns
 * are all traced (the trampoline really was the return address).
 * Built with -mbranch-protection=standard on aarch64 (PAC-signed return
 * addresses: the trampoline's address is signed in lpt_traced's frame).
 */
#include <rewire/config.h>

#include "check.h"

#ifndef RW_BACKEND_PATCHING
int main(void)
{
	SKIP("graph tracing and live patching need a patching backend");
}
#else

#include "arch/arch.h"
#include "entry.h"
#include "livepatch/lp.h"

#include <rewire/ftrace.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#define NOINLINE __attribute__((noinline, noclone, used))

long lpt_outer(int how);
long lpt_traced(int how);
long lpt_check(int how);

static struct rw__lp_range outer_r, unrelated_r, busy_r;
static _Atomic int sig_result = -1, sig_done, in_spin;
static _Atomic long returns, entries;
static _Atomic uintptr_t sig_hit;

static NOINLINE __attribute__((section("lpts_unrelated"))) int
lpt_unrelated(void)
{
	return 1;
}

static int check_now(void *uc, const struct rw__lp_range *r, uintptr_t *hit)
{
	struct rw__lp_check c = {
		.funcs = r, .nfuncs = 1, .busy = &busy_r, .nbusy = 1
	};
	int rc = rw__lp_check_self(uc, &c);

	*hit = c.hit_ip;
	return rc;
}

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	uintptr_t hit;

	(void)sig;
	(void)si;
	atomic_store(&sig_result, check_now(uc, &outer_r, &hit));
	atomic_store(&sig_hit, hit);
	atomic_store(&sig_done, 1);
}

NOINLINE long lpt_check(int how)
{
	uintptr_t hit = 0;
	long r;

	if (how == 0) {
		r = check_now(NULL, &outer_r, &hit);
		if (r == RW__LP_ON_STACK &&
		    (hit < outer_r.start || hit >= outer_r.end))
			r = 100; /* a hit outside lpt_outer */
		if (check_now(NULL, &unrelated_r, &hit) != RW__LP_SAFE)
			r = 200 + r;
		return r;
	}
	atomic_store(&in_spin, 1);
	while (!atomic_load(&sig_done))
		;
	return atomic_load(&sig_result);
}

NOINLINE long lpt_traced(int how)
{
	long r = lpt_check(how);

	__asm__ volatile("" ::: "memory");
	return r;
}

NOINLINE __attribute__((section("lpts_outer"))) long lpt_outer(int how)
{
	long r = lpt_traced(how);

	__asm__ volatile("" ::: "memory");
	return r;
}

static void on_entry(void *data, const struct rw_ftrace_func *f,
		     uintptr_t caller, unsigned depth)
{
	(void)data;
	(void)f;
	(void)caller;
	(void)depth;
	atomic_fetch_add(&entries, 1);
}

static void on_return(void *data, const struct rw_ftrace_func *f,
		      uintptr_t caller, uint64_t ns, unsigned depth)
{
	(void)data;
	(void)f;
	(void)caller;
	(void)ns;
	(void)depth;
	atomic_fetch_add(&returns, 1);
}

static void *signalled(void *arg)
{
	(void)arg;
	return (void *)lpt_outer(1);
}

int main(void)
{
	const char *pat = "lpt_traced";
	struct rw_ftrace_probe p = { on_entry, on_return, NULL };
	uintptr_t tramp, hit;
	struct rw_ftrace *t;
	struct sigaction sa;
	pthread_t th;
	void *ret;
	long r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	outer_r = SECTION_RANGE(lpts_outer);
	unrelated_r = SECTION_RANGE(lpts_unrelated);
	CHECK_EQ(lpt_unrelated(), 1);

	/* Untraced first: the plain walk finds lpt_outer. */
	tramp = rw__entry_return_tramp();
	busy_r = (struct rw__lp_range){ 1, 2 };
	CHECK_EQ(lpt_outer(0), RW__LP_ON_STACK);

	CHECK_OK(rw_ftrace_attach(&pat, 1, &p, 0, &t));
	tramp = rw__entry_return_tramp();
	CHECK(tramp != 0);
	/* The tracer's code (the trampoline's) is busy, as in a
	 * transition's check. */
	rw__arch_trace_code(&busy_r.start, &busy_r.end);
	CHECK(tramp >= busy_r.start && tramp < busy_r.end);

	/* 1. The thread's own walk, through the trampoline. */
	r = lpt_outer(0);
	printf("own walk through the trampoline: %ld (ON_STACK is %d)\n", r,
	       RW__LP_ON_STACK);
	CHECK_EQ(r, RW__LP_ON_STACK);
	CHECK_EQ(atomic_load(&entries), 1);
	CHECK_EQ(atomic_load(&returns), 1);

	/* 2. From a signal handler, on the interrupted context. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	CHECK(pthread_create(&th, NULL, signalled, NULL) == 0);
	while (!atomic_load(&in_spin))
		sched_yield();
	CHECK(pthread_kill(th, SIGUSR1) == 0);
	CHECK(pthread_join(th, &ret) == 0);
	hit = atomic_load(&sig_hit);
	printf("signal handler's walk: %ld, hit %#lx in [%#lx, %#lx)\n",
	       (long)ret, (unsigned long)hit, (unsigned long)outer_r.start,
	       (unsigned long)outer_r.end);
	CHECK_EQ((long)ret, RW__LP_ON_STACK);
	CHECK(hit >= outer_r.start && hit < outer_r.end);
	CHECK_EQ(atomic_load(&entries), 2);
	CHECK_EQ(atomic_load(&returns), 2);

	CHECK_OK(rw_ftrace_detach(t));
	printf("test_lp_tramp: ok\n");
	return 0;
}
#endif
