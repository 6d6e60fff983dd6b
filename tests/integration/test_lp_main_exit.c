/* SPDX-License-Identifier: MIT */
/*
 * Integration: live patch transitions after the main thread exited.
 *
 * After pthread_exit() in main, the thread group leader stays in
 * /proc/self/task as a zombie until the process exits. A transition must
 * not wait for it: it runs nothing, so it can be in no function. The main
 * thread starts NWORKERS threads that call me_func() in a loop and a
 * driver, then calls pthread_exit(). Once the leader is a zombie, the
 * driver enables the patch lp_main_exit (me_func() returns x + 2000
 * instead of x + 1000) and waits for the transition with a timeout, checks
 * that every worker then gets the new value, disables it the same way
 * (the old value again) and unloads it, CYCLES times. alarm() turns a hang
 * into a failure.
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("live patching needs the x86_64 or aarch64 backend");
}
#else

#include "lp_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define NWORKERS 4
#define CYCLES 5
#define WAIT_MS 5000
#define OLD(x) ((x) + 1000)
#define NEW(x) ((x) + 2000)

int me_func(int x);

__attribute__((noinline, noipa)) int me_func(int x)
{
	return OLD(x);
}

static _Atomic int ready, stop_workers;
/* The last value each worker got, and how many calls it made. */
static _Atomic int last[NWORKERS];
static _Atomic long calls[NWORKERS];

static void *worker(void *p)
{
	int i = (int)(intptr_t)p;

	atomic_fetch_add(&ready, 1);
	while (!atomic_load(&stop_workers)) {
		atomic_store(&last[i], me_func(i));
		atomic_fetch_add(&calls[i], 1);
	}
	return NULL;
}

static char leader_state(void)
{
	return rw_test_task_state((int)getpid());
}

/* Every worker makes two more calls, and the last one returns new/old. */
static void check_workers(bool new_side)
{
	long seen[NWORKERS];

	for (int i = 0; i < NWORKERS; i++)
		seen[i] = atomic_load(&calls[i]);
	for (int i = 0; i < NWORKERS; i++) {
		while (atomic_load(&calls[i]) < seen[i] + 2)
			usleep(100);
		CHECK_EQ(atomic_load(&last[i]), new_side ? NEW(i) : OLD(i));
	}
}

static void *driver(void *arg)
{
	char path[4096];
	struct rw_patch *p;

	(void)arg;
	while (atomic_load(&ready) < NWORKERS || leader_state() != 'Z')
		usleep(1000);
	lp_patch_path(path, sizeof(path), LP_MAIN_EXIT_DIR "/", "lp_main_exit");
	for (int c = 0; c < CYCLES; c++) {
		p = lp_load(path, 0);
		lp_enable_wait(p, WAIT_MS);
		check_workers(true);
		CHECK_EQ(me_func(1), NEW(1));
		lp_disable_wait(p, WAIT_MS);
		check_workers(false);
		CHECK_EQ(me_func(1), OLD(1));
		CHECK_OK(rw_patch_unload(p));
	}
	atomic_store(&stop_workers, 1);
	printf("test_lp_main_exit: ok (%d cycles, leader %c)\n", CYCLES,
	       leader_state());
	fflush(stdout);
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
#endif
