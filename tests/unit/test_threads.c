/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the thread walker: listing, cross-thread calls, timeouts and
 * cancellation, nesting, signal choice, fork.
 */
#include <rewire/threads.h>

#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NWORKERS 8
/* Generous: the machine may be loaded; success never waits this long. */
#define LONG_TIMEOUT_MS 20000

static pid_t gettid_raw(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* What each thread saw of fn. */
struct tslot {
	_Atomic pid_t tid;
	_Atomic int ran;	/* fn runs in this thread */
	_Atomic int foreign;	/* runs where gettid() was not ours */
	_Atomic int nested_ret; /* result of a nested call from fn */
	_Atomic int nested_set_ret;
};

static struct tslot slots[NWORKERS + 2];
static __thread struct tslot *my_slot;
static _Atomic int stop_workers;
static _Atomic int ready;

static void fn_count(void *arg)
{
	struct tslot *s = my_slot;

	(void)arg;
	if (!s)
		return;
	atomic_fetch_add(&s->ran, 1);
	if (gettid_raw() != atomic_load(&s->tid))
		atomic_fetch_add(&s->foreign, 1);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void *worker(void *p)
{
	struct tslot *s = p;

	atomic_store(&s->tid, gettid_raw());
	my_slot = s;
	atomic_fetch_add(&ready, 1);
	while (!atomic_load(&stop_workers))
		sleep_ms(1);
	return NULL;
}

static void reset_slots(void)
{
	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		atomic_store(&slots[i].ran, 0);
		atomic_store(&slots[i].foreign, 0);
		atomic_store(&slots[i].nested_ret, 1);
		atomic_store(&slots[i].nested_set_ret, 1);
	}
}

static void start_workers(pthread_t *th, int n)
{
	atomic_store(&stop_workers, 0);
	atomic_store(&ready, 0);
	for (int i = 0; i < n; i++)
		CHECK(pthread_create(&th[i], NULL, worker, &slots[i]) == 0);
	while (atomic_load(&ready) < n)
		sleep_ms(1);
}

static void stop_all(pthread_t *th, int n)
{
	atomic_store(&stop_workers, 1);
	for (int i = 0; i < n; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
}

static bool list_has(const struct rw_tid_list *l, pid_t tid)
{
	for (size_t i = 0; i < l->count; i++)
		if (l->tids[i] == tid)
			return true;
	return false;
}

static void test_set_signal(void)
{
	int def = rw_threads_signal();

	CHECK(def >= SIGRTMIN && def <= SIGRTMAX);
	CHECK_EQ(rw_threads_set_signal(0), -EINVAL);
	CHECK_EQ(rw_threads_set_signal(SIGRTMIN - 1), -EINVAL);
	CHECK_EQ(rw_threads_set_signal(SIGRTMAX + 1), -EINVAL);
	CHECK_EQ(rw_threads_set_signal(SIGUSR1), -EINVAL);
	CHECK_EQ(rw_threads_signal(), def);
	CHECK_OK(rw_threads_set_signal(SIGRTMAX - 5));
	CHECK_EQ(rw_threads_signal(), SIGRTMAX - 5);
	/* The first call installs the handler and fixes the signal. */
	reset_slots();
	CHECK_OK(rw_on_each_thread(fn_count, NULL, LONG_TIMEOUT_MS, NULL));
	CHECK_EQ(rw_threads_set_signal(SIGRTMAX - 4), -EBUSY);
	CHECK_OK(rw_threads_set_signal(SIGRTMAX - 5));
	CHECK_EQ(rw_threads_signal(), SIGRTMAX - 5);
}

static void test_list(void)
{
	pthread_t th[NWORKERS];
	struct rw_tid_list l;
	pid_t tids[NWORKERS];
	bool gone;

	start_workers(th, NWORKERS);
	CHECK_OK(rw_threads_list(&l));
	CHECK(l.count >= NWORKERS + 1);
	for (size_t i = 1; i < l.count; i++)
		CHECK(l.tids[i - 1] < l.tids[i]);
	CHECK(list_has(&l, getpid()));
	CHECK(list_has(&l, gettid_raw()));
	for (int i = 0; i < NWORKERS; i++) {
		tids[i] = atomic_load(&slots[i].tid);
		CHECK(list_has(&l, tids[i]));
	}
	rw_tid_list_free(&l);
	CHECK(l.tids == NULL && l.count == 0);
	rw_tid_list_free(&l);
	rw_tid_list_free(NULL);

	stop_all(th, NWORKERS);
	/*
	 * pthread_join() returns when the kernel clears the thread's tid,
	 * slightly before the task leaves /proc/self/task: allow for that.
	 */
	for (int tries = 0;; tries++) {
		CHECK_OK(rw_threads_list(&l));
		CHECK(list_has(&l, gettid_raw()));
		gone = true;
		for (int i = 0; i < NWORKERS; i++)
			gone = gone && !list_has(&l, tids[i]);
		rw_tid_list_free(&l);
		if (gone)
			break;
		CHECK(tries < 5000);
		sleep_ms(1);
	}
}

static void check_ran(int nworkers, int times)
{
	for (int i = 0; i < nworkers; i++) {
		CHECK_EQ(atomic_load(&slots[i].ran), times);
		CHECK_EQ(atomic_load(&slots[i].foreign), 0);
	}
	CHECK_EQ(atomic_load(&slots[NWORKERS].ran), times);
	CHECK_EQ(atomic_load(&slots[NWORKERS].foreign), 0);
}

static void test_each_thread(void)
{
	pthread_t th[NWORKERS];
	struct rw_tid_list late = { (pid_t *)1, 99 };

	reset_slots();
	start_workers(th, NWORKERS);
	CHECK_OK(rw_on_each_thread(fn_count, NULL, LONG_TIMEOUT_MS, &late));
	CHECK(late.tids == NULL && late.count == 0);
	check_ran(NWORKERS, 1);
	for (int i = 2; i <= 4; i++) {
		CHECK_OK(rw_on_each_thread(fn_count, NULL, -1, NULL));
		check_ran(NWORKERS, i);
	}
	stop_all(th, NWORKERS);
}

static void test_bad_args(void)
{
	struct rw_tid_list late = { (pid_t *)1, 99 };

	CHECK_EQ(rw_on_each_thread(NULL, NULL, 1000, &late), -EINVAL);
	CHECK(late.tids == NULL && late.count == 0);
	CHECK_EQ(rw_on_each_thread(NULL, NULL, -1, NULL), -EINVAL);
	CHECK_EQ(rw_threads_list(NULL), -EINVAL);
}

static void fn_noop(void *arg)
{
	(void)arg;
}

static void fn_nested(void *arg)
{
	struct tslot *s = my_slot;

	(void)arg;
	if (!s)
		return;
	atomic_fetch_add(&s->ran, 1);
	atomic_store(&s->nested_ret,
		     rw_on_each_thread(fn_noop, NULL, 1000, NULL));
	atomic_store(&s->nested_set_ret, rw_threads_set_signal(SIGRTMAX - 5));
}

static _Atomic int usr1_ret = 1;

static void usr1_handler(int sig)
{
	(void)sig;
	atomic_store(&usr1_ret, rw_on_each_thread(fn_noop, NULL, 1000, NULL));
}

/* In the caller, fn interrupts itself with a signal that tries a call. */
static void fn_raise(void *arg)
{
	(void)arg;
	if (my_slot == &slots[NWORKERS])
		raise(SIGUSR1);
}

static void test_nested(void)
{
	pthread_t th[NWORKERS];
	struct sigaction sa;

	reset_slots();
	start_workers(th, NWORKERS);
	CHECK_OK(rw_on_each_thread(fn_nested, NULL, LONG_TIMEOUT_MS, NULL));
	/* Slot NWORKERS is the main thread's. */
	for (int i = 0; i <= NWORKERS; i++) {
		CHECK_EQ(atomic_load(&slots[i].ran), 1);
		CHECK_EQ(atomic_load(&slots[i].nested_ret), -EDEADLK);
		CHECK_EQ(atomic_load(&slots[i].nested_set_ret), -EDEADLK);
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr1_handler;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	CHECK_OK(rw_on_each_thread(fn_raise, NULL, LONG_TIMEOUT_MS, NULL));
	CHECK_EQ(atomic_load(&usr1_ret), -EDEADLK);
	sa.sa_handler = SIG_DFL;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

	/* The lock is free again. */
	CHECK_OK(rw_on_each_thread(fn_noop, NULL, LONG_TIMEOUT_MS, NULL));
	stop_all(th, NWORKERS);
}

/*
 * A thread that blocks rewire's signal with the raw system call, which no
 * interposed sigprocmask() can see.
 */
static struct tslot *blocker_slot = &slots[NWORKERS + 1];
static _Atomic int blocker_cmd;	  /* 1: unblock, 2: exit */
static _Atomic int blocker_state; /* 1: blocked, 2: unblocked */
static _Atomic int blocker_was_pending;

static void *blocker(void *p)
{
	uint64_t set = 1ull << (rw_threads_signal() - 1), pend = 0;

	(void)p;
	atomic_store(&blocker_slot->tid, gettid_raw());
	my_slot = blocker_slot;
	CHECK(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 8) == 0);
	atomic_store(&blocker_state, 1);
	while (atomic_load(&blocker_cmd) < 1)
		sleep_ms(1);
	CHECK(syscall(SYS_rt_sigpending, &pend, 8) == 0);
	atomic_store(&blocker_was_pending, (pend & set) != 0);
	CHECK(syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, NULL, 8) == 0);
	/* The late signal is handled on the way out of the system call. */
	CHECK(syscall(SYS_rt_sigpending, &pend, 8) == 0);
	CHECK((pend & set) == 0);
	sleep_ms(5);
	atomic_store(&blocker_state, 2);
	while (atomic_load(&blocker_cmd) < 2)
		sleep_ms(1);
	return NULL;
}

static void test_straggler(void)
{
	pthread_t th[NWORKERS], bt;
	struct rw_tid_list late;
	uint64_t t0, elapsed_ms;
	int ret;

	reset_slots();
	start_workers(th, NWORKERS);
	atomic_store(&blocker_cmd, 0);
	CHECK(pthread_create(&bt, NULL, blocker, NULL) == 0);
	while (atomic_load(&blocker_state) < 1)
		sleep_ms(1);

	t0 = rw_test_now_ns();
	ret = rw_on_each_thread(fn_count, NULL, 300, &late);
	elapsed_ms = (rw_test_now_ns() - t0) / 1000000;
	CHECK_EQ(ret, -RW_ERR_THREAD_TIMEOUT);
	CHECK(elapsed_ms >= 290);
	CHECK(elapsed_ms < 10000);
	CHECK_EQ(late.count, 1);
	CHECK_EQ(late.tids[0], atomic_load(&blocker_slot->tid));
	rw_tid_list_free(&late);
	check_ran(NWORKERS, 1);
	CHECK_EQ(atomic_load(&blocker_slot->ran), 0);

	/* The late signal arrives and must not run fn. */
	atomic_store(&blocker_cmd, 1);
	while (atomic_load(&blocker_state) < 2)
		sleep_ms(1);
	CHECK_EQ(atomic_load(&blocker_was_pending), 1);
	CHECK_EQ(atomic_load(&blocker_slot->ran), 0);

	/* The next call reaches everyone, the former straggler once. */
	CHECK_OK(rw_on_each_thread(fn_count, NULL, LONG_TIMEOUT_MS, &late));
	CHECK_EQ(late.count, 0);
	check_ran(NWORKERS, 2);
	CHECK_EQ(atomic_load(&blocker_slot->ran), 1);
	CHECK_EQ(atomic_load(&blocker_slot->foreign), 0);

	/* timeout 0 does not wait; the call still ends cleanly. */
	ret = rw_on_each_thread(fn_count, NULL, 0, &late);
	CHECK(ret == 0 || ret == -RW_ERR_THREAD_TIMEOUT);
	CHECK(ret == 0 ? late.count == 0 : late.count > 0);
	rw_tid_list_free(&late);
	CHECK_OK(rw_on_each_thread(fn_noop, NULL, LONG_TIMEOUT_MS, NULL));

	atomic_store(&blocker_cmd, 2);
	CHECK(pthread_join(bt, NULL) == 0);
	stop_all(th, NWORKERS);
	/* Late signals of the timeout-0 call are harmless too. */
	for (int i = 0; i < NWORKERS; i++)
		CHECK(atomic_load(&slots[i].ran) <= 3);
}

static _Atomic int child_runs;

static void fn_child(void *arg)
{
	(void)arg;
	atomic_fetch_add(&child_runs, 1);
}

static _Atomic int caller_stop;

static void *caller_thread(void *p)
{
	(void)p;
	while (!atomic_load(&caller_stop))
		CHECK_OK(rw_on_each_thread(fn_noop, NULL, LONG_TIMEOUT_MS,
					   NULL));
	return NULL;
}

/* fork while another thread keeps making calls; the child makes its own. */
static void test_fork(void)
{
	pthread_t th[NWORKERS], ct;

	reset_slots();
	start_workers(th, NWORKERS);
	atomic_store(&caller_stop, 0);
	CHECK(pthread_create(&ct, NULL, caller_thread, NULL) == 0);
	for (int i = 0; i < 5; i++) {
		int status;
		pid_t pid = fork();

		CHECK(pid >= 0);
		if (pid == 0) {
			struct rw_tid_list l;
			int ok = 1;

			atomic_store(&child_runs, 0);
			ok &= !rw_on_each_thread(fn_child, NULL, 5000, NULL);
			ok &= atomic_load(&child_runs) == 1;
			ok &= rw_threads_list(&l) == 0 && l.count >= 1 &&
			      list_has(&l, gettid_raw());
			rw_tid_list_free(&l);
			ok &= !rw_on_each_thread(fn_child, NULL, 5000, NULL);
			ok &= atomic_load(&child_runs) == 2;
			_exit(ok ? 0 : 3);
		}
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status));
		CHECK_EQ(WEXITSTATUS(status), 0);
	}
	atomic_store(&caller_stop, 1);
	CHECK(pthread_join(ct, NULL) == 0);
	stop_all(th, NWORKERS);
}

int main(void)
{
	my_slot = &slots[NWORKERS];
	atomic_store(&my_slot->tid, gettid_raw());

	test_set_signal();
	test_bad_args();
	test_list();
	test_each_thread();
	test_nested();
	test_straggler();
	test_fork();
	printf("test_threads: ok (signal %d)\n", rw_threads_signal());
	return 0;
}
