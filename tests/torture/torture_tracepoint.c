/* SPDX-License-Identifier: MIT */
/*
 * Tracepoint torture: function and data are never mixed across changes of
 * probes (the July 2021 "Update static_call before tp_funcs" race and its
 * 1->0->1 and N->2->1 follow-ups).
 *
 * Readers fire a tracepoint in a loop, with random delays injected between
 * loading the probe state and making the call (RW_TRACEPOINT_TEST_DELAY).
 * One writer cycles through the transitions 0->1->0->1, 1->2->1, 3->2->1
 * and priority reorderings. Oracle: each probe checks that the data it gets
 * is its own and that the arguments arrived intact; any mismatch fails.
 *
 * Built twice (torture_tracepoint.cmake): as is, where the oracle must see
 * zero mismatches, and with RW_TRACEPOINT_NAIVE (the kernel's pre-2021
 * ordering), where it must see some, which proves it can fail.
 *
 * Short by default; REWIRE_TORTURE_LONG=1 runs 1,000,000 transitions.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

static void tt_delay(void);
#define RW_TRACEPOINT_TEST_DELAY() tt_delay()
#include <rewire/text_poke.h>
#include <rewire/tracepoint.h>

#include "check.h"

#ifdef RW_TRACEPOINT_NAIVE
#define NAIVE 1
#else
#define NAIVE 0
#endif

RW_DECLARE_TRACEPOINT(tt_event, (unsigned long, seq), (unsigned long, check));
RW_DEFINE_TRACEPOINT(tt_event, (unsigned long, seq), (unsigned long, check));

#define NPROBES 4
#define NREADERS 4

struct pdata {
	int owner;
	atomic_long calls;
} __attribute__((aligned(64)));

static struct pdata pdata[NPROBES] = { { .owner = 0 },
				       { .owner = 1 },
				       { .owner = 2 },
				       { .owner = 3 } };
static atomic_long mismatches, bad_args;
static atomic_int stop;

/* Per-thread xorshift; the delay is the test's whole point. */
static __thread uint64_t rng = 0x9e3779b97f4a7c15ull;
static __thread int in_reader;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static atomic_long delays;

static void tt_delay(void)
{
	uint64_t r;

	if (!in_reader)
		return;
	atomic_fetch_add_explicit(&delays, 1, memory_order_relaxed);
	r = next_rand();
	switch (r & 15) {
	case 0:
		usleep((unsigned)(r >> 8) % 200);
		break;
	case 1:
	case 2:
		sched_yield();
		break;
	default:
		for (unsigned i = (unsigned)(r >> 8) % 2000; i; i--)
			__asm__ volatile("" ::: "memory");
	}
}

static void check(int me, void *data, unsigned long seq, unsigned long chk)
{
	struct pdata *d = data;

	if (d != &pdata[me]) {
		atomic_fetch_add(&mismatches, 1);
		return;
	}
	if (chk != seq * 3 + 1)
		atomic_fetch_add(&bad_args, 1);
	atomic_fetch_add_explicit(&d->calls, 1, memory_order_relaxed);
}

#define PROBE(n)                                                               \
	static void probe##n(void *data, unsigned long seq, unsigned long chk) \
	{                                                                      \
		check(n, data, seq, chk);                                      \
	}
PROBE(0)
PROBE(1)
PROBE(2)
PROBE(3)

typedef void (*probe_fn)(void *, unsigned long, unsigned long);
static const probe_fn probes[NPROBES] = { probe0, probe1, probe2, probe3 };

static atomic_long fired;

static void *reader(void *arg)
{
	unsigned long seq = 0;

	rng ^= (uint64_t)(uintptr_t)arg * 0x2545f4914f6cdd1dull;
	in_reader = 1;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		rw_trace_tt_event(seq, seq * 3 + 1);
		seq++;
	}
	atomic_fetch_add(&fired, (long)seq);
	return NULL;
}

static long transitions;

/* Right calls of every probe so far. */
static long total_calls(void)
{
	long n = 0;

	for (int i = 0; i < NPROBES; i++)
		n += atomic_load(&pdata[i].calls);
	return n;
}

static void reg(int i, int prio)
{
	CHECK_OK(rw_tracepoint_probe_register(tt_event, probes[i], &pdata[i],
					      prio));
	transitions++;
}

static void unreg(int i)
{
	CHECK_OK(
		rw_tracepoint_probe_unregister(tt_event, probes[i], &pdata[i]));
	transitions++;
}

/* One cycle: every transition the issue names, ending with no probe. */
static void cycle(void)
{
	/* 0 -> 1 -> 0 -> 1 */
	reg(0, 10);
	unreg(0);
	reg(1, 10);
	/* 1 -> 2 -> 1 */
	reg(2, 10);
	unreg(1);
	/* 1 -> 2 -> 3 -> 2 -> 1 */
	reg(3, 10);
	reg(0, 10);
	unreg(2);
	unreg(3);
	/* priority reordering: {0} + 1@5 + 2@20 = [2 0 1]; 2 again at 1
	 * gives [0 1 2]; then 3 -> 2 -> 1 -> 0 */
	reg(1, 5);
	reg(2, 20);
	unreg(2);
	reg(2, 1);
	unreg(0);
	unreg(1);
	unreg(2);
}

int main(void)
{
	pthread_t r[NREADERS];
	long target = rw_test_scale(NAIVE ? 400000 : 20000, 1000000);
	uint64_t limit_ns =
		(uint64_t)rw_test_scale(NAIVE ? 30 : 10, 1800) * 1000000000ull;
	uint64_t t0 = rw_test_now_ns();
	long calls = 0, cycles = 0;
	struct rw_text_stats st;

	for (int i = 0; i < NREADERS; i++)
		CHECK(pthread_create(&r[i], NULL, reader,
				     (void *)(intptr_t)(i + 1)) == 0);
	while (transitions < target && rw_test_now_ns() - t0 < limit_ns) {
		cycle();
		cycles++;
		/* The naive build stops at the first evidence, once the
		 * probes were also called right (the checks below want
		 * both: a fast machine can show ten mismatches before the
		 * first right call). */
		if (NAIVE && atomic_load(&mismatches) >= 10 &&
		    total_calls() > 0)
			break;
		if (cycles % 2000 == 0)
			fprintf(stderr, "  %ld transitions, %ld mismatches\n",
				transitions, atomic_load(&mismatches));
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < NREADERS; i++)
		CHECK_EQ(pthread_join(r[i], NULL), 0);
	calls = total_calls();
	rw_text_get_stats(&st);
	printf("%s ordering: %ld transitions in %.1f s, %ld events fired, "
	       "%ld delays injected, %ld probe calls, %ld mismatches, %ld bad arguments, "
	       "%llu traps emulated\n",
	       NAIVE ? "naive" : "rewire", transitions,
	       (double)(rw_test_now_ns() - t0) / 1e9, atomic_load(&fired),
	       atomic_load(&delays), calls, atomic_load(&mismatches),
	       atomic_load(&bad_args), (unsigned long long)st.traps_emulated);

	/* Nothing attached: firing calls nothing. */
	CHECK(!rw_tracepoint_enabled(tt_event));
	rw_trace_tt_event(1, 4);
	long after = 0;

	for (int i = 0; i < NPROBES; i++)
		after += atomic_load(&pdata[i].calls);
	CHECK_EQ(after, calls);
	CHECK_EQ(atomic_load(&bad_args), 0);
	CHECK(calls > 0);
	CHECK_OK(rw_rcu_barrier());
	if (NAIVE) {
		/* The oracle must catch the kernel's old ordering. */
		if (atomic_load(&mismatches) == 0) {
			fprintf(stderr, "FAIL: the naive ordering went "
					"unnoticed: the oracle has no teeth\n");
			return 1;
		}
		puts("PASS (the naive ordering was caught)");
		return 0;
	}
	CHECK_EQ(atomic_load(&mismatches), 0);
	puts("PASS");
	return 0;
}
