/* SPDX-License-Identifier: MIT */
/*
 * Torture: rw_threads_list() under thread churn.
 *
 * The kernel's listing of /proc/self/task stops early when the thread at
 * its cursor exits in the middle, and a following read resumes by position:
 * a thread that lived through the whole listing can be missing from it.
 * rw_threads_list() promises a complete snapshot.
 *
 * NSHORT spawners create and join short threads without pause (each lives
 * a few microseconds), so threads exit all the time at every place in the
 * kernel's thread list. NLONG long threads each live for a few listings,
 * then start their successor and exit, so that long threads sit between
 * short ones in the list, often near its end, where a walk cut short
 * loses threads. The lister (the main thread) takes a listing after the
 * other; around each one it pins the long threads that are alive (they
 * cannot exit until the listing returned).
 *
 * A second phase aims at the race itself. NIDLE idle threads make the
 * walk long; then, again and again, a thread X is created, and a thread L
 * after it (L is the last in the list, X the one before), X is told to
 * exit after a delay that sweeps the length of a listing, and the lister
 * lists at once. When X leaves the list while the kernel's cursor is on
 * it, a walk cut there and resumed by position loses L: the old listing
 * missed it within a few thousand rounds.
 *
 * Oracle: every pinned long thread (L, the idle threads, the long threads
 * of the first phase), and the lister itself, is in the listing; the
 * listing is sorted and has no duplicate. Short by default, long with
 * REWIRE_TORTURE_LONG=1.
 */
#include <rewire/threads.h>

#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NLONG 8
#define NSHORT 3
/* Short threads each spawner keeps alive at once. */
#define SHORT_BATCH 8
/* Targeted phase: idle threads, and the longest exit delay of X (ns). */
#define NIDLE 64
#define MAX_DELAY_NS 200000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
/* Under lock: the tid of each long slot (0: none alive), and whether a
 * listing is in progress (long threads wait for its end to exit). */
static pid_t long_tid[NLONG];
static bool listing;
static _Atomic int stop;
static _Atomic long listings, shorts, longs;

static pid_t gettid_raw(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void *long_main(void *p);

static void start_long(int slot)
{
	pthread_attr_t a;
	pthread_t t;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	CHECK(pthread_create(&t, &a, long_main, (void *)(intptr_t)slot) == 0);
	pthread_attr_destroy(&a);
}

/* Lives for 2 to 5 listings, then hands its slot to a successor. */
static void *long_main(void *p)
{
	int slot = (int)(intptr_t)p;
	long until;

	pthread_mutex_lock(&lock);
	long_tid[slot] = gettid_raw();
	pthread_mutex_unlock(&lock);
	atomic_fetch_add(&longs, 1);
	until = atomic_load(&listings) + 2 + gettid_raw() % 4;
	while (!atomic_load(&stop) && atomic_load(&listings) < until)
		sched_yield();
	pthread_mutex_lock(&lock);
	while (listing)
		pthread_cond_wait(&cond, &lock);
	long_tid[slot] = 0;
	if (!atomic_load(&stop))
		start_long(slot);
	pthread_mutex_unlock(&lock);
	return NULL;
}

static void *short_main(void *p)
{
	(void)p;
	atomic_fetch_add(&shorts, 1);
	return NULL;
}

static void *spawner(void *p)
{
	pthread_t t[SHORT_BATCH];

	(void)p;
	while (!atomic_load(&stop)) {
		for (int i = 0; i < SHORT_BATCH; i++)
			CHECK(pthread_create(&t[i], NULL, short_main, NULL) ==
			      0);
		for (int i = 0; i < SHORT_BATCH; i++)
			pthread_join(t[i], NULL);
	}
	return NULL;
}

/* Targeted phase. */
static _Atomic int go, l_release, idle_stop;
static _Atomic pid_t l_tid;
static uint64_t x_delay_ns;

static void *idle_main(void *p)
{
	(void)p;
	while (!atomic_load(&idle_stop))
		usleep(1000);
	return NULL;
}

/* X: waits for go, spins x_delay_ns, exits. */
static void *x_main(void *p)
{
	uint64_t until;

	(void)p;
	while (!atomic_load(&go))
		;
	until = rw_test_now_ns() + x_delay_ns;
	while (rw_test_now_ns() < until)
		;
	return NULL;
}

/* L: lives until released. */
static void *l_main(void *p)
{
	(void)p;
	atomic_store(&l_tid, gettid_raw());
	while (!atomic_load(&l_release))
		sched_yield();
	return NULL;
}

static bool listed(const struct rw_tid_list *l, pid_t tid);

static void check_listed(const struct rw_tid_list *l, const pid_t *tids, int n,
			 long round)
{
	for (int i = 0; i < n; i++) {
		if (!listed(l, tids[i])) {
			fprintf(stderr,
				"listing %ld (%zu threads) misses thread %d, "
				"alive throughout\n",
				round, l->count, (int)tids[i]);
			exit(1);
		}
	}
	for (size_t i = 1; i < l->count; i++)
		CHECK(l->tids[i - 1] < l->tids[i]);
}

/* The targeted phase until end; returns the rounds run. */
static long targeted(uint64_t end)
{
	pthread_t idle[NIDLE], x, lt;
	pid_t keep[2];
	struct rw_tid_list l;
	long n = 0;

	for (int i = 0; i < NIDLE; i++)
		CHECK(pthread_create(&idle[i], NULL, idle_main, NULL) == 0);
	keep[0] = gettid_raw();
	while (rw_test_now_ns() < end) {
		atomic_store(&go, 0);
		atomic_store(&l_release, 0);
		atomic_store(&l_tid, 0);
		x_delay_ns = (uint64_t)(n * 997) % MAX_DELAY_NS;
		CHECK(pthread_create(&x, NULL, x_main, NULL) == 0);
		CHECK(pthread_create(&lt, NULL, l_main, NULL) == 0);
		while (!(keep[1] = atomic_load(&l_tid)))
			sched_yield();
		atomic_store(&go, 1);
		CHECK_OK(rw_threads_list(&l));
		check_listed(&l, keep, 2, n);
		rw_tid_list_free(&l);
		atomic_store(&l_release, 1);
		pthread_join(x, NULL);
		pthread_join(lt, NULL);
		n++;
	}
	atomic_store(&idle_stop, 1);
	for (int i = 0; i < NIDLE; i++)
		pthread_join(idle[i], NULL);
	return n;
}

static bool listed(const struct rw_tid_list *l, pid_t tid)
{
	size_t lo = 0, hi = l->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->tids[mid] == tid)
			return true;
		if (l->tids[mid] < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

int main(void)
{
	uint64_t phase_ns = (uint64_t)rw_test_scale(2, 60) * 1000000000ull;
	uint64_t end;
	pid_t pinned[NLONG + 1];
	pthread_t sp[NSHORT];
	struct rw_tid_list l;
	long n = 0, checked = 0, rounds;
	int npinned;

	rounds = targeted(rw_test_now_ns() + phase_ns);
	end = rw_test_now_ns() + phase_ns;
	for (int i = 0; i < NSHORT; i++)
		CHECK(pthread_create(&sp[i], NULL, spawner, NULL) == 0);
	for (int i = 0; i < NLONG; i++)
		start_long(i);
	while (rw_test_now_ns() < end) {
		pthread_mutex_lock(&lock);
		listing = true;
		pinned[0] = gettid_raw();
		npinned = 1;
		for (int i = 0; i < NLONG; i++)
			if (long_tid[i])
				pinned[npinned++] = long_tid[i];
		pthread_mutex_unlock(&lock);

		CHECK_OK(rw_threads_list(&l));

		pthread_mutex_lock(&lock);
		listing = false;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		atomic_fetch_add(&listings, 1);

		check_listed(&l, pinned, npinned, n);
		checked += npinned - 1;
		rw_tid_list_free(&l);
		n++;
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < NSHORT; i++)
		pthread_join(sp[i], NULL);
	/* The long threads see stop and exit; wait for the slots to empty. */
	for (bool busy = true; busy;) {
		busy = false;
		pthread_mutex_lock(&lock);
		for (int i = 0; i < NLONG; i++)
			busy |= long_tid[i] != 0;
		pthread_mutex_unlock(&lock);
		if (busy)
			usleep(1000);
	}
	printf("torture_threads_list: ok (%ld targeted rounds; churn: %ld "
	       "listings, %ld long threads checked, %ld long and %ld short "
	       "threads run)\n",
	       rounds, n, checked, atomic_load(&longs), atomic_load(&shorts));
	return 0;
}
