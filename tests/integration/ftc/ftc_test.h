/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the coexistence tests of function tracing (test_ftc_*).
 * Every helper is static inline (each test stays one translation unit) and
 * fails through check.h (exit 1), except in the probes.
 *
 * Probe sets (struct ftc_set): a probe set counts, per function it was
 * told about, the entries and returns its probe saw; a hit of a function
 * it was not told about, or a caller outside the object named with
 * ftc_set_callers(), is counted in .foreign / .bad_caller. Every probe also
 * counts into the calling thread's ftc_tls_entries / ftc_tls_returns, so
 * that a thread can tell exactly how many probe calls one call of its own
 * made.
 *   ftc_set_init(s, graph, name..., NULL)  the functions to count, by
 *                                     symbol (dlsym), graph: with returns
 *   ftc_set_callers(s, object)        callers must lie in that object
 *   ftc_attach(s, patterns, n)        rw_ftrace_attach or fail
 *   ftc_try_attach(s, patterns, n)    rw_ftrace_attach's error
 *   ftc_detach(s)                     rw_ftrace_detach or fail
 *   ftc_entries(s, i), ftc_returns(s, i)
 *   ftc_check_funcs(s)                the set traces exactly those functions
 *   ftc_check_clean(s, what)          no foreign hit, no caller elsewhere
 *   ftc_check_returns(s, i, nthreads) each entry had its return, but for
 *                                     calls running at a detach
 *
 * Workers (struct ftc_worker): threads that call one function in a loop
 * and check each call against what the main thread published for the
 * moment the call began and ended (ftc_publish()): the side (old or new
 * body) it must have run, and how many probe entries and returns it must
 * have caused. A call during which the main thread changed something
 * (ftc_changing() .. ftc_publish()) is only checked for its result (one
 * of the two sides). With a patch, each call is also checked against the
 * thread's own patch state, read with rw_patch_threads() before and after
 * it: the consistency model says that the body a call ran is the state the
 * thread was in, and a thread's state only moves towards the transition's
 * target, so the side must lie between the state before and after.
 *   ftc_changing(), ftc_publish(side, entries, returns)
 *   ftc_worker_start(w, fn, arg, side_of, patch)
 *   ftc_workers_settle(w, n, calls)   each made @calls checked calls more
 *   ftc_workers_check(w, n), ftc_workers_stop(w, n)   fail on an error
 */
#ifndef FTC_TEST_H
#define FTC_TEST_H

#include <rewire/ftrace.h>
#include <rewire/livepatch.h>

#include "check.h"
#include "lp_test.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <unistd.h>

#define FTC_MAXF 8

/* Graph mode (returns) on both backends that patch code; FTC_RET(n) is
 * the count of returns a graph set must see for n calls. */
#define FTC_GRAPH true
#define FTC_RET(n) (FTC_GRAPH ? (n) : 0)

/* The entry of @fn holds its original NOPs: lp_entry_is_nops() on
 * x86-64; on aarch64 two NOPs, after BTI C if there is one. */
static inline bool ftc_entry_is_nops(uintptr_t fn)
{
#if defined(RW_BACKEND_AARCH64)
	const volatile uint32_t *p = (const volatile uint32_t *)fn;

	if (p[0] == 0xd503245fu) /* BTI C */
		p++;
	return p[0] == 0xd503201fu && p[1] == 0xd503201fu;
#else
	return lp_entry_is_nops(fn);
#endif
}

/*
 * The whole entry of @fn after its landing pad (lp_entry_sled()), as the
 * tests compare it: x86-64's five bytes (NOPs, or jmp rel32 to a
 * trampoline or a patch); aarch64's two instructions (NOP; NOP, or
 * B trampoline / B patch; NOP: only the first is ever written, and the
 * comparison checks that the second is not).
 *   FTC_ENTRY_LEN              its bytes
 *   ftc_entry_read(fn, out)    copy them
 *   ftc_entry_is(fn, bytes)    they are these
 *   ftc_entry_jump(fn)         the entry is a jump (x86-64: e9 rel32;
 *                              aarch64: B, then the NOP), not the NOPs,
 *                              not a breakpoint, not half of a write
 *   ftc_entry_show(fn, what)   print them, one line
 */
#if defined(RW_BACKEND_AARCH64)
#define FTC_ENTRY_LEN 8
#else
#define FTC_ENTRY_LEN 5
#endif

static inline void ftc_entry_read(uintptr_t fn, uint8_t out[FTC_ENTRY_LEN])
{
	const volatile uint8_t *s = lp_entry_sled(fn);

	for (int i = 0; i < FTC_ENTRY_LEN; i++)
		out[i] = s[i];
}

static inline bool ftc_entry_is(uintptr_t fn,
				const uint8_t bytes[FTC_ENTRY_LEN])
{
	uint8_t now[FTC_ENTRY_LEN];

	ftc_entry_read(fn, now);
	return memcmp(now, bytes, FTC_ENTRY_LEN) == 0;
}

static inline bool ftc_entry_jump(uintptr_t fn)
{
	uintptr_t s = (uintptr_t)lp_entry_sled(fn);

#if defined(RW_BACKEND_AARCH64)
	return lp_rel32_target(s) != 0 && lp_insn_at(s + 4) == 0xd503201fu;
#else
	return *(const volatile uint8_t *)s == 0xe9;
#endif
}

static inline void ftc_entry_show(uintptr_t fn, const char *what)
{
	uint8_t b[FTC_ENTRY_LEN];

	ftc_entry_read(fn, b);
#if defined(RW_BACKEND_AARCH64)
	{
		uint32_t w[2];

		memcpy(w, b, 8);
		printf("  entry %s: %08x %08x\n", what, w[0], w[1]);
	}
#else
	printf("  entry %s: %02x %02x %02x %02x %02x\n", what, b[0], b[1], b[2],
	       b[3], b[4]);
#endif
}

static __thread long ftc_tls_entries, ftc_tls_returns;

struct ftc_set {
	struct rw_ftrace *t;
	bool graph;
	size_t n;
	uintptr_t fn[FTC_MAXF];
	const char *name[FTC_MAXF];
	_Atomic long entries[FTC_MAXF], returns[FTC_MAXF];
	_Atomic long foreign, bad_caller;
	long detaches; /* by ftc_detach() */
	/* The caller must lie in this object (a path substring), if set. */
	const char *caller_in;
	uintptr_t caller_lo, caller_hi;
};

static inline int ftc_index(const struct ftc_set *s, uintptr_t addr)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->fn[i] == addr)
			return (int)i;
	return -1;
}

static inline void ftc_count_caller(struct ftc_set *s, uintptr_t caller)
{
	if (s->caller_hi && (caller < s->caller_lo || caller >= s->caller_hi))
		atomic_fetch_add(&s->bad_caller, 1);
}

static inline void ftc_on_entry(void *data, const struct rw_ftrace_func *f,
				uintptr_t caller, unsigned depth)
{
	struct ftc_set *s = (struct ftc_set *)data;
	int i = ftc_index(s, f->addr);

	(void)depth;
	ftc_tls_entries++;
	if (i < 0) {
		atomic_fetch_add(&s->foreign, 1);
		return;
	}
	ftc_count_caller(s, caller);
	atomic_fetch_add(&s->entries[i], 1);
}

static inline void ftc_on_return(void *data, const struct rw_ftrace_func *f,
				 uintptr_t caller, uint64_t ns, unsigned depth)
{
	struct ftc_set *s = (struct ftc_set *)data;
	int i = ftc_index(s, f->addr);

	(void)ns;
	(void)depth;
	ftc_tls_returns++;
	if (i < 0) {
		atomic_fetch_add(&s->foreign, 1);
		return;
	}
	ftc_count_caller(s, caller);
	atomic_fetch_add(&s->returns[i], 1);
}

/* From the lowest to the highest address that the file whose path holds
 * @name is mapped at. */
static inline void ftc_object_range(const char *name, uintptr_t *lo,
				    uintptr_t *hi)
{
	char line[PATH_MAX + 256];
	FILE *f = fopen("/proc/self/maps", "r");

	CHECK(f != NULL);
	*lo = UINTPTR_MAX;
	*hi = 0;
	while (fgets(line, sizeof(line), f)) {
		uintptr_t l, h;
		const char *path = lp_maps_line(line, &l, &h);

		if (!path || !strstr(path, name))
			continue;
		if (l < *lo)
			*lo = l;
		if (h > *hi)
			*hi = h;
	}
	fclose(f);
	CHECK(*hi != 0);
}

/* @s counts the functions named by the NULL-terminated list of symbols
 * (looked up with dlsym(RTLD_DEFAULT)). */
static inline void ftc_set_init(struct ftc_set *s, bool graph, ...)
{
	va_list ap;
	const char *name;

	memset(s, 0, sizeof(*s));
	s->graph = graph && FTC_GRAPH;
	va_start(ap, graph);
	while ((name = va_arg(ap, const char *)) != NULL) {
		void *fn = dlsym(RTLD_DEFAULT, name);

		if (!fn) {
			fprintf(stderr, "dlsym(%s): %s\n", name, dlerror());
			exit(1);
		}
		CHECK(s->n < FTC_MAXF);
		s->name[s->n] = name;
		s->fn[s->n++] = (uintptr_t)fn;
	}
	va_end(ap);
}

/* Callers must lie in the object whose path holds @object. */
static inline void ftc_set_callers(struct ftc_set *s, const char *object)
{
	s->caller_in = object;
	ftc_object_range(object, &s->caller_lo, &s->caller_hi);
}

static inline int ftc_try_attach(struct ftc_set *s, const char *const *pats,
				 size_t n)
{
	struct rw_ftrace_probe probe = {
		ftc_on_entry,
		s->graph ? ftc_on_return : NULL,
		s,
	};

	CHECK(s->t == NULL);
	return rw_ftrace_attach(pats, n, &probe, 0, &s->t);
}

static inline void ftc_attach(struct ftc_set *s, const char *const *pats,
			      size_t n)
{
	int err = ftc_try_attach(s, pats, n);

	if (err) {
		fprintf(stderr, "rw_ftrace_attach(%s%s): %s: %s\n", pats[0],
			n > 1 ? ", ..." : "", rw_strerror(err),
			rw_ftrace_last_error());
		exit(1);
	}
	CHECK(s->t != NULL);
}

static inline void ftc_detach(struct ftc_set *s)
{
	int err = rw_ftrace_detach(s->t);

	if (err) {
		fprintf(stderr, "rw_ftrace_detach: %s: %s\n", rw_strerror(err),
			rw_ftrace_last_error());
		exit(1);
	}
	s->t = NULL;
	s->detaches++;
}

static inline long ftc_entries(struct ftc_set *s, size_t i)
{
	return atomic_load(&s->entries[i]);
}

static inline long ftc_returns(struct ftc_set *s, size_t i)
{
	return atomic_load(&s->returns[i]);
}

/* The set traces exactly the functions it counts, by address. */
static inline void ftc_check_funcs(const struct ftc_set *s)
{
	size_t n = rw_ftrace_nfuncs(s->t);

	CHECK_EQ(n, s->n);
	for (size_t i = 0; i < n; i++) {
		const struct rw_ftrace_func *f = rw_ftrace_func_at(s->t, i);

		CHECK(f != NULL);
		CHECK_EQ(f->status, 0);
		if (ftc_index(s, f->addr) < 0) {
			fprintf(stderr,
				"the set traces %s at %#lx, not asked\n",
				f->name, (unsigned long)f->addr);
			exit(1);
		}
	}
}

/* No probe call of @s was wrong. */
static inline void ftc_check_clean(struct ftc_set *s, const char *what)
{
	if (atomic_load(&s->foreign) || atomic_load(&s->bad_caller)) {
		fprintf(stderr,
			"%s: %ld hit(s) of functions not in the set, %ld "
			"caller(s) outside %s\n",
			what, atomic_load(&s->foreign),
			atomic_load(&s->bad_caller),
			s->caller_in ? s->caller_in : "?");
		exit(1);
	}
}

/*
 * Graph mode: every entry of function @i had its return, except those of
 * calls still running when the set was detached (no probe of a detached
 * set runs): at most one per thread of @nthreads per detach.
 */
static inline void ftc_check_returns(struct ftc_set *s, size_t i, long nthreads)
{
	long e = ftc_entries(s, i), r = ftc_returns(s, i);

	if (r > e || e - r > s->detaches * nthreads) {
		fprintf(stderr,
			"%s: %ld entries, %ld returns after %ld detaches "
			"with %ld threads calling\n",
			s->name[i], e, r, s->detaches, nthreads);
		exit(1);
	}
}

/* ---- Workers ------------------------------------------------------------ */

/* What a call that begins and ends in one published moment must see. */
struct ftc_moment {
	_Atomic int side;     /* 0 old body, 1 new body, -1 either */
	_Atomic long entries; /* probe entries per call, -1 any */
	_Atomic long returns; /* probe returns per call, -1 any */
};

/* Odd while the main thread changes something (a sequence count: a
 * worker uses the moment it read only if the count did not move). */
static _Atomic unsigned ftc_gen;
static struct ftc_moment ftc_now_m;
static _Atomic int ftc_stop;

static inline void ftc_changing(void)
{
	unsigned g = atomic_load(&ftc_gen);

	CHECK((g & 1) == 0);
	atomic_store(&ftc_gen, g + 1);
}

static inline void ftc_publish(int side, long entries, long returns)
{
	unsigned g = atomic_load(&ftc_gen);

	CHECK((g & 1) == 1);
	atomic_store(&ftc_now_m.side, side);
	atomic_store(&ftc_now_m.entries, entries);
	atomic_store(&ftc_now_m.returns, returns);
	atomic_store(&ftc_gen, g + 1);
}

struct ftc_worker {
	pthread_t th;
	_Atomic pid_t tid;
	int (*fn)(int);
	int arg;
	/* The side of result @r of fn(@arg): 0 old, 1 new, -1 neither. */
	int (*side_of)(int arg, int r);
	/* Check the thread's state in this patch, or NULL; may change. */
	struct rw_patch *_Atomic p;
	_Atomic long calls, checked, state_checked;
	_Atomic long errors;
	char first[256];
};

/* This thread's state in @p (1 patched, 0 not, -1 unknown). */
static inline int ftc_my_state(struct rw_patch *p)
{
	struct rw_patch_thread th[128];
	long n = rw_patch_threads(p, th, 128);
	pid_t me = gettid();

	for (long i = 0; i < n && i < 128; i++)
		if (th[i].tid == me)
			return th[i].patched;
	return -1;
}

static inline void ftc_worker_error(struct ftc_worker *w, const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&w->errors, 1))
		return;
	va_start(ap, fmt);
	vsnprintf(w->first, sizeof(w->first), fmt, ap);
	va_end(ap);
}

static inline void *ftc_worker_main(void *arg)
{
	struct ftc_worker *w = (struct ftc_worker *)arg;

	atomic_store(&w->tid, gettid());
	while (!atomic_load(&ftc_stop)) {
		unsigned g0 = atomic_load(&ftc_gen), g1;
		int m_side = atomic_load(&ftc_now_m.side);
		long m_entries = atomic_load(&ftc_now_m.entries);
		long m_returns = atomic_load(&ftc_now_m.returns);
		long e0 = ftc_tls_entries, r0 = ftc_tls_returns;
		struct rw_patch *p = atomic_load(&w->p);
		int s0 = p ? ftc_my_state(p) : -1, s1 = -1, r, side;

		r = w->fn(w->arg);
		if (p)
			s1 = ftc_my_state(p);
		g1 = atomic_load(&ftc_gen);
		atomic_fetch_add(&w->calls, 1);
		side = w->side_of(w->arg, r);
		if (side < 0) {
			ftc_worker_error(w,
					 "call %ld: result %d is neither "
					 "side",
					 atomic_load(&w->calls), r);
			continue;
		}
		if (s0 >= 0 && s1 >= 0 &&
		    (side < (s0 < s1 ? s0 : s1) || side > (s0 > s1 ? s0 : s1)))
			ftc_worker_error(w,
					 "call %ld ran the %s body while the "
					 "thread's patch state was %d before "
					 "and %d after it",
					 atomic_load(&w->calls),
					 side ? "new" : "old", s0, s1);
		if (s0 >= 0 && s1 >= 0)
			atomic_fetch_add(&w->state_checked, 1);
		if (g0 != g1 || (g0 & 1))
			continue;
		atomic_fetch_add(&w->checked, 1);
		if (m_side >= 0 && side != m_side)
			ftc_worker_error(w,
					 "call %ld (moment %u): the %s "
					 "body ran, expected the %s one",
					 atomic_load(&w->calls), g0,
					 side ? "new" : "old",
					 m_side ? "new" : "old");
		if (m_entries >= 0 && ftc_tls_entries - e0 != m_entries)
			ftc_worker_error(w,
					 "call %ld (moment %u): %ld probe "
					 "entries, expected %ld",
					 atomic_load(&w->calls), g0,
					 ftc_tls_entries - e0, m_entries);
		if (m_returns >= 0 && ftc_tls_returns - r0 != m_returns)
			ftc_worker_error(w,
					 "call %ld (moment %u): %ld probe "
					 "returns, expected %ld",
					 atomic_load(&w->calls), g0,
					 ftc_tls_returns - r0, m_returns);
	}
	return NULL;
}

static inline void ftc_worker_start(struct ftc_worker *w, int (*fn)(int),
				    int arg, int (*side_of)(int, int),
				    struct rw_patch *p)
{
	memset(w, 0, sizeof(*w));
	w->fn = fn;
	w->arg = arg;
	w->side_of = side_of;
	atomic_store(&w->p, p);
	CHECK_OK(pthread_create(&w->th, NULL, ftc_worker_main, w));
	CHECK(LP_WAIT_UNTIL(atomic_load(&w->tid) != 0, lp_deadline_ms(5000)));
}

/* Fail now if a worker found an error (its first one). */
static inline void ftc_workers_check(struct ftc_worker *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (atomic_load(&w[i].errors)) {
			fprintf(stderr, "worker %zu: %ld error(s), first: %s\n",
				i, atomic_load(&w[i].errors), w[i].first);
			exit(1);
		}
}

/* Wait until each of the @n workers made @calls checked calls more than
 * when it was called (in the current moment); fail if one found an
 * error. */
static inline void ftc_workers_settle(struct ftc_worker *w, size_t n,
				      long calls)
{
	long base[16];

	CHECK(n <= 16);
	for (size_t i = 0; i < n; i++)
		base[i] = atomic_load(&w[i].checked);
	for (size_t i = 0; i < n; i++)
		if (!LP_WAIT_UNTIL(atomic_load(&w[i].checked) >=
					   base[i] + calls,
				   lp_deadline_ms(10000))) {
			fprintf(stderr,
				"worker %zu made %ld checked calls in 10 s\n",
				i, atomic_load(&w[i].checked) - base[i]);
			exit(1);
		}
	ftc_workers_check(w, n);
}

/* Stop and join the workers; fail with the first error of each. */
static inline void ftc_workers_stop(struct ftc_worker *w, size_t n)
{
	long errors = 0;

	atomic_store(&ftc_stop, 1);
	for (size_t i = 0; i < n; i++)
		CHECK_OK(pthread_join(w[i].th, NULL));
	atomic_store(&ftc_stop, 0);
	for (size_t i = 0; i < n; i++) {
		printf("  worker %zu: %ld calls, %ld checked against the "
		       "moment, %ld against its patch state\n",
		       i, atomic_load(&w[i].calls), atomic_load(&w[i].checked),
		       atomic_load(&w[i].state_checked));
		if (atomic_load(&w[i].errors)) {
			fprintf(stderr, "worker %zu: %ld error(s), first: %s\n",
				i, atomic_load(&w[i].errors), w[i].first);
			errors++;
		}
	}
	CHECK_EQ(errors, 0);
}

#endif
