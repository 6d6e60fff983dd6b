/* SPDX-License-Identifier: MIT */
/*
 * Old probe arrays and old bound stubs of a tracepoint are freed only
 * after an RCU grace period (src/tracepoint.c, step 7). Deterministic: a
 * reader is parked inside a probe, so no grace period can end, while the
 * probes change under it.
 *
 * What it proves, and the oracle of each part:
 * - Iterator path (two probes): the reader runs the first probe of the
 *   array it loaded and waits there. Meanwhile probes are removed and
 *   added (2 -> 1 -> 2 -> 3 -> 2 probes: four arrays retired, stubs made
 *   and retired). The test's own free() records every pointer freed while
 *   the reader is parked (and keeps that memory until it leaves): the
 *   reader's array and every array and stub retired meanwhile must not be
 *   among them. The reader, released, must run the second probe of its
 *   array exactly once. After rw_rcu_barrier() they must all have been
 *   freed (so the oracle sees frees at all).
 * - Bound-stub path (one probe): the reader entered through the stub of
 *   (probe, data) and waits in the probe. Meanwhile the probe is removed
 *   and another single probe added, several times: each needs a new stub.
 *   The parked reader's stub keeps its exact bytes (a stub slot freed at
 *   once is the first one reused) and its descriptor is not freed.
 * Under ASan the test's free() is not used: the sanitizer's own quarantine
 * and use-after-free checks take its place (the reader reads the array
 * after its probe returns).
 */
#include <rewire/rewire.h>

#include "check.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

RW_DECLARE_TRACEPOINT(tg_event, (int, x));
RW_DEFINE_TRACEPOINT(tg_event, (int, x));

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define TG_WATCH_FREE 1
#endif

/* --- free() that remembers what is freed while a reader is parked --------- */

#define MAX_FREED 4096
static _Atomic int watching;
static void *_Atomic freed[MAX_FREED];
static _Atomic int nfreed;

#ifdef TG_WATCH_FREE
extern void __libc_free(void *p);

/* librewire's free() calls resolve here (the executable comes first). */
void free(void *p)
{
	if (p && atomic_load(&watching)) {
		int i = atomic_fetch_add(&nfreed, 1);

		if (i < MAX_FREED) {
			/* Keep it: if it was freed too early, the parked
			 * reader may still read it. */
			atomic_store(&freed[i], p);
			return;
		}
	}
	__libc_free(p);
}
#endif

static void watch_start(void)
{
	atomic_store(&nfreed, 0);
	atomic_store(&watching, 1);
}

static int watch_stop(void)
{
	int n = atomic_load(&nfreed);

	atomic_store(&watching, 0);
	return n < MAX_FREED ? n : MAX_FREED;
}

static bool was_freed(const void *p, int n)
{
	for (int i = 0; i < n; i++)
		if (atomic_load(&freed[i]) == p)
			return true;
	return false;
}

static void release_watched(int n)
{
#ifdef TG_WATCH_FREE
	for (int i = 0; i < n; i++)
		__libc_free(atomic_load(&freed[i]));
#else
	(void)n;
#endif
}

/* --- Probes and the reader -------------------------------------------------- */

static _Atomic int parked, release;
static _Atomic long calls_park, calls_second, calls_other;

static void park_probe(void *data, int x)
{
	(void)data;
	(void)x;
	atomic_fetch_add(&calls_park, 1);
	atomic_store(&parked, 1);
	while (!atomic_load(&release))
		sched_yield();
}

static void second_probe(void *data, int x)
{
	(void)data;
	(void)x;
	atomic_fetch_add(&calls_second, 1);
}

static void other_probe(void *data, int x)
{
	(void)data;
	(void)x;
	atomic_fetch_add(&calls_other, 1);
}

static void *reader(void *arg)
{
	(void)arg;
	rw_trace_tg_event(1);
	return NULL;
}

/* Start the reader and wait until it is parked in park_probe. */
static pthread_t park_reader(void)
{
	pthread_t t;
	uint64_t t0 = rw_test_now_ns();

	atomic_store(&parked, 0);
	atomic_store(&release, 0);
	CHECK_EQ(pthread_create(&t, NULL, reader, NULL), 0);
	while (!atomic_load(&parked)) {
		CHECK(rw_test_now_ns() - t0 < 10000000000ull);
		sched_yield();
	}
	return t;
}

static struct rw_tracepoint *tp(void)
{
	return rw_tracepoint_ptr(tg_event);
}

/* The bound stub the static call jumps to now (jmp rel32 in the slot). */
static const uint8_t *stub_code(void)
{
	const uint8_t *tr = tp()->call->tramp;
	int32_t rel;

	CHECK_EQ(tr[0], 0xe9);
	memcpy(&rel, tr + 1, 4);
	return tr + 5 + rel;
}

#define MAX_RETIRED 16

static void test_iterator(void)
{
	const void *retired[MAX_RETIRED];
	const struct rw__tp_funcs *mine;
	int nret = 0, n, d1, d2, d3;
	pthread_t t;

	CHECK_OK(rw_tracepoint_probe_register(tg_event, park_probe, &d1, 20));
	CHECK_OK(rw_tracepoint_probe_register(tg_event, second_probe, &d1, 10));
	mine = tp()->funcs;
	CHECK_EQ(mine->count, 2);
	t = park_reader();

	watch_start();
	/* 2 -> 1 (a stub), 1 -> 2, 2 -> 3, 3 -> 2 probes. */
	retired[nret++] = tp()->funcs;
	CHECK_OK(rw_tracepoint_probe_unregister(tg_event, second_probe, &d1));
	retired[nret++] = tp()->funcs;
	retired[nret++] = tp()->stub;
	CHECK_OK(rw_tracepoint_probe_register(tg_event, other_probe, &d2, 10));
	retired[nret++] = tp()->funcs;
	CHECK_OK(rw_tracepoint_probe_register(tg_event, other_probe, &d3, 10));
	retired[nret++] = tp()->funcs;
	CHECK_OK(rw_tracepoint_probe_unregister(tg_event, other_probe, &d3));
	/* Still parked: nothing retired may be gone. */
	CHECK(atomic_load(&parked));
	CHECK_EQ(mine->count, 2);
	CHECK(mine->probes[1].func == (void *)second_probe);
	n = watch_stop();
	for (int i = 0; i < nret; i++) {
		if (was_freed(retired[i], n)) {
			fprintf(stderr,
				"iterator: %s %d (%p) freed while a reader "
				"is inside a probe\n",
				i == 2 ? "stub" : "array", i, retired[i]);
			exit(1);
		}
	}
	release_watched(n);

	/* The reader finishes its own array: the second probe, once. Frees
	 * are watched from before it leaves: liburcu's callback thread may
	 * free as soon as it does, before the barrier. */
	watch_start();
	atomic_store(&release, 1);
	pthread_join(t, NULL);
	CHECK_EQ(atomic_load(&calls_second), 1);
	CHECK_EQ(atomic_load(&calls_other), 0);

	/* After the grace period every retired thing was freed. */
	CHECK_OK(rw_rcu_barrier());
	n = watch_stop();
#ifdef TG_WATCH_FREE
	for (int i = 0; i < nret; i++)
		if (!was_freed(retired[i], n)) {
			fprintf(stderr, "iterator: %d (%p) never freed\n", i,
				retired[i]);
			exit(1);
		}
#endif
	release_watched(n);
	CHECK_OK(rw_tracepoint_probe_unregister(tg_event, park_probe, &d1));
	CHECK_OK(rw_tracepoint_probe_unregister(tg_event, other_probe, &d2));
	CHECK_EQ(rw_tracepoint_probe_count(tp()), 0);
	printf("iterator: %d arrays and stubs retired under a parked reader, "
	       "freed after it\n",
	       nret);
}

static void test_stub(void)
{
	uint8_t mine_bytes[32];
	const uint8_t *mine_code, *codes[8];
	const void *mine_desc, *descs[8];
	int n, d1, dx[8];
	pthread_t t;

	CHECK_OK(rw_rcu_barrier());
	CHECK_OK(rw_tracepoint_probe_register(tg_event, park_probe, &d1, 10));
	mine_code = stub_code();
	mine_desc = tp()->stub;
	CHECK(mine_desc != NULL);
	memcpy(mine_bytes, mine_code, sizeof(mine_bytes));
	/* movabs $&d1, %rdi */
	CHECK(mine_code[0] == 0x48 && mine_code[1] == 0xbf);
	CHECK(!memcmp(mine_code + 2, &(void *){ &d1 }, 8));
	t = park_reader();

	watch_start();
	/* 1 -> 0 -> 1 with another probe, several times: a new stub each. */
	CHECK_OK(rw_tracepoint_probe_unregister(tg_event, park_probe, &d1));
	for (int i = 0; i < 8; i++) {
		CHECK_OK(rw_tracepoint_probe_register(tg_event, other_probe,
						      &dx[i], 10));
		codes[i] = stub_code();
		descs[i] = tp()->stub;
		CHECK_OK(rw_tracepoint_probe_unregister(tg_event, other_probe,
							&dx[i]));
	}
	CHECK(atomic_load(&parked));
	n = watch_stop();
	for (int i = 0; i < 8; i++)
		if (codes[i] == mine_code || was_freed(descs[i], n)) {
			fprintf(stderr,
				"stub: retired stub reused or freed while a "
				"reader is inside its probe\n");
			exit(1);
		}
	if (memcmp(mine_bytes, mine_code, sizeof(mine_bytes)) ||
	    was_freed(mine_desc, n)) {
		fprintf(stderr,
			"stub: the parked reader's stub %p was "
			"rewritten or freed before a grace period\n",
			(const void *)mine_code);
		exit(1);
	}
	release_watched(n);
	/* Watching before the reader leaves: liburcu's callback thread may
	 * free the stub as soon as it does, before the barrier. */
	watch_start();
	atomic_store(&release, 1);
	pthread_join(t, NULL);
	CHECK_EQ(atomic_load(&calls_other), 0);
	CHECK_OK(rw_rcu_barrier());
	n = watch_stop();
#ifdef TG_WATCH_FREE
	CHECK(was_freed(mine_desc, n));
#endif
	release_watched(n);
	printf("stub: the parked reader's stub kept its bytes; 8 new stubs "
	       "elsewhere\n");
}

int main(void)
{
#ifndef RW_BACKEND_X86_64
	SKIP("bound stubs need code patching");
#endif
	test_iterator();
	test_stub();
	printf("tracepoint grace periods: ok\n");
	return 0;
}
