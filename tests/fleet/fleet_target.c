/* SPDX-License-Identifier: MIT */
/*
 * fleet_target: one process of a fleet, for the fleet tests
 * (tests/integration/test_fleet_*.sh) and bench/fleet_apply.sh. Built the
 * way a distribution builds a program (-O2 and dpkg-buildflags' flags),
 * with patchable entries, linked to librewire; REWIRE_CTL=1 starts its
 * control server.
 *
 *   fleet_target [--lifetime SEC]
 *
 * fleet_answer() is the function that fleet_fix.so replaces: 1 in this
 * build (the old behaviour), 2 patched (the new one). Two threads call it
 (main every 100 ms, a worker every 10 ms); each prints a line when the
 * answer it got differs from its previous one, and a heartbeat every
 * 100 ms:
 *
 *   ready pid=PID build=B
 *   change thr=main|worker v=old|new before=NS after=NS
 *   hb thr=main|worker v=old|new before=NS after=NS
 *
 * before and after are CLOCK_REALTIME nanoseconds read just before and
 * just after the call, so that a test can tell from the output alone
 * whether the patch took effect exactly while it was applied: a new answer
 * with after < the time `rewire apply` started is too early; an old answer
 * with before > the time it returned is too late.
 *
 * Built a second time with FLEET_BUILD=2 (fleet_target_b): another build,
 * which the loader refuses fleet_fix.so in (it is bound to the first).
 */
#include <rewire/rewire.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef FLEET_BUILD
#define FLEET_BUILD 1
#endif

int fleet_answer(int seq);

/* The behaviour the fleet's patch changes. Global, so that the program
 * keeps its own copy (-flive-patching=inline-only-static inlines only
 * static functions). */
int fleet_answer(int seq)
{
	return 1 + (seq < 0) * FLEET_BUILD;
}

static _Atomic bool stop;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const char *name_of(int v)
{
	return v == 1 ? "old" : v == 2 ? "new" : "bad";
}

/* One call, printed when the answer changed (or always, @heartbeat). */
static int observe(const char *thr, int seq, int last, bool heartbeat)
{
	long long before = now_ns();
	int v = fleet_answer(seq);
	long long after = now_ns();

	if (v != last)
		printf("change thr=%s v=%s before=%lld after=%lld\n", thr,
		       name_of(v), before, after);
	if (heartbeat)
		printf("hb thr=%s v=%s before=%lld after=%lld\n", thr,
		       name_of(v), before, after);
	return v;
}

static void *worker(void *arg)
{
	int last = 0, seq = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		last = observe("worker", seq, last, seq % 10 == 0);
		seq++;
		usleep(10000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int lifetime = 120, last = 0, seq = 0;
	struct timespec start, now;
	pthread_t t;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--lifetime") && i + 1 < argc) {
			lifetime = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--lifetime SEC]\n",
				argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pthread_create(&t, NULL, worker, NULL))
		return perror("pthread_create"), 1;
	pthread_setname_np(t, "fleet-worker");
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		last = observe("main", seq, last, true);
		if (seq++ == 0)
			printf("ready pid=%d build=%d\n", (int)getpid(),
			       FLEET_BUILD);
		usleep(100000);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= lifetime)
			break;
	}
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	printf("exiting\n");
	return 0;
}
