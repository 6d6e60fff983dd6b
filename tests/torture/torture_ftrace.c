/* SPDX-License-Identifier: MIT */
/*
 * Torture: function tracing attached, changed and detached thousands of
 * times while threads call the traced functions (rewire/ftrace.h, issue
 * 13).
 *
 * The traced functions are libftt.so's (ftrace_torture/ftt.h), -O2 code
 * built with Debian's flags: a call tree with a sibling call and a
 * recursion of varying depth. NWORKERS threads call ftt_outer(x, d) in a
 * loop, d from 0 to 11, each call logged by the probe in the thread's own
 * log; random pauses (delay injection) in the workers and the main thread.
 *
 * The main thread runs cycles. Each attaches a new generation: one of
 * NSETS pattern sets (globs, exclusions, GLOB@OBJECT), entry-only or graph,
 * with a probe context of its own that tags its events with the
 * generation. The previous generation is detached before the attach or,
 * one cycle in three, after it (two sets attached at once, the same
 * functions traced by both). One cycle in eight leaves nothing attached
 * for a while, and checks that libftt.so's code holds exactly its
 * original bytes again. A signal storm makes the workers run traced
 * calls in signal handlers at random points: on the thread's stack
 * (workers 0 and 2, unless the runtime gave them an alternate stack, as
 * ASan does), on an alternate stack below it (1) and above it (3); their
 * results are checked, not their events.
 *
 * The main thread publishes one word: a sequence number, and "stable,
 * generation G only" or "stable, nothing attached" (published after the
 * attach and the detach returned) or "changing". It raises detach_begun
 * to G before it detaches generation G (in increasing order). A worker
 * reads the word before and after each call, and detach_begun after.
 *
 * Oracle, per call of each worker (any violation fails the test):
 * - the result is right (a reference computation, untraced);
 * - the events of each generation, in the thread's order, are a
 *   subsequence of the calls the thread made (entries only in entry-only
 *   mode, entries and returns in graph mode), restricted to the set's
 *   functions: no event of a function outside the set, none out of order,
 *   none invented;
 * - graph mode: every return matches the innermost open entry of its
 *   generation, of the same function and with the same depth; an entry
 *   without its return is allowed only if that generation's detach had
 *   begun by the time the call returned;
 * - if the word did not change across the call (a stable window): with G
 *   attached, the events are exactly the calls restricted to G's set (in
 *   graph mode with their returns and each depth the nesting among the
 *   traced calls); with nothing attached, no event at all.
 * At the end, a count phase: one set attached, every worker makes a known
 * number of calls, and the probe's per-function counters of entries and
 * returns must equal the calls made.
 * It fails too if too few cycles or stable windows were seen (the oracle
 * would not have been exercised).
 *
 * Short run: 12 s (longer, up to 60 s, until 200 cycles are done on a
 * loaded machine), at most 2,000 cycles; REWIRE_TORTURE_LONG=1: 300 s,
 * 50,000 cycles. REWIRE_TORTURE_FTRACE_MODE=entry or graph: every
 * generation in that mode (default: both, one in three entry-only);
 * REWIRE_TORTURE_FTRACE_EXCLUDE=NAME: no set traces NAME.
 */
#include <rewire/config.h>

#include "check.h"

/* Cycles a run must make, however slow the machine. */
#define MIN_CYCLES 200

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("function tracing needs a backend that patches code (x86_64, "
	     "aarch64)");
}
#else

/* Graph mode on both backends that patch code. */
#define GRAPH_OK 1
#if defined(RW_BACKEND_AARCH64)
#define EXTRA_S 168 /* the suite runs under emulation: doc/AARCH64.md */
#else
#define EXTRA_S 48
#endif

#include "ft_test.h"
#include "ftt.h"

#include <fnmatch.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#define NWORKERS 4
#define MAXD 11
#define RING 65536
#define NCTX 8

enum { F_OUTER, F_MID, F_LEAF_A, F_LEAF_B, F_TAIL, F_REC, NFN };

static const char *const fn_names[NFN] = {
	"ftt_outer",  "ftt_mid",  "ftt_leaf_a",
	"ftt_leaf_b", "ftt_tail", "ftt_rec",
};

struct fset {
	const char *pats[4];
	size_t n;
	unsigned mask; /* 1 << F_* */
};

#define M(f) (1u << (f))
#define ALL (M(NFN) - 1)

static struct fset sets[] = {
	{ { "ftt_*" }, 1, ALL },
	{ { "ftt_leaf*", "ftt_rec" }, 2, M(F_LEAF_A) | M(F_LEAF_B) | M(F_REC) },
	{ { "ftt_*", "!ftt_rec" }, 2, ALL & ~M(F_REC) },
	{ { "ftt_outer", "ftt_mid", "ftt_tail@*libftt.so" },
	  3,
	  M(F_OUTER) | M(F_MID) | M(F_TAIL) },
	{ { "ftt_rec@libftt.so" }, 1, M(F_REC) },
	{ { "!ftt_[lo]*", "ftt_?i?" }, 2, M(F_MID) },
	{ { "ftt_t*", "ftt_leaf_b", "ftt_r*" },
	  3,
	  M(F_TAIL) | M(F_LEAF_B) | M(F_REC) },
};
#define NSETS (sizeof(sets) / sizeof(sets[0]))

static struct ft_table tab;

/* What the main thread did with each generation (by gen % RING). */
struct geninfo {
	uint32_t gen;
	uint8_t graph;
	uint8_t mask;
};
static struct geninfo gi[RING];

/* The main thread's word: seq << 32 | STABLE | NOTHING | gen. */
#define ST_STABLE (1ull << 31)
#define ST_NOTHING (1ull << 30)
#define ST_GEN(s) ((uint32_t)((s)&0x3fffffffu))
static _Atomic uint64_t state;
static _Atomic uint32_t detach_begun;
static _Atomic bool stop;

struct worker {
	long id;
	pthread_t th;
	struct ft_log log;
	uint64_t rng;
	unsigned long calls, exact, exact_empty, partial;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The reference: what ftt_outer(x, d) returns. */
static int ref_rec(int n)
{
	int r = 1;

	for (int i = 1; i <= n; i++)
		r = (r ^ (r >> 3)) + i;
	return r;
}

static int ref_outer(int x, int d)
{
	char buf[32];
	int a = x * 3 + 1;
	int b;

	snprintf(buf, sizeof(buf), "%d", a + 1);
	b = (int)strlen(buf) + a + 1;
	return (a ^ b ^ ref_rec(d)) + 1;
}

/* The calls of ftt_outer(x, d), in order: (function, kind). */
struct call_ev {
	uint8_t fn, ret;
};

static size_t calls_of(int d, struct call_ev *out)
{
	size_t n = 0;

#define EV(f, r) (out[n].fn = (f), out[n].ret = (r), n++)
	EV(F_OUTER, 0);
	EV(F_MID, 0);
	EV(F_LEAF_A, 0);
	EV(F_LEAF_A, 1);
	EV(F_TAIL, 0);
	EV(F_LEAF_B, 0);
	/* The sibling call: leaf_b returns through the return trampoline
	 * that tail's entry put in place, then tail's return is traced. */
	EV(F_LEAF_B, 1);
	EV(F_TAIL, 1);
	for (int i = 0; i <= d; i++)
		EV(F_REC, 0);
	for (int i = 0; i <= d; i++)
		EV(F_REC, 1);
	EV(F_MID, 1);
	EV(F_OUTER, 1);
#undef EV
	return n;
}

/* @all restricted to @mask (and to entries without @graph), with each
 * event's depth: the traced calls open around it. */
static size_t restrict_to(const struct call_ev *all, size_t n, unsigned mask,
			  bool graph, struct ft_ev *out)
{
	size_t k = 0;
	unsigned depth = 0;

	for (size_t i = 0; i < n; i++) {
		if (!(mask & M(all[i].fn)) || (all[i].ret && !graph))
			continue;
		memset(&out[k], 0, sizeof(out[k]));
		out[k].fn = all[i].fn;
		out[k].ret = all[i].ret;
		if (all[i].ret)
			depth--;
		out[k].depth = graph ? depth : 0;
		if (!all[i].ret && graph)
			depth++;
		k++;
	}
	return k;
}

static void fail_call(const struct worker *w, int x, int d, const char *why,
		      uint32_t gen)
{
	fprintf(stderr,
		"worker %ld, call %lu (ftt_outer(%d, %d)), generation %u "
		"(set mask 0x%x, %s): %s\n",
		w->id, w->calls, x, d, gen, gi[gen % RING].mask,
		gi[gen % RING].graph ? "graph" : "entry", why);
	fprintf(stderr, "  events:\n");
	ft_log_print(&w->log, &tab);
	exit(1);
}

static void check_call(struct worker *w, int x, int d, uint64_t s0, uint64_t s1,
		       uint32_t begun)
{
	struct call_ev all[2 * (MAXD + 1) + 16];
	struct ft_ev want[2 * (MAXD + 1) + 16];
	size_t nall = calls_of(d, all);
	uint32_t gens[8];
	int ngens = 0;
	const struct ft_log *l = &w->log;

	if (l->lost)
		fail_call(w, x, d, "the log overflowed", 0);
	for (size_t i = 0; i < l->n; i++) {
		int k;

		if (l->ev[i].fn == FT_FOREIGN)
			fail_call(w, x, d, "a function that is not libftt's",
				  l->ev[i].gen);
		for (k = 0; k < ngens; k++)
			if (gens[k] == l->ev[i].gen)
				break;
		if (k == ngens) {
			if (ngens == 8)
				fail_call(w, x, d, "more than 8 generations",
					  l->ev[i].gen);
			gens[ngens++] = l->ev[i].gen;
		}
	}

	for (int k = 0; k < ngens; k++) {
		uint32_t g = gens[k];
		const struct geninfo *info = &gi[g % RING];
		size_t nwant, j = 0;
		struct ft_ev *open[2 * (MAXD + 1) + 16];
		int nopen = 0;

		if (__atomic_load_n(&info->gen, __ATOMIC_ACQUIRE) != g)
			fail_call(w, x, d, "an unknown generation", g);
		nwant = restrict_to(all, nall, info->mask, info->graph, want);
		for (size_t i = 0; i < l->n; i++) {
			struct ft_ev *e = &l->ev[i];

			if (e->gen != g)
				continue;
			/* Subsequence of the calls, greedily. */
			while (j < nwant &&
			       (want[j].fn != e->fn || want[j].ret != e->ret))
				j++;
			if (j == nwant)
				fail_call(w, x, d,
					  "an event out of order, of a "
					  "function outside the set, or "
					  "not called",
					  g);
			j++;
			if (!info->graph)
				continue;
			if (!e->ret) {
				open[nopen++] = e;
				continue;
			}
			if (!nopen || open[nopen - 1]->fn != e->fn)
				fail_call(w, x, d,
					  "a return that does not match the "
					  "innermost open entry",
					  g);
			if (open[nopen - 1]->depth != e->depth)
				fail_call(w, x, d,
					  "a return whose depth is not its "
					  "entry's",
					  g);
			nopen--;
		}
		if (nopen && begun < g)
			fail_call(w, x, d,
				  "an entry without its return, although the "
				  "set was not being detached",
				  g);
	}

	if (s0 != s1 || !(s0 & ST_STABLE)) {
		w->partial++;
		return;
	}
	if (s0 & ST_NOTHING) {
		if (l->n)
			fail_call(w, x, d, "events with nothing attached", 0);
		w->exact_empty++;
		return;
	}
	uint32_t g = ST_GEN(s0);
	const struct geninfo *info = &gi[g % RING];
	size_t nwant = restrict_to(all, nall, info->mask, info->graph, want);

	if (l->n != nwant)
		fail_call(w, x, d,
			  "stable window: not exactly the calls made (count)",
			  g);
	for (size_t i = 0; i < nwant; i++)
		if (l->ev[i].gen != g || l->ev[i].fn != want[i].fn ||
		    l->ev[i].ret != want[i].ret ||
		    (info->graph && l->ev[i].depth != want[i].depth))
			fail_call(w, x, d,
				  "stable window: not exactly the calls made",
				  g);
	w->exact++;
}

/*
 * Signal storm: a thread sends SIGUSR1 to random workers; the handler
 * calls ftt_mid() (traced: entry, sibling call, recursion) on the
 * worker's stack or, for odd workers, on an alternate signal stack, in the
 * middle of whatever the worker was doing (its traced calls, the probe,
 * the trampolines). Its events are not logged (it hides the worker's log
 * while it runs); its result must be right.
 */
static int storm_x = 4242, storm_want;
static _Atomic unsigned long storm_calls;

static void on_storm(int sig)
{
	struct ft_log *l = ft_cur;
	int saved = errno;

	(void)sig;
	ft_cur = NULL;
	if (ftt_mid(storm_x, 3) != storm_want) {
		static const char msg[] = "signal handler: wrong ftt_mid()\n";

		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(3);
		_exit(1);
	}
	ft_cur = l;
	atomic_fetch_add_explicit(&storm_calls, 1, memory_order_relaxed);
	errno = saved;
}

static void *storm_main(void *arg)
{
	struct worker *w = (struct worker *)arg;
	uint64_t rng = 0xdeadbeefcafef00dull;

	while (!atomic_load(&stop)) {
		pthread_kill(w[rnd(&rng) % NWORKERS].th, SIGUSR1);
		usleep((useconds_t)(20 + rnd(&rng) % 200));
	}
	return NULL;
}

static void *worker_main(void *arg)
{
	struct worker *w = (struct worker *)arg;
	stack_t ss = { 0 };

	bool mapped = false;

	ss.ss_size = 64 * 1024;
	if (w->id % 4 == 1) {
		/* Below the thread's stack (the heap). */
		ss.ss_sp = malloc(ss.ss_size);
		CHECK(ss.ss_sp);
	} else if (w->id % 4 == 3) {
		/* Above it: stack addresses compare the other way. */
		uintptr_t hint = ((uintptr_t)&ss + (1ull << 30)) & ~0xfffull;

		ss.ss_sp =
			mmap((void *)hint, ss.ss_size, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			     -1, 0);
		if (ss.ss_sp == MAP_FAILED)
			ss.ss_sp = mmap(NULL, ss.ss_size,
					PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(ss.ss_sp != MAP_FAILED);
		mapped = true;
	}
	if (ss.ss_sp)
		CHECK_OK(sigaltstack(&ss, NULL));
	ft_cur = &w->log;
	while (!atomic_load(&stop)) {
		int x = (int)(rnd(&w->rng) % 100000);
		int d = (int)(rnd(&w->rng) % (MAXD + 1));
		uint64_t s0, s1;
		uint32_t begun;
		int r;

		ft_log_reset(&w->log);
		s0 = atomic_load(&state);
		r = ftt_outer(x, d);
		s1 = atomic_load(&state);
		begun = atomic_load(&detach_begun);
		if (r != ref_outer(x, d)) {
			fprintf(stderr,
				"worker %ld: ftt_outer(%d, %d) = %d, not %d\n",
				w->id, x, d, r, ref_outer(x, d));
			exit(1);
		}
		check_call(w, x, d, s0, s1, begun);
		w->calls++;
		if (rnd(&w->rng) % 64 == 0) {
			if (rnd(&w->rng) % 2)
				sched_yield();
			else
				usleep((useconds_t)(rnd(&w->rng) % 50));
		}
	}
	if (ss.ss_sp) {
		sigset_t set;

		/* No handler may run on the stack once it is freed. */
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		ss.ss_flags = SS_DISABLE;
		CHECK_OK(sigaltstack(&ss, NULL));
		if (mapped)
			munmap(ss.ss_sp, ss.ss_size);
		else
			free(ss.ss_sp);
	}
	ft_cur = NULL;
	return NULL;
}

static pthread_t storm;

static void start_workers(struct worker *w)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_storm;
	sa.sa_flags = SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
	storm_want = ref_outer(storm_x, 3) - 1;
	atomic_store(&stop, false);
	for (long i = 0; i < NWORKERS; i++) {
		w[i].id = i;
		w[i].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
		w[i].calls = w[i].exact = w[i].exact_empty = w[i].partial = 0;
		ft_log_init(&w[i].log, 512);
		CHECK_OK(pthread_create(&w[i].th, NULL, worker_main, &w[i]));
	}
	CHECK_OK(pthread_create(&storm, NULL, storm_main, w));
}

static void stop_workers(struct worker *w)
{
	atomic_store(&stop, true);
	CHECK_OK(pthread_join(storm, NULL));
	for (int i = 0; i < NWORKERS; i++) {
		CHECK_OK(pthread_join(w[i].th, NULL));
		ft_log_free(&w[i].log);
	}
}

static uint64_t seq;

static void publish(uint64_t flags, uint32_t gen)
{
	seq++;
	atomic_store(&state, seq << 32 | flags | gen);
}

static void detach_gen(struct rw_ftrace *t, uint32_t gen)
{
	atomic_store(&detach_begun, gen);
	ft_detach(t);
}

/* The count phase: one set attached (graph mode where there is one),
 * each worker makes
 * exactly @calls calls, then the counters are compared to them. */
struct counted {
	pthread_t th;
	long calls;
	int d;
};

static void *count_main(void *arg)
{
	struct counted *c = (struct counted *)arg;

	for (long i = 0; i < c->calls; i++)
		CHECK_EQ(ftt_outer((int)i, c->d), ref_outer((int)i, c->d));
	return NULL;
}

static void count_phase(void)
{
	static struct ft_ctx ctx;
	const struct fset *s = &sets[0]; /* "ftt_*" */
	struct counted c[NWORKERS];
	unsigned long want[NFN] = { 0 };
	struct rw_ftrace *t;
	struct rw_ftrace_stats st;

	ctx.tab = &tab;
	ctx.gen = 0;
	t = ft_attach(s->pats, s->n, &ctx, GRAPH_OK);
	CHECK_EQ(rw_ftrace_nfuncs(t), __builtin_popcount(s->mask));
	for (int i = 0; i < NWORKERS; i++) {
		c[i].calls = rw_test_scale(20000, 200000);
		c[i].d = i * 3;
		CHECK_OK(pthread_create(&c[i].th, NULL, count_main, &c[i]));
		want[F_OUTER] += (unsigned long)c[i].calls;
		want[F_REC] += (unsigned long)(c[i].calls * (c[i].d + 1));
	}
	want[F_MID] = want[F_LEAF_A] = want[F_LEAF_B] = want[F_TAIL] =
		want[F_OUTER];
	for (int i = 0; i < NWORKERS; i++)
		CHECK_OK(pthread_join(c[i].th, NULL));
	rw_ftrace_get_stats(t, &st);
	ft_detach(t);
	for (int f = 0; f < NFN; f++) {
		if (!(s->mask & M(f)))
			want[f] = 0;
		if (ctx.entries[f] != want[f] ||
		    ctx.returns[f] != (GRAPH_OK ? want[f] : 0)) {
			fprintf(stderr,
				"count phase: %s: %lu entries, %lu returns; "
				"%lu calls made\n",
				fn_names[f], ctx.entries[f], ctx.returns[f],
				want[f]);
			exit(1);
		}
	}
	CHECK_EQ(ctx.foreign, 0);
	CHECK_EQ(st.recursion, 0);
	CHECK_EQ(st.shadow_full, 0);
}

/* REWIRE_TORTURE_FTRACE_EXCLUDE=NAME adds "!NAME" to every set (to
 * torture the rest while a bug in one function's case is open, e.g.
 * ftt_tail: sibling calls). */
static void exclude_from_sets(const char *name)
{
	static char pat[128];

	if (!name || !*name)
		return;
	snprintf(pat, sizeof(pat), "!%s", name);
	for (size_t i = 0; i < NSETS; i++) {
		sets[i].pats[sets[i].n++] = pat;
		for (int f = 0; f < NFN; f++)
			if (!fnmatch(name, fn_names[f], 0))
				sets[i].mask &= ~M(f);
	}
	fprintf(stderr, "every set excludes %s\n", name);
}

int main(void)
{
	static struct ft_ctx ctxs[NCTX];
	struct worker w[NWORKERS];
	struct rw_ftrace *prev = NULL;
	uint32_t prev_gen = 0, gen = 0;
	uint64_t rng = 0x243f6a8885a308d3ull, deadline, hard_deadline;
	long max_cycles = rw_test_scale(2000, 50000);
	unsigned long calls = 0, exact = 0, empty = 0, partial = 0;
	unsigned long overlaps = 0, offs = 0, graphs = 0;
	struct ft_snap snap;
	long cycle;
	char mode = GRAPH_OK ? 'b' : 'e';

	for (int f = 0; f < NFN; f++)
		ft_table_add(&tab, RTLD_DEFAULT, fn_names[f], NULL);
	exclude_from_sets(getenv("REWIRE_TORTURE_FTRACE_EXCLUDE"));
	if (getenv("REWIRE_TORTURE_FTRACE_MODE"))
		mode = getenv("REWIRE_TORTURE_FTRACE_MODE")[0];
	CHECK(mode == 'b' || mode == 'e' || mode == 'g');
	if (!GRAPH_OK && mode != 'e')
		SKIP("REWIRE_TORTURE_FTRACE_MODE=%c: graph mode is not on this "
		     "architecture yet",
		     mode);
	ft_text_snap(tab.fn[0].addr, &snap);
	deadline = rw_test_now_ns() +
		   (uint64_t)rw_test_scale(12, 300) * 1000000000ull;
	/* The deadline ends the run once the oracle has been exercised
	 * (MIN_CYCLES); a loaded machine (sanitizers, parallel tests) may
	 * need longer for that, up to hard_deadline (EXTRA_S later). */
	hard_deadline = deadline + EXTRA_S * 1000000000ull;
	publish(ST_STABLE | ST_NOTHING, 0);
	start_workers(w);

	for (cycle = 0;
	     cycle < max_cycles &&
	     (rw_test_now_ns() < deadline ||
	      (cycle < MIN_CYCLES && rw_test_now_ns() < hard_deadline));
	     cycle++) {
		const struct fset *s = &sets[rnd(&rng) % NSETS];
		bool graph = mode == 'g' || (mode == 'b' && rnd(&rng) % 3 != 0);
		bool overlap = prev && rnd(&rng) % 3 == 0;
		struct ft_ctx *ctx;

		if (rnd(&rng) % 8 == 0) {
			/* Nothing attached for a while. */
			publish(0, 0);
			if (prev)
				detach_gen(prev, prev_gen);
			prev = NULL;
			uintptr_t at = ft_text_diff(&snap);
			if (at) {
				fprintf(stderr,
					"cycle %ld: libftt.so's code differs "
					"at %#lx with nothing attached\n",
					cycle, (unsigned long)at);
				exit(1);
			}
			publish(ST_STABLE | ST_NOTHING, 0);
			offs++;
			usleep((useconds_t)(rnd(&rng) % 500));
			continue;
		}

		gen++;
		ctx = &ctxs[gen % NCTX];
		memset(ctx, 0, sizeof(*ctx));
		ctx->tab = &tab;
		ctx->gen = gen;
		gi[gen % RING].graph = graph;
		gi[gen % RING].mask = (uint8_t)s->mask;
		__atomic_store_n(&gi[gen % RING].gen, gen, __ATOMIC_RELEASE);

		publish(0, 0);
		if (prev && !overlap) {
			detach_gen(prev, prev_gen);
			prev = NULL;
		}
		struct rw_ftrace *t = ft_attach(s->pats, s->n, ctx, graph);
		CHECK_EQ(rw_ftrace_nfuncs(t), __builtin_popcount(s->mask));
		if (prev) {
			detach_gen(prev, prev_gen);
			overlaps++;
		}
		prev = t;
		prev_gen = gen;
		graphs += graph;
		publish(ST_STABLE, gen);
		if (rnd(&rng) % 4)
			usleep((useconds_t)(rnd(&rng) % 300));
	}
	publish(0, 0);
	if (prev)
		detach_gen(prev, prev_gen);
	stop_workers(w);
	CHECK(!ft_text_diff(&snap));

	for (int i = 0; i < NWORKERS; i++) {
		calls += w[i].calls;
		exact += w[i].exact;
		empty += w[i].exact_empty;
		partial += w[i].partial;
	}
	fprintf(stderr,
		"%ld cycles (%lu graph, %lu overlapping, %lu with nothing "
		"attached); %lu calls: %lu in stable windows with a set, "
		"%lu with nothing, %lu across a change; %lu in signal "
		"handlers\n",
		cycle, graphs, overlaps, offs, calls, exact, empty, partial,
		atomic_load(&storm_calls));
	CHECK(cycle >= MIN_CYCLES);
	CHECK(exact >= 1000);
	CHECK(partial >= 100);
	CHECK(atomic_load(&storm_calls) >= 1000);

	count_phase();
	CHECK(!ft_text_diff(&snap));
	ft_snap_free(&snap);
	return 0;
}

#endif /* RW_BACKEND_X86_64 || RW_BACKEND_AARCH64 */
