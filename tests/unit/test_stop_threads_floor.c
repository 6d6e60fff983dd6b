/* SPDX-License-Identifier: MIT */
/*
 * rw_stop_threads() at the floor: what a stop costs the process, measured
 * by the kernel, not by rewire.
 *
 * - memory: a stop in a process whose threads have not changed maps no new
 *   memory. Counted as minor page faults (getrusage): memory mapped per
 *   stop is fresh, and touching it faults.
 * - wake-ups: a parked thread sleeps once per stop, from its arrival to
 *   the end of the stop. Counted as the voluntary context switches of
 *   threads that otherwise sleep in read() (/proc/self/task/TID/status):
 *   each stop costs such a thread one sleep in the handler and one more
 *   in read(), two in all (three when the thread was woken again to block
 *   signals).
 * - the listing reused: a stop after a thread was created (and another one
 *   exited, so that the count stays the same) parks the new thread too,
 *   and so does a stop in a forked child.
 * - a parked thread that took signals again during a long PREPARE (a stop
 *   waiting for a late thread) blocks them again before fn runs: fn never
 *   overlaps a program handler in a parked thread.
 */
#include <rewire/threads.h>

#include "check.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NSLEEPERS 8
#define STOPS 100
#define TIMEOUT_MS 30000

static int pipe_fd[2];
static _Atomic pid_t sleeper_tid[NSLEEPERS];
static _Atomic int sleepers_up, sleepers_quit;

static pid_t gettid_raw(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/*
 * Sleeps in read() until the pipe is closed: wakes only for signals. TSan
 * holds a signal that arrives in read() until read() returns, so there the
 * sleeper naps 1 ms at a time instead (and its wake-ups are not counted).
 */
static void *sleeper(void *p)
{
	char c;

	atomic_store(&sleeper_tid[(intptr_t)p], gettid_raw());
	atomic_fetch_add(&sleepers_up, 1);
#ifdef RW_TSAN
	(void)c;
	while (!atomic_load(&sleepers_quit))
		sleep_us(1000);
#else
	while (read(pipe_fd[0], &c, 1) != 0)
		;
#endif
	return NULL;
}

static void start_sleepers(pthread_t *th)
{
	CHECK(pipe2(pipe_fd, O_CLOEXEC) == 0);
	atomic_store(&sleepers_up, 0);
	atomic_store(&sleepers_quit, 0);
	for (intptr_t i = 0; i < NSLEEPERS; i++)
		CHECK(pthread_create(&th[i], NULL, sleeper, (void *)i) == 0);
	while (atomic_load(&sleepers_up) < NSLEEPERS)
		sleep_us(1000);
	sleep_us(10000); /* into read() */
}

static void stop_sleepers(pthread_t *th)
{
	atomic_store(&sleepers_quit, 1);
	close(pipe_fd[1]);
	for (int i = 0; i < NSLEEPERS; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	close(pipe_fd[0]);
}

static _Atomic int fn_runs;

static int fn_count(void *arg)
{
	(void)arg;
	atomic_fetch_add(&fn_runs, 1);
	return 0;
}

static void each_count(void *arg)
{
	(void)arg;
	atomic_fetch_add(&fn_runs, 1);
}

static long task_field(pid_t tid, const char *field)
{
	char path[64], buf[4096], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	CHECK(n > 0);
	buf[n] = '\0';
	p = strstr(buf, field);
	CHECK(p);
	return strtol(p + strlen(field), NULL, 10);
}

static unsigned long long task_mask(pid_t tid, const char *field)
{
	char path[64], buf[4096], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	CHECK(n > 0);
	buf[n] = '\0';
	p = strstr(buf, field);
	CHECK(p);
	return strtoull(p + strlen(field), NULL, 16);
}

static long minflt(void)
{
	struct rusage ru;

	CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
	return ru.ru_minflt;
}

/* No memory mapped per stop, nor per cross-thread call. */
static void test_memory(void)
{
	pthread_t th[NSLEEPERS];
	long before, after;

	start_sleepers(th);
	for (int i = 0; i < 5; i++) {
		CHECK_OK(rw_stop_threads(fn_count, NULL, TIMEOUT_MS, NULL));
		CHECK_OK(rw_on_each_thread(each_count, NULL, TIMEOUT_MS, NULL));
	}
	before = minflt();
	for (int i = 0; i < STOPS; i++)
		CHECK_OK(rw_stop_threads(fn_count, NULL, TIMEOUT_MS, NULL));
	after = minflt();
	printf("  %d stops: %ld minor faults\n", STOPS, after - before);
#ifdef RW_TSAN
	/* TSan's runtime faults on its own shadow and trace memory. */
#else
	/* A mapping per stop would fault at least once per stop. */
	CHECK(after - before < STOPS / 5);
#endif
	stop_sleepers(th);
}

/* One sleep per parked thread per stop. */
static void test_wakeups(void)
{
	pthread_t th[NSLEEPERS];
	long before[NSLEEPERS], total = 0;

	start_sleepers(th);
	for (int i = 0; i < 3; i++)
		CHECK_OK(rw_stop_threads(fn_count, NULL, TIMEOUT_MS, NULL));
	for (int i = 0; i < NSLEEPERS; i++)
		before[i] =
			task_field(sleeper_tid[i], "voluntary_ctxt_switches:");
	for (int i = 0; i < STOPS; i++)
		CHECK_OK(rw_stop_threads(fn_count, NULL, TIMEOUT_MS, NULL));
	for (int i = 0; i < NSLEEPERS; i++)
		total +=
			task_field(sleeper_tid[i], "voluntary_ctxt_switches:") -
			before[i];
	printf("  %d stops, %d threads in read(): %.2f sleeps per thread "
	       "per stop\n",
	       STOPS, NSLEEPERS, (double)total / (STOPS * NSLEEPERS));
#ifdef RW_TSAN
	/* TSan's deferred signal delivery has sleeps of its own. */
	(void)total;
#else
	/* 2: the handler's and read()'s; a second wake-up makes it 3. */
	CHECK(total <= STOPS * NSLEEPERS * 5 / 2);
#endif
	stop_sleepers(th);
}

/*
 * Threads that change between stops: the new ones are parked. A busy
 * thread counts; fn checks that the count stands still.
 */
static _Atomic int busy_quit;
static _Atomic unsigned long busy_count;
static _Atomic int busy_up;
static _Atomic pid_t busy_tid;

static void *busy(void *p)
{
	(void)p;
	atomic_store(&busy_tid, gettid_raw());
	atomic_store(&busy_up, 1);
	while (!atomic_load_explicit(&busy_quit, memory_order_relaxed))
		atomic_fetch_add_explicit(&busy_count, 1, memory_order_relaxed);
	return NULL;
}

static _Atomic int fn_saw_moving;

/*
 * The new thread is parked: it is in rewire's handler (the signal blocked
 * there), whatever the scheduler did, and it does not count.
 */
static int fn_still(void *arg)
{
	unsigned long a = atomic_load(&busy_count);
	uint64_t end = rw_test_now_ns() + 2000000;

	(void)arg;
	if (!(task_mask(atomic_load(&busy_tid), "SigBlk:") &
	      1ull << (rw_threads_signal() - 1)))
		atomic_store(&fn_saw_moving, 1);
	while (rw_test_now_ns() < end)
		;
	if (atomic_load(&busy_count) != a)
		atomic_store(&fn_saw_moving, 1);
	return 0;
}

static void start_busy(pthread_t *bt)
{
	atomic_store(&busy_quit, 0);
	atomic_store(&busy_up, 0);
	CHECK(pthread_create(bt, NULL, busy, NULL) == 0);
	while (!atomic_load(&busy_up))
		sleep_us(1000);
}

static void stop_busy(pthread_t bt)
{
	atomic_store(&busy_quit, 1);
	CHECK(pthread_join(bt, NULL) == 0);
}

static void changed_set_round(void)
{
	pthread_t th[NSLEEPERS], bt;

	start_sleepers(th);
	/* The last listing: the sleepers. */
	CHECK_OK(rw_stop_threads(fn_count, NULL, TIMEOUT_MS, NULL));
	start_busy(&bt);
	atomic_store(&fn_saw_moving, 0);
	CHECK_OK(rw_stop_threads(fn_still, NULL, TIMEOUT_MS, NULL));
	CHECK_EQ(atomic_load(&fn_saw_moving), 0);
	stop_busy(bt);

	/* Same count, another thread: one sleeper gone, a busy one new. */
	CHECK_OK(rw_stop_threads(fn_count, NULL, TIMEOUT_MS, NULL));
	stop_sleepers(th);
	start_busy(&bt);
	atomic_store(&fn_saw_moving, 0);
	CHECK_OK(rw_stop_threads(fn_still, NULL, TIMEOUT_MS, NULL));
	CHECK_EQ(atomic_load(&fn_saw_moving), 0);
	/* And a cross-thread call reaches it too. */
	atomic_store(&fn_runs, 0);
	CHECK_OK(rw_on_each_thread(each_count, NULL, TIMEOUT_MS, NULL));
	CHECK_EQ(atomic_load(&fn_runs), 2);
	stop_busy(bt);
}

static void test_changed_set(void)
{
	pid_t pid;
	int status;

	changed_set_round();
	/* A forked child starts with the parent's last listing. */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		changed_set_round();
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * A long PREPARE: a blocker holds the stop while a sleeper is parked; the
 * sleeper takes signals again and runs the program's SIGUSR1 handler,
 * which is still running when the blocker lets the stop go on. fn must
 * not run before that handler has returned.
 */
static _Atomic int in_usr1, usr1_done, fn_overlap;
static _Atomic int blocker_go;

static void usr1_handler(int sig)
{
	uint64_t end = rw_test_now_ns() + 50000000;

	(void)sig;
	atomic_store(&in_usr1, 1);
	while (rw_test_now_ns() < end)
		;
	atomic_fetch_add(&usr1_done, 1);
	atomic_store(&in_usr1, 0);
}

static int fn_no_handler(void *arg)
{
	(void)arg;
	if (atomic_load(&in_usr1) || atomic_load(&usr1_done) != 1)
		atomic_store(&fn_overlap, 1);
	return 0;
}

static void *blocker(void *p)
{
	uint64_t set = 1ull << (rw_threads_signal() - 1);
	uint64_t usr1 = 1ull << (SIGUSR1 - 1);
	pid_t w = atomic_load(&sleeper_tid[0]);
	int tries = 0;

	(void)p;
	CHECK(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 8) == 0);
	atomic_store(&blocker_go, 1);
	/* Parked: rewire's signal blocked in the handler. */
	while (!(task_mask(w, "SigBlk:") & set)) {
		CHECK(tries++ < 20000);
		sleep_us(500);
	}
#ifndef RW_TSAN
	/* Parked threads block signals at once... */
	CHECK(task_mask(w, "SigBlk:") & usr1);
#endif
	/* ...and take them again when PREPARE lasts. */
	tries = 0;
	while (task_mask(w, "SigBlk:") & usr1) {
		CHECK(tries++ < 20000);
		sleep_us(500);
	}
	CHECK(syscall(SYS_tgkill, getpid(), w, SIGUSR1) == 0);
	while (!atomic_load(&in_usr1))
		sleep_us(100);
	/* Parks here; the stop goes on while the handler still runs. */
	CHECK(syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, NULL, 8) == 0);
	return NULL;
}

static void test_long_prepare(void)
{
#ifdef RW_TSAN
	/* TSan runs handlers with every signal blocked. */
	(void)usr1_handler;
	(void)fn_no_handler;
	(void)blocker;
	printf("  skipped under TSan\n");
#else
	pthread_t th[NSLEEPERS], bt;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr1_handler;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	start_sleepers(th);
	atomic_store(&blocker_go, 0);
	CHECK(pthread_create(&bt, NULL, blocker, NULL) == 0);
	while (!atomic_load(&blocker_go))
		sleep_us(1000);
	CHECK_OK(rw_stop_threads(fn_no_handler, NULL, TIMEOUT_MS, NULL));
	CHECK_EQ(atomic_load(&fn_overlap), 0);
	CHECK(pthread_join(bt, NULL) == 0);
	stop_sleepers(th);
	sa.sa_handler = SIG_DFL;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
#endif
}

/* argv[1], if given, names the one test to run. */
static const char *only;

static void run(const char *name, void (*test)(void))
{
	uint64_t t0 = rw_test_now_ns();

	if (only && strcmp(only, name))
		return;
	printf("%s\n", name);
	test();
	printf("  %-16s %7.1f ms\n", name, (rw_test_now_ns() - t0) / 1e6);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		only = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	run("memory", test_memory);
	run("wakeups", test_wakeups);
	run("changed_set", test_changed_set);
	run("long_prepare", test_long_prepare);
	printf("test_stop_threads_floor: ok\n");
	return 0;
}
