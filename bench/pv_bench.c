/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-pv - what a provider read costs. The provider figures of
 * doc/BENCHMARKS.md come from one run of this binary and from callgrind on
 * it (bench/callgrind.sh).
 *
 *	rw-bench-pv [--rounds R] [--iters N]
 *	rw-bench-pv --callgrind VARIANT [--iters N]
 *	rw-bench-pv --list
 *
 * Every variant (pv_loops.c) is timed once per round, in an order that
 * rotates from round to round; ratios to "plain" are taken within a round
 * and the median over rounds is reported, as rw-bench does. After each
 * loop the read function must have run exactly once per iteration.
 */
#include "pv_bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

#define MAX_ROUNDS 1000

struct variant {
	const char *name; /* pvb_loop_<name>, and the callgrind name */
	const char *label;
	long (*fn)(long n);
};

static const struct variant variants[] = {
	{ "plain", "plain load + call", pvb_loop_plain },
	{ "read", "rw_provider_read, inline", pvb_loop_read },
	{ "read_gen", "  ... with the generation", pvb_loop_read_gen },
	{ "read_call", "rw_provider_read, exported", pvb_loop_read_call },
	{ "read_urcu", "before: liburcu-bp, call", pvb_loop_read_urcu },
};
#define NV ((int)(sizeof(variants) / sizeof(variants[0])))

static volatile long sink;

/* Runs @v for @n iterations; exits unless the read function ran @n
 * times. */
static uint64_t run_timed(const struct variant *v, long n)
{
	uint64_t t0, t1;
	long got;

	t0 = bench_now_ns();
	got = v->fn(n);
	t1 = bench_now_ns();
	if (got != n) {
		fprintf(stderr, "%s: %ld reads for %ld iterations\n", v->name,
			got, n);
		exit(1);
	}
	sink = got;
	return t1 - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void bench_costs(int rounds, long iters)
{
	double(*ns)[NV] = calloc((size_t)rounds, sizeof(*ns));
	double t[MAX_ROUNDS], r[MAX_ROUNDS], d[MAX_ROUNDS];

	if (!ns) {
		perror("calloc");
		exit(1);
	}
	/* One round untimed: page faults, caches, frequency. */
	for (int v = 0; v < NV; v++)
		run_timed(&variants[v], iters / 4);
	for (int k = 0; k < rounds; k++)
		for (int j = 0; j < NV; j++) {
			int v = (j + k) % NV;

			ns[k][v] = (double)run_timed(&variants[v], iters) /
				   (double)iters;
		}
	printf("\nprovider read: %d rounds, %ld iterations per variant\n",
	       rounds, iters);
	printf("  %-28s %8s %8s   %s\n", "variant", "ns/iter", "min",
	       "ratio to plain, per round: median [min, max]; +ns");
	for (int v = 0; v < NV; v++) {
		for (int k = 0; k < rounds; k++) {
			t[k] = ns[k][v];
			r[k] = ns[k][v] / ns[k][0];
			d[k] = ns[k][v] - ns[k][0];
		}
		qsort(t, (size_t)rounds, sizeof(t[0]), cmp_double);
		qsort(r, (size_t)rounds, sizeof(r[0]), cmp_double);
		printf("  %-28s %8.3f %8.3f   %6.3fx [%.3f, %.3f] %+8.3f\n",
		       variants[v].label, bench_quantile(t, rounds, 0.5), t[0],
		       bench_quantile(r, rounds, 0.5), r[0], r[rounds - 1],
		       bench_quantile(d, rounds, 0.5));
	}
	free(ns);
}

static void usage(void)
{
	fprintf(stderr, "usage: rw-bench-pv [--rounds R] [--iters N]\n"
			"       rw-bench-pv --callgrind VARIANT [--iters N]\n"
			"       rw-bench-pv --list\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *callgrind = NULL;
	long iters = 20000000;
	bool iters_set = false;
	int rounds = 15, err;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--rounds") && v) {
			rounds = atoi(v), i++;
		} else if (!strcmp(a, "--iters") && v) {
			iters = atol(v), i++, iters_set = true;
		} else if (!strcmp(a, "--callgrind") && v) {
			callgrind = v, i++;
		} else if (!strcmp(a, "--list")) {
			for (int k = 0; k < NV; k++)
				printf("%s\n", variants[k].name);
			return 0;
		} else {
			usage();
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS || iters < 4)
		usage();
	err = rw_provider_register(&pvb_set, &pvb_provider);
	if (err) {
		fprintf(stderr, "register: %s\n", rw_strerror(err));
		return 1;
	}
	pvb_plain = &pvb_provider;
	/* What the set's latch held before issue 17, after this register. */
	pvb_old_set.seq = 2;
	pvb_old_set.latch[0].provider = &pvb_provider;
	pvb_old_set.latch[0].generation = 1;
	pvb_old_set.latch[1] = pvb_old_set.latch[0];
	if (callgrind) {
		int v = 0;

		while (v < NV && strcmp(variants[v].name, callgrind))
			v++;
		if (v == NV)
			usage();
		run_timed(&variants[v], iters_set ? iters : 1000000);
		printf("%s: pvb_loop_%s\n", variants[v].name, variants[v].name);
		return 0;
	}
	printf("rw-bench-pv: rewire %s\n", rw_version());
	bench_print_loadavg("at start");
	bench_costs(rounds, iters);
	bench_print_loadavg("at end");
	return 0;
}
