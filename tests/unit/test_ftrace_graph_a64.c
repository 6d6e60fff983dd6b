/* SPDX-License-Identifier: MIT */
/*
 * Graph tracing's aarch64-only paths (src/arch/aarch64/trace.c), in a
 * program built with -mbranch-protection=standard:
 *
 *   - a traced leaf function never stores its return address: it stays in
 *     X30 (the return trampoline's address). A signal interrupts the leaf
 *     (spinning on a flag) and its handler calls backtrace(): rewire puts
 *     the real return addresses back for the unwinder by walking the
 *     stack by its CFI, through the signal frame (the leaf's X30 is in the
 *     sigcontext) and through the leaf's caller, whose saved return
 *     address is signed by its PACIASP with its CFA: the real one must be
 *     written back signed alike. Oracles: backtrace() lists the leaf,
 *     its caller and that one's caller, in order (without the real
 *     addresses it would end at the return trampoline);
 *     afterwards both calls return (the caller's AUTIASP authenticates
 *     the trampoline's address written back: a wrong signature faults)
 *     with their results, each return traced once with the right caller;
 *   - the same leaf called plainly, 1,000 times from a signed caller:
 *     every return traced, with depths 1 and 0;
 *   - whether the CPU signs at all (HWCAP_PACA) is printed: without it
 *     PACIASP and rewire's PACIA1716 are NOPs and the test still runs.
 * Skipped (77) on other backends (x86-64 has no such paths: the return
 * address is always on the stack).
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("aarch64 only (x86-64's graph tracing is tested by "
	     "test_ftrace_basic and test_ftrace_graph_unwind)");
}
#else

#include <rewire/ftrace.h>

#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#ifndef HWCAP_PACA
#define HWCAP_PACA (1UL << 30)
#endif

long ga_leaf(_Atomic int *flag, long x);
long ga_mid(_Atomic int *flag, long x);
long ga_outer(_Atomic int *flag, long x);

static _Atomic int in_leaf, bt_done;
static _Atomic long entries[3], returns[3], bad_caller, max_depth;
static void *bt[64];
static int nbt;

/* A leaf: no call, no frame, X30 kept in the register. */
__attribute__((noinline)) long ga_leaf(_Atomic int *flag, long x)
{
	if (flag) {
		atomic_store_explicit(&in_leaf, 1, memory_order_relaxed);
		while (!atomic_load_explicit(flag, memory_order_relaxed))
			;
	}
	return x * 3;
}

__attribute__((noinline)) long ga_mid(_Atomic int *flag, long x)
{
	long r = ga_leaf(flag, x + 1);

	__asm__ volatile("" ::: "memory");
	return r + 1;
}

__attribute__((noinline)) long ga_outer(_Atomic int *flag, long x)
{
	long r = ga_mid(flag, x);

	__asm__ volatile("" ::: "memory");
	return r * 2;
}

static int index_of(const struct rw_ftrace_func *f)
{
	if (f->addr == (uintptr_t)ga_leaf)
		return 0;
	if (f->addr == (uintptr_t)ga_mid)
		return 1;
	if (f->addr == (uintptr_t)ga_outer)
		return 2;
	return -1;
}

/* The extents of ga_leaf, ga_mid, ga_outer (rw_ftrace_list). */
static uintptr_t lo[3], hi[3];

static int find(void *arg, const struct rw_ftrace_func *f)
{
	int i = index_of(f);

	(void)arg;
	if (i >= 0) {
		lo[i] = f->addr;
		hi[i] = f->addr + f->size;
	}
	return 0;
}

/* Is @a a return address inside function @i? */
static bool inside(uintptr_t a, int i)
{
	return a > lo[i] && a <= hi[i];
}

static void on_entry(void *data, const struct rw_ftrace_func *f,
		     uintptr_t caller, unsigned depth)
{
	int i = index_of(f);

	(void)data;
	(void)caller;
	if (i >= 0)
		atomic_fetch_add(&entries[i], 1);
	if ((long)depth > atomic_load(&max_depth))
		atomic_store(&max_depth, (long)depth);
}

static void on_return(void *data, const struct rw_ftrace_func *f,
		      uintptr_t caller, uint64_t ns, unsigned depth)
{
	int i = index_of(f);

	(void)data;
	(void)ns;
	(void)depth;
	if (i < 0)
		return;
	atomic_fetch_add(&returns[i], 1);
	/* The leaf returns into ga_mid, ga_mid into ga_outer. */
	if ((i == 0 && !inside(caller, 1)) || (i == 1 && !inside(caller, 2)))
		atomic_fetch_add(&bad_caller, 1);
}

static void on_usr1(int sig)
{
	(void)sig;
	nbt = backtrace(bt, 64);
	atomic_store(&bt_done, 1);
}

static _Atomic int release;
static long thread_result;

static void *worker(void *arg)
{
	(void)arg;
	thread_result = ga_outer(&release, 10);
	return NULL;
}

int main(void)
{
	const char *pats[] = { "ga_leaf", "ga_mid", "ga_outer" };
	struct rw_ftrace_probe p = { on_entry, on_return, NULL };
	struct rw_ftrace *t;
	struct sigaction sa;
	pthread_t th;
	int at[3] = { -1, -1, -1 };

	printf("pointer authentication: %s\n",
	       getauxval(AT_HWCAP) & HWCAP_PACA ? "on (PACIASP signs)"
						: "off (PACIASP is a NOP)");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	CHECK_OK(rw_ftrace_list(pats, 3, find, NULL));
	CHECK(hi[0] && hi[1] && hi[2]);
	CHECK_OK(rw_ftrace_attach(pats, 3, &p, 0, &t));

	/* Plain calls: a leaf under signed callers. */
	for (int i = 0; i < 1000; i++)
		CHECK_EQ(ga_outer(NULL, i), ((i + 1) * 3 + 1) * 2);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(atomic_load(&entries[i]), 1000);
		CHECK_EQ(atomic_load(&returns[i]), 1000);
	}
	CHECK_EQ(atomic_load(&max_depth), 2);
	CHECK_EQ(atomic_load(&bad_caller), 0);

	/* A signal in the leaf, whose handler walks the stack. */
	CHECK(pthread_create(&th, NULL, worker, NULL) == 0);
	while (!atomic_load(&in_leaf))
		usleep(1000);
	CHECK(pthread_kill(th, SIGUSR1) == 0);
	while (!atomic_load(&bt_done))
		usleep(1000);
	/* The interrupted leaf (its pc, not a return address: at or past
	 * its start), then its caller and that one's caller, in order:
	 * without the real addresses the walk would end at the trampoline,
	 * whose CFI ends the stack. */
	for (int i = 0; i < nbt; i++) {
		uintptr_t a = (uintptr_t)bt[i];

		fprintf(stderr, "  #%d %p\n", i, bt[i]);
		if (at[0] < 0 && a >= lo[0] && a < hi[0])
			at[0] = i;
		for (int k = 1; k < 3; k++)
			if (at[k] < 0 && inside(a, k))
				at[k] = i;
	}
	CHECK(at[0] >= 0);
	CHECK_EQ(at[1], at[0] + 1);
	CHECK_EQ(at[2], at[1] + 1);
	atomic_store(&release, 1);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_EQ(thread_result, ((10 + 1) * 3 + 1) * 2);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(atomic_load(&entries[i]), 1001);
		CHECK_EQ(atomic_load(&returns[i]), 1001);
	}
	CHECK_EQ(atomic_load(&bad_caller), 0);
	CHECK_OK(rw_ftrace_detach(t));
	puts("aarch64 graph tracing: leaf, signal frame, PAC: ok");
	return 0;
}
#endif
