/* SPDX-License-Identifier: MIT */
/*
 * snap_target: a busy multithreaded program for the flight recorder's
 * integration test (tests/integration/test_cli_snapshot.sh), built the way
 * a distribution builds programs (-O2 and dpkg-buildflags' hardening, see
 * tests/common/ft_flags.cmake) and linked to librewire.
 *
 * NTHREADS workers ("snap-worker-N") loop as fast as they can: a little
 * work (WORK rounds of integer mixing), then the tracepoint
 * snap_req(int thread, unsigned long seq, const char *op) with the
 * thread's own sequence number (0, 1, 2, ...), then seq + 1 published in
 * the thread's counter. Every 50 ms the main thread prints
 *
 *	progress MONOTONIC_NS REALTIME_NS C0 C1 C2
 *
 * (the counters), so the test sees how fast the threads run and where
 * their numbers are. "ready" follows the first line.
 *
 * Options: --lifetime SEC (default 120), --work N (rounds per event,
 * default 2000).
 */
#include <rewire/rewire.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NTHREADS 3

RW_DECLARE_TRACEPOINT(snap_req, (int, thread), (unsigned long, seq),
		      (const char *, op));
RW_DEFINE_TRACEPOINT(snap_req, (int, thread), (unsigned long, seq),
		     (const char *, op));

static _Atomic unsigned long counter[NTHREADS];
static unsigned long work = 2000;
static _Atomic unsigned long sink;

static const char *const ops[] = { "GET", "SET", "DELETE", "INCR" };

static void *worker(void *arg)
{
	int me = (int)(long)arg;
	unsigned long seq = 0, x = (unsigned long)me + 1;
	char name[16];

	snprintf(name, sizeof(name), "snap-worker-%d", me);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		for (unsigned long i = 0; i < work; i++)
			x = x * 6364136223846793005ul + 1442695040888963407ul;
		rw_trace_snap_req(me, seq, ops[(seq + x) & 3]);
		seq++;
		atomic_store_explicit(&counter[me], seq, memory_order_release);
		if ((seq & 1023) == 0)
			atomic_store_explicit(&sink, x, memory_order_relaxed);
	}
	return NULL;
}

static unsigned long long ns_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull +
	       (unsigned long long)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	unsigned long long end;
	long lifetime = 120;
	pthread_t th;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--lifetime"))
			lifetime = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--work"))
			work = strtoul(argv[i + 1], NULL, 10);
	}
	for (long i = 0; i < NTHREADS; i++)
		if (pthread_create(&th, NULL, worker, (void *)i))
			return 1;
	end = ns_of(CLOCK_MONOTONIC) +
	      (unsigned long long)lifetime * 1000000000ull;
	for (int n = 0; ns_of(CLOCK_MONOTONIC) < end; n++) {
		printf("progress %llu %llu", ns_of(CLOCK_MONOTONIC),
		       ns_of(CLOCK_REALTIME));
		for (int i = 0; i < NTHREADS; i++)
			printf(" %lu",
			       atomic_load_explicit(&counter[i],
						    memory_order_acquire));
		printf("\n");
		if (!n)
			printf("ready\n");
		fflush(stdout);
		usleep(50000);
	}
	return 0;
}
