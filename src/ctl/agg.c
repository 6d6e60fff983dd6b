/* SPDX-License-Identifier: MIT */
/*
 * Aggregates of function calls, in the traced process (agg.h).
 *
 * A hit, in the traced thread (count_entry() or latency_return()):
 *
 *   1. Find the function's index in the session's table
 *      (rw__functab_id(): one compare when the core hands the probe the
 *      set's own struct rw_ftrace_func). A hit before the table is
 *      published (the probe runs from inside rw_ftrace_attach() on) is
 *      not counted.
 *   2. Add one to its calls, and in latency mode the duration to its total
 *      and one to the duration's bucket: relaxed atomic adds (they order
 *      nothing; the reader takes each counter once).
 *
 * No lock, no allocation, no system call: the probe is async-signal-safe.
 * A probe that re-enters (a traced function called from a signal handler
 * while the thread is in the probe) is the core's business: it counts the
 * hit in rw_ftrace_stats.recursion and does not call us.
 *
 * Shared variables: the counters (atomic); tab and the mode, written
 * before ftab is published (release) and constant afterwards; ft, stats
 * and detached, the control server's.
 */
#include "internal.h"

#include "ctl/agg.h"
#include "ctl/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rewire/ftrace.h>

struct fcount {
	_Atomic uint64_t hits;
	_Atomic uint64_t total_ns;
};

struct rw__agg {
	enum rw__agg_mode mode;
	bool per_func;
	struct fcount *count;	/* nfuncs */
	_Atomic uint64_t *hist; /* RW__AGG_BUCKETS, x nfuncs if per_func */
	struct rw__functab tab;
	_Atomic(const struct rw__functab *) ftab;
	/* The server's. */
	struct rw_ftrace *ft;
	struct rw_ftrace_stats stats; /* at detach */
	bool detached;
};

static inline unsigned bucket_of(uint64_t ns)
{
	return ns ? 64u - (unsigned)__builtin_clzll(ns) : 0u;
}

/* Step 1. */
static inline size_t agg_id(struct rw__agg *a, const struct rw_ftrace_func *f)
{
	const struct rw__functab *tab =
		atomic_load_explicit(&a->ftab, memory_order_acquire);

	return tab ? rw__functab_id(tab, f) : SIZE_MAX;
}

static void count_entry(void *data, const struct rw_ftrace_func *f,
			uintptr_t caller, unsigned depth)
{
	struct rw__agg *a = data;
	size_t id = agg_id(a, f);

	(void)caller;
	(void)depth;
	if (RW_UNLIKELY(id == SIZE_MAX))
		return;
	/* Step 2. */
	atomic_fetch_add_explicit(&a->count[id].hits, 1, memory_order_relaxed);
}

static void latency_return(void *data, const struct rw_ftrace_func *f,
			   uintptr_t caller, uint64_t ns, unsigned depth)
{
	struct rw__agg *a = data;
	size_t id = agg_id(a, f);
	_Atomic uint64_t *h;

	(void)caller;
	(void)depth;
	if (RW_UNLIKELY(id == SIZE_MAX))
		return;
	/* Step 2. */
	atomic_fetch_add_explicit(&a->count[id].hits, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&a->count[id].total_ns, ns,
				  memory_order_relaxed);
	h = a->per_func ? a->hist + id * RW__AGG_BUCKETS : a->hist;
	atomic_fetch_add_explicit(&h[bucket_of(ns)], 1, memory_order_relaxed);
}

static void seterr(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

static void agg_free(struct rw__agg *a)
{
	rw__functab_free(&a->tab);
	free(a->count);
	free(a->hist);
	free(a);
}

int rw__agg_start(const char *const *patterns, size_t npatterns,
		  enum rw__agg_mode mode, bool per_func, struct rw__agg **out,
		  char *err, size_t errlen)
{
	struct rw_ftrace_probe probe = { NULL, NULL, NULL };
	struct rw__agg *a;
	size_t n, nhist;
	int e;

	if (err && errlen)
		err[0] = '\0';
	if (!out || (mode != RW__AGG_COUNT && mode != RW__AGG_LATENCY)) {
		seterr(err, errlen, "bad aggregate mode");
		return -EINVAL;
	}
	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		goto nomem;
	a->mode = mode;
	a->per_func = per_func && mode == RW__AGG_LATENCY;
	if (mode == RW__AGG_COUNT)
		probe.entry = count_entry;
	else
		probe.ret = latency_return;
	probe.data = a;
	/*
	 * The counters are sized after the attach (the set decides how many
	 * functions there are), so they are allocated while the probe may
	 * already run: it counts nothing until ftab is published, below,
	 * after them.
	 */
	e = rw_ftrace_attach(patterns, npatterns, &probe, 0, &a->ft);
	if (e) {
		seterr(err, errlen,
		       *rw_ftrace_last_error() ? rw_ftrace_last_error()
					       : rw_strerror(e));
		free(a);
		return e;
	}
	n = rw_ftrace_nfuncs(a->ft);
	nhist = a->per_func ? n : 1;
	a->count = calloc(n ? n : 1, sizeof(*a->count));
	if (mode == RW__AGG_LATENCY)
		a->hist = calloc(nhist * RW__AGG_BUCKETS, sizeof(*a->hist));
	if (!a->count || (mode == RW__AGG_LATENCY && !a->hist) ||
	    rw__functab_init(&a->tab, a->ft)) {
		e = rw_ftrace_detach(a->ft);
		if (e) {
			/* A probe may still run: keep it all. */
			rw__log("aggregate leaked: %s", rw_strerror(e));
			seterr(err, errlen, "out of memory");
			return -ENOMEM;
		}
		agg_free(a);
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	atomic_store_explicit(&a->ftab, &a->tab, memory_order_release);
	*out = a;
	return 0;
nomem:
	seterr(err, errlen, "out of memory");
	return -ENOMEM;
}

const struct rw_ftrace *rw__agg_ftrace(const struct rw__agg *a)
{
	return a && !a->detached ? a->ft : NULL;
}

size_t rw__agg_nfuncs(const struct rw__agg *a)
{
	return a ? a->tab.n : 0;
}

bool rw__agg_per_func(const struct rw__agg *a)
{
	return a && a->per_func;
}

void rw__agg_read(const struct rw__agg *a, size_t id, struct rw__agg_hist *h)
{
	const _Atomic uint64_t *src = NULL;

	memset(h, 0, sizeof(*h));
	if (!a)
		return;
	if (id == SIZE_MAX) {
		for (size_t i = 0; i < a->tab.n; i++) {
			h->hits += atomic_load_explicit(&a->count[i].hits,
							memory_order_relaxed);
			h->total_ns += atomic_load_explicit(
				&a->count[i].total_ns, memory_order_relaxed);
		}
		if (a->hist && !a->per_func)
			src = a->hist;
	} else if (id < a->tab.n) {
		h->hits = atomic_load_explicit(&a->count[id].hits,
					       memory_order_relaxed);
		h->total_ns = atomic_load_explicit(&a->count[id].total_ns,
						   memory_order_relaxed);
		if (a->hist && a->per_func)
			src = a->hist + id * RW__AGG_BUCKETS;
	}
	for (unsigned b = 0; src && b < RW__AGG_BUCKETS; b++)
		h->bucket[b] =
			atomic_load_explicit(&src[b], memory_order_relaxed);
}

void rw__agg_stats(const struct rw__agg *a, struct rw_ftrace_stats *s)
{
	memset(s, 0, sizeof(*s));
	if (!a)
		return;
	if (a->detached)
		*s = a->stats;
	else
		rw_ftrace_get_stats(a->ft, s);
}

int rw__agg_detach(struct rw__agg *a)
{
	struct rw_ftrace_stats st;
	int e;

	if (!a || a->detached)
		return 0;
	rw_ftrace_get_stats(a->ft, &st);
	e = rw_ftrace_detach(a->ft);
	if (e)
		return e;
	a->stats = st;
	a->detached = true;
	a->ft = NULL;
	return 0;
}

void rw__agg_stop(struct rw__agg *a)
{
	int e;

	if (!a)
		return;
	e = rw__agg_detach(a);
	if (e) {
		rw__log("aggregate: probe not detached (%s); kept",
			rw_strerror(e));
		return;
	}
	agg_free(a);
}
