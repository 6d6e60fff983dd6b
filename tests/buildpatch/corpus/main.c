/* SPDX-License-Identifier: MIT */
/*
 * main.c - the oracle of the build-patch corpus programs (bpt, bptxx).
 *
 *	bpt [--threads N] [--new PROBE=VALUE]... [--lifetime SEC]
 *	bpt --print
 *
 * N worker threads (default 4) call every probe of bpt.h in a loop, and a
 * spawner creates short-lived threads that do the same a few times each.
 * The test script (tests/buildpatch/test_bp_case.sh) moves the program
 * through phases with SIGUSR1, and waits after each for the line
 * "phase N", which the main thread prints once every worker has completed
 * 100 rounds of calls wholly inside phase N:
 *	0  OLD     as started
 *	1  TO_NEW  the script runs `rewire patch`
 *	2  NEW     `rewire patch` returned: the transition is complete
 *	3  TO_OLD  the script runs `rewire unpatch`
 *	4  OLD     `rewire unpatch` returned
 *	5          the end: the threads stop, the program reports and exits
 * --new PROBE=VALUE says what the patch makes PROBE return; the other
 * probes must not change.
 *
 * Oracle, for each call (the phase read before, b, and after, a):
 *  - the value is the probe's old value or its new value; anything else
 *    is a thread that mixed old and new functions of the patch on one
 *    call chain, or a patch that computes something else;
 *  - b == a == OLD: the old value; b == a == NEW: the new value;
 *  - b == a == TO_NEW (TO_OLD): once a thread got the target side's value
 *    of a probe the patch changes, every later call of that thread in
 *    the phase gets the target side too (a thread switches once, for
 *    the whole patch).
 * --print prints each probe's value ("PROBE VALUE") and exits: the test
 * checks a case's expected values on the program rebuilt from the diff.
 * At the end, bpt_final_check() checks the probes' own state (a static
 * variable the patch must share with the program, not copy). Exit status
 * 0 when nothing was wrong, 1 otherwise, 2 for bad usage.
 */
#include "bpt.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 16
#define MAX_PROBES 32
#define NPHASES 6
#define ACK_ROUNDS 100
#define ACK_TIMEOUT_S 20
#define SHORT_ROUNDS 3

enum { OLD0, TO_NEW, NEW, TO_OLD, OLD4, END };

static atomic_int phase;
static atomic_bool stopping;
static long new_value[MAX_PROBES];
static bool changes[MAX_PROBES];
static unsigned nthreads = 4;

static atomic_ulong ncalls[MAX_PROBES], nold[MAX_PROBES], nnew[MAX_PROBES];
static atomic_ulong violations, nshort;
static atomic_int first_set;
static char first_msg[512];

struct worker {
	pthread_t thread;
	unsigned id;
	atomic_ulong rounds[NPHASES]; /* rounds wholly inside each phase */
};
static struct worker workers[MAX_THREADS];

/* The side a thread got in a transition phase: -1 none yet. */
struct tview {
	int phase;
	int side;
};

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static void violation(const char *what, size_t p, long r, int b, int a)
{
	atomic_fetch_add(&violations, 1);
	if (atomic_exchange(&first_set, 1) == 0) {
		snprintf(first_msg, sizeof(first_msg),
			 "%s: probe %s returned %ld (old %ld, new %ld), "
			 "phase %d before the call, %d after",
			 what, bpt_probes[p].name, r, bpt_probes[p].old,
			 changes[p] ? new_value[p] : bpt_probes[p].old, b, a);
		fprintf(stderr, "bpt: FIRST VIOLATION: %s\n", first_msg);
	}
}

static void check(struct tview *v, size_t p, long r, int b, int a)
{
	int side, want;

	atomic_fetch_add_explicit(&ncalls[p], 1, memory_order_relaxed);
	if (changes[p] && r == new_value[p]) {
		side = 1;
		atomic_fetch_add_explicit(&nnew[p], 1, memory_order_relaxed);
	} else if (r == bpt_probes[p].old) {
		side = 0;
		atomic_fetch_add_explicit(&nold[p], 1, memory_order_relaxed);
	} else {
		violation("neither the old nor the new value", p, r, b, a);
		return;
	}
	if (a != b || !changes[p])
		return;
	if (b == OLD0 || b == OLD4 || b == NEW) {
		if (side != (b == NEW))
			violation(b == NEW ? "old value after the patch "
					     "completed"
					   : "new value without the patch",
				  p, r, b, a);
		return;
	}
	want = b == TO_NEW;
	if (v->phase != b) {
		v->phase = b;
		v->side = -1;
	}
	if (v->side == want && side != want)
		violation("a thread switched back during a transition", p, r, b,
			  a);
	if (side == want)
		v->side = want;
}

static void round_of_calls(struct tview *v)
{
	for (size_t p = 0; p < bpt_nprobes; p++) {
		int b = atomic_load(&phase);
		long r = bpt_probes[p].fn((long)p);
		int a = atomic_load(&phase);

		check(v, p, r, b, a);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct tview v = { -1, -1 };

	while (!atomic_load(&stopping)) {
		int b = atomic_load(&phase);

		round_of_calls(&v);
		if (atomic_load(&phase) == b && b < NPHASES)
			atomic_fetch_add(&w->rounds[b], 1);
		sleep_us(200);
	}
	return NULL;
}

static void *short_main(void *arg)
{
	struct tview v = { -1, -1 };

	(void)arg;
	for (int i = 0; i < SHORT_ROUNDS; i++)
		round_of_calls(&v);
	atomic_fetch_add(&nshort, 1);
	return NULL;
}

/* New threads start in the target state of a transition: a few calls
 * each, created without pause. */
static void *spawner_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&stopping)) {
		pthread_t t;

		if (pthread_create(&t, NULL, short_main, NULL) == 0)
			pthread_join(t, NULL);
		sleep_us(1000);
	}
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&phase, 1);
}

static int find_probe(const char *name, size_t len)
{
	for (size_t p = 0; p < bpt_nprobes; p++)
		if (strlen(bpt_probes[p].name) == len &&
		    !strncmp(bpt_probes[p].name, name, len))
			return (int)p;
	return -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: bpt [--threads N] [--new PROBE=VALUE]... "
			"[--lifetime SEC] | --print\n");
	exit(2);
}

/* Waits until every worker completed ACK_ROUNDS rounds inside @p. */
static int wait_rounds(int p)
{
	for (int i = 0; i < ACK_TIMEOUT_S * 200; i++) {
		unsigned done = 0;

		for (unsigned t = 0; t < nthreads; t++)
			done += atomic_load(&workers[t].rounds[p]) >=
				ACK_ROUNDS;
		if (done == nthreads)
			return 0;
		if (atomic_load(&phase) != p)
			return 0; /* the script moved on already */
		sleep_us(5000);
	}
	return -1;
}

int main(int argc, char **argv)
{
	pthread_t spawner;
	long lifetime = 120;
	struct sigaction sa;
	char msg[256] = "";
	unsigned long calls[MAX_PROBES];
	time_t t0 = time(NULL);
	int acked = -1, failed = 0;

	if (bpt_nprobes > MAX_PROBES)
		return 2;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
			nthreads = (unsigned)atoi(argv[++i]);
			if (nthreads < 1 || nthreads > MAX_THREADS)
				usage();
		} else if (!strcmp(argv[i], "--print")) {
			bpt_init();
			for (size_t p = 0; p < bpt_nprobes; p++)
				printf("%s %ld\n", bpt_probes[p].name,
				       bpt_probes[p].fn((long)p));
			return 0;
		} else if (!strcmp(argv[i], "--lifetime") && i + 1 < argc) {
			lifetime = atol(argv[++i]);
		} else if (!strcmp(argv[i], "--new") && i + 1 < argc) {
			const char *s = argv[++i], *eq = strchr(s, '=');
			int p = eq ? find_probe(s, (size_t)(eq - s)) : -1;

			if (p < 0) {
				fprintf(stderr, "bpt: no probe '%s'\n", s);
				usage();
			}
			changes[p] = true;
			new_value[p] = strtol(eq + 1, NULL, 0);
		} else {
			usage();
		}
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);

	bpt_init();
	for (unsigned t = 0; t < nthreads; t++) {
		workers[t].id = t;
		if (pthread_create(&workers[t].thread, NULL, worker_main,
				   &workers[t])) {
			perror("bpt: pthread_create");
			return 1;
		}
	}
	pthread_create(&spawner, NULL, spawner_main, NULL);

	for (;;) {
		int p = atomic_load(&phase);

		if (p >= END)
			break;
		if (p != acked) {
			if (wait_rounds(p)) {
				fprintf(stderr,
					"bpt: the workers made no progress "
					"in phase %d for %d s\n",
					p, ACK_TIMEOUT_S);
				failed = 1;
				break;
			}
			if (atomic_load(&phase) == p) {
				printf("phase %d\n", p);
				if (p == 0)
					printf("ready\n");
				fflush(stdout);
			}
			acked = p;
		}
		if (time(NULL) - t0 > lifetime) {
			fprintf(stderr, "bpt: lifetime of %ld s over\n",
				lifetime);
			failed = 1;
			break;
		}
		sleep_us(5000);
	}
	atomic_store(&stopping, true);
	for (unsigned t = 0; t < nthreads; t++)
		pthread_join(workers[t].thread, NULL);
	pthread_join(spawner, NULL);

	for (size_t p = 0; p < bpt_nprobes; p++) {
		calls[p] = atomic_load(&ncalls[p]);
		printf("probe %-12s calls %8lu old %8lu new %8lu\n",
		       bpt_probes[p].name, calls[p], atomic_load(&nold[p]),
		       atomic_load(&nnew[p]));
	}
	printf("short-lived threads: %lu\n", atomic_load(&nshort));
	if (bpt_final_check(calls, msg, sizeof(msg))) {
		printf("FAIL: %s\n", msg);
		failed = 1;
	}
	if (atomic_load(&violations)) {
		printf("FAIL: %lu violations; the first: %s\n",
		       atomic_load(&violations), first_msg);
		failed = 1;
	}
	for (size_t p = 0; p < bpt_nprobes; p++) {
		if (changes[p] && atomic_load(&phase) >= END &&
		    !atomic_load(&nnew[p])) {
			printf("FAIL: probe %s never returned its new value\n",
			       bpt_probes[p].name);
			failed = 1;
		}
	}
	printf("%s\n", failed ? "FAIL" : "PASS");
	return failed;
}
