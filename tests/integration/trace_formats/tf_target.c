// SPDX-License-Identifier: MIT
/*
 * The program test_trace_formats.sh traces into every output format at
 * once: tracepoints with every kind of argument at its extremes, and
 * functions that nest, built the way a distribution builds (-O2 and
 * dpkg-buildflags' flags; trace_formats.cmake) and patchable.
 *
 * TF_WORKERS threads wait for a burst, which the test starts with SIGUSR1:
 * each worker fires every tracepoint with values that depend on its
 * number and the round (below), TF_ROUNDS rounds, and calls tf_outer() ->
 * tf_inner() -> tf_leaf() once per round (tf_inner() fires tf_strs inside
 * the call). main prints "burst N done" when all are done. SIGUSR2 starts
 * a flood: TF_FLOOD events per worker as fast as it can (for drops).
 */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rewire/tracepoint.h>

#define TF_WORKERS 3
#define TF_ROUNDS 20
#define TF_FLOOD 20000

RW_DECLARE_TRACEPOINT(tf_ints, (long, neg), (unsigned long, big),
		      (const void *, ptr), (bool, flag));
RW_DECLARE_TRACEPOINT(tf_strs, (const char *, s), (const char *, t));
RW_DECLARE_TRACEPOINT(tf_float, (double, d), (double, e));
RW_DEFINE_TRACEPOINT(tf_ints, (long, neg), (unsigned long, big),
		     (const void *, ptr), (bool, flag));
RW_DEFINE_TRACEPOINT(tf_strs, (const char *, s), (const char *, t));
RW_DEFINE_TRACEPOINT(tf_float, (double, d), (double, e));

int tf_outer(int x);
int tf_inner(int x);
int tf_leaf(int x);

static _Atomic int sink;
static char long_str[300];

static const char *const strs[] = {
	"GET",
	"quote \" back \\ nl \n tab \t cr \r ctl \x01 del \x7f end",
	"\xff\xfe not UTF-8, \xc3\xa9 is, cut \xc3",
	"a, b = { c } ( \"x\" : container = 1 )",
	"",
};
#define NSTRS (sizeof(strs) / sizeof(strs[0]))

int tf_leaf(int x)
{
	return x * 3 + atomic_load_explicit(&sink, memory_order_relaxed);
}

int tf_inner(int x)
{
	rw_trace_tf_strs(strs[(unsigned)x % NSTRS], x & 1 ? NULL : "inner");
	return tf_leaf(x) + 1;
}

int tf_outer(int x)
{
	return tf_inner(x) ^ 5;
}

static void round_events(long id, int r)
{
	static const double dbl[] = { 0.1,  -2.5e-300,	   1e300,
				      -0.0, 123456789.123, 1.0 / 3.0 };
	static const long negs[] = { INT64_MIN, -1, 0, INT64_MAX, -42 };
	double d = dbl[(unsigned)(r + id) % 6];

	rw_trace_tf_ints(
		negs[(unsigned)r % 5] - (r % 5 == 4 ? id : 0),
		r % 3 ? (unsigned long)r * 1000003ul + (unsigned long)id
		      : UINT64_MAX,
		r % 4 ? (const void *)(uintptr_t)(0xdeadbeef00ul + r) : NULL,
		(r + id) & 1);
	rw_trace_tf_strs(strs[(unsigned)(r + id) % NSTRS], r % 5 == 1 ? NULL
							   : r % 5 == 2
								   ? long_str
								   : "t");
	if (r % 7 == 3)
		rw_trace_tf_float(NAN, -INFINITY);
	else
		rw_trace_tf_float(d, (double)r / 8 - (double)id);
	atomic_fetch_add_explicit(&sink, tf_outer(r), memory_order_relaxed);
}

/* A burst: 1 rounds, 2 flood; the workers' generation counter. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int burst_kind, burst_gen, burst_left;
static _Atomic bool stop;

static void *worker(void *arg)
{
	long id = (long)arg;
	int seen = 0;

	for (;;) {
		int kind;

		pthread_mutex_lock(&lock);
		while (burst_gen == seen && !atomic_load(&stop))
			pthread_cond_wait(&cond, &lock);
		seen = burst_gen;
		kind = burst_kind;
		pthread_mutex_unlock(&lock);
		if (atomic_load(&stop))
			return NULL;
		if (kind == 1) {
			for (int r = 0; r < TF_ROUNDS; r++)
				round_events(id, r);
		} else {
			for (int i = 0; i < TF_FLOOD; i++)
				rw_trace_tf_ints(i, (unsigned long)id, NULL,
						 true);
		}
		pthread_mutex_lock(&lock);
		if (--burst_left == 0)
			pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
	}
}

static void run_burst(int kind, int n)
{
	pthread_mutex_lock(&lock);
	burst_kind = kind;
	burst_left = TF_WORKERS;
	burst_gen++;
	pthread_cond_broadcast(&cond);
	while (burst_left)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	printf("%s %d done\n", kind == 1 ? "burst" : "flood", n);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	pthread_t w[TF_WORKERS];
	struct timespec deadline;
	int lifetime = 120, n = 0;
	sigset_t set;

	if (argc == 3 && !strcmp(argv[1], "--lifetime"))
		lifetime = atoi(argv[2]);
	memset(long_str, 'x', sizeof(long_str) - 1);
	long_str[0] = 'L';
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (long i = 0; i < TF_WORKERS; i++)
		pthread_create(&w[i], NULL, worker, (void *)i);
	printf("ready\n");
	fflush(stdout);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += lifetime;
	for (;;) {
		struct timespec left = { 1, 0 };
		int sig = sigtimedwait(&set, NULL, &left);
		struct timespec now;

		if (sig == SIGUSR1 || sig == SIGUSR2)
			run_burst(sig == SIGUSR1 ? 1 : 2, ++n);
		clock_gettime(CLOCK_REALTIME, &now);
		if (now.tv_sec >= deadline.tv_sec)
			break;
	}
	atomic_store(&stop, true);
	pthread_mutex_lock(&lock);
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < TF_WORKERS; i++)
		pthread_join(w[i], NULL);
	return 0;
}
