/* SPDX-License-Identifier: MIT */
/*
 * rw-bench - what rewire's static calls and static keys cost, and how long
 * a flip takes. Every figure of doc/BENCHMARKS.md comes from one run of
 * this binary (bench/run.sh) or from callgrind on it (bench/callgrind.sh).
 *
 *	rw-bench [--quick] [--rounds R] [--iters N] [--flips F] [--pin CPU]
 *		 [--only calls|keys|update]
 *	rw-bench --callgrind VARIANT [--iters N]
 *
 * Call and key costs: the variants are timed in rounds, every round times
 * every variant once (in an order that rotates from round to round), and a
 * ratio is computed within each round, then the median over rounds is
 * reported. Noise from a shared machine then hits all variants alike.
 *
 * Update latency: a key with 1, 100 or 10,000 sites is flipped (enable,
 * disable, ...) while 0, 8 or 64 threads run those sites in a loop. Each
 * flip is timed on its own; the text statistics (rewire/text_poke.h) give
 * the membarrier calls and writes per flip.
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "stats.h"

/* Most rounds and flips (samples are kept in fixed arrays). */
#define MAX_SAMPLES 1000

enum variant {
	V_DIRECT,
	V_STATIC_CALL,
	V_INDIRECT,
	V_RETPOLINE,
	V_PLAIN,
	V_KEY,
	V_FLAG,
	V_PLAIN_DEFAULT,
	V_KEY_DEFAULT,
	V_FLAG_DEFAULT,
	V_PLAIN_NATURAL,
	V_KEY_NATURAL,
	V_KEY_NATURAL_RW,
	V_COUNT,
};

static const char *const variant_name[V_COUNT] = {
	[V_DIRECT] = "direct",
	[V_STATIC_CALL] = "static_call",
	[V_INDIRECT] = "indirect",
	[V_RETPOLINE] = "retpoline",
	[V_PLAIN] = "plain",
	[V_KEY] = "key",
	[V_FLAG] = "flag",
	[V_PLAIN_DEFAULT] = "plain_default",
	[V_KEY_DEFAULT] = "key_default",
	[V_FLAG_DEFAULT] = "flag_default",
	[V_PLAIN_NATURAL] = "plain_natural",
	[V_KEY_NATURAL] = "key_natural",
	[V_KEY_NATURAL_RW] = "key_natural_rw",
};

static const char *const variant_label[V_COUNT] = {
	[V_DIRECT] = "(a) direct call",
	[V_STATIC_CALL] = "(b) static call",
	[V_INDIRECT] = "(c) indirect call",
	[V_RETPOLINE] = "(d) indirect, retpoline",
	[V_PLAIN] = "uninstrumented loop",
	[V_KEY] = "disabled static key",
	[V_FLAG] = "if (volatile flag)",
	[V_PLAIN_DEFAULT] = "uninstrumented loop",
	[V_KEY_DEFAULT] = "disabled static key",
	[V_FLAG_DEFAULT] = "if (volatile flag)",
	[V_PLAIN_NATURAL] = "uninstrumented loop",
	[V_KEY_NATURAL] = "acc += slow(i) if key",
	[V_KEY_NATURAL_RW] = "the same, acc in asm",
};

/* Read by nothing; keeps results alive. */
static volatile long sink;
/* Read through a volatile so that main() cannot see the target either. */
static bench_fn *volatile indirect_target = bench_target;

static long run_variant(enum variant v, long n)
{
	switch (v) {
	case V_DIRECT:
		return bench_loop_direct(n);
	case V_STATIC_CALL:
		return bench_loop_static_call(n);
	case V_INDIRECT:
		return bench_loop_indirect(n, indirect_target);
	case V_RETPOLINE:
		return bench_loop_retpoline(n, indirect_target);
	case V_PLAIN:
		return bench_loop_plain(n);
	case V_KEY:
		return bench_loop_key(n);
	case V_FLAG:
		return bench_loop_flag(n);
	case V_PLAIN_DEFAULT:
		return bench_loop_plain_default(n);
	case V_KEY_DEFAULT:
		return bench_loop_key_default(n);
	case V_FLAG_DEFAULT:
		return bench_loop_flag_default(n);
	case V_PLAIN_NATURAL:
		return bench_loop_plain_natural(n);
	case V_KEY_NATURAL:
		return bench_loop_key_natural(n);
	case V_KEY_NATURAL_RW:
		return bench_loop_key_natural_rw(n);
	case V_COUNT:
		break;
	}
	return 0;
}

/* Context switches of the calling thread (voluntary + involuntary). */
static long thread_switches(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru))
		return 0;
	return ru.ru_nvcsw + ru.ru_nivcsw;
}

struct opts {
	int rounds;
	long iters;
	int flips;
	int pin; /* CPU for the call and key timings, -1: none */
	const char *only;
	const char *callgrind;
};

/* --- Call and key costs ------------------------------------------------- */

struct summary {
	double med, min, max;
};

static struct summary summarise(const double *v, int n)
{
	double tmp[MAX_SAMPLES];
	struct summary s;

	memcpy(tmp, v, sizeof(*v) * (size_t)n);
	s.med = bench_quantile(tmp, n, 0.5);
	s.min = tmp[0];
	s.max = tmp[n - 1];
	return s;
}

static void print_group(const char *title, const enum variant *vs, int nv,
			double (*ns)[V_COUNT], int rounds, bool percent)
{
	double r[MAX_SAMPLES];
	enum variant base = vs[0];

	printf("\n%s\n", title);
	printf("  %-24s %9s %9s   %s\n", "variant", "ns/iter", "min",
	       percent ? "vs uninstrumented, per round: median [min, max]"
		       : "ratio to (a), per round: median [min, max]");
	for (int i = 0; i < nv; i++) {
		double t[MAX_SAMPLES];
		struct summary st, sr;

		for (int k = 0; k < rounds; k++) {
			t[k] = ns[k][vs[i]];
			r[k] = ns[k][vs[i]] / ns[k][base];
		}
		st = summarise(t, rounds);
		sr = summarise(r, rounds);
		if (percent)
			printf("  %-24s %9.3f %9.3f   %+7.2f%% [%+.2f%%, "
			       "%+.2f%%]\n",
			       variant_label[vs[i]], st.med, st.min,
			       100 * (sr.med - 1), 100 * (sr.min - 1),
			       100 * (sr.max - 1));
		else
			printf("  %-24s %9.3f %9.3f   %7.3fx [%.3f, %.3f]\n",
			       variant_label[vs[i]], st.med, st.min, sr.med,
			       sr.min, sr.max);
	}
}

static int pin_to(int cpu, cpu_set_t *old)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(*old), old))
		return -errno;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return -errno;
	return 0;
}

static void bench_costs(const struct opts *o)
{
	static const enum variant calls[] = { V_DIRECT, V_STATIC_CALL,
					      V_INDIRECT, V_RETPOLINE };
	static const enum variant keys[] = { V_PLAIN, V_KEY, V_FLAG };
	static const enum variant keys_default[] = { V_PLAIN_DEFAULT,
						     V_KEY_DEFAULT,
						     V_FLAG_DEFAULT };
	static const enum variant keys_natural[] = { V_PLAIN_NATURAL,
						     V_KEY_NATURAL,
						     V_KEY_NATURAL_RW };
	double(*ns)[V_COUNT] = calloc((size_t)o->rounds, sizeof(*ns));
	double r[MAX_SAMPLES];
	bool do_calls = !o->only || !strcmp(o->only, "calls");
	bool do_keys = !o->only || !strcmp(o->only, "keys");
	cpu_set_t old;
	bool pinned = false;

	if (!ns) {
		perror("calloc");
		exit(1);
	}
	if (o->pin >= 0) {
		int err = pin_to(o->pin, &old);

		if (err)
			fprintf(stderr, "pin to CPU %d: %s\n", o->pin,
				strerror(-err));
		pinned = !err;
	}
	/* One round untimed: page faults, caches, frequency. */
	for (int v = 0; v < V_COUNT; v++)
		sink = run_variant((enum variant)v, o->iters / 4);
	for (int k = 0; k < o->rounds; k++) {
		for (int j = 0; j < V_COUNT; j++) {
			enum variant v = (enum variant)((j + k) % V_COUNT);
			uint64_t t0, t1;

			if ((v <= V_RETPOLINE && !do_calls) ||
			    (v >= V_PLAIN && !do_keys)) {
				ns[k][v] = 1;
				continue;
			}
			t0 = bench_now_ns();
			sink = run_variant(v, o->iters);
			t1 = bench_now_ns();
			ns[k][v] = (double)(t1 - t0) / (double)o->iters;
		}
	}
	if (pinned)
		sched_setaffinity(0, sizeof(old), &old);

	printf("\ncall and key costs: %d rounds x %ld iterations per variant%s",
	       o->rounds, o->iters, pinned ? ", pinned" : "");
	if (pinned)
		printf(" to CPU %d", o->pin);
	printf("\n");
	if (do_calls) {
		print_group("calls (one call of a 2-instruction function per "
			    "iteration)",
			    calls, 4, ns, o->rounds, false);
		for (int k = 0; k < o->rounds; k++)
			r[k] = ns[k][V_RETPOLINE] / ns[k][V_STATIC_CALL];
		struct summary s = summarise(r, o->rounds);
		printf("  %-24s %9s %9s   %7.3fx [%.3f, %.3f]\n", "(d) / (b)",
		       "", "", s.med, s.min, s.max);
	}
	if (do_keys) {
		print_group("static key, disabled (one add per iteration; "
			    "loops aligned to 64 bytes)",
			    keys, 3, ns, o->rounds, true);
		print_group("the same at the compiler's default loop alignment",
			    keys_default, 3, ns, o->rounds, true);
		print_group("the natural form, acc += slow(i) (aligned)",
			    keys_natural, 3, ns, o->rounds, true);
	}
	free(ns);
}

/* --- Update latency ------------------------------------------------------ */

struct site_set {
	const char *name;
	struct rw_static_key *key;
	long (*fn)(void);
	long sites;
};

struct busy_arg {
	long (*fn)(void);
	atomic_bool *stop;
};

static void *busy(void *p)
{
	const struct busy_arg *a = p;
	long s = 0;

	while (!atomic_load_explicit(a->stop, memory_order_relaxed))
		s += a->fn();
	sink = s;
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Returns 0, or -1 if a flip failed or the sites did not follow the key. */
static int bench_one_update(const struct site_set *s, int nthreads, int flips)
{
	pthread_t *tid =
		calloc((size_t)(nthreads ? nthreads : 1), sizeof(*tid));
	double lat[MAX_SAMPLES], cpu[MAX_SAMPLES];
	long switches = 0;
	atomic_bool stop = false;
	struct busy_arg arg = { s->fn, &stop };
	struct rw_text_stats a, b;
	int started = 0, ret = 0;
	struct summary sm;
	double p90;

	if (!tid) {
		perror("calloc");
		return -1;
	}
	for (; started < nthreads; started++) {
		int err = pthread_create(&tid[started], NULL, busy, &arg);

		if (err) {
			fprintf(stderr, "pthread_create: %s\n", strerror(err));
			ret = -1;
			goto out;
		}
	}
	sleep_ms(20);

	rw_text_get_stats(&a);
	for (int f = 0; f < flips; f++) {
		bool on = !(f & 1);
		uint64_t t0, t1, c0, c1;
		long sw0 = thread_switches();
		int err;

		c0 = bench_thread_cpu_ns();
		t0 = bench_now_ns();
		err = on ? rw_static_key_enable(s->key)
			 : rw_static_key_disable(s->key);
		t1 = bench_now_ns();
		c1 = bench_thread_cpu_ns();
		switches += thread_switches() - sw0;
		if (err) {
			fprintf(stderr, "flip of %s: %s\n", s->name,
				rw_strerror(err));
			ret = -1;
			goto out;
		}
		/* The oracle: every site follows the key once flip returns. */
		if (s->fn() != (on ? s->sites : 0)) {
			fprintf(stderr, "%s: sites disagree with the key\n",
				s->name);
			ret = -1;
			goto out;
		}
		lat[f] = (double)(t1 - t0) / 1e6;
		cpu[f] = (double)(c1 - c0) / 1e6;
		/* Let the busy threads run the new code between flips. */
		if (nthreads)
			sleep_ms(1);
	}
	rw_text_get_stats(&b);
	if (rw_static_key_enabled(s->key))
		rw_static_key_disable(s->key);

	sm = summarise(lat, flips);
	{
		double tmp[MAX_SAMPLES];

		memcpy(tmp, lat, sizeof(*lat) * (size_t)flips);
		p90 = bench_quantile(tmp, flips, 0.9);
	}
	printf("  %6ld %7d %8.3f %8.3f %8.3f %8.3f %8.3f %6.2f %7.1f %6.1f "
	       "%7.1f\n",
	       s->sites, nthreads, sm.med, p90, sm.min, sm.max,
	       summarise(cpu, flips).med, (double)(b.syncs - a.syncs) / flips,
	       (double)(b.writes - a.writes) / flips,
	       (double)(b.traps_emulated + b.traps_replayed - a.traps_emulated -
			a.traps_replayed) /
		       flips,
	       (double)switches / flips);
out:
	atomic_store(&stop, true);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	free(tid);
	return ret;
}

static int bench_updates(const struct opts *o)
{
	const struct site_set sets[] = {
		{ "bench_key_1", &bench_key_1.key, bench_sites_1, 1 },
		{ "bench_key_100", &bench_key_100.key, bench_sites_100, 100 },
		{ "bench_key_10k", &bench_key_10k.key, bench_sites_10k, 10000 },
	};
	static const int threads[] = { 0, 8, 64 };

	printf("\nupdate latency: %d flips (enable, disable, ...) per row; "
	       "wall ms per flip\n(median, p90, min, max), the flipping "
	       "thread's CPU ms (median), and per flip:\nmembarrier syncs, "
	       "code writes, int3 traps taken by busy threads, context\n"
	       "switches of the flipping thread\n",
	       o->flips);
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		long n = rw_static_key_sites(sets[i].key);

		printf("  %s: %ld sites registered (intended %ld)\n",
		       sets[i].name, n, sets[i].sites);
		if (n != sets[i].sites)
			return -1;
	}
	/* Untimed: the first patch registers membarrier, installs the
	 * SIGTRAP handler and faults in the library's code. */
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		if (rw_static_key_enable(sets[i].key) ||
		    rw_static_key_disable(sets[i].key)) {
			fprintf(stderr, "warm-up flip failed\n");
			return -1;
		}
	}
	printf("  %6s %7s %8s %8s %8s %8s %8s %6s %7s %6s %7s\n", "sites",
	       "threads", "median", "p90", "min", "max", "cpu-med", "syncs",
	       "writes", "traps", "cswitch");
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
		for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]);
		     t++)
			if (bench_one_update(&sets[i], threads[t], o->flips))
				return -1;
	return 0;
}

/* --- Main ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
		"usage: rw-bench [--quick] [--rounds R] [--iters N] "
		"[--flips F] [--pin CPU]\n"
		"                [--only calls|keys|update]\n"
		"       rw-bench --callgrind VARIANT [--iters N]\n"
		"VARIANT: direct static_call indirect retpoline plain key "
		"flag\n");
	exit(2);
}

static int callgrind_mode(const struct opts *o)
{
	for (int v = 0; v < V_COUNT; v++) {
		if (strcmp(o->callgrind, variant_name[v]))
			continue;
		sink = run_variant((enum variant)v, o->iters);
		printf("%s: %ld iterations in bench_loop_%s\n", variant_name[v],
		       o->iters, variant_name[v]);
		return 0;
	}
	usage();
	return 2;
}

int main(int argc, char **argv)
{
	struct opts o = { 15, 20000000, 50, -1, NULL, NULL };
	bool iters_set = false;
	int ret = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--quick")) {
			o.rounds = 5;
			o.iters = 5000000;
			o.flips = 10;
		} else if (!strcmp(a, "--rounds") && v) {
			o.rounds = atoi(v), i++;
		} else if (!strcmp(a, "--iters") && v) {
			o.iters = atol(v), i++, iters_set = true;
		} else if (!strcmp(a, "--flips") && v) {
			o.flips = atoi(v), i++;
		} else if (!strcmp(a, "--pin") && v) {
			o.pin = atoi(v), i++;
		} else if (!strcmp(a, "--only") && v) {
			o.only = v, i++;
		} else if (!strcmp(a, "--callgrind") && v) {
			o.callgrind = v, i++;
		} else {
			usage();
		}
	}
	if (o.rounds < 1 || o.rounds > MAX_SAMPLES || o.iters < 1 ||
	    o.flips < 2 || o.flips > MAX_SAMPLES)
		usage();
	if (o.callgrind) {
		if (!iters_set)
			o.iters = 1000000;
		return callgrind_mode(&o);
	}

#ifndef RW_BACKEND_X86_64
	printf("note: generic backend; static calls and keys are not "
	       "patched code\n");
#endif
	printf("rw-bench: rewire %s\n", rw_version());
	bench_print_loadavg("at start");
	if (!o.only || !strcmp(o.only, "calls") || !strcmp(o.only, "keys"))
		bench_costs(&o);
	if (!o.only || !strcmp(o.only, "update"))
		ret = bench_updates(&o) ? 1 : 0;
	bench_print_loadavg("at end");
	return ret;
}
