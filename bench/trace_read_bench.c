/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-trace-read: the rewire command's reader (tools/rewire/
 * trace_reader.c, trace_out.h), per output format. A session records
 * THREADS x N events of a 5-argument tracepoint with a short string (the
 * event of rw-bench-trace) from THREADS threads at once; then the reader,
 * opened on the session's memory, reads them all, merges the threads into
 * one timeline, converts the timestamps and writes them through one sink
 * (rw_trace_reader_finish()); the thread CPU time of that, per event,
 * best of 3.
 *
 *	rw-bench-trace-read [N [THREADS]]	(default 200000 and 4)
 *
 * Formats: text and json to /dev/null; ctf into a temporary directory and
 * chrome-json to /dev/null when the reader was built with them (else
 * "not built"); and "drain", rw_trace_reader_drain() (the text lines
 * without window, the reader rw-bench-trace's "reader" line measures).
 */
#include <rewire/tracepoint.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl/trace.h"
#include "trace_out.h"
#include "trace_reader.h"
#include "trace_meta.h" /* after ctl/trace.h and trace_reader.h */

RW_DECLARE_TRACEPOINT(trb_req, (int, op), (long, key), (unsigned, len),
		      (int, status), (const char *, name));
RW_DEFINE_TRACEPOINT(trb_req, (int, op), (long, key), (unsigned, len),
		     (int, status), (const char *, name));

static long per_thread;

/* The firing threads live as long as a session, as a program's would:
 * each keeps its slot (and its ring) from round to round. */
static pthread_barrier_t go, done;
static int nthreads;
static bool quit;

/* The reader's CPU time (it runs in this thread, its writes included):
 * the figure other jobs on the machine disturb least. */
static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void *firer(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_barrier_wait(&go);
		if (quit)
			return NULL;
		for (long i = 0; i < per_thread; i++)
			rw_trace_trb_req((int)(i & 3), i, 120, 0, "GET");
		pthread_barrier_wait(&done);
	}
}

static void fire_all(void)
{
	pthread_barrier_wait(&go);
	pthread_barrier_wait(&done);
}

static void firers_start(pthread_t *th)
{
	quit = false;
	pthread_barrier_init(&go, NULL, (unsigned)nthreads + 1);
	pthread_barrier_init(&done, NULL, (unsigned)nthreads + 1);
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, firer, NULL))
			exit(1);
}

static void firers_stop(pthread_t *th)
{
	quit = true;
	pthread_barrier_wait(&go);
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	pthread_barrier_destroy(&done);
}

/* Reads, merges and writes what the threads recorded: into the sink of @r,
 * or with rw_trace_reader_drain() into @null without one. *@read_ns: the
 * time of the read (the copy into the reader's queues) alone. */
static long read_all(struct rw_trace_reader *r, bool sink, FILE *null,
		     uint64_t *read_ns)
{
	uint64_t t0 = now_ns();
	long n;

	if (!sink) {
		n = rw_trace_reader_drain(r, null, false);
		*read_ns = 0;
		return n;
	}
	/* A window nothing passes: the poll only reads. */
	rw_trace_reader_set_window(r, UINT64_MAX);
	n = rw_trace_reader_poll(r);
	*read_ns = now_ns() - t0;
	if (n)
		return -1;
	return rw_trace_reader_flush_all(r);
}

/*
 * ns per event for one format, one run (and the read alone in *@read);
 * -1: not built. The third round is timed: the first two (half a ring
 * each) fault in the reader's mapping of the rings and its queues, which a
 * session does once.
 */
static double run(const char *format, double *read)
{
	const char *pats[1] = { "trb_req" };
	struct rw_trace_meta meta[1];
	struct rw_trace_reader *r;
	struct rw_trace_sink *s = NULL;
	struct rw__trace *t;
	char err[256], dir[] = "/tmp/rw-bench-ctf.XXXXXX";
	FILE *null = fopen("/dev/null", "we");
	long total = per_thread * nthreads, got;
	pthread_t th[64];
	uint64_t t0, t1, rd;
	int e;

	if (!null)
		exit(1);
	e = rw__trace_start(pats, 1, 8u << 20, &t, err, sizeof(err));
	if (e) {
		fprintf(stderr, "rw__trace_start: %s\n", err);
		exit(1);
	}
	rw_test_trace_meta(t, meta, 1);
	e = rw_trace_reader_open(rw__trace_fd(t), rw__trace_size(t), meta, 1,
				 &r);
	if (e) {
		fprintf(stderr, "rw_trace_reader_open: %s\n", strerror(-e));
		exit(1);
	}
	if (!strcmp(format, "text"))
		e = rw_trace_sink_text(null, &s);
	else if (!strcmp(format, "json"))
		e = rw_trace_sink_json(null, &s);
	else if (!strcmp(format, "chrome-json"))
		e = rw_trace_sink_chrome(null, &s);
	else if (!strcmp(format, "ctf"))
		e = mkdtemp(dir) ? rw_trace_sink_ctf(dir, &s) : -errno;
	else
		e = 0;
	if (e == -ENOSYS) {
		rw_trace_reader_close(r);
		rw__trace_stop(t);
		fclose(null);
		return -1;
	}
	if (e || (s && rw_trace_reader_add_sink(r, s))) {
		fprintf(stderr, "%s: %s\n", format, strerror(-e));
		exit(1);
	}
	firers_start(th);
	for (int round = 0; round < 2; round++) {
		fire_all();
		got = read_all(r, s != NULL, null, &rd);
		if (got != total) {
			fprintf(stderr, "%s: %ld of %ld events\n", format, got,
				total);
			exit(1);
		}
	}
	fire_all();
	firers_stop(th);
	t0 = now_ns();
	got = read_all(r, s != NULL, null, &rd);
	t1 = now_ns();
	if (got != total) {
		fprintf(stderr, "%s: %ld of %ld events\n", format, got, total);
		exit(1);
	}
	e = rw_trace_reader_finish(r);
	if (e) {
		fprintf(stderr, "%s: %s\n", format, strerror(-e));
		exit(1);
	}
	rw_trace_reader_close(r);
	rw__trace_stop(t);
	fclose(null);
	if (!strcmp(format, "ctf")) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd))
			fprintf(stderr, "could not remove %s\n", dir);
	}
	*read = (double)rd / (double)total;
	return (double)(t1 - t0) / (double)total;
}

int main(int argc, char **argv)
{
	static const char *const formats[] = { "drain", "text", "json", "ctf",
					       "chrome-json" };
	long n = argc > 1 ? atol(argv[1]) : 200000;
	int threads = argc > 2 ? atoi(argv[2]) : 4;

	nthreads = threads;

	if (n <= 0 || threads <= 0 || threads > 64 ||
	    n / threads * 64 > (4l << 20)) {
		fprintf(stderr,
			"usage: %s [N [THREADS]] (N / THREADS x 64 bytes "
			"fit in 4 MiB)\n",
			argv[0]);
		return 2;
	}
	per_thread = n / threads;
	printf("reader: %ld events recorded by %d threads, then read, merged "
	       "and written by one sink\n(the third round of a session), ns "
	       "of thread CPU per event, best of 3; read: the copy\ninto the "
	       "reader's queues alone\n",
	       per_thread * threads, threads);
	for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
		double best = 0, best_read = 0;

		for (int k = 0; k < 3; k++) {
			double rd, ns = run(formats[f], &rd);

			if (ns < 0) {
				best = -1;
				break;
			}
			if (!k || ns < best) {
				best = ns;
				best_read = rd;
			}
		}
		if (best < 0)
			printf("  %-12s not built\n", formats[f]);
		else if (best_read > 0)
			printf("  %-12s %8.1f ns/event (%.2f M events/s; read "
			       "%.1f)\n",
			       formats[f], best, 1e3 / best, best_read);
		else
			printf("  %-12s %8.1f ns/event (%.2f M events/s)\n",
			       formats[f], best, 1e3 / best);
	}
	return 0;
}
