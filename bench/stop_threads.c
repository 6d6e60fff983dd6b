/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-stop - how long rw_stop_threads() takes.
 *
 *	rw-bench-stop [--quick] [--stops N] [--timeout MS]
 *
 * For 1, 8 and 64 other threads, either busy (a loop of relaxed atomic
 * increments) or sleeping (nanosleep of 1 ms in a loop), N stops with an
 * empty fn are timed one by one, 2 ms apart. Reported per row: wall time
 * of the call (median, p90, min, max), the time from the call to the
 * start of fn (PREPARE and DISABLE: every thread parked) and from the end
 * of fn to the return (EXIT), as medians, and the calling thread's CPU
 * time per stop. Every stop must succeed.
 */
#include <rewire/threads.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "stats.h"

#define MAX_STOPS 10000

static atomic_bool stop_workers;
static _Atomic unsigned long spin_sink;

static void sleep_ns(long ns)
{
	struct timespec ts = { ns / 1000000000L, ns % 1000000000L };

	nanosleep(&ts, NULL);
}

static void *busy(void *p)
{
	(void)p;
	while (!atomic_load_explicit(&stop_workers, memory_order_relaxed))
		atomic_fetch_add_explicit(&spin_sink, 1, memory_order_relaxed);
	return NULL;
}

static void *sleeper(void *p)
{
	(void)p;
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

static double wall[MAX_STOPS], enter[MAX_STOPS], leave[MAX_STOPS],
	cpu[MAX_STOPS];

static int bench_row(int nthreads, bool busy_workers, int stops, int timeout_ms)
{
	pthread_t *th = calloc((size_t)nthreads, sizeof(*th));
	int started = 0, ret = 0;

	if (!th) {
		perror("calloc");
		return -1;
	}
	atomic_store(&stop_workers, false);
	for (; started < nthreads; started++) {
		int err = pthread_create(&th[started], NULL,
					 busy_workers ? busy : sleeper, NULL);

		if (err) {
			fprintf(stderr, "pthread_create: %s\n", strerror(err));
			ret = -1;
			goto out;
		}
	}
	sleep_ns(20000000);
	/* Untimed: the first stop installs the handler. */
	if (rw_stop_threads(fn_empty, NULL, timeout_ms, NULL)) {
		fprintf(stderr, "warm-up stop failed\n");
		ret = -1;
		goto out;
	}
	for (int i = 0; i < stops; i++) {
		struct rw_tid_list late;
		uint64_t t0, t1, c0, c1;
		int err;

		sleep_ns(2000000);
		c0 = bench_thread_cpu_ns();
		t0 = bench_now_ns();
		err = rw_stop_threads(fn_empty, NULL, timeout_ms, &late);
		t1 = bench_now_ns();
		c1 = bench_thread_cpu_ns();
		if (err) {
			fprintf(stderr, "stop %d: %s (%zu stragglers)\n", i,
				rw_strerror(err), late.count);
			rw_tid_list_free(&late);
			ret = -1;
			goto out;
		}
		wall[i] = (double)(t1 - t0) / 1e3;
		enter[i] = (double)(fn_start - t0) / 1e3;
		leave[i] = (double)(t1 - fn_end) / 1e3;
		cpu[i] = (double)(c1 - c0) / 1e3;
	}
	{
		double med = bench_quantile(wall, stops, 0.5);
		double p90 = bench_quantile(wall, stops, 0.9);

		printf("  %7d %-8s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n",
		       nthreads, busy_workers ? "busy" : "sleeping", med, p90,
		       wall[0], wall[stops - 1],
		       bench_quantile(enter, stops, 0.5),
		       bench_quantile(leave, stops, 0.5),
		       bench_quantile(cpu, stops, 0.5));
	}
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
		"usage: rw-bench-stop [--quick] [--stops N] [--timeout MS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const int threads[] = { 1, 8, 64 };
	int stops = 200, timeout_ms = 10000;
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
		else
			usage();
	}
	if (stops < 2 || stops > MAX_STOPS)
		usage();

	f = fopen("/proc/loadavg", "r");
	if (f) {
		if (!fgets(load, sizeof(load), f))
			strcpy(load, "?\n");
		fclose(f);
	}
	printf("rw-bench-stop: rewire %s, %d stops per row, 2 ms apart; "
	       "load average %s",
	       rw_version(), stops, load);
	printf("microseconds per stop: wall median, p90, min, max; median "
	       "from the call to fn\n(all parked), from fn to the return, "
	       "and the caller's CPU time\n");
	printf("  %7s %-8s %9s %9s %9s %9s %9s %9s %9s\n", "threads", "workers",
	       "median", "p90", "min", "max", "to-fn", "from-fn", "cpu");
	for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++)
		for (int b = 0; b < 2; b++)
			if (bench_row(threads[t], b == 0, stops, timeout_ms))
				return 1;
	return 0;
}
