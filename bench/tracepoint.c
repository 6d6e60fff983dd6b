/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-tp - what a rewire tracepoint costs, and how long attaching and
 * detaching a probe takes. The "Tracepoints" section of doc/BENCHMARKS.md
 * comes from one run of this binary (bench/run.sh) and from callgrind on
 * it (bench/callgrind.sh).
 *
 *	rw-bench-tp [--quick] [--rounds R] [--iters N] [--reps M] [--pin CPU]
 *		    [--only off|on|register]
 *	rw-bench-tp --callgrind VARIANT [--iters N]
 *	rw-bench-tp --list
 *
 * Costs (tp_loops.c): every variant is timed once per round, in an order
 * that rotates from round to round; ratios are taken within a round and
 * the median over rounds is reported, as rw-bench does. The "off" loops run
 * N iterations, the "on" loops N / 4. Each timed loop is checked
 * afterwards: the probes must have run exactly once per iteration each.
 *
 * Register latency: on tracepoint tpb_reg, M times in a row, register
 * probe A (0->1 probes), register B (1->2), unregister B (2->1), unregister
 * A (1->0), each call timed alone, with 0 and with 4 threads firing tpb_reg
 * in a loop. LTTng-UST and USDT comparisons are built only when their
 * headers are found (TPB_HAVE_LTTNG, TPB_HAVE_SDT); the report says when
 * one was skipped.
 */
#include "tp_bench.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "stats.h"

#define MAX_ROUNDS 1000
#define MAX_REPS 100000

enum group { G_OFF, G_ON };

struct variant {
	const char *name; /* tpb_loop_<name>, and the callgrind name */
	const char *label;
	long (*fn)(long n);
	enum group group;
	int probes; /* calls of the probe per iteration (the oracle) */
	bool ring;  /* the ring probe, not the counting one */
};

static const struct variant variants[] = {
	{ "plain", "uninstrumented loop", tpb_loop_plain, G_OFF, 0, false },
	{ "rw_off", "rewire tracepoint, off", tpb_loop_rw_off, G_OFF, 0,
	  false },
#ifdef TPB_HAVE_LTTNG
	{ "lttng", "LTTng-UST 2.13, off", tpb_loop_lttng, G_OFF, 0, false },
#endif
#ifdef TPB_HAVE_SDT
	{ "usdt", "USDT + semaphore, off", tpb_loop_usdt, G_OFF, 0, false },
#endif
	{ "direct1", "1 probe, direct call", tpb_loop_direct1, G_ON, 1, false },
	{ "tp1", "1 probe, tracepoint", tpb_loop_tp1, G_ON, 1, false },
	{ "tp1_nors", "1 probe, no read side", tpb_loop_tp1_nors, G_ON, 1,
	  false },
	{ "direct3", "3 probes, direct calls", tpb_loop_direct3, G_ON, 3,
	  false },
	{ "tp3", "3 probes, tracepoint", tpb_loop_tp3, G_ON, 3, false },
	{ "direct1_ring", "1 probe, direct call", tpb_loop_direct1_ring, G_ON,
	  1, true },
	{ "tp1_ring", "1 probe, tracepoint", tpb_loop_tp1_ring, G_ON, 1, true },
	{ "direct3_ring", "3 probes, direct calls", tpb_loop_direct3_ring, G_ON,
	  3, true },
	{ "tp3_ring", "3 probes, tracepoint", tpb_loop_tp3_ring, G_ON, 3,
	  true },
};
#define NV ((int)(sizeof(variants) / sizeof(variants[0])))

struct opts {
	int rounds;
	long iters;
	int reps;
	int pin;
	const char *only;
	const char *callgrind;
};

/* Read by nothing; keeps results alive. */
static volatile long sink;

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

struct summary {
	double med, p90, min, max;
};

/* Leaves @v alone. */
static struct summary summarise(const double *v, int n)
{
	double *tmp = malloc(sizeof(*v) * (size_t)n);
	struct summary s = { 0, 0, 0, 0 };

	if (!tmp) {
		perror("malloc");
		exit(1);
	}
	memcpy(tmp, v, sizeof(*v) * (size_t)n);
	s.med = bench_quantile(tmp, n, 0.5);
	s.p90 = bench_quantile(tmp, n, 0.9);
	s.min = tmp[0];
	s.max = tmp[n - 1];
	free(tmp);
	return s;
}

/* --- Costs ----------------------------------------------------------------- */

/* What the probes have done so far: the oracle of a timed loop. */
static long probe_events(bool ring)
{
	if (ring)
		return (long)tpb_ring_head();
	return tpb_ctr[0].n + tpb_ctr[1].n + tpb_ctr[2].n;
}

/* Runs variant @v for @n iterations; exits if the probes disagree. */
static uint64_t run_timed(const struct variant *v, long n)
{
	long before = probe_events(v->ring), after;
	uint64_t t0, t1;

	t0 = bench_now_ns();
	sink = v->fn(n);
	t1 = bench_now_ns();
	after = probe_events(v->ring);
	if (after - before != (long)v->probes * n) {
		fprintf(stderr,
			"%s: %ld probe calls for %ld iterations x %d probes\n",
			v->name, after - before, n, v->probes);
		exit(1);
	}
	return t1 - t0;
}

static int attach_probes(void)
{
	int err = 0;

	err = err
		      ?: rw_tracepoint_probe_register(tpb_one, tpb_probe_count,
						      &tpb_ctr[0], 10);
	for (int i = 0; i < 3; i++)
		err = err
			      ?: rw_tracepoint_probe_register(tpb_three,
							      tpb_probe_count,
							      &tpb_ctr[i], 10);
	err = err
		      ?: rw_tracepoint_probe_register(tpb_ring1, tpb_probe_ring,
						      &tpb_ring_id[0], 10);
	for (int i = 0; i < 3; i++)
		err = err
			      ?: rw_tracepoint_probe_register(tpb_ring3,
							      tpb_probe_ring,
							      &tpb_ring_id[i],
							      10);
	if (err) {
		fprintf(stderr, "register: %s\n", rw_strerror(err));
		return err;
	}
	if (rw_tracepoint_probe_count(rw_tracepoint_ptr(tpb_one)) != 1 ||
	    rw_tracepoint_probe_count(rw_tracepoint_ptr(tpb_three)) != 3 ||
	    rw_tracepoint_enabled(tpb_off)) {
		fprintf(stderr, "probe counts are not 1 and 3\n");
		return -1;
	}
	return 0;
}

static long iters_of(const struct variant *v, const struct opts *o)
{
	return v->group == G_OFF ? o->iters : o->iters / 4;
}

static bool wanted(const struct variant *v, const struct opts *o)
{
	if (!o->only)
		return true;
	return v->group == G_OFF ? !strcmp(o->only, "off")
				 : !strcmp(o->only, "on");
}

static int index_of(const char *name)
{
	for (int i = 0; i < NV; i++)
		if (!strcmp(variants[i].name, name))
			return i;
	return -1;
}

/* One row: ns/iter of @v and its per-round ratio to @base. */
static void print_row(double (*ns)[NV], int rounds, int v, int base,
		      bool percent)
{
	double t[MAX_ROUNDS], r[MAX_ROUNDS], d[MAX_ROUNDS];
	struct summary st, sr, sd;

	for (int k = 0; k < rounds; k++) {
		t[k] = ns[k][v];
		r[k] = ns[k][v] / ns[k][base];
		d[k] = ns[k][v] - ns[k][base];
	}
	st = summarise(t, rounds);
	sr = summarise(r, rounds);
	sd = summarise(d, rounds);
	if (percent)
		printf("  %-26s %8.3f %8.3f   %+7.2f%% [%+.2f%%, %+.2f%%]\n",
		       variants[v].label, st.med, st.min, 100 * (sr.med - 1),
		       100 * (sr.min - 1), 100 * (sr.max - 1));
	else
		printf("  %-26s %8.3f %8.3f   %6.3fx [%.3f, %.3f] %+8.3f\n",
		       variants[v].label, st.med, st.min, sr.med, sr.min,
		       sr.max, sd.med);
}

/* Each row of @pairs: the direct call(s), then the variants to compare
 * with them (NULL: none). */
static void print_on_group(double (*ns)[NV], int rounds, const char *title,
			   const char *const pairs[][3])
{
	printf("\n%s\n", title);
	printf("  %-26s %8s %8s   %s\n", "variant", "ns/iter", "min",
	       "ratio to the direct call(s), per round: median [min, max]; "
	       "+ns");
	for (int p = 0; p < 2; p++) {
		int base = index_of(pairs[p][0]);

		print_row(ns, rounds, base, base, false);
		for (int k = 1; k < 3 && pairs[p][k]; k++)
			print_row(ns, rounds, index_of(pairs[p][k]), base,
				  false);
	}
}

static void bench_costs(const struct opts *o)
{
	static const char *const count_pairs[][3] = {
		{ "direct1", "tp1", "tp1_nors" }, { "direct3", "tp3", NULL }
	};
	static const char *const ring_pairs[][3] = {
		{ "direct1_ring", "tp1_ring", NULL },
		{ "direct3_ring", "tp3_ring", NULL }
	};
	double(*ns)[NV] = calloc((size_t)o->rounds, sizeof(*ns));
	bool do_off = !o->only || !strcmp(o->only, "off");
	bool do_on = !o->only || !strcmp(o->only, "on");
	cpu_set_t old, set;
	bool pinned = false;

	if (!ns) {
		perror("calloc");
		exit(1);
	}
	if (o->pin >= 0 && !sched_getaffinity(0, sizeof(old), &old)) {
		CPU_ZERO(&set);
		CPU_SET(o->pin, &set);
		pinned = !sched_setaffinity(0, sizeof(set), &set);
		if (!pinned)
			perror("pin");
	}
	/* One round untimed: page faults, caches, frequency. */
	for (int v = 0; v < NV; v++)
		if (wanted(&variants[v], o))
			run_timed(&variants[v], iters_of(&variants[v], o) / 4);
	for (int k = 0; k < o->rounds; k++) {
		for (int j = 0; j < NV; j++) {
			int v = (j + k) % NV;
			long n = iters_of(&variants[v], o);

			if (!wanted(&variants[v], o)) {
				ns[k][v] = 1;
				continue;
			}
			ns[k][v] =
				(double)run_timed(&variants[v], n) / (double)n;
		}
	}
	if (pinned)
		sched_setaffinity(0, sizeof(old), &old);

	printf("\ntracepoint costs: %d rounds; %ld iterations per off "
	       "variant, %ld per on variant%s",
	       o->rounds, o->iters, o->iters / 4, pinned ? ", pinned" : "");
	if (pinned)
		printf(" to CPU %d", o->pin);
	printf("\n");
	if (do_off) {
		int base = index_of("plain");

		printf("\noff (one add per iteration; loops aligned to 64 "
		       "bytes)\n");
		printf("  %-26s %8s %8s   %s\n", "variant", "ns/iter", "min",
		       "vs uninstrumented, per round: median [min, max]");
		for (int v = 0; v < NV; v++)
			if (variants[v].group == G_OFF)
				print_row(ns, o->rounds, v, base, true);
#ifndef TPB_HAVE_LTTNG
		printf("  %-26s skipped: lttng-ust not found by pkg-config "
		       "at build time\n",
		       "LTTng-UST, off");
#endif
#ifndef TPB_HAVE_SDT
		printf("  %-26s skipped: <sys/sdt.h> not found at build "
		       "time\n",
		       "USDT + semaphore, off");
#endif
	}
	if (do_on) {
		print_on_group(ns, o->rounds,
			       "on, counting probe (++counter in its data)",
			       count_pairs);
		print_on_group(ns, o->rounds,
			       "on, ring buffer probe (rdtsc + 2 arguments + "
			       "data into a per-thread ring of 4096)",
			       ring_pairs);
	}
	free(ns);
}

/* --- Register latency ------------------------------------------------------ */

static atomic_bool busy_stop;
static struct tpb_counter reg_hits[2];

static void *busy(void *p)
{
	long s = 0;

	(void)p;
	while (!atomic_load_explicit(&busy_stop, memory_order_relaxed))
		s += tpb_fire_reg(1000);
	return (void *)s; /* not sink: the busy threads would race on it */
}

enum { T_01, T_12, T_21, T_10, T_COUNT };
static const char *const transition_name[T_COUNT] = { "0->1 reg", "1->2 reg",
						      "2->1 unreg",
						      "1->0 unreg" };

static int do_transition(int t)
{
	switch (t) {
	case T_01:
		return rw_tracepoint_probe_register(tpb_reg, tpb_probe_hits,
						    &reg_hits[0], 10);
	case T_12:
		return rw_tracepoint_probe_register(tpb_reg, tpb_probe_hits,
						    &reg_hits[1], 10);
	case T_21:
		return rw_tracepoint_probe_unregister(tpb_reg, tpb_probe_hits,
						      &reg_hits[1]);
	default:
		return rw_tracepoint_probe_unregister(tpb_reg, tpb_probe_hits,
						      &reg_hits[0]);
	}
}

static int bench_register_one(int nthreads, int reps)
{
	static const unsigned after[T_COUNT] = { 1, 2, 1, 0 };
	double *lat[T_COUNT], *cpu[T_COUNT];
	struct rw_text_stats st[T_COUNT];
	pthread_t tid[16];
	int started = 0, ret = 0;
	long hits0 = reg_hits[0].n + reg_hits[1].n;

	memset(st, 0, sizeof(st));
	for (int t = 0; t < T_COUNT; t++) {
		lat[t] = calloc((size_t)reps, sizeof(double));
		cpu[t] = calloc((size_t)reps, sizeof(double));
		if (!lat[t] || !cpu[t]) {
			perror("calloc");
			exit(1);
		}
	}
	atomic_store(&busy_stop, false);
	for (; started < nthreads; started++) {
		int err = pthread_create(&tid[started], NULL, busy, NULL);

		if (err) {
			fprintf(stderr, "pthread_create: %s\n", strerror(err));
			ret = -1;
			goto out;
		}
	}
	if (nthreads)
		sleep_ms(20);

	for (int r = 0; r < reps; r++) {
		for (int t = 0; t < T_COUNT; t++) {
			struct rw_text_stats a, b;
			uint64_t t0, t1, c0, c1;
			int err;

			rw_text_get_stats(&a);
			c0 = bench_thread_cpu_ns();
			t0 = bench_now_ns();
			err = do_transition(t);
			t1 = bench_now_ns();
			c1 = bench_thread_cpu_ns();
			rw_text_get_stats(&b);
			if (err) {
				fprintf(stderr, "%s: %s\n", transition_name[t],
					rw_strerror(err));
				ret = -1;
				goto out;
			}
			if (rw_tracepoint_probe_count(
				    rw_tracepoint_ptr(tpb_reg)) != after[t] ||
			    rw_tracepoint_enabled(tpb_reg) != (after[t] > 0)) {
				fprintf(stderr, "%s: wrong probe count\n",
					transition_name[t]);
				ret = -1;
				goto out;
			}
			lat[t][r] = (double)(t1 - t0) / 1e3;
			cpu[t][r] = (double)(c1 - c0) / 1e3;
			st[t].syncs += b.syncs - a.syncs;
			st[t].writes += b.writes - a.writes;
			st[t].traps_emulated +=
				b.traps_emulated + b.traps_replayed -
				a.traps_emulated - a.traps_replayed;
		}
	}
	for (int t = 0; t < T_COUNT; t++) {
		struct summary sl = summarise(lat[t], reps);
		struct summary sc = summarise(cpu[t], reps);

		printf("  %7d %-11s %8.1f %8.1f %8.1f %9.1f %8.1f %6.2f "
		       "%7.2f %6.2f\n",
		       nthreads, transition_name[t], sl.med, sl.p90, sl.min,
		       sl.max, sc.med, (double)st[t].syncs / reps,
		       (double)st[t].writes / reps,
		       (double)st[t].traps_emulated / reps);
	}
out:
	atomic_store(&busy_stop, true);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	if (nthreads && !ret)
		printf("  %7s (probes ran %ld times in the busy threads)\n", "",
		       reg_hits[0].n + reg_hits[1].n - hits0);
	for (int t = 0; t < T_COUNT; t++) {
		free(lat[t]);
		free(cpu[t]);
	}
	return ret;
}

static int bench_register(const struct opts *o)
{
	static const int threads[] = { 0, 4 };

	/* Untimed: the first patch registers membarrier, installs the
	 * SIGTRAP handler and faults in the library's code. */
	for (int t = 0; t < T_COUNT; t++)
		if (do_transition(t)) {
			fprintf(stderr, "warm-up failed\n");
			return -1;
		}
	printf("\nregister latency: %d x (register A, register B, "
	       "unregister B, unregister A)\non tpb_reg; wall microseconds "
	       "per call (median, p90, min, max), the calling\nthread's CPU "
	       "microseconds (median), and per call: membarrier syncs, code\n"
	       "writes, int3 traps taken by the busy threads\n",
	       o->reps);
	printf("  %7s %-11s %8s %8s %8s %9s %8s %6s %7s %6s\n", "threads",
	       "transition", "median", "p90", "min", "max", "cpu-med", "syncs",
	       "writes", "traps");
	for (size_t i = 0; i < sizeof(threads) / sizeof(threads[0]); i++)
		if (bench_register_one(threads[i], o->reps))
			return -1;
	return rw_tracepoint_synchronize_unregister();
}

/* --- Main ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr, "usage: rw-bench-tp [--quick] [--rounds R] [--iters N] "
			"[--reps M] [--pin CPU]\n"
			"                   [--only off|on|register]\n"
			"       rw-bench-tp --callgrind VARIANT [--iters N]\n"
			"       rw-bench-tp --list\n");
	exit(2);
}

static int callgrind_mode(const struct opts *o)
{
	int v = index_of(o->callgrind);

	if (v < 0)
		usage();
	sink = (long)run_timed(&variants[v], o->iters);
	printf("%s: %ld iterations in tpb_loop_%s\n", variants[v].name,
	       o->iters, variants[v].name);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { 15, 20000000, 1000, -1, NULL, NULL };
	bool iters_set = false;
	int ret = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--quick")) {
			o.rounds = 5;
			o.iters = 5000000;
			o.reps = 200;
		} else if (!strcmp(a, "--rounds") && v) {
			o.rounds = atoi(v), i++;
		} else if (!strcmp(a, "--iters") && v) {
			o.iters = atol(v), i++, iters_set = true;
		} else if (!strcmp(a, "--reps") && v) {
			o.reps = atoi(v), i++;
		} else if (!strcmp(a, "--pin") && v) {
			o.pin = atoi(v), i++;
		} else if (!strcmp(a, "--only") && v) {
			o.only = v, i++;
		} else if (!strcmp(a, "--callgrind") && v) {
			o.callgrind = v, i++;
		} else if (!strcmp(a, "--list")) {
			for (int k = 0; k < NV; k++)
				printf("%s\n", variants[k].name);
			return 0;
		} else {
			usage();
		}
	}
	if (o.rounds < 1 || o.rounds > MAX_ROUNDS || o.iters < 4 ||
	    o.reps < 1 || o.reps > MAX_REPS)
		usage();
	if (attach_probes())
		return 1;
	if (o.callgrind) {
		if (!iters_set)
			o.iters = 1000000;
		return callgrind_mode(&o);
	}

#ifndef RW_BACKEND_X86_64
	printf("note: generic backend; tracepoints are not patched code\n");
#endif
	printf("rw-bench-tp: rewire %s\n", rw_version());
	bench_print_loadavg("at start");
	if (!o.only || !strcmp(o.only, "off") || !strcmp(o.only, "on"))
		bench_costs(&o);
	if (!o.only || !strcmp(o.only, "register"))
		ret = bench_register(&o) ? 1 : 0;
	bench_print_loadavg("at end");
	return ret;
}
