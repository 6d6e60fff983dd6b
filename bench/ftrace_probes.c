/* SPDX-License-Identifier: MIT */
/*
 * The probes of rw-bench-ftrace (see ftrace_bench.h), in their own
 * translation unit. The "rec" probes all do the same work as
 * bench/tracepoint_probes.c's ring probe: a timestamp (rdtsc) and three
 * 8-byte values into the next 32-byte record of the calling thread's
 * buffer (initial-exec TLS), overwriting the oldest.
 */
#include "ftrace_bench.h"

#include <time.h>

static __thread struct {
	unsigned long head;
	struct fb_rec rec[FB_RING_RECS];
} ring __attribute__((aligned(64), tls_model("initial-exec")));

static inline uint64_t stamp(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

static inline void put(uint64_t fn, uint64_t caller, uint64_t extra)
{
	struct fb_rec *r = &ring.rec[ring.head++ & (FB_RING_RECS - 1)];

	r->tsc = stamp();
	r->fn = fn;
	r->caller = caller;
	r->extra = extra;
}

unsigned long fb_rec_count(void)
{
	return ring.head;
}

__attribute__((noinline)) void
fb_entry_nop_probe(void *data, const struct rw_ftrace_func *f, uintptr_t caller,
		   unsigned depth)
{
	(void)data;
	(void)f;
	(void)caller;
	(void)depth;
}

__attribute__((noinline)) void
fb_entry_rec_probe(void *data, const struct rw_ftrace_func *f, uintptr_t caller,
		   unsigned depth)
{
	(void)data;
	put(f->addr, caller, depth);
}

__attribute__((noinline)) void fb_ret_nop_probe(void *data,
						const struct rw_ftrace_func *f,
						uintptr_t caller, uint64_t ns,
						unsigned depth)
{
	(void)data;
	(void)f;
	(void)caller;
	(void)ns;
	(void)depth;
}

__attribute__((noinline)) void fb_ret_rec_probe(void *data,
						const struct rw_ftrace_func *f,
						uintptr_t caller, uint64_t ns,
						unsigned depth)
{
	(void)data;
	(void)depth;
	put(f->addr, caller, ns);
}

__attribute__((noinline)) void fb_tp_nop_probe(void *data, unsigned long fn,
					       unsigned long caller)
{
	(void)data;
	(void)fn;
	(void)caller;
}

__attribute__((noinline)) void fb_tp_rec_probe(void *data, unsigned long fn,
					       unsigned long caller)
{
	put(fn, caller, (uint64_t)(uintptr_t)data);
}
