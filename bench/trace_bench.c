/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-trace - the cost of recording one event with `rewire trace`,
 * against LTTng-UST recording the same event in a session, and the rate a
 * traced thread can sustain without drops. The "Tracing with `rewire
 * trace`" section of doc/BENCHMARKS.md comes from bench/trace.sh, which
 * runs this binary inside an LTTng session (bench/lttng_session.sh) and
 * under callgrind.
 *
 *	rw-bench-trace [--quick] [--rounds R] [--events N] [--only cost|rate]
 *		       [--drain-ms D]
 *	rw-bench-trace --callgrind VARIANT [--iters N]
 *	rw-bench-trace --list
 *
 * Cost (--only cost): a pool of 2 threads fires the event N times each in
 * a tight loop (trace_loops.c), with 1 thread and with 2 at once, for each
 * variant: plain loop, rewire tracepoint with no probe, with a typed no-op
 * probe, with a generic no-op probe (the adapter's cost), with the ring
 * probe of a real session (rw__trace_start(), 16 MiB rings so that a round
 * never fills one, a reader thread draining every D ms (default 10) and
 * formatting every event as `rewire trace` prints it, into /dev/null), and
 * LTTng-UST (when a session enables rwb_trace:*); and the 3-argument event
 * (int, long, "GET") recorded by the session's own path (ring3), by the
 * generic probe of a second session (ring3g) and by LTTng-UST (lttng3),
 * and kept out by a filter of a third session ("op == 99", ring3f: what a
 * filtered-out event costs; where filters are built).
 * Every variant is timed
 * once per round, in an order that rotates from round to round; each thread
 * takes its own wall and CPU time around its loop; the report gives the
 * median over rounds of the per-round median over threads, and the
 * per-round ratio of the ring probe to LTTng-UST. After each ring run the
 * bench waits until the reader has read or seen dropped every event; the
 * drops are reported (they must be 0 for the figure to count).
 *
 * Rate (--only rate): one thread fires at a fixed rate for 1 s (0.25 s
 * with --quick) into a session with the default ring (256 KiB), while the
 * reader drains every D ms; the rate doubles from 50,000/s until a run
 * drops events, then 6 bisection steps find the highest rate with no drop.
 * Done for D = 1, 10 and 100 ms.
 *
 * Callgrind: --callgrind VARIANT runs one loop once (--iters, default
 * 200,000) with its set-up (the ring variant: a session with a 64 MiB ring
 * and no reader, so that nothing is dropped; ring_full: a 4 KiB ring that
 * nobody reads, so that nearly every event takes the drop path). --list
 * prints "variant loop-function" pairs for bench/trace.sh.
 */
#include "trace_bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl/trace.h"
#include "stats.h"
#include "trace_reader.h"
#include "trace_meta.h"

#define MAX_ROUNDS 201
#define POOL 2
/* Rings of the cost runs: a round (100,000 events of 64 bytes per thread)
 * fits, so that none is dropped whatever the reader's timing. */
#define RING_COST (16u << 20)

struct variant {
	const char *name; /* tb_loop_<loop>, the callgrind name */
	const char *loop;
	const char *label;
	long (*fn)(long n);
	bool lttng;
	bool ring;   /* recorded by the tracer's sessions */
	bool filter; /* needs filters (--filter, src/ctl/filter.h) */
};

static const struct variant variants[] = {
	{ "plain", "plain", "loop alone", tb_loop_plain, false, false, false },
	{ "off", "off", "rewire, no probe", tb_loop_off, false, false, false },
	{ "typed", "typed", "rewire, typed no-op probe", tb_loop_typed, false,
	  false, false },
	{ "generic", "generic", "rewire, generic no-op probe", tb_loop_generic,
	  false, false, false },
	{ "ring", "ring", "rewire trace (ring probe)", tb_loop_ring, false,
	  true, false },
	{ "ring3", "ring3", "3 args: rewire trace", tb_loop_ring3, false, true,
	  false },
	{ "ring3g", "ring3g", "3 args: rewire trace, generic", tb_loop_ring3g,
	  false, true, false },
	{ "ring3f", "ring3f", "3 args: filtered out", tb_loop_ring3f, false,
	  false, true },
#ifdef TB_HAVE_LTTNG
	{ "lttng", "lttng", "LTTng-UST, in a session", tb_loop_lttng, true,
	  false, false },
	{ "lttng3", "lttng3", "3 args: LTTng-UST", tb_loop_lttng3, true, false,
	  false },
#endif
};
#define NV ((int)(sizeof(variants) / sizeof(variants[0])))

static bool have_filter;

/* Whether variant @v cannot run here (no LTTng session, no filters). */
static bool skip(int v, bool have_lttng)
{
	return (variants[v].lttng && !have_lttng) ||
	       (variants[v].filter && !have_filter);
}

static volatile long sink;
static FILE *devnull;

/* --- A session and its reader ---------------------------------------------- */

/* Three sessions: tb_ring and tb_ring3 with the session's own record
 * path, tb_ring3g with the generic probe, tb_ring3f with a filter that
 * keeps every event out ("op == 99"; none where filters are not built). */
#define NSESS 3

struct tracer {
	struct rw__trace *t[NSESS];
	struct rw_trace_reader *r[NSESS];
	pthread_t th;
	long period_ns;
	atomic_bool stop;
	atomic_long read; /* events the reader printed */
	atomic_long drains;
	atomic_long max_gap_ns; /* longest time between two drains */
};

static void *reader_main(void *p)
{
	struct tracer *tr = p;
	struct timespec next;

	uint64_t last = bench_now_ns(), now;

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!atomic_load(&tr->stop)) {
		long n = 0;

		for (int i = 0; i < NSESS; i++)
			if (tr->r[i])
				n += rw_trace_reader_drain(tr->r[i], devnull,
							   false);

		now = bench_now_ns();
		if ((long)(now - last) > atomic_load(&tr->max_gap_ns))
			atomic_store(&tr->max_gap_ns, (long)(now - last));
		last = now;

		atomic_fetch_add(&tr->read, n);
		atomic_fetch_add(&tr->drains, 1);
		next.tv_nsec += tr->period_ns;
		while (next.tv_nsec >= 1000000000) {
			next.tv_nsec -= 1000000000;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next,
				       NULL) == EINTR)
			;
	}
	return NULL;
}

/* Session @i of the tracer (see NSESS), with rings of @ring bytes, and its
 * reader unless @noreader (callgrind runs read nothing). */
static void session_start(struct tracer *tr, int i, size_t ring, bool noreader)
{
	static const char *const pats[NSESS][2] = { { "tb_ring", "tb_ring3" },
						    { "tb_ring3g", NULL },
						    { "tb_ring3f", NULL } };
	struct rw__trace_opts o = { 0 };
	struct rw_trace_meta meta[2];
	char err[256];
	size_t n;
	int e;

	o.patterns = pats[i];
	o.npatterns = i ? 1 : 2;
	o.ring_bytes = ring;
	o.generic = i == 1;
	o.filter = i == 2 ? "op == 99" : NULL;

	e = rw__trace_start_opts(&o, &tr->t[i], err, sizeof(err));
	have_filter = i == 2 ? !e : have_filter;
	if (e == -EOPNOTSUPP && i == 2) {
		tr->t[i] = NULL;
		return;
	}
	if (e) {
		fprintf(stderr, "rw__trace_start: %s\n", err);
		exit(1);
	}
	if (noreader)
		return;
	n = rw_test_trace_meta(tr->t[i], meta, 2);
	e = rw_trace_reader_open(rw__trace_fd(tr->t[i]),
				 rw__trace_size(tr->t[i]), meta, n, &tr->r[i]);
	if (e) {
		fprintf(stderr, "rw_trace_reader_open: %s\n", strerror(-e));
		exit(1);
	}
}

static uint64_t tracer_dropped(const struct tracer *tr)
{
	uint64_t d = 0;

	for (int i = 0; i < NSESS; i++)
		d += rw__trace_dropped(tr->t[i]);
	return d;
}

/* The sessions with rings of @ring bytes; a reader thread that drains
 * them every @period_ms (none if 0; no reader at all if negative). */
static void tracer_start(struct tracer *tr, size_t ring, long period_ms)
{
	memset(tr, 0, sizeof(*tr));
	for (int i = 0; i < NSESS; i++)
		session_start(tr, i, ring, period_ms < 0);
	if (period_ms < 0)
		period_ms = 0;
	tr->period_ns = period_ms * 1000000;
	if (period_ms && pthread_create(&tr->th, NULL, reader_main, tr)) {
		perror("pthread_create");
		exit(1);
	}
}

static void tracer_stop(struct tracer *tr)
{
	if (tr->period_ns) {
		atomic_store(&tr->stop, true);
		pthread_join(tr->th, NULL);
	}
	for (int i = 0; i < NSESS; i++) {
		rw__trace_stop(tr->t[i]);
		rw_trace_reader_close(tr->r[i]);
	}
}

/* Waits until the reader has read or seen dropped @fired events. */
static void tracer_catch_up(struct tracer *tr, long fired)
{
	uint64_t t0 = bench_now_ns();

	while (atomic_load(&tr->read) + (long)tracer_dropped(tr) < fired) {
		if (bench_now_ns() - t0 > 30ull * 1000000000ull) {
			fprintf(stderr, "reader stuck: %ld of %ld\n",
				atomic_load(&tr->read), fired);
			exit(1);
		}
		usleep(1000);
	}
}

/* --- A pool of threads that run one loop at once ----------------------------- */

struct job {
	long (*fn)(long n);
	long n;
	int nthreads;
};

struct worker {
	pthread_t th;
	int idx;
	double wall_ns, cpu_ns; /* of the last job */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job job;
	unsigned gen, done;
	atomic_int ready;
	bool quit;
	struct worker w[POOL];
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER,
	   .cond = PTHREAD_COND_INITIALIZER };

static void *worker_main(void *p)
{
	struct worker *w = p;
	unsigned seen = 0;

	for (;;) {
		struct job job;
		uint64_t t0, t1, c0, c1;

		pthread_mutex_lock(&pool.lock);
		while (pool.gen == seen && !pool.quit)
			pthread_cond_wait(&pool.cond, &pool.lock);
		if (pool.quit) {
			pthread_mutex_unlock(&pool.lock);
			return NULL;
		}
		seen = pool.gen;
		job = pool.job;
		pthread_mutex_unlock(&pool.lock);
		if (w->idx >= job.nthreads)
			continue;
		/* Start together. */
		atomic_fetch_add(&pool.ready, 1);
		while (atomic_load(&pool.ready) < job.nthreads)
			;
		c0 = bench_thread_cpu_ns();
		t0 = bench_now_ns();
		sink = job.fn(job.n);
		t1 = bench_now_ns();
		c1 = bench_thread_cpu_ns();
		w->wall_ns = (double)(t1 - t0);
		w->cpu_ns = (double)(c1 - c0);
		pthread_mutex_lock(&pool.lock);
		pool.done++;
		pthread_cond_broadcast(&pool.cond);
		pthread_mutex_unlock(&pool.lock);
	}
}

static void pool_start(void)
{
	for (int i = 0; i < POOL; i++) {
		pool.w[i].idx = i;
		if (pthread_create(&pool.w[i].th, NULL, worker_main,
				   &pool.w[i])) {
			perror("pthread_create");
			exit(1);
		}
	}
}

static void pool_stop(void)
{
	pthread_mutex_lock(&pool.lock);
	pool.quit = true;
	pthread_cond_broadcast(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
	for (int i = 0; i < POOL; i++)
		pthread_join(pool.w[i].th, NULL);
}

/* Runs @fn(@n) in @nthreads pool threads at once; per-event wall and CPU
 * ns, the median over the threads (of 2: their mean). */
static void pool_run(long (*fn)(long), long n, int nthreads, double *wall,
		     double *cpu)
{
	pthread_mutex_lock(&pool.lock);
	pool.job = (struct job){ fn, n, nthreads };
	pool.done = 0;
	atomic_store(&pool.ready, 0);
	pool.gen++;
	pthread_cond_broadcast(&pool.cond);
	while (pool.done < (unsigned)nthreads)
		pthread_cond_wait(&pool.cond, &pool.lock);
	pthread_mutex_unlock(&pool.lock);
	*wall = *cpu = 0;
	for (int i = 0; i < nthreads; i++) {
		*wall += pool.w[i].wall_ns / (double)n / nthreads;
		*cpu += pool.w[i].cpu_ns / (double)n / nthreads;
	}
}

/* --- Cost ---------------------------------------------------------------- */

struct opts {
	int rounds;
	long events;
	long drain_ms;
	double rate_seconds;
	const char *only;
	const char *callgrind;
	long iters;
};

static int probes_attach(void)
{
	int err = rw_tracepoint_probe_register(tb_typed, tb_probe_typed, NULL,
					       10);

	return err
		       ?: rw_tracepoint_probe_register_generic(
				  rw_tracepoint_ptr(tb_generic),
				  tb_probe_generic, NULL, 10);
}

struct sum {
	double med, min, max;
};

static struct sum summarise(const double *v, int n)
{
	double tmp[MAX_ROUNDS];
	struct sum s;

	memcpy(tmp, v, sizeof(*v) * (size_t)n);
	s.med = bench_quantile(tmp, n, 0.5);
	s.min = tmp[0];
	s.max = tmp[n - 1];
	return s;
}

static int index_of(const char *name)
{
	for (int i = 0; i < NV; i++)
		if (!strcmp(variants[i].name, name))
			return i;
	return 0;
}

static void bench_cost(const struct opts *o)
{
	static double wall[2][NV][MAX_ROUNDS], cpu[2][NV][MAX_ROUNDS];
	bool have_lttng = tb_lttng_enabled();
	long fired_ring = 0, fired_lttng = 0;
	uint64_t dropped0;
	struct tracer tr;
	double w, c;

	tracer_start(&tr, RING_COST, o->drain_ms);
	pool_start();
	/* Untimed: a whole pass over each pool thread's ring, so that its
	 * pages are faulted in (the memfd is sparse), then every variant
	 * once: caches, frequency. */
	for (int pass = 0; pass < 3; pass++) {
		long n = RING_COST / 64 / 2; /* half a ring: nothing dropped */

		pool_run(tb_loop_ring, n, POOL, &w, &c);
		fired_ring += POOL * n;
		tracer_catch_up(&tr, fired_ring);
		pool_run(tb_loop_ring3g, n, POOL, &w, &c);
		fired_ring += POOL * n;
		tracer_catch_up(&tr, fired_ring);
	}
	for (int v = 0; v < NV; v++) {
		if (skip(v, have_lttng))
			continue;
		for (int t = 1; t <= POOL; t++) {
			pool_run(variants[v].fn, o->events, t, &w, &c);
			if (variants[v].ring)
				fired_ring += t * o->events;
			if (variants[v].lttng)
				fired_lttng += t * o->events;
		}
		tracer_catch_up(&tr, fired_ring);
	}
	dropped0 = tracer_dropped(&tr);
	for (int k = 0; k < o->rounds; k++) {
		for (int j = 0; j < NV; j++) {
			int v = (j + k) % NV;

			if (skip(v, have_lttng))
				continue;
			for (int t = 1; t <= POOL; t++) {
				pool_run(variants[v].fn, o->events, t,
					 &wall[t - 1][v][k], &cpu[t - 1][v][k]);
				if (variants[v].ring) {
					fired_ring += t * o->events;
					tracer_catch_up(&tr, fired_ring);
				}
				if (variants[v].lttng) {
					fired_lttng += t * o->events;
					/* Let the consumer daemon keep up. */
					usleep(20000);
				}
			}
		}
	}
	pool_stop();

	printf("\ncost per event: %d rounds of %ld events per thread; event "
	       "(int, long, unsigned, int, \"GET\"),\n3 args: (int, long, "
	       "\"GET\")\n",
	       o->rounds, o->events);
	printf("rewire session: %u MiB rings, reader every %ld ms "
	       "formatting text to /dev/null; %ld events (warm-up "
	       "included), %llu dropped (%llu in the timed rounds), "
	       "%ld drains\n",
	       RING_COST >> 20, o->drain_ms, fired_ring,
	       (unsigned long long)tracer_dropped(&tr),
	       (unsigned long long)(tracer_dropped(&tr) - dropped0),
	       atomic_load(&tr.drains));
	if (!have_filter)
		printf("filters: not in this build (no \"filtered out\" "
		       "row)\n");
	if (have_lttng)
		printf("lttng events fired: %ld\n", fired_lttng);
	else
		printf("LTTng-UST: %s\n",
#ifdef TB_HAVE_LTTNG
		       "rwb_trace:req not enabled (no session: run through "
		       "bench/lttng_session.sh)"
#else
		       "not built (lttng-ust not found)"
#endif
		);
	for (int t = 1; t <= POOL; t++) {
		printf("\n%d thread%s firing at once; ns per event, per "
		       "thread: median over rounds [min]\n",
		       t, t > 1 ? "s" : "");
		printf("  %-30s %16s %16s\n", "variant", "wall", "thread CPU");
		for (int v = 0; v < NV; v++) {
			struct sum sw, sc;

			if (skip(v, have_lttng))
				continue;
			sw = summarise(wall[t - 1][v], o->rounds);
			sc = summarise(cpu[t - 1][v], o->rounds);
			printf("  %-30s %8.2f [%5.2f] %8.2f [%5.2f]\n",
			       variants[v].label, sw.med, sw.min, sc.med,
			       sc.min);
		}
		for (int p = 0; have_lttng && p < 3; p++) {
			static const char *const pair[3][3] = {
				{ "ring", "lttng", "rewire trace / LTTng-UST" },
				{ "ring3", "lttng3", "3 args: rewire / LTTng" },
				{ "ring3g", "lttng3",
				  "3 args: generic / LTTng" },
			};
			int ring = index_of(pair[p][0]),
			    lt = index_of(pair[p][1]);
			double rw[MAX_ROUNDS], rc[MAX_ROUNDS];
			struct sum sw, sc;

			for (int k = 0; k < o->rounds; k++) {
				rw[k] = wall[t - 1][ring][k] /
					wall[t - 1][lt][k];
				rc[k] = cpu[t - 1][ring][k] / cpu[t - 1][lt][k];
			}
			sw = summarise(rw, o->rounds);
			sc = summarise(rc, o->rounds);
			printf("  %-30s %6.3fx [%.3f, %.3f] %6.3fx [%.3f, "
			       "%.3f]\n",
			       pair[p][2], sw.med, sw.min, sw.max, sc.med,
			       sc.min, sc.max);
		}
	}
	tracer_stop(&tr);
}

/* --- Rate ------------------------------------------------------------------ */

/*
 * Fires tb_ring at @rate events/s for @seconds: all the events due so far,
 * each time the clock is read, and the ones still due at the end. Returns
 * the time it took (more than @seconds if the thread could not keep up,
 * or lost its CPU near the end).
 */
static double fire_paced(double rate, double seconds, long *fired)
{
	uint64_t t0 = bench_now_ns(), dur = (uint64_t)(seconds * 1e9), el;
	long n = (long)(rate * seconds), i = 0;

	while ((el = bench_now_ns() - t0) < dur) {
		long due = (long)((double)el * rate / 1e9);

		while (i < due && i < n)
			tb_fire_ring(i++);
	}
	while (i < n)
		tb_fire_ring(i++);
	*fired = n;
	return (double)(bench_now_ns() - t0) / 1e9;
}

/* One run at @rate: events fired and dropped; false if the producer took
 * more than 10% longer than asked. */
static bool rate_run(struct tracer *tr, double rate, double seconds,
		     long *fired_total, long *dropped)
{
	uint64_t d0 = tracer_dropped(tr);
	long fired;
	double took;

	atomic_store(&tr->max_gap_ns, 0);
	took = fire_paced(rate, seconds, &fired);

	*fired_total += fired;
	tracer_catch_up(tr, *fired_total);
	*dropped = (long)(tracer_dropped(tr) - d0);
	return took < seconds * 1.1;
}

/* How fast the reader formats: a drain of @n events already recorded. */
static void bench_reader(long n)
{
	printf("\nreader: one drain of %ld recorded events into /dev/null, "
	       "ns per event (best of 3)\n",
	       n);
	for (int json = 0; json < 2; json++) {
		double best = 0;

		for (int k = 0; k < 3; k++) {
			struct tracer tr;
			uint64_t t0;
			long got;
			double ns;

			tracer_start(&tr, 32u << 20, 0);
			for (long i = 0; i < n; i++)
				tb_fire_ring(i);
			t0 = bench_now_ns();
			got = rw_trace_reader_drain(tr.r[0], devnull, json);
			ns = (double)(bench_now_ns() - t0) / (double)n;
			if (got != n) {
				fprintf(stderr, "reader: %ld of %ld\n", got, n);
				exit(1);
			}
			if (!k || ns < best)
				best = ns;
			tracer_stop(&tr);
		}
		printf("  %-5s %8.1f ns/event (%.2f M events/s)\n",
		       json ? "json" : "text", best, 1e3 / best);
	}
}

static void bench_rate(const struct opts *o)
{
	static const long periods[] = { 1, 10, 100 };

	printf("\nsustained rate with no drops: one thread, default ring "
	       "(256 KiB), %.2f s per run,\nreader formatting text to "
	       "/dev/null every D ms; doubling from 50,000/s, then "
	       "bisection to 3%%;\nthe rate found is then run 3 more times "
	       "(lowered by 10%% until all 3 are clean)\n",
	       o->rate_seconds);
	printf("  %6s %12s %12s %11s %s %6s  %s\n", "D (ms)", "no drops",
	       "drops", "ring / D", "ok", "gap",
	       "runs (k events/s: dropped; "
	       "* producer late)");
	for (size_t p = 0; p < sizeof(periods) / sizeof(periods[0]); p++) {
		struct tracer tr;
		double lo = 0, hi = 0, rate = 50000;
		long total = 0, dropped;
		char log[2048] = "";
		size_t used = 0;
		int confirmed = 0;
		long gap = 0; /* worst drain gap in the confirming runs */

		tracer_start(&tr, 0, periods[p]);
		/* Warm up: fault the ring in. */
		rate_run(&tr, 50000, 0.1, &total, &dropped);
		for (int step = 0; step < 40; step++) {
			bool ontime = rate_run(&tr, rate, o->rate_seconds,
					       &total, &dropped);

			if (used < sizeof(log) - 64)
				used += (size_t)snprintf(log + used,
							 sizeof(log) - used,
							 " %.0f:%ld%s",
							 rate / 1000, dropped,
							 ontime ? "" : "*");
			if (dropped == 0)
				lo = rate;
			else
				hi = rate;
			if (!hi)
				rate *= 2;
			else if (lo && (hi - lo) / hi < 0.03)
				break;
			else
				rate = lo ? (lo + hi) / 2 : hi / 2;
			if (rate < 1000)
				break;
		}
		/* Confirm: three more clean runs. */
		for (int tries = 0; lo >= 1000 && tries < 10 && confirmed < 3;
		     tries++) {
			rate_run(&tr, lo, o->rate_seconds, &total, &dropped);
			if (used < sizeof(log) - 64)
				used += (size_t)snprintf(log + used,
							 sizeof(log) - used,
							 " %s%.0f:%ld",
							 confirmed ? "" : "| ",
							 lo / 1000, dropped);
			if (dropped == 0) {
				confirmed++;
				if (atomic_load(&tr.max_gap_ns) > gap)
					gap = atomic_load(&tr.max_gap_ns);
			} else {
				gap = 0;
				hi = lo;
				lo *= 0.9;
				confirmed = 0;
			}
		}
		printf("  %6ld %10.0f/s %10.0f/s %9.0f/s %d/3 %6.1f  %s\n",
		       periods[p], lo, hi, 4096.0 * 1000 / (double)periods[p],
		       confirmed, (double)gap / 1e6, log);
		tracer_stop(&tr);
	}
	printf("  (ring / D: the rate at which 64-byte records fill the ring "
	       "in one drain interval;\n   ok: clean confirming runs; gap: "
	       "the longest time between two drains in them, ms)\n");
}

/* --- Callgrind --------------------------------------------------------------- */

static int callgrind_mode(const struct opts *o)
{
	const struct variant *v = NULL;
	struct tracer tr;
	bool full = !strcmp(o->callgrind, "ring_full");

	for (int i = 0; i < NV; i++)
		if (!strcmp(variants[i].name, full ? "ring" : o->callgrind))
			v = &variants[i];
	if (!v) {
		fprintf(stderr, "unknown variant %s\n", o->callgrind);
		return 2;
	}
	if (v->ring || v->filter)
		tracer_start(&tr, full ? 4096 : 64u << 20, -1);
	sink = v->fn(o->iters);
	printf("%s: %ld iterations in tb_loop_%s\n", o->callgrind, o->iters,
	       v->loop);
	if (v->filter && !have_filter)
		printf("filters: not in this build, the site had no probe\n");
	if (v->ring || v->filter) {
		printf("dropped: %llu\n",
		       (unsigned long long)tracer_dropped(&tr));
		tracer_stop(&tr);
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: rw-bench-trace [--quick] [--rounds R] [--events N] "
		"[--only cost|rate] [--drain-ms D]\n"
		"       rw-bench-trace --callgrind VARIANT [--iters N]\n"
		"       rw-bench-trace --list\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o = { 11, 100000, 10, 1.0, NULL, NULL, 200000 };
	int err;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--quick")) {
			o.rounds = 5;
			o.events = 50000;
			o.rate_seconds = 0.25;
		} else if (!strcmp(a, "--rounds") && v) {
			o.rounds = atoi(v), i++;
		} else if (!strcmp(a, "--events") && v) {
			o.events = atol(v), i++;
		} else if (!strcmp(a, "--drain-ms") && v) {
			o.drain_ms = atol(v), i++;
		} else if (!strcmp(a, "--only") && v) {
			o.only = v, i++;
		} else if (!strcmp(a, "--callgrind") && v) {
			o.callgrind = v, i++;
		} else if (!strcmp(a, "--iters") && v) {
			o.iters = atol(v), i++;
		} else if (!strcmp(a, "--list")) {
			for (int k = 0; k < NV; k++)
				if (!variants[k].lttng)
					printf("%s %s\n", variants[k].name,
					       variants[k].loop);
			printf("ring_full ring\n");
			return 0;
		} else {
			usage();
		}
	}
	if (o.rounds < 1 || o.rounds > MAX_ROUNDS || o.events < 1 ||
	    o.drain_ms < 1 || o.iters < 1)
		usage();
	/* The rings are sparse: the cost runs' 16 MiB and the callgrind
	 * runs' 64 MiB rings, times the slots, pass the default cap. */
	setenv("REWIRE_TRACE_MEM_MAX", "1024G", 0);
	devnull = fopen("/dev/null", "w");
	if (!devnull) {
		perror("/dev/null");
		return 1;
	}
	err = probes_attach();
	if (err) {
		fprintf(stderr, "register: %s\n", rw_strerror(err));
		return 1;
	}
	if (o.callgrind)
		return callgrind_mode(&o);

	printf("rw-bench-trace: rewire %s\n", rw_version());
	bench_print_loadavg("at start");
	if (!o.only || !strcmp(o.only, "cost"))
		bench_cost(&o);
	if (!o.only || !strcmp(o.only, "rate")) {
		bench_reader(200000);
		bench_rate(&o);
	}
	bench_print_loadavg("at end");
	return 0;
}
