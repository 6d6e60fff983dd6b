/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-filter - what `rewire trace --filter` costs the traced thread:
 * an event the filter keeps out, against the same event recorded without a
 * filter and recorded through a filter that passes it. The event is
 * rw-bench-trace's (four integers and a short string, fired as (i & 3, i,
 * 120, 0, "GET")), on a tracepoint of its own per variant so that each has
 * its own session:
 *
 *	plain	the loop alone
 *	generic	a generic probe that returns at once: the floor of every
 *		generic probe (the arguments packed, the call)
 *	ring	a session without a filter (the generic probe, as every
 *		filtered tracepoint records)
 *	pass	filter "status == 0 && name == \"GET\"": true, recorded
 *	out	filter "status == 1 && name == \"GET\"": false at the first
 *		test, kept out
 *	out_str	filter "name == \"PUT*\"": false, a string pattern
 *	out_all	filter "op > 3 || len < 100 || status != 0 ||
 *		name == \"P*\"": false after four tests
 *
 *	rw-bench-filter [--iters N] [--rounds R]
 *	rw-bench-filter --callgrind VARIANT [--iters N]
 *
 * The first form times each variant's loop (thread CPU time, the median
 * of R rounds, default 11, of N iterations, default 200,000) in a session
 * whose 16 MiB ring holds a round; between rounds the bench empties it
 * (it reads nothing), after a first pass that mapped its pages. The second runs one
 * loop once for bench/filter.sh, which counts its instructions with
 * callgrind (--toggle-collect=fb_loop_VARIANT). Figures in
 * doc/BENCHMARKS.md, "Filters: the cost of an event kept out".
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <rewire/rewire.h>

#include "ctl/ring.h"
#include "ctl/trace.h"
#include "stats.h"

#define FB_TP(tp)                                                          \
	RW_DECLARE_TRACEPOINT(tp, (int, op), (long, key), (unsigned, len), \
			      (int, status), (const char *, name));        \
	RW_DEFINE_TRACEPOINT(tp, (int, op), (long, key), (unsigned, len),  \
			     (int, status), (const char *, name))

FB_TP(fb_plain);
FB_TP(fb_generic);
FB_TP(fb_ring);
FB_TP(fb_pass);
FB_TP(fb_out);
FB_TP(fb_out_str);
FB_TP(fb_out_all);

#define FB_LOOP(v)                                                       \
	long fb_loop_##v(long n);                                        \
	__attribute__((noinline)) long fb_loop_##v(long n)               \
	{                                                                \
		long acc = 0;                                            \
                                                                         \
		for (long i = 0; i < n; i++) {                           \
			acc += i;                                        \
			__asm__ volatile("" : "+r"(acc));                \
			rw_trace_fb_##v((int)(i & 3), i, 120, 0, "GET"); \
		}                                                        \
		return acc;                                              \
	}

FB_LOOP(plain)
FB_LOOP(generic)
FB_LOOP(ring)
FB_LOOP(pass)
FB_LOOP(out)
FB_LOOP(out_str)
FB_LOOP(out_all)

static const struct {
	const char *name, *tp, *filter;
	long (*loop)(long);
} variants[] = {
	{ "plain", NULL, NULL, fb_loop_plain },
	{ "generic", NULL, NULL, fb_loop_generic },
	{ "ring", "fb_ring", NULL, fb_loop_ring },
	{ "pass", "fb_pass", "status == 0 && name == \"GET\"", fb_loop_pass },
	{ "out", "fb_out", "status == 1 && name == \"GET\"", fb_loop_out },
	{ "out_str", "fb_out_str", "name == \"PUT*\"", fb_loop_out_str },
	{ "out_all", "fb_out_all",
	  "op > 3 || len < 100 || status != 0 || name == \"P*\"",
	  fb_loop_out_all },
};
#define NV (sizeof(variants) / sizeof(variants[0]))

/* Per-thread ring: a round of 64-byte events fits. */
#define RING (16u << 20)

/* The floor of every generic probe: one that returns at once. */
static __attribute__((noinline)) void
noop(void *data, const struct rw_tracepoint *tp, const union rw_tp_value *args)
{
	(void)data;
	(void)tp;
	(void)args;
	__asm__ volatile("");
}

static struct rw__trace *start(size_t v)
{
	const char *pat[1] = { variants[v].tp };
	struct rw__trace_opts o = {
		.patterns = pat,
		.npatterns = 1,
		.ring_bytes = RING,
		.filter = variants[v].filter,
		.generic = true,
	};
	struct rw__trace *t = NULL;
	char err[256];
	int e;

	if (!strcmp(variants[v].name, "generic") &&
	    !rw_tracepoint_enabled(fb_generic)) {
		e = rw_tracepoint_probe_register_generic(
			rw_tracepoint_ptr(fb_generic), noop, NULL,
			RW_TRACEPOINT_PRIO_DEFAULT);
		if (e) {
			fprintf(stderr, "rw-bench-filter: generic: %s\n",
				rw_strerror(e));
			exit(1);
		}
	}
	if (!variants[v].tp)
		return NULL;
	e = rw__trace_start_opts(&o, &t, err, sizeof(err));
	if (e) {
		fprintf(stderr, "rw-bench-filter: %s: %s\n", variants[v].name,
			err);
		exit(1);
	}
	return t;
}

/* A reader that reads nothing: every slot's tail to its head (C4), so that
 * the next round finds the ring empty and its pages already mapped. Only
 * between rounds, when the bench's thread writes nothing. */
static void discard(struct rw__trace *t)
{
	size_t size = rw__trace_size(t);
	char *map;
	const struct rw_trace_shm *shm;

	if (!t)
		return;
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   rw__trace_fd(t), 0);
	if (map == MAP_FAILED) {
		perror("rw-bench-filter: mmap");
		exit(1);
	}
	shm = (const struct rw_trace_shm *)(void *)map;
	for (uint32_t i = 0; i < shm->nslots; i++) {
		struct rw_trace_slot *s =
			(struct rw_trace_slot *)(void *)(map +
							 RW_TRACE_SHM_HDR) +
			i;

		atomic_store_explicit(&s->tail, atomic_load(&s->head),
				      memory_order_release);
	}
	munmap(map, size);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	long iters = 200000, rounds = 11;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--callgrind") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = atol(argv[++i]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atol(argv[++i]);
		else {
			fprintf(stderr,
				"usage: rw-bench-filter [--iters N] [--rounds "
				"R] | --callgrind VARIANT [--iters N]\n");
			return 2;
		}
	}
	if (iters < 1 || iters > RING / 64 || rounds < 1 || rounds > 101) {
		fprintf(stderr,
			"rw-bench-filter: --iters 1..%u, --rounds 1..101 (a "
			"round must fit the ring)\n",
			RING / 64);
		return 2;
	}
	/* 64 slots of 16 MiB, sparse: only the bench thread's pages are
	 * touched. */
	setenv("REWIRE_TRACE_MEM_MAX", "8G", 0);
	if (only) {
		for (size_t v = 0; v < NV; v++) {
			struct rw__trace *t;
			uint64_t drops;

			if (strcmp(variants[v].name, only))
				continue;
			t = start(v);
			variants[v].loop(iters);
			drops = rw__trace_dropped(t);
			rw__trace_stop(t);
			if (drops)
				fprintf(stderr,
					"rw-bench-filter: %llu dropped\n",
					(unsigned long long)drops);
			return drops != 0;
		}
		fprintf(stderr, "rw-bench-filter: no variant '%s'\n", only);
		return 2;
	}
	bench_print_loadavg("before");
	printf("rw-bench-filter: %ld rounds of %ld events, thread CPU ns per "
	       "event (median)\n",
	       rounds, iters);
	for (size_t v = 0; v < NV; v++) {
		struct rw__trace *t = start(v);
		uint64_t filtered, dropped;
		double ns[101];

		/* A first pass maps the ring's pages (minor faults that the
		 * rounds must not count). */
		variants[v].loop(RING / 64);
		discard(t);
		for (long r = 0; r < rounds; r++) {
			uint64_t c0 = bench_thread_cpu_ns(), c1;

			variants[v].loop(iters);
			c1 = bench_thread_cpu_ns();
			ns[r] = (double)(c1 - c0) / (double)iters;
			discard(t);
		}
		filtered = rw__trace_filtered(t);
		dropped = rw__trace_dropped(t);
		rw__trace_stop(t);
		qsort(ns, (size_t)rounds, sizeof(ns[0]), cmp_double);
		printf("  %-8s %7.1f ns   filtered out %llu, dropped %llu  %s\n",
		       variants[v].name, ns[rounds / 2],
		       (unsigned long long)filtered,
		       (unsigned long long)dropped,
		       variants[v].filter ? variants[v].filter : "");
	}
	bench_print_loadavg("after");
	return 0;
}
