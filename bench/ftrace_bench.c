/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-ftrace - function tracing (rewire/ftrace.h): what a call of a
 * traced function costs, off, on (entry) and in graph mode (entry and
 * return), side by side with rewire's tracepoints; and how long attaching
 * and detaching 1,000 and 10,000 functions takes while 8 threads call
 * them. The "Function tracing" section of doc/BENCHMARKS.md comes from
 * bench/ftrace.sh, which runs this binary, callgrind on it and the
 * comparison with uftrace and a bpftrace uprobe (bench/ftrace_ext.c).
 *
 *	rw-bench-ftrace [--quick] [--rounds R] [--iters N] [--cycles C]
 *			[--only calls|attach] [--sizes N,...] [--busy T]
 *			[--rewire PATH] [--markers]
 *	rw-bench-ftrace --callgrind VARIANT [--iters N]
 *	rw-bench-ftrace --list
 *
 * Calls: every variant of ftrace_bench.h is set up once (probes attached
 * and, for the "ring" rows, `rewire trace` sessions started with the
 * rewire command, PATH, on this process: the tracepoint fb_ev_ring and,
 * when the command supports --function, the function fb_entry_ring), then
 * timed in rounds as in the rest of bench/: every round times each
 * variant once (N calls), in an order that rotates; each variant's wall
 * and thread CPU time, and its ratio to the never traced function and to
 * its tracepoint counterpart taken within the round; median and [min,
 * max] over rounds. Every loop's sum is checked, and so is the number of
 * records the "rec" probes wrote: a probe that did not run stops the run.
 *
 * Attach: T threads (default 8) call all of librwbench_ftrace_many.so's
 * functions in turn, without pause; C times (default 5), a probe set is
 * attached to the first N of them ("fbm_00???" for 1,000, "fbm_*" for
 * 10,000) and detached; each attach and detach is timed, and the core
 * syncs (membarrier SYNC_CORE), batches and int3 hits it took are read
 * from rw_text_get_stats(). The same with no other thread, for reference.
 *
 * --callgrind VARIANT sets up VARIANT alone, runs fb_loop_VARIANT once
 * and prints "entry: ..." (the called function's first bytes while the
 * loop ran): bench/ftrace.sh counts the loop's instructions.
 */
#include "ftrace_bench.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"

#define MAX_ROUNDS 201
#define MAX_CYCLES 101
#define MAX_BUSY 64
/*
 * The sessions' rings: 64 MiB per thread (the most a session takes) hold
 * a whole run of a variant (--iters, 200,000 calls by default; a graph
 * session writes two records per call, of 64 bytes at most), so that
 * nothing is dropped however late the command's reader (another process)
 * is; a pause after each session run lets it drain. 64 thread slots of 64
 * MiB pass the default cap on the sessions' memory (1 GiB; the memfd is
 * sparse, only this thread's ring is touched): the bench raises the cap
 * for itself (REWIRE_TRACE_MEM_MAX, unless set). The drops are printed
 * with each session's summary, and must be 0 for its rows to count.
 */
#define FB_RING_SIZE "64M"

enum variant {
#define FB_ENUM(v, label) V_##v,
	FB_VARIANTS(FB_ENUM)
#undef FB_ENUM
		V_COUNT
};

static const char *const variant_name[V_COUNT] = {
#define FB_NAME(v, label) [V_##v] = #v,
	FB_VARIANTS(FB_NAME)
#undef FB_NAME
};

static const char *const variant_label[V_COUNT] = {
#define FB_LABEL(v, label) [V_##v] = label,
	FB_VARIANTS(FB_LABEL)
#undef FB_LABEL
};

static fb_fn *volatile variant_fn[V_COUNT] = {
#define FB_FN(v, label) [V_##v] = fb_##v,
	FB_VARIANTS(FB_FN)
#undef FB_FN
};

static long (*const variant_loop[V_COUNT])(fb_fn *, long) = {
#define FB_LOOP(v, label) [V_##v] = fb_loop_##v,
	FB_VARIANTS(FB_LOOP)
#undef FB_LOOP
};

/* Records one call of each variant makes the "rec" probes write. */
static const int variant_recs[V_COUNT] = {
	[V_tp_rec] = 1,
	[V_entry_rec] = 1,
	[V_graph_rec] = 2,
	[V_graph_ret] = 1,
};

/* What each variant is compared with, within a round. */
static const enum variant variant_peer[V_COUNT] = {
	[V_plain] = V_never,	  [V_never] = V_never,
	[V_detached] = V_never,	  [V_tp_off] = V_never,
	[V_tp_nop] = V_tp_off,	  [V_tp_rec] = V_tp_off,
	[V_tp_ring] = V_tp_off,	  [V_entry_nop] = V_tp_nop,
	[V_entry_rec] = V_tp_rec, [V_entry_ring] = V_tp_ring,
	[V_graph_nop] = V_tp_nop, [V_graph_rec] = V_tp_rec,
	[V_graph_ret] = V_tp_rec, [V_graph_ring] = V_tp_ring,
};

struct opts {
	int rounds;
	long iters;
	int cycles;
	int busy;
	const char *only;
	const char *callgrind;
	const char *rewire;
	long sizes[4];
	int nsizes;
	int markers; /* fd of /dev/null for --markers, else -1 */
};

static void fail(const char *what, int err)
{
	fprintf(stderr, "rw-bench-ftrace: %s: %s%s%s\n", what,
		err ? rw_strerror(err) : "failed", err ? ": " : "",
		err ? rw_ftrace_last_error() : "");
	exit(1);
}

static long expected_sum(long n)
{
	long acc = 0;

	for (long i = 0; i < n; i++)
		acc += fb_body(i);
	return acc;
}

/* The first bytes of @fn, as "0f 1f 44 00 00". */
static const char *entry_bytes(const void *fn, char *buf, size_t len)
{
	const unsigned char *p = fn;

	snprintf(buf, len, "%02x %02x %02x %02x %02x", p[0], p[1], p[2], p[3],
		 p[4]);
	return buf;
}

/* --- Set-up ------------------------------------------------------------------ */

static struct rw_ftrace *attach(const char *pattern, rw_ftrace_entry_fn entry,
				rw_ftrace_return_fn ret)
{
	const char *pats[1] = { pattern };
	struct rw_ftrace_probe probe = { entry, ret, NULL };
	struct rw_ftrace *t;
	int err = rw_ftrace_attach(pats, 1, &probe, 0, &t);

	if (err)
		fail(pattern, err);
	if (rw_ftrace_nfuncs(t) != 1) {
		fprintf(stderr, "%s: %zu functions traced, not 1\n", pattern,
			rw_ftrace_nfuncs(t));
		exit(1);
	}
	return t;
}

/* fb_detached: traced (and called, so that its probe ran), then detached;
 * its entry must hold its first bytes again. */
static void attach_detach(void)
{
	unsigned char before[5];
	struct rw_ftrace *t;
	long sum, want = expected_sum(1000);
	char b0[32], b1[32];
	unsigned long recs = fb_rec_count();

	memcpy(before, (const void *)fb_detached, sizeof(before));
	t = attach("fb_detached", fb_entry_rec_probe, NULL);
	/* Not through fb_loop_detached: callgrind counts that one. */
	sum = 0;
	for (long i = 0; i < 1000; i++)
		sum += variant_fn[V_detached](i);
	if (sum != want || fb_rec_count() - recs != 1000) {
		fprintf(stderr,
			"fb_detached: the probe ran %lu times of 1000\n",
			fb_rec_count() - recs);
		exit(1);
	}
	if (rw_ftrace_detach(t))
		fail("detach fb_detached", 0);
	if (memcmp(before, (const void *)fb_detached, sizeof(before))) {
		fprintf(stderr, "fb_detached: entry %s after detach, was %s\n",
			entry_bytes((const void *)fb_detached, b1, sizeof(b1)),
			entry_bytes(before, b0, sizeof(b0)));
		exit(1);
	}
}

/* `rewire trace` sessions on this process, run by the rewire command. */
struct session {
	pid_t pid;
	char log[64]; /* its standard error */
	bool on;
};

/* Starts `rewire trace PID ARGS... --ring-size 64M --output /dev/null`
 * and waits until @attached() says its probe is there. False (and a
 * message) if the command failed or took more than 10 s. */
static bool session_start(struct session *s, const char *rewire,
			  const char *name, const char *const *args, int nargs,
			  bool (*attached)(void))
{
	char pid[32];
	const char *argv[16];
	int n = 0, status;

	memset(s, 0, sizeof(*s));
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(s->log, sizeof(s->log), "/tmp/rw-bench-ftrace.%d.%s.log",
		 (int)getpid(), name);
	argv[n++] = rewire;
	argv[n++] = "trace";
	argv[n++] = pid;
	for (int i = 0; i < nargs; i++)
		argv[n++] = args[i];
	argv[n++] = "--ring-size";
	argv[n++] = FB_RING_SIZE;
	argv[n++] = "--output";
	argv[n++] = "/dev/null";
	argv[n] = NULL;
	s->pid = fork();
	if (s->pid < 0)
		return false;
	if (s->pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0)
			dup2(fd, 2);
		execv(rewire, (char *const *)argv);
		_exit(127);
	}
	for (int ms = 0; ms < 10000; ms++) {
		if (attached()) {
			s->on = true;
			return true;
		}
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			char line[256] = "";
			FILE *f = fopen(s->log, "r");

			if (f) {
				if (!fgets(line, sizeof(line), f))
					line[0] = 0;
				fclose(f);
			}
			printf("(`rewire trace %s`: exit %d, %s)\n", name,
			       WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			       strtok(line, "\n") ?: "no message");
			unlink(s->log);
			return false;
		}
		usleep(1000);
	}
	kill(s->pid, SIGTERM);
	waitpid(s->pid, &status, 0);
	unlink(s->log);
	printf("(`rewire trace %s`: not attached after 10 s)\n", name);
	return false;
}

/* Stops the session and prints the command's summary. */
static void session_stop(struct session *s, const char *what)
{
	char line[256];
	int status;
	FILE *f;

	if (!s->on)
		return;
	kill(s->pid, SIGINT);
	waitpid(s->pid, &status, 0);
	f = fopen(s->log, "r");
	while (f && fgets(line, sizeof(line), f))
		printf("%s session: %s", what, line);
	if (f)
		fclose(f);
	unlink(s->log);
	s->on = false;
}

static bool tp_ring_attached(void)
{
	return rw_tracepoint_enabled(fb_ev_ring);
}

/* The first bytes of fb_entry_ring and fb_graph_ring before tracing. */
static unsigned char entry_ring0[5], graph_ring0[5];

/* Whether the entry at @fn differs from @before, and is no longer in the
 * middle of the int3 batch (its first byte an int3). */
static bool entry_changed(const void *fn, const unsigned char *before)
{
	const volatile unsigned char *p = fn;

	return memcmp(before, fn, 5) != 0 && p[0] != 0xcc;
}

static bool entry_ring_attached(void)
{
	return entry_changed((const void *)fb_entry_ring, entry_ring0);
}

static bool graph_ring_attached(void)
{
	return entry_changed((const void *)fb_graph_ring, graph_ring0);
}

struct setup {
	struct rw_ftrace *t[V_COUNT];
	struct session tp_session, fn_session, graph_session;
	bool have[V_COUNT];
};

/* Sets up every variant of @want (all if NULL). */
static void setup(struct setup *st, const char *rewire, const bool *want)
{
	int err = 0;

	memset(st, 0, sizeof(*st));
	for (int v = 0; v < V_COUNT; v++)
		st->have[v] = !want || want[v];
	if (st->have[V_detached])
		attach_detach();
	if (st->have[V_tp_nop])
		err = rw_tracepoint_probe_register(fb_ev_nop, fb_tp_nop_probe,
						   NULL, 10);
	if (!err && st->have[V_tp_rec])
		err = rw_tracepoint_probe_register(fb_ev_rec, fb_tp_rec_probe,
						   NULL, 10);
	if (err)
		fail("tracepoint probe", err);
	if (st->have[V_entry_nop])
		st->t[V_entry_nop] =
			attach("fb_entry_nop", fb_entry_nop_probe, NULL);
	if (st->have[V_entry_rec])
		st->t[V_entry_rec] =
			attach("fb_entry_rec", fb_entry_rec_probe, NULL);
	if (st->have[V_graph_nop])
		st->t[V_graph_nop] = attach("fb_graph_nop", fb_entry_nop_probe,
					    fb_ret_nop_probe);
	if (st->have[V_graph_rec])
		st->t[V_graph_rec] = attach("fb_graph_rec", fb_entry_rec_probe,
					    fb_ret_rec_probe);
	if (st->have[V_graph_ret])
		st->t[V_graph_ret] =
			attach("fb_graph_ret", NULL, fb_ret_rec_probe);
	if (st->have[V_tp_ring] || st->have[V_entry_ring] ||
	    st->have[V_graph_ring]) {
		setenv("REWIRE_TRACE_MEM_MAX", "16G", 0);
		err = rw_ctl_start();
		if (err) {
			printf("(rw_ctl_start: %s: no session rows)\n",
			       rw_strerror(err));
			st->have[V_tp_ring] = st->have[V_entry_ring] = false;
			st->have[V_graph_ring] = false;
		}
	}
	if (st->have[V_tp_ring]) {
		const char *args[] = { "fb_ev_ring" };

		st->have[V_tp_ring] = session_start(&st->tp_session, rewire,
						    "tracepoint", args, 1,
						    tp_ring_attached);
	}
	if (st->have[V_entry_ring]) {
		const char *args[] = { "--function", "fb_entry_ring" };

		memcpy(entry_ring0, (const void *)fb_entry_ring, 5);
		st->have[V_entry_ring] = session_start(&st->fn_session, rewire,
						       "function", args, 2,
						       entry_ring_attached);
	}
	if (st->have[V_graph_ring]) {
		const char *args[] = { "--function", "fb_graph_ring",
				       "--graph" };

		memcpy(graph_ring0, (const void *)fb_graph_ring, 5);
		st->have[V_graph_ring] = session_start(&st->graph_session,
						       rewire, "graph", args, 3,
						       graph_ring_attached);
	}
}

static void teardown(struct setup *st)
{
	session_stop(&st->tp_session, "tracepoint");
	session_stop(&st->fn_session, "function");
	session_stop(&st->graph_session, "graph");
	for (int v = 0; v < V_COUNT; v++) {
		struct rw_ftrace_stats s;

		if (!st->t[v])
			continue;
		rw_ftrace_get_stats(st->t[v], &s);
		if (s.recursion || s.shadow_full)
			printf("%s: %llu hits not traced (recursion), %llu "
			       "returns not traced (shadow stack full)\n",
			       variant_name[v], (unsigned long long)s.recursion,
			       (unsigned long long)s.shadow_full);
		if (rw_ftrace_detach(st->t[v]))
			fail("detach", 0);
	}
}

/* --- Calls ------------------------------------------------------------------- */

static double wall[MAX_ROUNDS][V_COUNT], cpu[MAX_ROUNDS][V_COUNT];
static long want_sum;

static void run_checked(enum variant v, long n, double *w, double *c)
{
	uint64_t c0 = bench_thread_cpu_ns(), t0 = bench_now_ns(), t1, c1;
	long sum = variant_loop[v](variant_fn[v], n);

	t1 = bench_now_ns();
	c1 = bench_thread_cpu_ns();
	if (sum != want_sum) {
		fprintf(stderr, "%s: wrong sum\n", variant_name[v]);
		exit(1);
	}
	*w = (double)(t1 - t0) / (double)n;
	*c = (double)(c1 - c0) / (double)n;
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

/* Per round: @a's time over @b's (thread CPU). */
static struct sum ratio(enum variant a, enum variant b, int rounds)
{
	double r[MAX_ROUNDS];

	for (int k = 0; k < rounds; k++)
		r[k] = cpu[k][a] / cpu[k][b];
	return summarise(r, rounds);
}

/* Per round: what a hit costs in @a over what it costs in @b, each minus
 * the never traced function (thread CPU). */
static struct sum hit_ratio(enum variant a, enum variant b, int rounds)
{
	double r[MAX_ROUNDS];

	for (int k = 0; k < rounds; k++)
		r[k] = (cpu[k][a] - cpu[k][V_never]) /
		       (cpu[k][b] - cpu[k][V_never]);
	return summarise(r, rounds);
}

/* Per round: @a's time minus @b's (thread CPU). */
static struct sum diff(enum variant a, enum variant b, int rounds)
{
	double r[MAX_ROUNDS];

	for (int k = 0; k < rounds; k++)
		r[k] = cpu[k][a] - cpu[k][b];
	return summarise(r, rounds);
}

static void bench_calls(const struct opts *o)
{
	enum variant vs[V_COUNT];
	unsigned long recs0, recs_want = 0;
	struct setup st;
	int nv = 0;
	double w, c;

	want_sum = expected_sum(o->iters);
	setup(&st, o->rewire, NULL);
	for (int v = 0; v < V_COUNT; v++)
		if (st.have[v])
			vs[nv++] = (enum variant)v;
	recs0 = fb_rec_count();
	/* One untimed round, then the timed ones, the order rotating. A
	 * pause after each session row, so that the command's reader
	 * (another process) drains the ring before the next one. */
	for (int k = -1; k < o->rounds; k++)
		for (int j = 0; j < nv; j++) {
			enum variant v = vs[(j + (k < 0 ? 0 : k)) % nv];

			run_checked(v, o->iters, k < 0 ? &w : &wall[k][v],
				    k < 0 ? &c : &cpu[k][v]);
			recs_want += (unsigned long)variant_recs[v] *
				     (unsigned long)o->iters;
			if (v == V_tp_ring || v == V_entry_ring ||
			    v == V_graph_ring)
				usleep(100000);
		}
	if (fb_rec_count() - recs0 != recs_want) {
		fprintf(stderr,
			"the record probes wrote %lu records, not %lu\n",
			fb_rec_count() - recs0, recs_want);
		exit(1);
	}
	teardown(&st);

	printf("\ncalls: %d rounds x %ld calls per variant; ns per call, "
	       "median over rounds [min]; per-round ratios and\ndifferences "
	       "in thread CPU time\n",
	       o->rounds, o->iters);
	printf("  %-38s %15s %15s %22s %8s  %s\n", "variant", "wall", "CPU",
	       "ratio to peer (CPU)", "+ns", "peer");
	for (int i = 0; i < nv; i++) {
		enum variant v = vs[i], p = variant_peer[v];
		double tw[MAX_ROUNDS], tc[MAX_ROUNDS];
		struct sum sw, sc, r, d;

		for (int k = 0; k < o->rounds; k++) {
			tw[k] = wall[k][v];
			tc[k] = cpu[k][v];
		}
		sw = summarise(tw, o->rounds);
		sc = summarise(tc, o->rounds);
		if (!st.have[p]) {
			printf("  %-38s %7.2f [%5.2f] %7.2f [%5.2f]\n",
			       variant_label[v], sw.med, sw.min, sc.med,
			       sc.min);
			continue;
		}
		r = ratio(v, p, o->rounds);
		d = diff(v, p, o->rounds);
		printf("  %-38s %7.2f [%5.2f] %7.2f [%5.2f] %6.3fx [%.2f, %.2f] "
		       "%+8.2f  %s\n",
		       variant_label[v], sw.med, sw.min, sc.med, sc.min, r.med,
		       r.min, r.max, d.med, variant_name[p]);
	}

	printf("\nper hit (thread CPU, minus the never traced function of "
	       "the same round), and the ratios the targets name:\n");
	for (int i = 0; i < nv; i++) {
		enum variant v = vs[i];
		struct sum d = diff(v, V_never, o->rounds);

		if (v == V_plain || v == V_never)
			continue;
		printf("  %-38s %+8.2f ns [%+.2f, %+.2f]\n", variant_label[v],
		       d.med, d.min, d.max);
	}
	{
		static const enum variant pairs[][2] = {
			{ V_entry_nop, V_tp_nop },
			{ V_entry_rec, V_tp_rec },
			{ V_entry_ring, V_tp_ring },
			{ V_entry_rec, V_tp_ring },
			{ V_graph_nop, V_entry_nop },
			{ V_graph_rec, V_tp_rec },
			{ V_graph_rec, V_entry_rec },
			{ V_graph_ring, V_entry_ring },
		};

		for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
			enum variant a = pairs[i][0], b = pairs[i][1];
			struct sum r, h;

			if (!st.have[a] || !st.have[b])
				continue;
			r = ratio(a, b, o->rounds);
			h = hit_ratio(a, b, o->rounds);
			printf("  %-12s / %-12s per call %6.3fx [%.3f, %.3f], "
			       "per hit %6.3fx [%.3f, %.3f]\n",
			       variant_name[a], variant_name[b], r.med, r.min,
			       r.max, h.med, h.min, h.max);
		}
	}
}

/* --- Attach ------------------------------------------------------------------ */

static atomic_bool busy_stop;
static atomic_ulong busy_hits[MAX_BUSY];
static atomic_ulong busy_passes[MAX_BUSY];
static __thread unsigned long my_hits;

static void count_probe(void *data, const struct rw_ftrace_func *f,
			uintptr_t caller, unsigned depth)
{
	(void)data;
	(void)f;
	(void)caller;
	(void)depth;
	my_hits++;
}

static void *busy_main(void *arg)
{
	long idx = (long)(intptr_t)arg;
	long acc = 0;

	while (!atomic_load_explicit(&busy_stop, memory_order_relaxed)) {
		for (long i = 0; i < FB_MANY; i++)
			acc += fbm_table[i](i);
		atomic_store_explicit(&busy_hits[idx], my_hits,
				      memory_order_relaxed);
		atomic_fetch_add_explicit(&busy_passes[idx], 1,
					  memory_order_relaxed);
	}
	return (void *)(intptr_t)acc;
}

static unsigned long hits_total(int n)
{
	unsigned long s = 0;

	for (int i = 0; i < n; i++)
		s += atomic_load(&busy_hits[i]);
	return s;
}

/* Waits until every busy thread finished a pass begun after the call. */
static void busy_wait_pass(int n)
{
	unsigned long seen[MAX_BUSY];

	for (int i = 0; i < n; i++)
		seen[i] = atomic_load(&busy_passes[i]);
	for (int i = 0; i < n; i++)
		while (atomic_load(&busy_passes[i]) < seen[i] + 2)
			usleep(100);
}

/*
 * --markers: a write of "fb-mark WHAT" to /dev/null before and after each
 * attach and detach, so that `strace -e trace=membarrier,write` can tell
 * which membarrier calls each made (bench/ftrace.sh).
 */
static void mark(const struct opts *o, const char *what)
{
	char buf[64];
	int n;

	if (o->markers < 0)
		return;
	n = snprintf(buf, sizeof(buf), "fb-mark %s", what);
	if (write(o->markers, buf, (size_t)n) != n)
		perror("marker");
}

static void attach_row(const struct opts *o, long size, int nbusy)
{
	double ta[MAX_CYCLES], td[MAX_CYCLES];
	uint64_t sa = 0, sd = 0, ba = 0, bd = 0, xa = 0, xd = 0;
	const char *pat = size == 1000 ? "fbm_00???" : "fbm_*";
	pthread_t th[MAX_BUSY];
	struct rw_ftrace_probe probe = { count_probe, NULL, NULL };
	struct sum a, d;
	bool hits_ok = true;

	if (size != 1000 && size != FB_MANY) {
		fprintf(stderr, "--sizes: 1000 or %d\n", FB_MANY);
		exit(2);
	}
	atomic_store(&busy_stop, false);
	for (int i = 0; i < nbusy; i++) {
		atomic_store(&busy_hits[i], 0);
		atomic_store(&busy_passes[i], 0);
		if (pthread_create(&th[i], NULL, busy_main,
				   (void *)(intptr_t)i))
			fail("pthread_create", 0);
	}
	busy_wait_pass(nbusy);
	for (int k = -1; k < o->cycles; k++) {
		struct rw_text_stats s0, s1, s2;
		struct rw_ftrace *t;
		uint64_t t0, t1, t2;
		unsigned long h0;
		int err;

		mark(o, k < 0 ? "warm-up" : "attach");
		rw_text_get_stats(&s0);
		t0 = bench_now_ns();
		err = rw_ftrace_attach(&pat, 1, &probe, 0, &t);
		t1 = bench_now_ns();
		rw_text_get_stats(&s1);
		mark(o, "between");
		if (err)
			fail(pat, err);
		if ((long)rw_ftrace_nfuncs(t) != size) {
			fprintf(stderr, "%s: %zu functions, not %ld\n", pat,
				rw_ftrace_nfuncs(t), size);
			exit(1);
		}
		/* Every busy thread goes through the traced set at least
		 * once while it is attached. */
		h0 = hits_total(nbusy);
		busy_wait_pass(nbusy);
		if (nbusy && hits_total(nbusy) == h0)
			hits_ok = false;
		mark(o, k < 0 ? "warm-up" : "detach");
		t2 = bench_now_ns();
		err = rw_ftrace_detach(t);
		t2 = bench_now_ns() - t2;
		rw_text_get_stats(&s2);
		mark(o, "between");
		if (err)
			fail("detach", err);
		if (k < 0)
			continue; /* warm-up: membarrier registration */
		ta[k] = (double)(t1 - t0) / 1e6;
		td[k] = (double)t2 / 1e6;
		sa += s1.syncs - s0.syncs;
		sd += s2.syncs - s1.syncs;
		ba += s1.batches - s0.batches;
		bd += s2.batches - s1.batches;
		xa += s1.traps_emulated + s1.traps_replayed -
		      s0.traps_emulated - s0.traps_replayed;
		xd += s2.traps_emulated + s2.traps_replayed -
		      s1.traps_emulated - s1.traps_replayed;
	}
	atomic_store(&busy_stop, true);
	for (int i = 0; i < nbusy; i++)
		pthread_join(th[i], NULL);
	a = summarise(ta, o->cycles);
	d = summarise(td, o->cycles);
	printf("  %6ld %5d %9.2f [%7.2f, %7.2f] %9.2f [%7.2f, %7.2f] "
	       "%9.1f %5.1f %9.1f %5.1f %8.1f %6.1f%s\n",
	       size, nbusy, a.med, a.min, a.max, d.med, d.min, d.max,
	       (double)ba / o->cycles, (double)sa / o->cycles,
	       (double)bd / o->cycles, (double)sd / o->cycles,
	       (double)xa / o->cycles, (double)xd / o->cycles,
	       hits_ok ? "" : "  (a busy thread saw no hit!)");
	if (!hits_ok)
		exit(1);
}

static void bench_attach(const struct opts *o)
{
	struct rw_text_stats s;

	printf("\nattach and detach: %d cycles per row (after one untimed); "
	       "busy threads call every function of\n"
	       "librwbench_ftrace_many.so in turn; ms median [min, max]; "
	       "batches, syncs (membarrier SYNC_CORE)\nand int3 hits "
	       "(emulated or replayed) per attach and per detach, from "
	       "rw_text_get_stats()\n",
	       o->cycles);
	printf("  %6s %5s %27s %27s %15s %15s %15s\n", "", "", "attach ms",
	       "detach ms", "attach", "detach", "int3 hits");
	printf("  %6s %5s %27s %27s %15s %15s %15s\n", "funcs", "busy",
	       "median [min, max]", "median [min, max]", "batches syncs",
	       "batches syncs", "attach detach");
	for (int i = 0; i < o->nsizes; i++) {
		attach_row(o, o->sizes[i], 0);
		attach_row(o, o->sizes[i], o->busy);
	}
	rw_text_get_stats(&s);
	printf("text stats of the whole run: %llu batches, %llu syncs, %llu "
	       "sync failures\n",
	       (unsigned long long)s.batches, (unsigned long long)s.syncs,
	       (unsigned long long)s.sync_failures);
}

/* --- Callgrind --------------------------------------------------------------- */

static int callgrind_mode(const struct opts *o)
{
	bool want[V_COUNT] = { false };
	enum variant v = V_COUNT;
	struct setup st;
	char buf[32];
	long sum;

	for (int i = 0; i < V_COUNT; i++)
		if (!strcmp(variant_name[i], o->callgrind))
			v = (enum variant)i;
	if (v == V_COUNT) {
		fprintf(stderr, "unknown variant %s (--list)\n", o->callgrind);
		return 2;
	}
	want[v] = true;
	want_sum = expected_sum(o->iters);
	setup(&st, o->rewire, want);
	if (!st.have[v]) {
		printf("entry: %s (not set up)\n",
		       entry_bytes((const void *)variant_fn[v], buf,
				   sizeof(buf)));
		teardown(&st);
		return 0;
	}
	sum = variant_loop[v](variant_fn[v], o->iters);
	printf("entry: %s\n",
	       entry_bytes((const void *)variant_fn[v], buf, sizeof(buf)));
	teardown(&st);
	if (sum != want_sum) {
		fprintf(stderr, "%s: wrong sum\n", o->callgrind);
		return 1;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: rw-bench-ftrace [--quick] [--rounds R] [--iters N] "
		"[--cycles C]\n"
		"                       [--only calls|attach] [--sizes N,...] "
		"[--busy T] [--rewire PATH]\n"
		"                       [--markers]\n"
		"       rw-bench-ftrace --callgrind VARIANT [--iters N]\n"
		"       rw-bench-ftrace --list\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o = { .rounds = 21,
			  .iters = 200000,
			  .cycles = 5,
			  .busy = 8,
			  .rewire = FB_REWIRE_CLI,
			  .sizes = { 1000, FB_MANY },
			  .nsizes = 2,
			  .markers = -1 };
	bool iters_set = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--quick")) {
			o.rounds = 5;
			o.iters = 100000;
			o.cycles = 3;
		} else if (!strcmp(a, "--rounds") && v) {
			o.rounds = atoi(v), i++;
		} else if (!strcmp(a, "--iters") && v) {
			o.iters = atol(v), i++;
			iters_set = true;
		} else if (!strcmp(a, "--cycles") && v) {
			o.cycles = atoi(v), i++;
		} else if (!strcmp(a, "--busy") && v) {
			o.busy = atoi(v), i++;
		} else if (!strcmp(a, "--only") && v) {
			o.only = v, i++;
		} else if (!strcmp(a, "--markers")) {
			o.markers = open("/dev/null", O_WRONLY | O_CLOEXEC);
		} else if (!strcmp(a, "--rewire") && v) {
			o.rewire = v, i++;
		} else if (!strcmp(a, "--sizes") && v) {
			char *s = strdup(v), *save = NULL;

			o.nsizes = 0;
			for (char *p = strtok_r(s, ",", &save);
			     p && o.nsizes < 4; p = strtok_r(NULL, ",", &save))
				o.sizes[o.nsizes++] = atol(p);
			free(s);
			i++;
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
	if (o.callgrind && !iters_set)
		o.iters = 200000;
	if (o.rounds < 1 || o.rounds > MAX_ROUNDS || o.iters < 1 ||
	    o.cycles < 1 || o.cycles >= MAX_CYCLES || o.busy < 0 ||
	    o.busy > MAX_BUSY || o.nsizes < 1)
		usage();
	if (o.callgrind)
		return callgrind_mode(&o);

	printf("rw-bench-ftrace: rewire %s\n", rw_version());
	bench_print_loadavg("at start");
	if (!o.only || !strcmp(o.only, "calls"))
		bench_calls(&o);
	if (!o.only || !strcmp(o.only, "attach"))
		bench_attach(&o);
	bench_print_loadavg("at end");
	return 0;
}
