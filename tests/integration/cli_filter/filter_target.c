// SPDX-License-Identifier: MIT
/*
 * The program test_cli_filter.sh traces: a request-like tracepoint with a
 * field of every kind the filter language compares, and one that lacks most
 * of them. Built -O2 with dpkg-buildflags (cli_filter/filter.cmake), linked
 * to librewire; REWIRE_CTL=1 starts its control server.
 *
 *   filter_target [--lifetime SEC] [--threads N] [--events N]
 *
 * Prints "ready", then waits for SIGUSR1; on each, N threads fire --events
 * flt_req events each (and one flt_conn per 4), then it prints "done
 * <events>". Each thread's values come from its own generator, seeded by
 * the thread's number and the burst, with seq counting the thread's events,
 * so that two sessions' records of one event can be paired by (tid, seq).
 * Threads pause briefly every 256 events so that the readers (draining
 * every 10 ms) keep up: the test expects no drop.
 */
#include <rewire/tracepoint.h>

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

RW_DECLARE_TRACEPOINT(flt_req, (const char *, op),
		      (unsigned long long, value_len), (long long, delta),
		      (bool, hit), (double, ratio), (const void *, key),
		      (unsigned long long, seq));
RW_DEFINE_TRACEPOINT(flt_req, (const char *, op),
		     (unsigned long long, value_len), (long long, delta),
		     (bool, hit), (double, ratio), (const void *, key),
		     (unsigned long long, seq));
RW_DECLARE_TRACEPOINT(flt_conn, (int, fd), (const char *, peer),
		      (unsigned long long, seq));
RW_DEFINE_TRACEPOINT(flt_conn, (int, fd), (const char *, peer),
		     (unsigned long long, seq));

static const char *const ops[] = { "GET",  "SET", "SETX", "DEL",
				   "GETS", "get", NULL,	  "" };
static long events = 20000;
static unsigned burst;

static uint64_t next(uint64_t *s)
{
	/* xorshift64*: deterministic per thread. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void *worker(void *arg)
{
	uint64_t s = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1) + burst;
	char peer[32];

	for (long i = 0; i < events; i++) {
		uint64_t r = next(&s);
		const char *op = ops[r & 7];
		unsigned long long len = (r >> 3) % 400;
		long long delta = (long long)((r >> 12) % 41) - 20;
		bool hit = (r >> 20) & 1;
		double ratio = (double)((r >> 21) % 1000) / 1000.0;
		const void *key =
			(r >> 31) & 3
				? (const void *)(uintptr_t)((r >> 33) << 4)
				: NULL;

		if (((r >> 40) & 63) == 0)
			delta = -9223372036854775807ll - 1;
		rw_trace_flt_req(op, len, delta, hit, ratio, key,
				 (unsigned long long)i);
		if ((i & 3) == 0) {
			snprintf(peer, sizeof(peer), "10.0.0.%u",
				 (unsigned)(r >> 50) & 255);
			rw_trace_flt_conn((int)(i & 1023), peer,
					  (unsigned long long)i);
		}
		if ((i & 255) == 255)
			usleep(500);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long threads = 4, lifetime = 120;
	struct timespec deadline, now;
	sigset_t set;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--lifetime") && i + 1 < argc) {
			lifetime = atol(argv[++i]);
		} else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
			threads = atol(argv[++i]);
		} else if (!strcmp(argv[i], "--events") && i + 1 < argc) {
			events = atol(argv[++i]);
		} else {
			fprintf(stderr,
				"usage: %s [--lifetime SEC] [--threads N] "
				"[--events N]\n",
				argv[0]);
			return 2;
		}
	}
	if (threads < 1 || threads > 64 || events < 1)
		return 2;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += lifetime;
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct timespec left;
		pthread_t tids[64];

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec >= deadline.tv_sec)
			break;
		left.tv_sec = deadline.tv_sec - now.tv_sec;
		left.tv_nsec = 0;
		if (sigtimedwait(&set, NULL, &left) != SIGUSR1)
			continue;
		for (long t = 0; t < threads; t++)
			if (pthread_create(&tids[t], NULL, worker,
					   (void *)(uintptr_t)t)) {
				perror("pthread_create");
				return 1;
			}
		for (long t = 0; t < threads; t++)
			pthread_join(tids[t], NULL);
		burst++;
		printf("done %ld\n", threads * events);
		fflush(stdout);
	}
	return 0;
}
