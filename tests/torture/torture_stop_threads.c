/* SPDX-License-Identifier: MIT */
/*
 * Torture: rw_stop_threads() under thread churn.
 *
 * Persistent threads live through the whole run and count their loops;
 * spawner threads keep creating short-lived threads (joined; detached too
 * with REWIRE_TORTURE_DETACHED=1, see detached_ok), some of which create a
 * thread of their own before they exit; the main
 * thread and a second stopper make stop after stop, and a third thread
 * makes rw_on_each_thread() calls meanwhile. Every thread of the test bumps
 * one global activity counter whenever it does anything. Delay injection:
 * persistent threads sometimes block rewire's signal for a moment with the
 * raw system call, and sleep for random short times; fn sometimes sleeps.
 *
 * Oracle (any violation fails the test):
 * - every stop returns fn's value, or times out only on threads that are
 *   exiting (see exiting_straggler()), never on a thread that runs;
 * - while fn runs, nothing moves: the activity counter and the persistent
 *   threads' counters read the same before and after a pause, and two
 *   listings of /proc/self/task (raw system calls, no allocation) agree, so
 *   no thread was created or exited: a thread created during the stop was
 *   parked, or did not exist while fn ran;
 * - fn never runs in two stops at once, nor during a cross-thread call;
 * - after each stop, every persistent thread moves again.
 *
 * Short run: about 2.5 s; REWIRE_TORTURE_LONG=1: 20,000 stops.
 */
#include <rewire/threads.h>

#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NPERSIST 8
#define NSPAWNERS 3
#define MAX_DETACHED 16
/* Long enough for a loaded machine and for TSan; a stall on an exiting
 * thread (see exiting_straggler) costs this much. */
#define STOP_TIMEOUT_MS 10000

struct counter {
	alignas(64) _Atomic unsigned long n;
};

static struct counter persist_n[NPERSIST];
static alignas(64) _Atomic unsigned long activity;
static _Atomic int stop_persist, stop_spawn, stop_stoppers;
static _Atomic int detached_live, grandchildren_live;
static _Atomic int persist_ready;
static _Atomic long created, create_fail, each_calls;
/*
 * Detached threads only with REWIRE_TORTURE_DETACHED=1: glibc blocks every
 * signal in an exiting detached thread before it frees its stack under
 * the stack cache lock, which a parked thread may hold, so such a thread
 * cannot park and a stop may time out on it (see exiting_straggler()).
 * Each such stall costs STOP_TIMEOUT_MS, hence the opt-in. (The calls
 * that waited for the call lock meanwhile used to time out at once on the
 * threads still leaving the abandoned stop; their timeout now starts when
 * they hold the lock.)
 */
static bool detached_ok;

/* What fn saw; checked by the stoppers after each stop. */
static _Atomic long fn_runs, moved, list_changed, list_failed, overlap;
static _Atomic int in_fn;

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

static void bump(void)
{
	atomic_fetch_add_explicit(&activity, 1, memory_order_relaxed);
}

/*
 * Count and sum the thread ids of /proc/self/task with raw system calls
 * into a static buffer: fn may not allocate. Returns false on failure.
 */
struct listing {
	long count;
	long sum;
};

static char dents[1 << 16];

static bool list_raw(struct listing *l)
{
	long fd, n, pos;

	l->count = l->sum = 0;
	fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/task",
		     O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	while ((n = syscall(SYS_getdents64, fd, dents, sizeof(dents))) > 0) {
		for (pos = 0; pos < n;) {
			unsigned short reclen;
			const char *name = dents + pos + 19;
			long tid = 0;

			memcpy(&reclen, dents + pos + 16, sizeof(reclen));
			pos += reclen;
			if (*name < '0' || *name > '9')
				continue;
			for (; *name >= '0' && *name <= '9'; name++)
				tid = tid * 10 + (*name - '0');
			l->count++;
			l->sum += tid;
		}
	}
	syscall(SYS_close, fd);
	return n == 0;
}

static unsigned long snap[NPERSIST];

static int fn(void *arg)
{
	long stop = (long)(uintptr_t)arg;
	struct listing a, b;
	unsigned long act;
	int i;

	if (atomic_fetch_add(&in_fn, 1) != 0)
		atomic_fetch_add(&overlap, 1);
	atomic_fetch_add(&fn_runs, 1);
	if (!list_raw(&a))
		atomic_fetch_add(&list_failed, 1);
	act = atomic_load(&activity);
	for (i = 0; i < NPERSIST; i++)
		snap[i] = atomic_load(&persist_n[i].n);
	/* Delay injection: let any thread that is not parked show itself. */
	if (stop % 4 == 0)
		sleep_ns(200000);
	else
		for (volatile int k = 0; k < 20000; k++)
			;
	if (atomic_load(&activity) != act)
		atomic_fetch_add(&moved, 1);
	for (i = 0; i < NPERSIST; i++)
		if (atomic_load(&persist_n[i].n) != snap[i])
			atomic_fetch_add(&moved, 1);
	if (!list_raw(&b))
		atomic_fetch_add(&list_failed, 1);
	else if (a.count != b.count || a.sum != b.sum)
		atomic_fetch_add(&list_changed, 1);
	atomic_fetch_sub(&in_fn, 1);
	return (int)(stop & 0xffff);
}

static void each_fn(void *arg)
{
	(void)arg;
	if (atomic_load(&in_fn))
		atomic_fetch_add(&overlap, 1);
}

/* Threads that must always stop in time. */
static _Atomic pid_t core_tids[NPERSIST + 3];
static _Atomic long exit_stalls;

/*
 * The spawners' tids, and a count of their pthread_create() calls bumped
 * on entry and on return (odd: inside). Under ThreadSanitizer only, a
 * spawner may fail to park: TSan runs an asynchronous signal's handler at
 * once only in a blocking call (pthread_join(), say) and otherwise defers
 * it to the end of the interceptor. A thread parked in pthread_join() can
 * hold glibc's stack cache lock (it was freeing stacks when the signal
 * came), and a spawner inside the pthread_create() interceptor waiting for
 * that lock keeps our signal deferred until the stop is abandoned. Seen
 * with gdb: the parked thread in __nptl_free_stacks() under
 * __pthread_clockjoin_ex(), the straggler in get_cached_stack() under
 * __interceptor_pthread_create(), its signal taken by the kernel, never
 * run. Without TSan the waiter takes the signal in the lock's futex wait.
 */
static _Atomic pid_t spawner_tids[NSPAWNERS];
static _Atomic unsigned long spawner_creates[NSPAWNERS];
static _Atomic long tsan_stalls;

static pid_t gettid_raw(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void register_core(int i)
{
	atomic_store(&core_tids[i], gettid_raw());
}

static void *persistent(void *p)
{
	unsigned seed = (unsigned)(uintptr_t)p * 7919u + 1;
	uint64_t set = 1ull << (rw_threads_signal() - 1);
	struct counter *c = &persist_n[(uintptr_t)p];

	register_core((int)(uintptr_t)p);
	atomic_fetch_add(&persist_ready, 1);
	while (!atomic_load(&stop_persist)) {
		unsigned r = rnd(&seed);

		for (unsigned i = 0; i < r % 2000; i++) {
			atomic_fetch_add_explicit(&c->n, 1,
						  memory_order_relaxed);
			bump();
		}
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

static void *grandchild(void *p)
{
	(void)p;
	bump();
	atomic_fetch_sub(&grandchildren_live, 1);
	return NULL;
}

static void *short_lived(void *p)
{
	unsigned seed = (unsigned)(uintptr_t)p;
	unsigned r = rnd(&seed);
	pthread_t t;

	bump();
	if (r % 3 == 0)
		sleep_ns((long)(r % 100) * 1000);
	/* Threads created by threads that are themselves short-lived. */
	if (r % 5 == 0 && atomic_load(&grandchildren_live) < MAX_DETACHED) {
		atomic_fetch_add(&grandchildren_live, 1);
		if (pthread_create(&t, NULL, grandchild, NULL) == 0) {
			if ((r & 1) || !detached_ok)
				CHECK(pthread_join(t, NULL) == 0);
			else
				pthread_detach(t);
		} else {
			atomic_fetch_sub(&grandchildren_live, 1);
		}
	}
	bump();
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

	atomic_store(&spawner_tids[(uintptr_t)p], gettid_raw());
	CHECK(pthread_attr_init(&det) == 0);
	CHECK(pthread_attr_setdetachstate(&det, PTHREAD_CREATE_DETACHED) == 0);
	while (!atomic_load(&stop_spawn)) {
		unsigned r = rnd(&seed);
		void *arg = (void *)(uintptr_t)r;
		int err;

		bump();
		atomic_fetch_add(&spawner_creates[(uintptr_t)p], 1);
		if (detached_ok && r % 4 == 0 &&
		    atomic_load(&detached_live) < MAX_DETACHED) {
			atomic_fetch_add(&detached_live, 1);
			err = pthread_create(&t, &det, short_detached, arg);
			atomic_fetch_add(&spawner_creates[(uintptr_t)p], 1);
			if (err)
				atomic_fetch_sub(&detached_live, 1);
		} else {
			err = pthread_create(&t, NULL, short_lived, arg);
			atomic_fetch_add(&spawner_creates[(uintptr_t)p], 1);
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

static _Atomic long stop_seq;

/*
 * A stop may time out on a thread that is exiting: glibc blocks every
 * signal before it frees a detached thread's stack, under a lock that a
 * parked thread (in pthread_create(), say) may hold. Such a straggler is
 * never one of the core threads, and it is gone soon after the stop is
 * abandoned (the lock holder resumed). Anything else is a failure.
 */
static bool exiting_straggler(pid_t tid)
{
	uint64_t t0 = rw_test_now_ns();

#ifdef RW_TSAN
	/* See spawner_tids: tolerated if it was in pthread_create() and
	 * leaves it once the stop is abandoned. */
	for (size_t i = 0; i < NSPAWNERS; i++) {
		unsigned long c = atomic_load(&spawner_creates[i]);

		if (atomic_load(&spawner_tids[i]) != tid || !(c & 1))
			continue;
		while (atomic_load(&spawner_creates[i]) == c) {
			if (rw_test_now_ns() - t0 > 5000000000ull)
				return false;
			sleep_ns(1000000);
		}
		atomic_fetch_add(&tsan_stalls, 1);
		return true;
	}
#endif

	for (size_t i = 0; i < NPERSIST + 3; i++)
		if (atomic_load(&core_tids[i]) == tid)
			return false;
	while (syscall(SYS_tgkill, getpid(), tid, 0) == 0) {
		if (rw_test_now_ns() - t0 > 5000000000ull)
			return false;
		sleep_ns(1000000);
	}
	return true;
}

/* One stop and the checks that follow it. */
static void one_stop(void)
{
	long n = atomic_fetch_add(&stop_seq, 1) + 1;
	struct rw_tid_list late;
	int ret = rw_stop_threads(fn, (void *)(uintptr_t)n, STOP_TIMEOUT_MS,
				  &late);
	bool ok = ret == (int)(n & 0xffff);

	if (!ok && ret == -RW_ERR_THREAD_TIMEOUT && late.count) {
		ok = true;
		for (size_t i = 0; i < late.count; i++)
			ok = ok && exiting_straggler(late.tids[i]);
		if (ok) {
			atomic_fetch_add(&exit_stalls, 1);
			atomic_fetch_add(&fn_runs, 1); /* fn did not run */
		}
	}
	if (!ok) {
		fprintf(stderr,
			"stop %ld: returned %d (%s), %zu stragglers:", n, ret,
			rw_strerror(ret), late.count);
		for (size_t i = 0; i < late.count; i++)
			fprintf(stderr, " %d", (int)late.tids[i]);
		fputc('\n', stderr);
		exit(1);
	}
	rw_tid_list_free(&late);
	CHECK_EQ(atomic_load(&moved), 0);
	CHECK_EQ(atomic_load(&list_changed), 0);
	CHECK_EQ(atomic_load(&list_failed), 0);
	CHECK_EQ(atomic_load(&overlap), 0);
}

static void *stopper(void *p)
{
	(void)p;
	register_core(NPERSIST + 1);
	while (!atomic_load(&stop_stoppers)) {
		bump();
		one_stop();
		sleep_ns(100000);
	}
	return NULL;
}

static void *each_caller(void *p)
{
	(void)p;
	register_core(NPERSIST + 2);
	while (!atomic_load(&stop_stoppers)) {
		bump();
		CHECK_OK(rw_on_each_thread(each_fn, NULL, STOP_TIMEOUT_MS,
					   NULL));
		atomic_fetch_add(&each_calls, 1);
		sleep_ns(500000);
	}
	return NULL;
}

/* After a stop, every persistent thread moves again. */
static void check_resume(void)
{
	unsigned long before[NPERSIST];
	uint64_t t0 = rw_test_now_ns();

	for (int i = 0; i < NPERSIST; i++)
		before[i] = atomic_load(&persist_n[i].n);
	for (int i = 0; i < NPERSIST; i++) {
		while (atomic_load(&persist_n[i].n) == before[i]) {
			CHECK(rw_test_now_ns() - t0 < 30000000000ull);
			sleep_ns(100000);
		}
	}
}

int main(void)
{
	long max_stops = rw_test_scale(100000, 20000);
	uint64_t max_ns = rw_test_long() ? UINT64_MAX : 2500000000ull;
	pthread_t pt[NPERSIST], st[NSPAWNERS], second, each;
	uint64_t t0 = rw_test_now_ns(), elapsed;
	long k;

	register_core(NPERSIST);
	detached_ok = getenv("REWIRE_TORTURE_DETACHED") &&
		      !strcmp(getenv("REWIRE_TORTURE_DETACHED"), "1");
	for (int i = 0; i < NPERSIST; i++)
		CHECK(pthread_create(&pt[i], NULL, persistent,
				     (void *)(uintptr_t)i) == 0);
	while (atomic_load(&persist_ready) < NPERSIST)
		sleep_ns(1000000);
	for (int i = 0; i < NSPAWNERS; i++)
		CHECK(pthread_create(&st[i], NULL, spawner,
				     (void *)(uintptr_t)i) == 0);
	CHECK(pthread_create(&second, NULL, stopper, NULL) == 0);
	CHECK(pthread_create(&each, NULL, each_caller, NULL) == 0);

	for (k = 1; k <= max_stops; k++) {
		one_stop();
		if (k % 16 == 0)
			check_resume();
		if (rw_test_enough(t0, max_ns, atomic_load(&stop_seq), 10))
			break;
	}

	atomic_store(&stop_stoppers, 1);
	CHECK(pthread_join(second, NULL) == 0);
	CHECK(pthread_join(each, NULL) == 0);
	atomic_store(&stop_spawn, 1);
	for (int i = 0; i < NSPAWNERS; i++)
		CHECK(pthread_join(st[i], NULL) == 0);
	while (atomic_load(&detached_live) > 0 ||
	       atomic_load(&grandchildren_live) > 0)
		sleep_ns(1000000);
	atomic_store(&stop_persist, 1);
	for (int i = 0; i < NPERSIST; i++)
		CHECK(pthread_join(pt[i], NULL) == 0);
	CHECK_EQ(atomic_load(&moved), 0);
	CHECK_EQ(atomic_load(&list_changed), 0);
	CHECK_EQ(atomic_load(&overlap), 0);
	CHECK(atomic_load(&stop_seq) >= 10);
	CHECK_EQ(atomic_load(&fn_runs), atomic_load(&stop_seq));

	elapsed = rw_test_now_ns() - t0;
	printf("torture_stop_threads: %ld stops (%ld timed out on an exiting "
	       "thread, %ld on a TSan-deferred signal), %ld cross-thread calls, %ld threads created (%ld "
	       "create failures), 0 violations, %.2f s\n",
	       atomic_load(&stop_seq), atomic_load(&exit_stalls),
	       atomic_load(&tsan_stalls), atomic_load(&each_calls),
	       atomic_load(&created), atomic_load(&create_fail),
	       (double)elapsed / 1e9);
	return 0;
}
