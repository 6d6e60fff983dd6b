/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-stop - how long rw_stop_threads() takes, beside a minimal stop.
 *
 *	rw-bench-stop [--quick] [--stops N] [--timeout MS] [--threads N]
 *		      [--workers busy|sleeping] [--only rewire|minimal]
 *
 * For 1, 8 and 64 other threads (or --threads N), either busy (a loop of
 * relaxed atomic increments) or sleeping (nanosleep of 1 ms in a loop),
 * N stops with an empty fn are timed one by one, 2 ms apart, alternating
 * rw_stop_threads() and the minimal stop below on the same threads
 * (interleaved rounds: both see the same machine). Reported per row: the
 * median and p90 wall time of each, the ratio of the medians, and for
 * rewire the median from the call to the start of fn (every thread
 * parked), from the end of fn to the return, and the caller's CPU time.
 * Every stop must succeed.
 *
 * The minimal stop is the floor a stop of this kind can reach: it knows
 * its threads (no listing), sends each one a signal with tgkill(), each
 * handler counts its arrival (the last one wakes the caller) and sleeps
 * on a futex; the caller runs fn and wakes them all with one FUTEX_WAKE.
 * Like rw_stop_threads(), it returns without waiting for the threads to
 * leave the handler; the next stop waits for that first. It has no
 * timeout, no straggler handling, does not find threads created during
 * the stop and does not keep signal handlers from running while fn runs.
 *
 * --only runs one kind alone (for strace -c -f: system calls per stop).
 */
#include <rewire/threads.h>

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "stats.h"

#define MAX_STOPS 10000
#define MAX_THREADS 1024

static atomic_bool stop_workers;
static _Atomic unsigned long spin_sink;
static _Atomic pid_t worker_tid[MAX_THREADS];
static _Atomic int workers_up;

static void sleep_ns(long ns)
{
	struct timespec ts = { ns / 1000000000L, ns % 1000000000L };

	nanosleep(&ts, NULL);
}

static void worker_start(void *p)
{
	atomic_store(&worker_tid[(intptr_t)p], (pid_t)syscall(SYS_gettid));
	atomic_fetch_add(&workers_up, 1);
}

static void *busy(void *p)
{
	worker_start(p);
	while (!atomic_load_explicit(&stop_workers, memory_order_relaxed))
		atomic_fetch_add_explicit(&spin_sink, 1, memory_order_relaxed);
	return NULL;
}

static void *sleeper(void *p)
{
	worker_start(p);
	while (!atomic_load_explicit(&stop_workers, memory_order_relaxed))
		sleep_ns(1000000);
	return NULL;
}

/* fn records when it ran; plain stores, nobody else runs. */
static uint64_t fn_start, fn_end;

static int fn_empty(void *arg)
{
	(void)arg;
	fn_start = bench_now_ns();
	fn_end = bench_now_ns();
	return 0;
}

/* The minimal stop: tgkill + futex. */
static int min_signo;
static _Atomic int min_arrived, min_want, min_gen, min_inside;

static long futex(_Atomic int *w, int op, int val)
{
	return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

static void min_handler(int sig)
{
	int saved = errno, gen = atomic_load(&min_gen);

	(void)sig;
	atomic_fetch_add(&min_inside, 1);
	if (atomic_fetch_add(&min_arrived, 1) + 1 == atomic_load(&min_want))
		futex(&min_arrived, FUTEX_WAKE_PRIVATE, 1);
	while (atomic_load(&min_gen) == gen)
		futex(&min_gen, FUTEX_WAIT_PRIVATE, gen);
	atomic_fetch_sub(&min_inside, 1);
	errno = saved;
}

static int min_stop(int n, int (*fn)(void *), void *arg)
{
	pid_t pid = getpid();
	int a, ret;

	/* The last stop's threads have left the handler. */
	while (atomic_load(&min_inside))
		sched_yield();
	atomic_store(&min_arrived, 0);
	atomic_store(&min_want, n);
	for (int i = 0; i < n; i++)
		syscall(SYS_tgkill, pid, atomic_load(&worker_tid[i]),
			min_signo);
	while ((a = atomic_load(&min_arrived)) < n)
		futex(&min_arrived, FUTEX_WAIT_PRIVATE, a);
	ret = fn(arg);
	atomic_fetch_add(&min_gen, 1);
	futex(&min_gen, FUTEX_WAKE_PRIVATE, INT32_MAX);
	return ret;
}

enum only { BOTH, REWIRE, MINIMAL };

static double wall[2][MAX_STOPS], enter[MAX_STOPS], leave[MAX_STOPS],
	cpu[MAX_STOPS];

/* One timed stop of kind k (0 rewire, 1 minimal); 0 or -1. */
static int timed_stop(int k, int i, int n, int timeout_ms)
{
	struct rw_tid_list late;
	uint64_t t0, t1, c0, c1;
	int err;

	c0 = bench_thread_cpu_ns();
	t0 = bench_now_ns();
	if (k == 0)
		err = rw_stop_threads(fn_empty, NULL, timeout_ms, &late);
	else
		err = min_stop(n, fn_empty, NULL);
	t1 = bench_now_ns();
	c1 = bench_thread_cpu_ns();
	if (err) {
		fprintf(stderr, "stop %d: %s (%zu stragglers)\n", i,
			rw_strerror(err), late.count);
		rw_tid_list_free(&late);
		return -1;
	}
	wall[k][i] = (double)(t1 - t0) / 1e3;
	if (k == 0) {
		enter[i] = (double)(fn_start - t0) / 1e3;
		leave[i] = (double)(t1 - fn_end) / 1e3;
		cpu[i] = (double)(c1 - c0) / 1e3;
	}
	return 0;
}

static int bench_row(int nthreads, bool busy_workers, int stops, int timeout_ms,
		     enum only only)
{
	pthread_t *th = calloc((size_t)nthreads, sizeof(*th));
	int started = 0, ret = 0;
	double med[2] = { 0, 0 }, p90[2] = { 0, 0 };

	if (!th) {
		perror("calloc");
		return -1;
	}
	atomic_store(&stop_workers, false);
	atomic_store(&workers_up, 0);
	for (; started < nthreads; started++) {
		int err = pthread_create(&th[started], NULL,
					 busy_workers ? busy : sleeper,
					 (void *)(intptr_t)started);

		if (err) {
			fprintf(stderr, "pthread_create: %s\n", strerror(err));
			ret = -1;
			goto out;
		}
	}
	while (atomic_load(&workers_up) < nthreads)
		sleep_ns(1000000);
	sleep_ns(20000000);
	/* Untimed: the first stop installs the handler. */
	if (only != MINIMAL &&
	    rw_stop_threads(fn_empty, NULL, timeout_ms, NULL)) {
		fprintf(stderr, "warm-up stop failed\n");
		ret = -1;
		goto out;
	}
	if (only != REWIRE)
		min_stop(nthreads, fn_empty, NULL);
	for (int i = 0; i < stops; i++) {
		/* Interleaved, and each kind goes first every other round. */
		for (int j = 0; j < 2; j++) {
			int k = (i + j) & 1;

			if ((k == 0 && only == MINIMAL) ||
			    (k == 1 && only == REWIRE))
				continue;
			sleep_ns(2000000);
			if (timed_stop(k, i, nthreads, timeout_ms)) {
				ret = -1;
				goto out;
			}
		}
	}
	printf("  %7d %-8s", nthreads, busy_workers ? "busy" : "sleeping");
	if (only != MINIMAL) {
		med[0] = bench_quantile(wall[0], stops, 0.5);
		p90[0] = bench_quantile(wall[0], stops, 0.9);
	}
	if (only != REWIRE) {
		med[1] = bench_quantile(wall[1], stops, 0.5);
		p90[1] = bench_quantile(wall[1], stops, 0.9);
	}
	printf(" %9.1f %9.1f %9.1f %9.1f %6.2f", med[0], p90[0], med[1], p90[1],
	       only == BOTH ? med[0] / med[1] : 0.0);
	if (only != MINIMAL)
		printf(" %9.1f %9.1f %9.1f\n",
		       bench_quantile(enter, stops, 0.5),
		       bench_quantile(leave, stops, 0.5),
		       bench_quantile(cpu, stops, 0.5));
	else
		printf("\n");
out:
	atomic_store(&stop_workers, true);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
	return ret;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: rw-bench-stop [--quick] [--stops N] [--timeout MS] "
		"[--threads N]\n"
		"                     [--workers busy|sleeping] "
		"[--only rewire|minimal]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const int all_threads[] = { 1, 8, 64 };
	int stops = 200, timeout_ms = 10000, one_n = 0, workers = -1;
	enum only only = BOTH;
	struct sigaction sa;
	char load[128] = "?\n";
	FILE *f;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--quick"))
			stops = 50;
		else if (!strcmp(a, "--stops") && v)
			stops = atoi(v), i++;
		else if (!strcmp(a, "--timeout") && v)
			timeout_ms = atoi(v), i++;
		else if (!strcmp(a, "--threads") && v)
			one_n = atoi(v), i++;
		else if (!strcmp(a, "--workers") && v && !strcmp(v, "busy"))
			workers = 0, i++;
		else if (!strcmp(a, "--workers") && v && !strcmp(v, "sleeping"))
			workers = 1, i++;
		else if (!strcmp(a, "--only") && v && !strcmp(v, "rewire"))
			only = REWIRE, i++;
		else if (!strcmp(a, "--only") && v && !strcmp(v, "minimal"))
			only = MINIMAL, i++;
		else
			usage();
	}
	if (stops < 2 || stops > MAX_STOPS || one_n < 0 || one_n > MAX_THREADS)
		usage();

	/* A signal of its own, not rewire's. */
	min_signo = rw_threads_signal() == SIGRTMAX - 5 ? SIGRTMAX - 4
							: SIGRTMAX - 5;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = min_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(min_signo, &sa, NULL)) {
		perror("sigaction");
		return 1;
	}

	f = fopen("/proc/loadavg", "r");
	if (f) {
		if (!fgets(load, sizeof(load), f))
			strcpy(load, "?\n");
		fclose(f);
	}
	printf("rw-bench-stop: rewire %s, %d stops per row and kind, 2 ms "
	       "apart, interleaved; load average %s",
	       rw_version(), stops, load);
	printf("microseconds per stop: rw_stop_threads() median and p90, the "
	       "minimal tgkill+futex\nstop's median and p90, the ratio of the "
	       "medians; for rewire, medians from the\ncall to fn (all "
	       "parked), from fn to the return, and the caller's CPU time\n");
	printf("  %7s %-8s %9s %9s %9s %9s %6s %9s %9s %9s\n", "threads",
	       "workers", "rw-med", "rw-p90", "min-med", "min-p90", "ratio",
	       "to-fn", "from-fn", "cpu");
	for (size_t t = 0; t < sizeof(all_threads) / sizeof(all_threads[0]);
	     t++) {
		int n = one_n ? one_n : all_threads[t];

		if (one_n && t)
			break;
		for (int b = 0; b < 2; b++) {
			if (workers >= 0 && b != workers)
				continue;
			if (bench_row(n, b == 0, stops, timeout_ms, only))
				return 1;
		}
	}
	return 0;
}
