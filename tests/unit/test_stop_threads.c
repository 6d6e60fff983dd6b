/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of rw_stop_threads(): fn runs once, alone, while 64 other
 * threads are parked; its result is returned; nested calls fail with
 * -EDEADLK; a thread that blocks rewire's signal makes the stop fail, names
 * exactly that thread and leaves the program running; bad arguments; fork.
 *
 * Oracle: every worker increments a counter of its own (an atomic one and
 * a plain one) in a loop. fn samples every counter, sleeps a few
 * milliseconds and samples again: a parked worker cannot have moved. fn
 * also bumps a plain generation number that the workers read in their loop:
 * the ordering of rw_stop_threads() is all that makes those accesses
 * race-free, which ThreadSanitizer checks in the tsan preset.
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
#include <sys/wait.h>
#include <unistd.h>

#define NWORKERS 64
/* Generous: the machine may be loaded; success never waits this long. */
#define LONG_TIMEOUT_MS 20000
#define FN_RESULT 4242

struct counter {
	alignas(64) _Atomic unsigned long n;
	unsigned long plain; /* written by its worker only, outside fn */
	_Atomic pid_t tid;
};

static struct counter counters[NWORKERS];
static _Atomic int stop_workers;
static _Atomic int ready;
/* Written by fn only, while the workers are parked; read by the workers. */
static unsigned long plain_gen;

/* What fn saw. */
static _Atomic int fn_runs;
static _Atomic int fn_moved;	 /* counters that moved during fn */
static _Atomic int fn_wrong_tid; /* fn ran outside the calling thread */
static _Atomic pid_t caller_tid;
static unsigned long snap_n[NWORKERS], snap_plain[NWORKERS];

static pid_t gettid_raw(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };

	nanosleep(&ts, NULL);
}

/* Even workers spin, odd ones sleep 100 us between increments. */
static void *worker(void *p)
{
	struct counter *c = p;
	bool sleeper = (c - counters) & 1;
	unsigned long gen_seen = 0, last_gen = 0;

	atomic_store(&c->tid, gettid_raw());
	atomic_fetch_add(&ready, 1);
	while (!atomic_load_explicit(&stop_workers, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&c->n, 1, memory_order_relaxed);
		c->plain++;
		if (plain_gen != last_gen) {
			last_gen = plain_gen;
			gen_seen++;
		}
		if (sleeper)
			sleep_us(100);
	}
	return (void *)(uintptr_t)gen_seen;
}

static void start_workers(pthread_t *th)
{
	atomic_store(&stop_workers, 0);
	atomic_store(&ready, 0);
	for (int i = 0; i < NWORKERS; i++)
		CHECK(pthread_create(&th[i], NULL, worker, &counters[i]) == 0);
	while (atomic_load(&ready) < NWORKERS)
		sleep_us(1000);
}

static void stop_all(pthread_t *th)
{
	atomic_store(&stop_workers, 1);
	for (int i = 0; i < NWORKERS; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
}

static void reset_fn_stats(void)
{
	atomic_store(&fn_runs, 0);
	atomic_store(&fn_moved, 0);
	atomic_store(&fn_wrong_tid, 0);
	atomic_store(&caller_tid, gettid_raw());
}

/* The oracle; no locks, no allocation: it runs while everyone is parked. */
static int fn_sample(void *arg)
{
	int i;

	atomic_fetch_add(&fn_runs, 1);
	if (gettid_raw() != atomic_load(&caller_tid))
		atomic_fetch_add(&fn_wrong_tid, 1);
	for (i = 0; i < NWORKERS; i++) {
		snap_n[i] = atomic_load_explicit(&counters[i].n,
						 memory_order_relaxed);
		snap_plain[i] = counters[i].plain;
	}
	sleep_us(3000);
	for (i = 0; i < NWORKERS; i++) {
		if (atomic_load_explicit(&counters[i].n,
					 memory_order_relaxed) != snap_n[i] ||
		    counters[i].plain != snap_plain[i])
			atomic_fetch_add(&fn_moved, 1);
	}
	plain_gen++;
	return arg ? *(int *)arg : FN_RESULT;
}

static int fn_noop(void *arg)
{
	(void)arg;
	return 0;
}

/* Wait until every worker has moved again since fn's last sample. */
static void check_workers_resume(void)
{
	for (int i = 0; i < NWORKERS; i++) {
		int tries = 0;

		while (atomic_load(&counters[i].n) == snap_n[i]) {
			CHECK(tries++ < 20000);
			sleep_us(500);
		}
	}
}

static void test_basic(void)
{
	pthread_t th[NWORKERS];
	struct rw_tid_list late = { (pid_t *)1, 99 };
	int value = -7, rounds = 20;
	unsigned long gen0 = plain_gen;

	start_workers(th);
	reset_fn_stats();
	CHECK_EQ(rw_stop_threads(fn_sample, NULL, LONG_TIMEOUT_MS, &late),
		 FN_RESULT);
	CHECK(late.tids == NULL && late.count == 0);
	CHECK_EQ(atomic_load(&fn_runs), 1);
	CHECK_EQ(atomic_load(&fn_moved), 0);
	CHECK_EQ(atomic_load(&fn_wrong_tid), 0);
	check_workers_resume();

	/* fn's result comes back as it is, negative ones included. */
	CHECK_EQ(rw_stop_threads(fn_sample, &value, -1, NULL), -7);
	CHECK_EQ(atomic_load(&fn_runs), 2);
	for (int i = 3; i <= rounds; i++) {
		CHECK_EQ(rw_stop_threads(fn_sample, NULL, LONG_TIMEOUT_MS,
					 NULL),
			 FN_RESULT);
		CHECK_EQ(atomic_load(&fn_runs), i);
	}
	CHECK_EQ(atomic_load(&fn_moved), 0);
	CHECK_EQ(atomic_load(&fn_wrong_tid), 0);
	check_workers_resume();
	CHECK_EQ(plain_gen - gen0, (unsigned long)rounds);
	atomic_store(&stop_workers, 1);
	for (int i = 0; i < NWORKERS; i++) {
		void *seen;

		CHECK(pthread_join(th[i], &seen) == 0);
		/* Every worker saw the last generation fn wrote. */
		CHECK((uintptr_t)seen >= 1);
	}
}

static void test_alone(void)
{
	int value = 5;

	/* No other thread: fn runs at once, even with a zero timeout. */
	reset_fn_stats();
	CHECK_EQ(rw_stop_threads(fn_sample, &value, 0, NULL), 5);
	CHECK_EQ(atomic_load(&fn_runs), 1);
}

static void test_bad_args(void)
{
	struct rw_tid_list late = { (pid_t *)1, 99 };

	CHECK_EQ(rw_stop_threads(NULL, NULL, 1000, &late), -EINVAL);
	CHECK(late.tids == NULL && late.count == 0);
	CHECK_EQ(rw_stop_threads(NULL, NULL, -1, NULL), -EINVAL);
}

static _Atomic int nested_stop, nested_each, nested_sig;

static void each_noop(void *arg)
{
	(void)arg;
}

static int fn_nested(void *arg)
{
	(void)arg;
	atomic_store(&nested_stop, rw_stop_threads(fn_noop, NULL, 100, NULL));
	atomic_store(&nested_each,
		     rw_on_each_thread(each_noop, NULL, 100, NULL));
	atomic_store(&nested_sig, rw_threads_set_signal(rw_threads_signal()));
	return 1;
}

static _Atomic int each_nested_ret = 1;

static void each_nested(void *arg)
{
	(void)arg;
	/* Only the caller's run checks; the others would all agree. */
	if (gettid_raw() == atomic_load(&caller_tid))
		atomic_store(&each_nested_ret,
			     rw_stop_threads(fn_noop, NULL, 100, NULL));
}

/*
 * A signal handler that runs in a parked thread (during PREPARE, parked
 * threads still take signals) and tries a stop of its own.
 */
static _Atomic int usr1_stop = 1, usr1_each = 1;

static void usr1_handler(int sig)
{
	(void)sig;
	atomic_store(&usr1_stop, rw_stop_threads(fn_noop, NULL, 100, NULL));
	atomic_store(&usr1_each, rw_on_each_thread(each_noop, NULL, 100, NULL));
}

/* Whether thread tid has rewire's signal blocked: it is in the handler. */
static bool in_handler(pid_t tid)
{
	char path[64], buf[4096], *p;
	unsigned long long blk;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	CHECK(n > 0);
	buf[n] = '\0';
	p = strstr(buf, "SigBlk:");
	CHECK(p);
	blk = strtoull(p + 7, NULL, 16);
	return blk & 1ull << (rw_threads_signal() - 1);
}

struct stopper {
	pthread_t th;
	int ret;
	struct rw_tid_list late;
	int timeout_ms;
};

static void *stopper_main(void *p)
{
	struct stopper *s = p;

	atomic_store(&caller_tid, gettid_raw());
	s->ret = rw_stop_threads(fn_sample, NULL, s->timeout_ms, &s->late);
	return NULL;
}

/*
 * The blocker: a thread that blocks rewire's signal with the raw system
 * call, which no interposed sigprocmask() can see, until told otherwise.
 */
static _Atomic int blocker_cmd;	  /* 1: unblock, 2: exit */
static _Atomic int blocker_state; /* 1: blocked, 2: unblocked */
static _Atomic pid_t blocker_tid;
static _Atomic int blocker_was_pending;
static _Atomic int blocker_nested; /* 1: do the parked-handler test */

static void *blocker(void *p)
{
	uint64_t set = 1ull << (rw_threads_signal() - 1), pend = 0;

	(void)p;
	atomic_store(&blocker_tid, gettid_raw());
	CHECK(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 8) == 0);
	atomic_store(&blocker_state, 1);
	if (atomic_load(&blocker_nested)) {
		/* Worker 1 sleeps: it parks as soon as it is signalled. */
		pid_t w = atomic_load(&counters[1].tid);
		int tries = 0;

		while (!in_handler(w)) {
			CHECK(tries++ < 20000);
			sleep_us(500);
		}
		sleep_us(20000); /* from the handler's entry to the futex */
		CHECK(syscall(SYS_tgkill, getpid(), w, SIGUSR1) == 0);
		while (atomic_load(&usr1_each) == 1)
			sleep_us(500);
		atomic_store(&blocker_cmd, 1);
	}
	while (atomic_load(&blocker_cmd) < 1)
		sleep_us(1000);
	/* The stop's signal is (or soon will be: a loaded or emulated
	 * machine may not have sent it yet) pending here. */
	for (int i = 0; i < 10000; i++) {
		CHECK(syscall(SYS_rt_sigpending, &pend, 8) == 0);
		if (pend & set)
			break;
		sleep_us(1000);
	}
	atomic_store(&blocker_was_pending, (pend & set) != 0);
	/* Parks here if a stop is still waiting for us. */
	CHECK(syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, NULL, 8) == 0);
	sleep_us(5000);
	atomic_store(&blocker_state, 2);
	while (atomic_load(&blocker_cmd) < 2)
		sleep_us(1000);
	return NULL;
}

static void start_blocker(pthread_t *bt, bool nested)
{
	atomic_store(&blocker_cmd, 0);
	atomic_store(&blocker_state, 0);
	atomic_store(&blocker_nested, nested);
	CHECK(pthread_create(bt, NULL, blocker, NULL) == 0);
	while (atomic_load(&blocker_state) < 1)
		sleep_us(1000);
}

static void test_nested(void)
{
	pthread_t th[NWORKERS];

	start_workers(th);
	reset_fn_stats();
	CHECK_EQ(rw_stop_threads(fn_nested, NULL, LONG_TIMEOUT_MS, NULL), 1);
	CHECK_EQ(atomic_load(&nested_stop), -EDEADLK);
	CHECK_EQ(atomic_load(&nested_each), -EDEADLK);
	CHECK_EQ(atomic_load(&nested_sig), -EDEADLK);
	CHECK_OK(rw_on_each_thread(each_nested, NULL, LONG_TIMEOUT_MS, NULL));
	CHECK_EQ(atomic_load(&each_nested_ret), -EDEADLK);

#ifdef RW_TSAN
	/* TSan runs handlers with every signal blocked: no SIGUSR1 while
	 * parked. */
	(void)usr1_handler;
	(void)stopper_main;
#else
	pthread_t bt;
	struct stopper s = { .timeout_ms = LONG_TIMEOUT_MS };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr1_handler;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	/* The blocker holds the stop in PREPARE while worker 1 is parked,
	 * sends it SIGUSR1, then lets the stop complete. */
	start_blocker(&bt, true);
	CHECK(pthread_create(&s.th, NULL, stopper_main, &s) == 0);
	CHECK(pthread_join(s.th, NULL) == 0);
	CHECK_EQ(s.ret, FN_RESULT);
	CHECK_EQ(s.late.count, 0);
	CHECK_EQ(atomic_load(&usr1_stop), -EDEADLK);
	CHECK_EQ(atomic_load(&usr1_each), -EDEADLK);
	CHECK_EQ(atomic_load(&fn_runs), 1);
	CHECK_EQ(atomic_load(&fn_moved), 0);
	CHECK_EQ(atomic_load(&blocker_was_pending), 1);
	while (atomic_load(&blocker_state) < 2)
		sleep_us(1000);
	atomic_store(&blocker_cmd, 2);
	CHECK(pthread_join(bt, NULL) == 0);
	sa.sa_handler = SIG_DFL;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
#endif

	/* The lock is free again. */
	reset_fn_stats();
	CHECK_EQ(rw_stop_threads(fn_sample, NULL, LONG_TIMEOUT_MS, NULL),
		 FN_RESULT);
	stop_all(th);
}

static void test_straggler(void)
{
	pthread_t th[NWORKERS], bt;
	struct rw_tid_list late;
	uint64_t t0, elapsed_ms;
	int ret;

	start_workers(th);
	start_blocker(&bt, false);
	reset_fn_stats();

	t0 = rw_test_now_ns();
	ret = rw_stop_threads(fn_sample, NULL, 300, &late);
	elapsed_ms = (rw_test_now_ns() - t0) / 1000000;
	CHECK_EQ(ret, -RW_ERR_THREAD_TIMEOUT);
	CHECK(elapsed_ms >= 290);
	CHECK(elapsed_ms < 10000);
	CHECK_EQ(late.count, 1);
	CHECK_EQ(late.tids[0], atomic_load(&blocker_tid));
	rw_tid_list_free(&late);
	CHECK_EQ(atomic_load(&fn_runs), 0);

	/* The parked threads were released and run again. */
	for (int i = 0; i < NWORKERS; i++)
		snap_n[i] = atomic_load(&counters[i].n);
	check_workers_resume();

	/* The late signal arrives, the handler returns at once. */
	atomic_store(&blocker_cmd, 1);
	while (atomic_load(&blocker_state) < 2)
		sleep_us(1000);
	CHECK_EQ(atomic_load(&blocker_was_pending), 1);
	CHECK_EQ(atomic_load(&fn_runs), 0);

	/* Now everyone stops, the former straggler included. */
	CHECK_EQ(rw_stop_threads(fn_sample, NULL, LONG_TIMEOUT_MS, &late),
		 FN_RESULT);
	CHECK_EQ(late.count, 0);
	CHECK_EQ(atomic_load(&fn_runs), 1);
	CHECK_EQ(atomic_load(&fn_moved), 0);

	/* timeout 0 does not wait; the stop still ends cleanly. */
	ret = rw_stop_threads(fn_noop, NULL, 0, &late);
	CHECK(ret == 0 || ret == -RW_ERR_THREAD_TIMEOUT);
	CHECK(ret == 0 ? late.count == 0 : late.count > 0);
	rw_tid_list_free(&late);
	CHECK_EQ(rw_stop_threads(fn_sample, NULL, LONG_TIMEOUT_MS, NULL),
		 FN_RESULT);
	CHECK_EQ(atomic_load(&fn_runs), 2);
	CHECK_EQ(atomic_load(&fn_moved), 0);

	atomic_store(&blocker_cmd, 2);
	CHECK(pthread_join(bt, NULL) == 0);
	stop_all(th);
}

/* Stops and cross-thread calls from several threads at once serialize. */
static _Atomic int in_fn, overlap;
static _Atomic int conc_stop;

static int fn_exclusive(void *arg)
{
	(void)arg;
	if (atomic_fetch_add(&in_fn, 1) != 0)
		atomic_fetch_add(&overlap, 1);
	sleep_us(200);
	atomic_fetch_sub(&in_fn, 1);
	return 3;
}

static void each_exclusive(void *arg)
{
	(void)arg;
	if (atomic_load(&in_fn) != 0)
		atomic_fetch_add(&overlap, 1);
}

static _Atomic long conc_done[3];

static void *conc_stopper(void *p)
{
	long n = 0;

	while (!atomic_load(&conc_stop)) {
		if ((uintptr_t)p & 1)
			CHECK_OK(rw_on_each_thread(each_exclusive, NULL,
						   LONG_TIMEOUT_MS, NULL));
		else
			CHECK_EQ(rw_stop_threads(fn_exclusive, NULL,
						 LONG_TIMEOUT_MS, NULL),
				 3);
		n++;
		atomic_store(&conc_done[(uintptr_t)p], n);
		/* Unfair lock: a thread that took it again at once could
		 * starve the others (seen on the emulated aarch64 machine,
		 * where one stop takes tens of milliseconds). */
		sleep_us(1000);
	}
	return (void *)n;
}

static bool conc_all_done(int n)
{
	for (int i = 0; i < n; i++)
		if (atomic_load(&conc_done[i]) < 1)
			return false;
	return true;
}

static void test_concurrent(void)
{
	pthread_t th[NWORKERS], ct[3];
	uint64_t t0 = rw_test_now_ns();

	start_workers(th);
	atomic_store(&conc_stop, 0);
	for (int i = 0; i < 3; i++)
		CHECK(pthread_create(&ct[i], NULL, conc_stopper,
				     (void *)(uintptr_t)i) == 0);
	/* The lock is not fair: pause between stops to let the others in. */
	while (rw_test_now_ns() - t0 < 300000000ull || !conc_all_done(3)) {
		CHECK(rw_test_now_ns() - t0 < 60000000000ull);
		CHECK_EQ(rw_stop_threads(fn_exclusive, NULL, LONG_TIMEOUT_MS,
					 NULL),
			 3);
		sleep_us(1000);
	}
	atomic_store(&conc_stop, 1);
	for (int i = 0; i < 3; i++) {
		void *n;

		CHECK(pthread_join(ct[i], &n) == 0);
		CHECK((uintptr_t)n >= 1);
	}
	CHECK_EQ(atomic_load(&overlap), 0);
	stop_all(th);
}

/* fork while another thread keeps stopping; the child stops on its own. */
static _Atomic int child_runs;

static int fn_child(void *arg)
{
	(void)arg;
	return atomic_fetch_add(&child_runs, 1) + 10;
}

static void test_fork(void)
{
	pthread_t th[NWORKERS], ct;

	start_workers(th);
	atomic_store(&conc_stop, 0);
	CHECK(pthread_create(&ct, NULL, conc_stopper, (void *)(uintptr_t)0) ==
	      0);
	for (int i = 0; i < 5; i++) {
		int status;
		pid_t pid = fork();

		CHECK(pid >= 0);
		if (pid == 0) {
			int ok = 1;

			atomic_store(&child_runs, 0);
			ok &= rw_stop_threads(fn_child, NULL, 5000, NULL) == 10;
			ok &= rw_stop_threads(fn_child, NULL, 5000, NULL) == 11;
			_exit(ok ? 0 : 3);
		}
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status));
		CHECK_EQ(WEXITSTATUS(status), 0);
	}
	atomic_store(&conc_stop, 1);
	CHECK(pthread_join(ct, NULL) == 0);
	stop_all(th);
}

static void run(const char *name, void (*test)(void))
{
	uint64_t t0 = rw_test_now_ns();

	test();
	printf("  %-16s %7.1f ms\n", name, (rw_test_now_ns() - t0) / 1e6);
}

int main(void)
{
	run("bad_args", test_bad_args);
	run("alone", test_alone);
	run("basic", test_basic);
	run("nested", test_nested);
	run("straggler", test_straggler);
	run("concurrent", test_concurrent);
	run("fork", test_fork);
	printf("test_stop_threads: ok (%d workers, signal %d)\n", NWORKERS,
	       rw_threads_signal());
	return 0;
}
