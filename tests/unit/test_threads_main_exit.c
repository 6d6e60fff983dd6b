/* SPDX-License-Identifier: MIT */
/*
 * Cross-thread calls and stops after the main thread exited.
 *
 * After pthread_exit() in main, the thread group leader stays in
 * /proc/self/task as a zombie until the process exits, and tgkill() to it
 * still succeeds, but it runs nothing: a call that waits for it never
 * completes. The main thread starts a driver and NWORKERS workers and
 * calls pthread_exit(). The driver waits until the leader is a zombie,
 * then runs rw_on_each_thread() and rw_stop_threads() with a timeout (each
 * must succeed at once, with no straggler, and reach every worker) and
 * without one (each must return). alarm() turns a hang into a failure.
 */
#include <rewire/threads.h>

#include "check.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NWORKERS 4
#define CALLS 20
/* Far more than a call needs; the zombie made every one time out. */
#define TIMEOUT_MS 2000

static _Atomic int ready, stop_workers;
static _Atomic long runs[NWORKERS];
static __thread int my_index = -1;

static void fn_count(void *arg)
{
	(void)arg;
	if (my_index >= 0)
		atomic_fetch_add(&runs[my_index], 1);
}

static int stop_fn(void *arg)
{
	(void)arg;
	return 42;
}

static void *worker(void *p)
{
	my_index = (int)(intptr_t)p;
	atomic_fetch_add(&ready, 1);
	while (!atomic_load(&stop_workers))
		usleep(1000);
	return NULL;
}

/* The leader's state letter in /proc/self/task/PID/stat. */
static char leader_state(void)
{
	return rw_test_task_state((int)getpid());
}

static void check_all_ran(long expect)
{
	for (int i = 0; i < NWORKERS; i++)
		CHECK_EQ(atomic_load(&runs[i]), expect);
}

static void *driver(void *arg)
{
	struct rw_tid_list late;
	uint64_t t0;
	long n = 0;

	(void)arg;
	while (atomic_load(&ready) < NWORKERS || leader_state() != 'Z')
		usleep(1000);

	/* With a timeout: no straggler, and no waiting for the zombie. */
	t0 = rw_test_now_ns();
	for (int i = 0; i < CALLS; i++) {
		CHECK_OK(rw_on_each_thread(fn_count, NULL, TIMEOUT_MS, &late));
		CHECK_EQ(late.count, 0);
		rw_tid_list_free(&late);
		check_all_ran(++n);
		CHECK_EQ(rw_stop_threads(stop_fn, NULL, TIMEOUT_MS, &late), 42);
		CHECK_EQ(late.count, 0);
		rw_tid_list_free(&late);
	}
	/* Without a timeout: each returns. */
	for (int i = 0; i < CALLS; i++) {
		CHECK_OK(rw_on_each_thread(fn_count, NULL, -1, NULL));
		check_all_ran(++n);
		CHECK_EQ(rw_stop_threads(stop_fn, NULL, -1, NULL), 42);
	}
	/* The zombie leader is found once per call, not waited for. */
	printf("test_threads_main_exit: ok (%d calls and stops in %.1f ms, "
	       "leader %c)\n",
	       2 * CALLS, (double)(rw_test_now_ns() - t0) / 1e6,
	       leader_state());
	fflush(stdout);
	/* exit() ends the whole process, the zombie leader with it. */
	exit(0);
}

int main(void)
{
	pthread_t t;

	alarm(60 * rw_test_time_scale());
	for (int i = 0; i < NWORKERS; i++)
		CHECK(pthread_create(&t, NULL, worker, (void *)(intptr_t)i) ==
		      0);
	CHECK(pthread_create(&t, NULL, driver, NULL) == 0);
	pthread_exit(NULL);
}
