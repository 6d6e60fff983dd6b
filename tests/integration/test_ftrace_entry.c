/* SPDX-License-Identifier: MIT */
/*
 * Integration: entry-only function tracing (rewire/ftrace.h, issue 13
 * point 1) of functions of the program and of a dlopen'ed library.
 *
 * The program (five 1-byte NOPs at each entry) and fte_dso.so (one 5-byte
 * NOP, rewritten by rewire-entries) are built like a distribution builds
 * them, with -fcf-protection (an endbr64 before the NOPs). "fte_*"
 * selects, in both:
 *	fte_exe_a, fte_exe_b		(b calls a)
 *	fte_dso_f, fte_dso_g, fte_dso_cb	(g calls f; cb calls back)
 * The test checks that
 *   - rw_ftrace_nfuncs/func_at list exactly them, sorted by address, with
 *     their names and objects;
 *   - each call is one entry event, in call order, with the caller's
 *     return address inside the calling function; the functions' results
 *     are right; counts from 4 threads at once are exact;
 *   - a probe that calls a traced function, and a signal handler that
 *     calls traced functions while the thread is in a probe, are not
 *     recursed into: the calls run untraced and rw_ftrace_get_stats counts
 *     each in recursion (of that set: a set attached later starts at 0);
 *   - after detach, the first bytes of every traced function, and the
 *     whole code of both objects, are exactly what they were before the
 *     attach (also after a graph-mode attach, and with two sets on
 *     overlapping functions detached one after the other: the entries
 *     only the first used are restored while the second still traces
 *     its own); calls after detach are not counted;
 *   - the library unloads at dlclose once nothing traces it.
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("function tracing needs a backend that patches code (x86_64, "
	     "aarch64)");
}
#else

#include "ft_test.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

int fte_exe_a(int x);
int fte_exe_b(int x);

static void sink(int v)
{
	asm volatile("" : : "r"(v) : "memory");
}

int fte_exe_a(int x)
{
	return x * 9 - 2;
}

int fte_exe_b(int x)
{
	int r = fte_exe_a(x + 1);

	sink(r);
	return r ^ 0x77;
}

enum { A, B, F, G, CB, NFN };

static struct ft_table tab;
static struct ft_ctx ctx;
static int (*dso_f)(int), (*dso_g)(int), (*dso_cb)(int (*)(int), int);

static int ref_f(int x)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%d", x);
	return (int)strlen(buf) * 100 + x;
}

/* Saved entries: the first bytes of each traceable function. */
#define SAVE 32
struct saved {
	uintptr_t addr;
	size_t size, len;
	uint8_t bytes[SAVE];
	char name[64];
	char object[PATH_MAX];
};
static struct saved saved[NFN];
static int nsaved;

static int save_cb(void *arg, const struct rw_ftrace_func *f)
{
	(void)arg;
	if (f->status)
		return 0;
	CHECK(nsaved < NFN);
	struct saved *s = &saved[nsaved++];
	s->addr = f->addr;
	s->size = f->size;
	s->len = f->size < SAVE ? f->size : SAVE;
	memcpy(s->bytes, (const void *)f->addr, s->len);
	snprintf(s->name, sizeof(s->name), "%s", f->name);
	snprintf(s->object, sizeof(s->object), "%s", f->object);
	return 0;
}

static const struct saved *saved_of(unsigned fn)
{
	for (int i = 0; i < nsaved; i++)
		if (saved[i].addr == tab.fn[fn].addr)
			return &saved[i];
	fprintf(stderr, "%s was not listed as traceable\n", tab.fn[fn].name);
	exit(1);
}

static bool entry_is_original(unsigned fn)
{
	const struct saved *s = saved_of(fn);

	return !memcmp((const void *)s->addr, s->bytes, s->len);
}

static bool in_fn(uintptr_t pc, unsigned fn)
{
	const struct saved *s = saved_of(fn);

	return pc > s->addr && pc < s->addr + s->size;
}

/* The probe: logs and counts (ft_record), and on request calls traced
 * functions itself, directly and from a signal handler. */
static int probe_calls; /* 1: the probe calls traced functions */
static unsigned long expect_recursion;

static void on_usr1(int sig)
{
	(void)sig;
	/* Traced functions, in a signal handler that interrupted a probe. */
	CHECK_EQ(dso_f(3), ref_f(3));
	CHECK_EQ(fte_exe_a(3), 25);
}

static void probe_entry(void *data, const struct rw_ftrace_func *f,
			uintptr_t caller, unsigned depth)
{
	ft_on_entry(data, f, caller, depth);
	if (!__atomic_load_n(&probe_calls, __ATOMIC_RELAXED))
		return;
	if (f->addr == tab.fn[B].addr) {
		CHECK_EQ(fte_exe_a(1), 7);
		__atomic_add_fetch(&expect_recursion, 1, __ATOMIC_RELAXED);
	} else if (f->addr == tab.fn[G].addr) {
		raise(SIGUSR1);
		__atomic_add_fetch(&expect_recursion, 2, __ATOMIC_RELAXED);
	}
}

static void expect_ev(struct ft_log *l, unsigned fn)
{
	CHECK(l->n < l->cap);
	memset(&l->ev[l->n], 0, sizeof(l->ev[0]));
	l->ev[l->n++].fn = fn;
}

/* Entry-only: depths are not compared (they mean nothing there). */
static void check_entries(struct ft_log *got, struct ft_log *exp)
{
	for (size_t i = 0; i < got->n; i++)
		got->ev[i].depth = 0;
	if (!ft_log_same(got, exp, &tab, "entry"))
		exit(1);
}

#define NTHREADS 4
#define THREAD_CALLS 20000

static void *thread_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < THREAD_CALLS; i++) {
		CHECK_EQ(fte_exe_b(i), ((i + 1) * 9 - 2) ^ 0x77);
		CHECK_EQ(dso_g(i), ref_f(i + 1) * 2);
	}
	return NULL;
}

static void check_restored(const struct ft_snap *exe, const struct ft_snap *dso,
			   const char *what)
{
	uintptr_t at;

	for (unsigned i = 0; i < NFN; i++) {
		if (!entry_is_original(i)) {
			fprintf(stderr, "%s: %s's entry is not restored\n",
				what, tab.fn[i].name);
			exit(1);
		}
	}
	if ((at = ft_text_diff(exe)) || (at = ft_text_diff(dso))) {
		fprintf(stderr, "%s: the code differs at %#lx\n", what,
			(unsigned long)at);
		exit(1);
	}
}

int main(void)
{
	static const char *const all[] = { "fte_*" };
	struct rw_ftrace_probe probe = { probe_entry, NULL, &ctx };
	struct rw_ftrace_stats st;
	struct ft_snap snap_exe, snap_dso;
	struct ft_log log, exp;
	struct rw_ftrace *t;
	struct sigaction sa;
	char exe[PATH_MAX];
	pthread_t th[NTHREADS];
	bool failed = false;
	void *h;
	ssize_t n;

	h = dlopen(FTE_DSO, RTLD_NOW);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	ft_table_put(&tab, "fte_exe_a", (uintptr_t)fte_exe_a);
	ft_table_put(&tab, "fte_exe_b", (uintptr_t)fte_exe_b);
	ft_table_add(&tab, h, "fte_dso_f", NULL);
	ft_table_add(&tab, h, "fte_dso_g", NULL);
	ft_table_add(&tab, h, "fte_dso_cb", NULL);
	dso_f = (int (*)(int))tab.fn[F].addr;
	dso_g = (int (*)(int))tab.fn[G].addr;
	dso_cb = (int (*)(int (*)(int), int))tab.fn[CB].addr;
	ctx.tab = &tab;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	CHECK_OK(sigaction(SIGUSR1, &sa, NULL));

	CHECK_OK(rw_ftrace_list(all, 1, save_cb, NULL));
	CHECK_EQ(nsaved, NFN);
	ft_text_snap(tab.fn[A].addr, &snap_exe);
	ft_text_snap(tab.fn[F].addr, &snap_dso);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	CHECK(n > 0);
	exe[n] = '\0';

	/* --- Attach, entry only. */
	CHECK_OK(rw_ftrace_attach(all, 1, &probe, 0, &t));
	CHECK_EQ(rw_ftrace_nfuncs(t), NFN);
	for (size_t i = 0; i < NFN; i++) {
		const struct rw_ftrace_func *f = rw_ftrace_func_at(t, i);
		unsigned k = ft_table_find(&tab, f->addr);

		CHECK(k != FT_FOREIGN);
		CHECK_EQ(f->status, 0);
		CHECK(!strcmp(f->name, tab.fn[k].name));
		CHECK(f->demangled && !strcmp(f->demangled, f->name));
		if (i)
			CHECK(f->addr > rw_ftrace_func_at(t, i - 1)->addr);
		if (k == A || k == B)
			CHECK(!strcmp(f->object, exe));
		else
			CHECK(strstr(f->object, "fte_dso.so"));
		CHECK(f->size == saved_of(k)->size);
		/* Its entry now jumps. */
		CHECK(!entry_is_original(k));
	}

	/* One thread, logged: call order and callers. */
	ft_log_init(&log, 64);
	ft_log_init(&exp, 64);
	ft_cur = &log;
	CHECK_EQ(fte_exe_b(5), 52 ^ 0x77);
	CHECK_EQ(dso_g(7), ref_f(8) * 2);
	CHECK_EQ(dso_cb(fte_exe_a, 9), 80);
	ft_cur = NULL;
	expect_ev(&exp, B);
	expect_ev(&exp, A);
	expect_ev(&exp, G);
	expect_ev(&exp, F);
	expect_ev(&exp, CB);
	expect_ev(&exp, A);
	check_entries(&log, &exp);
	CHECK(in_fn(log.ev[1].caller, B));
	CHECK(in_fn(log.ev[3].caller, G));
	CHECK(in_fn(log.ev[5].caller, CB));
	for (size_t i = 0; i < log.n; i++)
		CHECK(log.ev[i].caller != 0);
	rw_ftrace_get_stats(t, &st);
	CHECK_EQ(st.recursion, 0);
	CHECK_EQ(st.shadow_full, 0);

	/* The probe calls traced functions: counted, not traced. */
	__atomic_store_n(&probe_calls, 1, __ATOMIC_SEQ_CST);
	ft_log_reset(&log);
	ft_cur = &log;
	CHECK_EQ(fte_exe_b(5), 52 ^ 0x77);
	CHECK_EQ(dso_g(7), ref_f(8) * 2);
	ft_cur = NULL;
	ft_log_reset(&exp);
	expect_ev(&exp, B);
	expect_ev(&exp, A);
	expect_ev(&exp, G);
	expect_ev(&exp, F);
	check_entries(&log, &exp);
	rw_ftrace_get_stats(t, &st);
	CHECK_EQ(st.recursion, 3);
	CHECK_EQ(expect_recursion, 3);

	/* 4 threads at once: exact counts. */
	unsigned long e0[NFN];
	for (int i = 0; i < NFN; i++)
		e0[i] = ctx.entries[i];
	for (long i = 0; i < NTHREADS; i++)
		CHECK_OK(pthread_create(&th[i], NULL, thread_main, NULL));
	for (int i = 0; i < NTHREADS; i++)
		CHECK_OK(pthread_join(th[i], NULL));
	CHECK_EQ(ctx.entries[B] - e0[B], NTHREADS * THREAD_CALLS);
	CHECK_EQ(ctx.entries[A] - e0[A], NTHREADS * THREAD_CALLS);
	CHECK_EQ(ctx.entries[G] - e0[G], NTHREADS * THREAD_CALLS);
	CHECK_EQ(ctx.entries[F] - e0[F], NTHREADS * THREAD_CALLS);
	CHECK_EQ(ctx.entries[CB] - e0[CB], 0);
	CHECK_EQ(ctx.returns[A], 0);
	CHECK_EQ(ctx.foreign, 0);
	rw_ftrace_get_stats(t, &st);
	CHECK_EQ(st.recursion, expect_recursion);
	CHECK_EQ(expect_recursion, 3 + 3 * NTHREADS * THREAD_CALLS);
	__atomic_store_n(&probe_calls, 0, __ATOMIC_SEQ_CST);

	/* --- Detach: the exact bytes, and nothing counted any more. */
	CHECK_OK(rw_ftrace_detach(t));
	check_restored(&snap_exe, &snap_dso, "entry-only detach");
	for (int i = 0; i < NFN; i++)
		e0[i] = ctx.entries[i];
	CHECK_EQ(fte_exe_b(5), 52 ^ 0x77);
	CHECK_EQ(dso_g(7), ref_f(8) * 2);
	for (int i = 0; i < NFN; i++)
		CHECK_EQ(ctx.entries[i], e0[i]);

	/* --- Graph mode on the same functions, then detached. The new
	 * set's counters start at 0 (the recursion above was the old set's). */
	t = ft_attach(all, 1, &ctx, 1);
	rw_ftrace_get_stats(t, &st);
	if (st.recursion || st.shadow_full) {
		/* Reported at the end: the rest still runs. */
		fprintf(stderr,
			"FAIL: a new set's stats: recursion %llu, shadow_full "
			"%llu (not 0)\n",
			(unsigned long long)st.recursion,
			(unsigned long long)st.shadow_full);
		failed = true;
	}
	ft_log_reset(&log);
	ft_log_reset(&exp);
	ft_cur = &log;
	CHECK_EQ(fte_exe_b(2), 25 ^ 0x77);
	CHECK_EQ(dso_cb(fte_exe_a, 4), 35);
	ft_cur = NULL;
	ft_expect(&exp, &tab, "fte_exe_b", 0, 0);
	ft_expect(&exp, &tab, "fte_exe_a", 0, 1);
	ft_expect(&exp, &tab, "fte_exe_a", 1, 1);
	ft_expect(&exp, &tab, "fte_exe_b", 1, 0);
	ft_expect(&exp, &tab, "fte_dso_cb", 0, 0);
	ft_expect(&exp, &tab, "fte_exe_a", 0, 1);
	ft_expect(&exp, &tab, "fte_exe_a", 1, 1);
	ft_expect(&exp, &tab, "fte_dso_cb", 1, 0);
	if (!ft_log_same(&log, &exp, &tab, "graph"))
		return 1;
	ft_detach(t);
	check_restored(&snap_exe, &snap_dso, "graph detach");

	/* --- Two sets on overlapping functions. */
	{
		static const char *const s1[] = { "fte_exe_*", "fte_dso_f" };
		static const char *const s2[] = { "fte_*@fte_dso.so",
						  "fte_exe_a" };
		struct ft_ctx c1, c2;
		struct rw_ftrace *t1, *t2;

		memset(&c1, 0, sizeof(c1));
		memset(&c2, 0, sizeof(c2));
		c1.tab = c2.tab = &tab;
		t1 = ft_attach(s1, 2, &c1, 0);
		t2 = ft_attach(s2, 2, &c2, 0);
		CHECK_EQ(rw_ftrace_nfuncs(t1), 3);
		CHECK_EQ(rw_ftrace_nfuncs(t2), 4);
		CHECK_EQ(fte_exe_b(1), 16 ^ 0x77);
		CHECK_EQ(dso_g(1), ref_f(2) * 2);
		CHECK_EQ(c1.entries[A], 1);
		CHECK_EQ(c1.entries[B], 1);
		CHECK_EQ(c1.entries[F], 1);
		CHECK_EQ(c1.entries[G], 0);
		CHECK_EQ(c2.entries[A], 1);
		CHECK_EQ(c2.entries[B], 0);
		CHECK_EQ(c2.entries[F], 1);
		CHECK_EQ(c2.entries[G], 1);
		ft_detach(t1);
		/* Only t1 used fte_exe_b: its bytes are back. The others
		 * still jump, for t2. */
		CHECK(entry_is_original(B));
		CHECK(!entry_is_original(A));
		CHECK(!entry_is_original(F));
		CHECK(!entry_is_original(G));
		CHECK(!entry_is_original(CB));
		CHECK_EQ(fte_exe_b(1), 16 ^ 0x77);
		CHECK_EQ(dso_g(1), ref_f(2) * 2);
		CHECK_EQ(c1.entries[A], 1);
		CHECK_EQ(c2.entries[A], 2);
		CHECK_EQ(c2.entries[F], 2);
		ft_detach(t2);
		check_restored(&snap_exe, &snap_dso, "two sets detached");
	}

	/* --- Nothing traces the library: dlclose unloads it. */
	CHECK_OK(dlclose(h));
	CHECK(dlopen(FTE_DSO, RTLD_NOW | RTLD_NOLOAD) == NULL);
	CHECK(!ft_text_diff(&snap_exe));
	ft_snap_free(&snap_exe);
	ft_snap_free(&snap_dso);
	ft_log_free(&log);
	ft_log_free(&exp);
	return failed ? 1 : 0;
}

#endif /* RW_BACKEND_X86_64 */
