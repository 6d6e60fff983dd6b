/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-lp - live patching (rewire/livepatch.h): what a call of a
 * patched function costs in each state, and how long transitions take.
 *
 *	rw-bench-lp [--quick] [--rounds R] [--iters N] [--cycles C]
 *		    [--only calls|transition] [--patch PATH]
 *	rw-bench-lp --callgrind VARIANT [--iters N]
 *	rw-bench-lp --list
 *
 * Calls (lp_bench.h has the functions). Four states, each timed in rounds
 * as in rw-bench (every round times each variant of the state once, in an
 * order that rotates; ratios within a round; median and [min, max] over
 * rounds), each variant against the plain function (no patchable entry)
 * of the same round:
 *   before      lpb_func and lpb_func_exe unpatched: their 5 NOPs run;
 *   during/new  the transition is held open by thread M, which sits in
 *               lpb_run() (patched) blocked in read(); the calling thread
 *               (main) switched at the first pass, so the entry jumps to
 *               the dispatcher, which sends it to the new function;
 *   during/old  the same transition, measured by M itself from inside
 *               lpb_run(): M has not switched, the dispatcher sends it to
 *               the old function (past its NOPs);
 *   after       transition complete: lpb_func's entry is a direct jmp to
 *               the new function (the patch is within 2 GiB of the
 *               library), lpb_func_exe's a jmp to a far stub (jmp *abs).
 * Each loop's sum is checked against the side that must have run, so a
 * thread in the wrong state stops the run.
 *
 * Transitions: 1, 8 and 64 other threads, all busy (calling lpb_func in a
 * loop, each result checked to be the old or the new one) or half busy and
 * half blocked in read() outside any patched function. C cycles of
 * enable + wait and disable + wait, each timed from the call to the return
 * of rw_patch_wait(); median, p90, min, max in microseconds, the median
 * number of check rounds, and how many enables had to be retried (see
 * timed_transition()).
 *
 * --callgrind VARIANT sets up the state of VARIANT (--list names them),
 * runs lpb_loop_VARIANT once, prints "entry: ..." (what the entry of the
 * called function was) and exits: bench/callgrind.sh counts the loop's
 * instructions.
 */
#include "lp_bench.h"

#include <rewire/livepatch.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "stats.h"

#define MAX_SAMPLES 1000
#define WAIT_MS 60000

enum variant {
#define LPB_ENUM(v) V_##v,
	LPB_VARIANTS(LPB_ENUM)
#undef LPB_ENUM
		V_COUNT
};

static const char *const variant_name[V_COUNT] = {
#define LPB_NAME(v) [V_##v] = #v,
	LPB_VARIANTS(LPB_NAME)
#undef LPB_NAME
};

static long (*const variant_loop[V_COUNT])(lpb_fn *, long) = {
#define LPB_LOOP(v) [V_##v] = lpb_loop_##v,
	LPB_VARIANTS(LPB_LOOP)
#undef LPB_LOOP
};

static const char *const variant_label[V_COUNT] = {
	[V_plain] = "plain function (no NOPs)",
	[V_ref] = "never patched twin (NOPs)",
	[V_before] = "lpb_func, NOPs",
	[V_exe_before] = "lpb_func_exe, NOPs",
	[V_during_new] = "lpb_func, dispatcher -> new",
	[V_exe_during_new] = "lpb_func_exe, dispatcher -> new",
	[V_during_old] = "lpb_func, dispatcher -> old",
	[V_exe_during_old] = "lpb_func_exe, dispatcher -> old",
	[V_after] = "lpb_func, jmp new",
	[V_exe_after] = "lpb_func_exe, jmp far stub",
};

/* The function each loop calls, read through a volatile so that nothing
 * is known about it, and the side it must run (true: new). */
static lpb_fn *volatile variant_fn[V_COUNT] = {
	[V_plain] = lpb_plain,	   [V_ref] = lpb_ref,
	[V_before] = lpb_func,	   [V_exe_before] = lpb_func_exe,
	[V_during_new] = lpb_func, [V_exe_during_new] = lpb_func_exe,
	[V_during_old] = lpb_func, [V_exe_during_old] = lpb_func_exe,
	[V_after] = lpb_func,	   [V_exe_after] = lpb_func_exe,
};

static const bool variant_new[V_COUNT] = {
	[V_during_new] = true,
	[V_exe_during_new] = true,
	[V_after] = true,
	[V_exe_after] = true,
};

struct opts {
	int rounds;
	long iters;
	int cycles;
	const char *only;
	const char *callgrind;
	const char *patch;
};

static long sum_old, sum_new, sum_iters = -1;

/* Print "rw-bench-lp: what[ arg][: error: message]" and exit(1). */
static void fail(const char *what, const char *arg, int err)
{
	fprintf(stderr, "rw-bench-lp: %s%s%s", what, arg ? " " : "",
		arg ? arg : "");
	if (err)
		fprintf(stderr, ": %s: %s", rw_strerror(err),
			rw_patch_last_error());
	fputc('\n', stderr);
	exit(1);
}

static void expected_sums(long n)
{
	if (sum_iters == n)
		return;
	sum_old = sum_new = 0;
	for (long i = 0; i < n; i++) {
		sum_old += lpb_old(i);
		sum_new += lpb_new(i);
	}
	sum_iters = n;
}

/* Run @v's loop once and check which side ran. */
static void run_checked(enum variant v, long n)
{
	long got = variant_loop[v](variant_fn[v], n);

	if (got != (variant_new[v] ? sum_new : sum_old)) {
		fprintf(stderr,
			"rw-bench-lp: %s: sum %ld, expected %ld (%s side): "
			"the calling thread is not in the state it should be\n",
			variant_name[v], got,
			variant_new[v] ? sum_new : sum_old,
			variant_new[v] ? "new" : "old");
		exit(1);
	}
}

/* ---- Patch helpers ------------------------------------------------------ */

static struct rw_patch *load_patch(const char *path)
{
	struct rw_patch *p;
	/* The build tree's file; its owner and mode are not the point. */
	int err = rw_patch_load(path, RW_PATCH_LOAD_ALLOW_ANY_OWNER, &p);

	if (err)
		fail("load", path, err);
	return p;
}

static int patch_state(struct rw_patch *p, struct rw_patch_info *info)
{
	struct rw_patch_info tmp;

	if (!info)
		info = &tmp;
	if (rw_patch_state(p, info))
		fail("rw_patch_state", NULL, 0);
	return info->state;
}

static void enable_nowait(struct rw_patch *p)
{
	int err = rw_patch_enable(p);

	if (err)
		fail("enable", NULL, err);
}

static void wait_done(struct rw_patch *p, int state)
{
	int err = rw_patch_wait(p, WAIT_MS);

	if (err)
		fail("wait", NULL, err);
	if (patch_state(p, NULL) != state)
		fail("wrong state after wait", NULL, 0);
}

/* The entry of @fn, as a short description. */
static const char *entry_kind(void *fn, uintptr_t new_fn, char *buf, size_t len)
{
	const uint8_t *s = fn;
	uintptr_t to;
	int32_t rel;

	if (s[0] == 0xf3 && s[1] == 0x0f && s[2] == 0x1e && s[3] == 0xfa)
		s += 4;
	if (s[0] == 0x90 && s[1] == 0x90 && s[2] == 0x90 && s[3] == 0x90 &&
	    s[4] == 0x90)
		return "5 NOPs";
	if (s[0] != 0xe9) {
		snprintf(buf, len, "%02x %02x %02x %02x %02x", s[0], s[1], s[2],
			 s[3], s[4]);
		return buf;
	}
	memcpy(&rel, s + 1, 4);
	to = (uintptr_t)s + 5 + (uintptr_t)(intptr_t)rel;
	if (to == new_fn)
		return "jmp new (direct)";
	const uint8_t *t = (const uint8_t *)to;

	if (t[0] == 0xff && t[1] == 0x25 && !t[2] && !t[3] && !t[4] && !t[5]) {
		uintptr_t abs;

		memcpy(&abs, t + 6, sizeof(abs));
		if (abs == new_fn)
			return "jmp far stub (jmp *abs -> new)";
	}
	snprintf(buf, len, "jmp %#lx (dispatcher)", (unsigned long)to);
	return buf;
}

static uintptr_t new_func_of(const char *path, size_t i)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	const struct rw_patch_desc *d;
	uintptr_t fn = 0;

	if (!h)
		return 0;
	d = dlsym(h, RW_PATCH_DESC_SYMBOL);
	if (d && i < d->nfuncs)
		fn = (uintptr_t)d->funcs[i].new_func;
	dlclose(h);
	return fn;
}

static void print_entries(const char *path)
{
	char b1[64], b2[64];

	printf("  entries: lpb_func %s; lpb_func_exe %s\n",
	       entry_kind((void *)lpb_func, new_func_of(path, 0), b1,
			  sizeof(b1)),
	       entry_kind((void *)lpb_func_exe, new_func_of(path, 2), b2,
			  sizeof(b2)));
}

/* ---- Thread M: holds a transition open from inside lpb_run() ------------ */

struct mthread {
	pthread_t th;
	int cmd[2], done[2];
	void (*job)(void *);
	void *arg;
};

static void xread(int fd, char *c)
{
	while (read(fd, c, 1) != 1)
		if (errno != EINTR)
			fail("read", NULL, 0);
}

static void xwrite(int fd, char c)
{
	while (write(fd, &c, 1) != 1)
		if (errno != EINTR)
			fail("write", NULL, 0);
}

/* Inside lpb_run(): M's stack holds a patched function all along. */
static void m_body(void *arg)
{
	struct mthread *m = arg;
	char c;

	xwrite(m->done[1], 'r');
	for (;;) {
		xread(m->cmd[0], &c);
		if (c == 'q')
			break;
		m->job(m->arg);
		xwrite(m->done[1], 'd');
	}
}

static void *m_main(void *arg)
{
	lpb_run(m_body, arg);
	return NULL;
}

static void m_start(struct mthread *m)
{
	char c;

	if (pipe(m->cmd) || pipe(m->done))
		fail("pipe", NULL, 0);
	if (pthread_create(&m->th, NULL, m_main, m))
		fail("pthread_create", NULL, 0);
	xread(m->done[0], &c);
}

static void m_call(struct mthread *m, void (*job)(void *), void *arg)
{
	char c;

	m->job = job;
	m->arg = arg;
	xwrite(m->cmd[1], 'j');
	xread(m->done[0], &c);
}

static void m_stop(struct mthread *m)
{
	xwrite(m->cmd[1], 'q');
	pthread_join(m->th, NULL);
	close(m->cmd[0]);
	close(m->cmd[1]);
	close(m->done[0]);
	close(m->done[1]);
}

/* ---- Call costs ------------------------------------------------------------- */

static double ns[MAX_SAMPLES][V_COUNT];

struct group {
	const enum variant *vs;
	int nv;
	int rounds;
	long iters;
};

/* One untimed round, then @rounds timed ones, order rotating. */
static void run_rounds(void *arg)
{
	const struct group *g = arg;

	for (int k = -1; k < g->rounds; k++)
		for (int j = 0; j < g->nv; j++) {
			enum variant v = g->vs[(j + (k < 0 ? 0 : k)) % g->nv];
			uint64_t t0 = bench_now_ns();

			run_checked(v, g->iters);
			if (k >= 0)
				ns[k][v] = (double)(bench_now_ns() - t0) /
					   (double)g->iters;
		}
}

static void print_group(const char *title, const struct group *g)
{
	enum variant base = g->vs[0];

	printf("\n%s\n", title);
	printf("  %-34s %8s %8s   %s\n", "variant", "ns/call", "min",
	       "ratio to the plain function, per round: median [min, max]; "
	       "+ns");
	for (int i = 0; i < g->nv; i++) {
		/* Sorted by bench_quantile(): [0] is the minimum, [n - 1] the
		 * maximum. */
		double t[MAX_SAMPLES], r[MAX_SAMPLES], d[MAX_SAMPLES];
		double t_med, r_med, d_med;
		enum variant v = g->vs[i];
		int n = g->rounds;

		for (int k = 0; k < n; k++) {
			t[k] = ns[k][v];
			r[k] = ns[k][v] / ns[k][base];
			d[k] = ns[k][v] - ns[k][base];
		}
		t_med = bench_quantile(t, n, 0.5);
		r_med = bench_quantile(r, n, 0.5);
		d_med = bench_quantile(d, n, 0.5);
		printf("  %-34s %8.3f %8.3f   %6.3fx [%.3f, %.3f]  %+7.3f\n",
		       variant_label[v], t_med, t[0], r_med, r[0], r[n - 1],
		       d_med);
	}
}

static void bench_calls(const struct opts *o)
{
	static const enum variant before[] = { V_plain, V_ref, V_before,
					       V_exe_before };
	static const enum variant during_new[] = { V_plain, V_ref, V_during_new,
						   V_exe_during_new };
	static const enum variant during_old[] = { V_plain, V_ref, V_during_old,
						   V_exe_during_old };
	static const enum variant after[] = { V_plain, V_ref, V_after,
					      V_exe_after };
	struct group g = { .rounds = o->rounds, .iters = o->iters };
	struct rw_patch_info info;
	struct mthread m;
	struct rw_patch *p;

	expected_sums(o->iters);
	printf("\ncalls: %d rounds x %ld calls per variant\n", o->rounds,
	       o->iters);
	p = load_patch(o->patch);

	g.vs = before;
	g.nv = 4;
	run_rounds(&g);
	print_entries(o->patch);
	print_group("before: unpatched (main thread)", &g);

	m_start(&m);
	enable_nowait(p);
	if (patch_state(p, &info) != RW_PATCH_ENABLING || info.npending < 1)
		fail("the transition did not stay open", NULL, 0);
	print_entries(o->patch);
	printf("  transition held open: %zu/%zu threads switched\n",
	       info.threads_switched, info.threads_total);
	g.vs = during_new;
	run_rounds(&g);
	print_group("during: caller switched (main thread)", &g);
	g.vs = during_old;
	m_call(&m, run_rounds, &g);
	print_group("during: caller not switched (thread M, inside lpb_run)",
		    &g);
	m_stop(&m);
	wait_done(p, RW_PATCH_ENABLED);

	g.vs = after;
	run_rounds(&g);
	print_entries(o->patch);
	print_group("after: transition complete (main thread)", &g);

	if (rw_patch_disable(p))
		fail("disable", NULL, 0);
	wait_done(p, RW_PATCH_DISABLED);
	if (rw_patch_unload(p))
		fail("unload", NULL, 0);
}

/* ---- Transition time ---------------------------------------------------------- */

static atomic_bool stop_workers;
static atomic_long worker_calls, worker_bad;
static int block_pipe[2];

static void *busy_worker(void *arg)
{
	lpb_fn *volatile fn = lpb_func;
	long i = (long)(intptr_t)arg << 20, calls = 0, bad = 0;

	while (!atomic_load_explicit(&stop_workers, memory_order_relaxed)) {
		long r = fn(i);

		if (r != lpb_old(i) && r != lpb_new(i))
			bad++;
		i++;
		calls++;
	}
	atomic_fetch_add(&worker_calls, calls);
	atomic_fetch_add(&worker_bad, bad);
	return NULL;
}

static void *blocked_worker(void *arg)
{
	char c;

	(void)arg;
	while (read(block_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static double en_us[MAX_SAMPLES], dis_us[MAX_SAMPLES], en_rounds[MAX_SAMPLES],
	dis_rounds[MAX_SAMPLES], en_retries[MAX_SAMPLES],
	dis_retries[MAX_SAMPLES];

/*
 * Start the transition and wait for it; microseconds, rounds. An enable
 * that fails because a thread did not answer the signal that arms the
 * entries in time (1 s: busy threads on a loaded machine) changed nothing
 * and is retried, up to 10 times; the time includes the failed tries and
 * *retries counts them.
 */
static double timed_transition(struct rw_patch *p, bool enable, double *rounds,
			       double *retries)
{
	struct rw_patch_info info;
	uint64_t t0 = bench_now_ns(), t1;
	int err, tries = 0;

	for (;;) {
		err = enable ? rw_patch_enable(p) : rw_patch_disable(p);
		if (err != -RW_ERR_THREAD_TIMEOUT || tries == 10)
			break;
		tries++;
	}
	*retries = tries;
	if (!err)
		err = rw_patch_wait(p, WAIT_MS);
	t1 = bench_now_ns();
	if (err) {
		patch_state(p, &info);
		fprintf(stderr, "%zu/%zu switched, %zu pending\n",
			info.threads_switched, info.threads_total,
			info.npending);
		fail(enable ? "enable + wait" : "disable + wait", NULL, err);
	}
	patch_state(p, &info);
	if (info.state != (enable ? RW_PATCH_ENABLED : RW_PATCH_DISABLED))
		fail("wrong state after a transition", NULL, 0);
	*rounds = info.attempts;
	return (double)(t1 - t0) / 1e3;
}

static void print_us(const char *what, double *v, double *r, double *f, int n)
{
	double med = bench_quantile(v, n, 0.5), p90 = bench_quantile(v, n, 0.9);
	double failed = 0;

	for (int i = 0; i < n; i++)
		failed += f[i];
	printf("  %-16s %10.1f %10.1f %10.1f %10.1f %7.0f %7.0f\n", what, med,
	       p90, v[0], v[n - 1], bench_quantile(r, n, 0.5), failed);
}

static void bench_row(struct rw_patch *p, int nthreads, bool mixed, int cycles)
{
	int nbusy = mixed ? nthreads / 2 : nthreads;
	pthread_t *th = calloc((size_t)nthreads, sizeof(*th));
	double r, f;

	if (!th || pipe(block_pipe))
		fail("calloc/pipe", NULL, 0);
	atomic_store(&stop_workers, false);
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL,
				   i < nbusy ? busy_worker : blocked_worker,
				   (void *)(intptr_t)i))
			fail("pthread_create", NULL, 0);
	usleep(20000);
	/* Untimed warm-up cycle. */
	timed_transition(p, true, &r, &f);
	timed_transition(p, false, &r, &f);
	for (int c = 0; c < cycles; c++) {
		usleep(2000);
		en_us[c] = timed_transition(p, true, &en_rounds[c],
					    &en_retries[c]);
		usleep(2000);
		dis_us[c] = timed_transition(p, false, &dis_rounds[c],
					     &dis_retries[c]);
	}
	printf("%d threads: %d busy, %d blocked\n", nthreads, nbusy,
	       nthreads - nbusy);
	print_us("enable + wait", en_us, en_rounds, en_retries, cycles);
	print_us("disable + wait", dis_us, dis_rounds, dis_retries, cycles);
	atomic_store(&stop_workers, true);
	close(block_pipe[1]);
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	close(block_pipe[0]);
	free(th);
}

static void bench_transitions(const struct opts *o)
{
	static const int threads[] = { 1, 8, 64 };
	struct rw_patch *p = load_patch(o->patch);

	printf("\ntransitions: %d cycles of enable + wait and disable + wait "
	       "per row, 2 ms apart\n",
	       o->cycles);
	printf("microseconds from the call to the return of rw_patch_wait(): "
	       "median, p90, min, max;\nmedian check rounds; enables retried "
	       "after a thread did not answer in 1 s (total)\n");
	printf("  %-16s %10s %10s %10s %10s %7s %7s\n", "", "median", "p90",
	       "min", "max", "rounds", "retries");
	for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++)
		for (int mixed = 0; mixed < 2; mixed++)
			bench_row(p, threads[t], mixed, o->cycles);
	printf("(busy threads made %ld calls of lpb_func, %ld of them with a "
	       "result of neither side)\n",
	       atomic_load(&worker_calls), atomic_load(&worker_bad));
	if (atomic_load(&worker_bad))
		fail("a call returned neither side's result", NULL, 0);
	if (rw_patch_unload(p))
		fail("unload", NULL, 0);
}

/* ---- Callgrind ------------------------------------------------------------------ */

struct one_loop {
	enum variant v;
	long iters;
};

static void run_one(void *arg)
{
	const struct one_loop *l = arg;

	run_checked(l->v, l->iters);
}

/* What the entry of @v's function is, for callgrind.sh's report. */
static void print_entry_of(enum variant v, const char *path)
{
	lpb_fn *fn = variant_fn[v];
	char buf[64];

	if (fn == lpb_plain) {
		printf("entry: no NOPs\n");
		return;
	}
	printf("entry: %s\n",
	       entry_kind((void *)fn,
			  new_func_of(path, fn == lpb_func_exe ? 2 : 0), buf,
			  sizeof(buf)));
}

static int callgrind(const struct opts *o)
{
	struct one_loop l = { .v = V_COUNT, .iters = o->iters };
	struct rw_patch *p = NULL;
	struct mthread m;

	for (int i = 0; i < V_COUNT; i++)
		if (!strcmp(o->callgrind, variant_name[i]))
			l.v = (enum variant)i;
	if (l.v == V_COUNT)
		fail("unknown variant", o->callgrind, 0);
	expected_sums(o->iters);
	switch (l.v) {
	case V_plain:
	case V_ref:
	case V_before:
	case V_exe_before:
		run_one(&l);
		print_entry_of(l.v, o->patch);
		return 0;
	case V_during_new:
	case V_exe_during_new:
	case V_during_old:
	case V_exe_during_old:
		p = load_patch(o->patch);
		m_start(&m);
		enable_nowait(p);
		if (patch_state(p, NULL) != RW_PATCH_ENABLING)
			fail("the transition did not stay open", NULL, 0);
		if (l.v == V_during_new || l.v == V_exe_during_new)
			run_one(&l);
		else
			m_call(&m, run_one, &l);
		print_entry_of(l.v, o->patch);
		m_stop(&m);
		wait_done(p, RW_PATCH_ENABLED);
		return 0;
	case V_after:
	case V_exe_after:
		p = load_patch(o->patch);
		enable_nowait(p);
		wait_done(p, RW_PATCH_ENABLED);
		run_one(&l);
		print_entry_of(l.v, o->patch);
		return 0;
	case V_COUNT:
		break;
	}
	return 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: rw-bench-lp [--quick] [--rounds R] [--iters N] "
		"[--cycles C] [--only calls|transition] [--patch PATH]\n"
		"       rw-bench-lp --callgrind VARIANT [--iters N]\n"
		"       rw-bench-lp --list\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o = { .rounds = 15,
			  .iters = 20000000,
			  .cycles = 11,
			  .patch = LPB_PATCH };
	bool iters_set = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--quick")) {
			o.rounds = 5;
			o.cycles = 5;
			if (!iters_set)
				o.iters = 2000000;
		} else if (!strcmp(a, "--rounds") && v) {
			o.rounds = atoi(v), i++;
		} else if (!strcmp(a, "--iters") && v) {
			o.iters = atol(v), i++;
			iters_set = true;
		} else if (!strcmp(a, "--cycles") && v) {
			o.cycles = atoi(v), i++;
		} else if (!strcmp(a, "--only") && v) {
			o.only = v, i++;
		} else if (!strcmp(a, "--patch") && v) {
			o.patch = v, i++;
		} else if (!strcmp(a, "--callgrind") && v) {
			o.callgrind = v, i++;
		} else if (!strcmp(a, "--list")) {
			for (int k = 0; k < V_COUNT; k++)
				printf("%s\n", variant_name[k]);
			return 0;
		} else {
			usage();
		}
	}
	if (o.rounds < 1 || o.rounds > MAX_SAMPLES || o.iters < 1 ||
	    o.cycles < 1 || o.cycles > MAX_SAMPLES)
		usage();
	if (o.callgrind)
		return callgrind(&o);

	printf("rw-bench-lp: rewire %s; patch %s\n", rw_version(), o.patch);
	bench_print_loadavg("at the start");
	if (!o.only || !strcmp(o.only, "calls"))
		bench_calls(&o);
	if (!o.only || !strcmp(o.only, "transition"))
		bench_transitions(&o);
	bench_print_loadavg("at the end");
	return 0;
}
