/* SPDX-License-Identifier: MIT */
/*
 * trace_burst: the traced program of test_cli_trace_merge.sh. NTHREADS
 * threads fire the tracepoint tm_ev(int thread, long seq) EVENTS times
 * each per round (3000; TRACE_BURST_EVENTS: another multiple of 50), in
 * bursts that interleave in time and overflow a small ring, so that the
 * merged output has drops, every thread and many crossings between
 * threads.
 *
 * Usage: trace_burst DIR. Prints "ready pid=PID", then for round 1, 2, ...:
 * waits for the file DIR/go.ROUND, fires, and prints
 *	fired TID COUNT		per thread
 *	clk TID SEQ RT_LO RT_HI MONO_LO MONO_HI
 *				for every 50th event of thread 0: the
 *				CLOCK_REALTIME and CLOCK_MONOTONIC ns read
 *				just before and just after it fired
 *	done ROUND
 * Exits after 120 s whatever happens (times REWIRE_TEST_TIME_SCALE: the
 * emulated aarch64 machine runs a mode of the test, two rounds and their
 * oracles, in more than 120 s).
 */
#include <rewire/rewire.h>

#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NTHREADS 4
#define MAX_EVENTS 100000

RW_DECLARE_TRACEPOINT(tm_ev, (int, thread), (long, seq));
RW_DEFINE_TRACEPOINT(tm_ev, (int, thread), (long, seq));

static const char *dir;
static _Atomic int round_go, round_done;
static long seqs[NTHREADS];
static int tids[NTHREADS];
static long events = 3000;
static uint64_t (*clk)[4]; /* events / 50 */

static uint64_t ns_of(clockid_t id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void *worker(void *arg)
{
	int id = (int)(long)arg, done = 0;

	tids[id] = (int)syscall(SYS_gettid);
	for (;;) {
		while (atomic_load(&round_go) == done)
			usleep(200);
		for (long i = 0; i < events; i++) {
			long seq = seqs[id]++;

			if (id == 0 && i % 50 == 0) {
				uint64_t *c = clk[i / 50];

				c[0] = ns_of(CLOCK_REALTIME);
				c[2] = ns_of(CLOCK_MONOTONIC);
				rw_trace_tm_ev(id, seq);
				c[3] = ns_of(CLOCK_MONOTONIC);
				c[1] = ns_of(CLOCK_REALTIME);
			} else {
				rw_trace_tm_ev(id, seq);
			}
			/* Bursts of 64 events, then a pause that lets the
			 * other threads and the reader run. */
			if (i % 64 == 63)
				usleep(1000);
		}
		done++;
		atomic_fetch_add(&round_done, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[NTHREADS];
	time_t start = time(NULL), life = 120 * (time_t)rw_test_time_scale();
	const char *env = getenv("TRACE_BURST_EVENTS");

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	if (env) {
		char *end;

		events = strtol(env, &end, 10);
		if (*end || events < 50 || events > MAX_EVENTS || events % 50) {
			fprintf(stderr,
				"trace_burst: TRACE_BURST_EVENTS=%s: want a "
				"multiple of 50 from 50 to %d\n",
				env, MAX_EVENTS);
			return 2;
		}
	}
	clk = calloc((size_t)events / 50, sizeof(*clk));
	if (!clk)
		return perror("calloc"), 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (long i = 0; i < NTHREADS; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)i))
			return perror("pthread_create"), 1;
	printf("ready pid=%d\n", (int)getpid());
	for (int round = 1; time(NULL) - start < life; round++) {
		char go[4096];

		snprintf(go, sizeof(go), "%s/go.%d", dir, round);
		while (access(go, F_OK) && time(NULL) - start < life)
			usleep(1000);
		atomic_store(&round_go, round);
		while (atomic_load(&round_done) < round * NTHREADS)
			usleep(1000);
		for (int i = 0; i < NTHREADS; i++)
			printf("fired %d %ld\n", tids[i], events);
		for (long i = 0; i < events / 50; i++)
			printf("clk %d %ld %llu %llu %llu %llu\n", tids[0],
			       (long)(round - 1) * events + i * 50,
			       (unsigned long long)clk[i][0],
			       (unsigned long long)clk[i][1],
			       (unsigned long long)clk[i][2],
			       (unsigned long long)clk[i][3]);
		printf("done %d\n", round);
	}
	return 0;
}
