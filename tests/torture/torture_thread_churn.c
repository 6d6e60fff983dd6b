/* SPDX-License-Identifier: MIT */
/*
 * Torture: rw_on_each_thread() under thread churn.
 *
 * Persistent threads live through the whole run; spawner threads keep
 * creating short-lived threads (joined or detached) that exit while calls
 * run; the main thread makes call after call. Delay injection: persistent
 * threads sometimes block the signal for a moment with the raw system call
 * and sleep for random short times.
 *
 * Oracle (any violation fails the test):
 * - every call returns 0 (a 10 s timeout is never reached);
 * - after call number k, each persistent thread and the main thread have
 *   run fn exactly k times;
 * - no thread ever runs fn twice for the same call, or for an older call
 *   after a newer one (fn records the last call number per thread in TLS).
 *
 * Short run: 2,000 calls or about 2.5 s; REWIRE_TORTURE_LONG=1: 100,000.
 */
#include <rewire/threads.h>

#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NPERSIST 8
#define NSPAWNERS 3
#define MAX_DETACHED 16
#define CALL_TIMEOUT_MS 10000

/* Runs of fn per persistent thread; slot NPERSIST is the main thread. */
static _Atomic long runs[NPERSIST + 1];
static __thread int my_index = -1;
static __thread long last_call;

static _Atomic long dup_runs, stale_runs, fn_runs, created, create_fail;
static _Atomic int stop_persist, stop_spawn;
static _Atomic int detached_live;
static _Atomic int persist_ready;

static void fn(void *arg)
{
	long call = (long)(uintptr_t)arg;

	if (last_call == call)
		atomic_fetch_add(&dup_runs, 1);
	else if (last_call > call)
		atomic_fetch_add(&stale_runs, 1);
	last_call = call;
	if (my_index >= 0)
		atomic_fetch_add_explicit(&runs[my_index], 1,
					  memory_order_relaxed);
	atomic_fetch_add_explicit(&fn_runs, 1, memory_order_relaxed);
}

static unsigned rnd(unsigned *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 16;
}

static void sleep_ns(long ns)
{
	struct timespec ts = { ns / 1000000000L, ns % 1000000000L };

	nanosleep(&ts, NULL);
}

static void *persistent(void *p)
{
	unsigned seed = (unsigned)(uintptr_t)p * 7919u + 1;
	uint64_t set = 1ull << (rw_threads_signal() - 1);
	_Atomic long spin = 0;

	my_index = (int)(uintptr_t)p;
	atomic_fetch_add(&persist_ready, 1);
	while (!atomic_load(&stop_persist)) {
		unsigned r = rnd(&seed);

		for (unsigned i = 0; i < r % 2000; i++)
			atomic_fetch_add_explicit(&spin, 1,
						  memory_order_relaxed);
		if (r % 64 == 0) {
			/* Answer late: hold the signal off for a while. */
			CHECK(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL,
				      8) == 0);
			sleep_ns((long)(r % 2000) * 1000);
			CHECK(syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set,
				      NULL, 8) == 0);
		}
		sleep_ns((long)(r % 50) * 1000);
	}
	return NULL;
}

static void *short_lived(void *p)
{
	unsigned seed = (unsigned)(uintptr_t)p;
	unsigned r = rnd(&seed);

	if (r % 3 == 0)
		sleep_ns((long)(r % 100) * 1000);
	return NULL;
}

static void *short_detached(void *p)
{
	short_lived(p);
	atomic_fetch_sub(&detached_live, 1);
	return NULL;
}

static void *spawner(void *p)
{
	unsigned seed = (unsigned)(uintptr_t)p * 31u + 7;
	pthread_attr_t det;
	pthread_t t;

	CHECK(pthread_attr_init(&det) == 0);
	CHECK(pthread_attr_setdetachstate(&det, PTHREAD_CREATE_DETACHED) == 0);
	while (!atomic_load(&stop_spawn)) {
		unsigned r = rnd(&seed);
		void *arg = (void *)(uintptr_t)r;
		int err;

		if (r % 4 == 0 && atomic_load(&detached_live) < MAX_DETACHED) {
			atomic_fetch_add(&detached_live, 1);
			err = pthread_create(&t, &det, short_detached, arg);
			if (err)
				atomic_fetch_sub(&detached_live, 1);
		} else {
			err = pthread_create(&t, NULL, short_lived, arg);
			if (!err)
				CHECK(pthread_join(t, NULL) == 0);
		}
		if (err) {
			/* Thread limits on a loaded machine: back off. */
			atomic_fetch_add(&create_fail, 1);
			sleep_ns(1000000);
			continue;
		}
		atomic_fetch_add(&created, 1);
	}
	pthread_attr_destroy(&det);
	return NULL;
}

int main(void)
{
	long max_calls = rw_test_scale(2000, 100000);
	uint64_t max_ns = rw_test_long() ? UINT64_MAX : 2500000000ull;
	pthread_t pt[NPERSIST], st[NSPAWNERS];
	uint64_t t0 = rw_test_now_ns(), elapsed;
	long call;

	my_index = NPERSIST;
	for (int i = 0; i < NPERSIST; i++)
		CHECK(pthread_create(&pt[i], NULL, persistent,
				     (void *)(uintptr_t)i) == 0);
	/* fn counts a run only once the thread knows its index. */
	while (atomic_load(&persist_ready) < NPERSIST)
		sleep_ns(1000000);
	for (int i = 0; i < NSPAWNERS; i++)
		CHECK(pthread_create(&st[i], NULL, spawner,
				     (void *)(uintptr_t)i) == 0);

	for (call = 1; call <= max_calls; call++) {
		struct rw_tid_list late;
		int ret = rw_on_each_thread(fn, (void *)(uintptr_t)call,
					    CALL_TIMEOUT_MS, &late);

		if (ret) {
			fprintf(stderr,
				"call %ld: %s (%d), %zu stragglers:", call,
				rw_strerror(ret), ret, late.count);
			for (size_t i = 0; i < late.count; i++)
				fprintf(stderr, " %d", (int)late.tids[i]);
			fputc('\n', stderr);
			rw_tid_list_free(&late);
			return 1;
		}
		for (int i = 0; i <= NPERSIST; i++) {
			long r = atomic_load(&runs[i]);

			if (r != call) {
				fprintf(stderr,
					"call %ld: thread %d ran fn %ld times\n",
					call, i, r);
				return 1;
			}
		}
		CHECK_EQ(atomic_load(&dup_runs), 0);
		CHECK_EQ(atomic_load(&stale_runs), 0);
		if (rw_test_enough(t0, max_ns, call, 10))
			break;
	}
	if (call > max_calls)
		call = max_calls;

	atomic_store(&stop_spawn, 1);
	for (int i = 0; i < NSPAWNERS; i++)
		CHECK(pthread_join(st[i], NULL) == 0);
	while (atomic_load(&detached_live) > 0)
		sleep_ns(1000000);
	atomic_store(&stop_persist, 1);
	for (int i = 0; i < NPERSIST; i++)
		CHECK(pthread_join(pt[i], NULL) == 0);
	CHECK_EQ(atomic_load(&dup_runs), 0);
	CHECK_EQ(atomic_load(&stale_runs), 0);
	CHECK(call >= 10);

	elapsed = rw_test_now_ns() - t0;
	printf("torture_thread_churn: %ld calls, %ld fn runs, %ld threads "
	       "created (%ld create failures), 0 duplicates, %.2f s\n",
	       call, atomic_load(&fn_runs), atomic_load(&created),
	       atomic_load(&create_fail), (double)elapsed / 1e9);
	return 0;
}
