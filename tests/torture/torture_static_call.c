/* SPDX-License-Identifier: MIT */
/*
 * Torture: a static call retargeted over and over while threads call it.
 *
 * NCALLERS threads call the static call `op` in a tight loop while the
 * main thread retargets it among four functions and, every eighth update,
 * RW_STATIC_CALL_RET0.
 *
 * Oracle (any violation fails the test):
 * - "every call lands in a target that was current at some point during
 *   the call". The updater keeps the history of targets by update number,
 *   hist[k] being the target set by update k, and a generation counter:
 *   gen = 2k - 1 while update k runs (hist[k - 1] or hist[k] may run),
 *   gen = 2k once it returned (only hist[k] runs; rw_static_call_update
 *   returns when every thread runs the new target). A caller reads g0
 *   before the call and g1 after it; the target that ran must be one of
 *   hist[g0 / 2] ... hist[(g1 + 1) / 2].
 * - the target that ran is the one the return value names: each target
 *   records itself in a thread-local variable, RET0 records nothing;
 * - the calls add up: the calls counted by the targets plus the RET0
 *   returns equal the calls made;
 * - x86_64: at most three core syncs per update on average (the traps
 *   emulated are printed, not required).
 *
 * Short run: 20,000 updates or about 5 s; REWIRE_TORTURE_LONG=1: 100,000
 * updates.
 */
#include <rewire/rewire.h>

#include "check.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define NCALLERS 4
#define NTARGETS 4 /* tags 1..4; tag 0 is RW_STATIC_CALL_RET0 */

/* The target that ran last in this thread (0: none, i.e. RET0). */
static __thread int ran;
/* Calls each target received, per thread: no shared line in the loop. */
static __thread long target_calls[NTARGETS + 1];

__attribute__((noinline)) static long t1(long x)
{
	ran = 1;
	target_calls[1]++;
	return x + 1;
}

__attribute__((noinline)) static long t2(long x)
{
	ran = 2;
	target_calls[2]++;
	return x + 2;
}

__attribute__((noinline)) static long t3(long x)
{
	ran = 3;
	target_calls[3]++;
	return x + 3;
}

__attribute__((noinline)) static long t4(long x)
{
	ran = 4;
	target_calls[4]++;
	return x + 4;
}

RW_DEFINE_STATIC_CALL(op, t1);

static long (*const targets[NTARGETS + 1])(long) = {
	(long (*)(long))RW_STATIC_CALL_RET0, t1, t2, t3, t4
};

/*
 * hist[k]: tag of the target set by update k (hist[0]: the initial one).
 * Written by the updater before it publishes gen = 2k - 1 (release), read
 * by callers only for k <= (g1 + 1) / 2 after an acquire load of gen.
 */
static int *hist;
static _Atomic long gen;
static _Atomic int stop;
static _Atomic int ready;

/* Totals, added by each caller when it stops. */
static _Atomic long total_calls, total_target_calls, total_ret0;
static _Atomic long total_window; /* sum of (g1 - g0) over calls */

static void fail_call(long g0, long g1, long got, int who)
{
	fprintf(stderr,
		"caller: call between gen %ld and %ld returned %ld "
		"(tag %ld, ran %d); allowed:",
		g0, g1, got, got ? got - 1000 : 0, who);
	for (long k = g0 / 2; k <= (g1 + 1) / 2; k++)
		fprintf(stderr, " %d", hist[k]);
	fputc('\n', stderr);
	exit(1);
}

static void *caller(void *arg)
{
	long calls = 0, ret0 = 0, window = 0, sum = 0;

	(void)arg;
	atomic_fetch_add(&ready, 1);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		long g0, g1, r, tag;
		unsigned seen = 0;

		ran = 0;
		g0 = atomic_load_explicit(&gen, memory_order_acquire);
		r = rw_static_call(op)(1000);
		g1 = atomic_load_explicit(&gen, memory_order_acquire);
		calls++;
		window += g1 - g0;

		tag = r == 0 ? 0 : r - 1000;
		if (tag < 0 || tag > NTARGETS || tag != ran)
			fail_call(g0, g1, r, ran);
		if (tag == 0)
			ret0++;
		for (long k = g0 / 2; k <= (g1 + 1) / 2; k++) {
			seen |= 1u << hist[k];
			if (seen & (1u << tag))
				break;
		}
		if (!(seen & (1u << tag)))
			fail_call(g0, g1, r, ran);
	}
	for (int i = 1; i <= NTARGETS; i++)
		sum += target_calls[i];
	atomic_fetch_add(&total_calls, calls);
	atomic_fetch_add(&total_target_calls, sum);
	atomic_fetch_add(&total_ret0, ret0);
	atomic_fetch_add(&total_window, window);
	return NULL;
}

static int pick(long k, int prev, unsigned *seed)
{
	int t;

	if (k % 8 == 0 && prev != 0)
		return 0;
	do {
		*seed = *seed * 1103515245u + 12345u;
		t = 1 + (int)((*seed >> 16) % NTARGETS);
	} while (t == prev);
	return t;
}

int main(void)
{
	long max_updates = rw_test_scale(20000, 100000);
	uint64_t max_ns = rw_test_long() ? UINT64_MAX : 5000000000ull;
	struct rw_text_stats s0, s1;
	pthread_t th[NCALLERS];
	unsigned seed = 12345;
	uint64_t t0, ns;
	long k;

	hist = calloc((size_t)max_updates + 1, sizeof(*hist));
	CHECK(hist);
	hist[0] = 1;
	CHECK(rw_static_call_query(op) == t1);

	for (int i = 0; i < NCALLERS; i++)
		CHECK(pthread_create(&th[i], NULL, caller, NULL) == 0);
	while (atomic_load(&ready) < NCALLERS)
		sched_yield();

	rw_text_get_stats(&s0);
	t0 = rw_test_now_ns();
	for (k = 1; k <= max_updates; k++) {
		int t = pick(k, hist[k - 1], &seed);

		hist[k] = t;
		atomic_store_explicit(&gen, 2 * k - 1, memory_order_release);
		CHECK_OK(rw_static_call_update(op, targets[t]));
		atomic_store_explicit(&gen, 2 * k, memory_order_release);
		CHECK(rw_static_call_query(op) == targets[t]);
		if ((k & 63) == 0 && rw_test_now_ns() - t0 >= max_ns)
			break;
	}
	if (k > max_updates)
		k = max_updates;
	ns = rw_test_now_ns() - t0;
	rw_text_get_stats(&s1);

	atomic_store(&stop, 1);
	for (int i = 0; i < NCALLERS; i++)
		CHECK(pthread_join(th[i], NULL) == 0);

	/* The calls add up. */
	CHECK_EQ(atomic_load(&total_target_calls) + atomic_load(&total_ret0),
		 atomic_load(&total_calls));
	CHECK(atomic_load(&total_calls) > 0);
	CHECK(k >= 100);

	printf("torture_static_call: %ld updates (%.0f/s), %ld calls "
	       "(%ld to RET0), mean gen window %.3f, %.2f s\n",
	       k, (double)k * 1e9 / (double)ns, atomic_load(&total_calls),
	       atomic_load(&total_ret0),
	       (double)atomic_load(&total_window) /
		       (double)atomic_load(&total_calls),
	       (double)ns / 1e9);
#ifdef RW_BACKEND_PATCHING
	{
		uint64_t syncs = s1.syncs - s0.syncs;

		printf("torture_static_call: %" PRIu64 " batches, %" PRIu64
		       " syncs (%.2f per update), %" PRIu64
		       " traps emulated, %" PRIu64 " replayed\n",
		       s1.batches - s0.batches, syncs,
		       (double)syncs / (double)k,
		       s1.traps_emulated - s0.traps_emulated,
		       s1.traps_replayed - s0.traps_replayed);
		CHECK_EQ(s1.batches - s0.batches, k);
		CHECK(syncs <= 3 * (uint64_t)k);
	}
#endif
	free(hist);
	printf("torture_static_call: ok\n");
	return 0;
}
