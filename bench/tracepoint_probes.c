/* SPDX-License-Identifier: MIT */
/*
 * The probes of rw-bench-tp, in their own translation unit so that the
 * "direct" loops of tp_loops.c make a real call to them, as the tracepoint
 * does, and cannot inline them or know what they do.
 */
#include "tp_bench.h"

struct tpb_counter tpb_ctr[3];
struct tpb_counter tpb_ring_id[3];

/* The calling thread's events; head counts every event ever written. */
static __thread struct {
	unsigned long head;
	struct tpb_event ev[TPB_RING_SIZE];
} ring __attribute__((aligned(64)));

__attribute__((noinline)) void tpb_probe_count(void *data, long a, long b)
{
	struct tpb_counter *c = data;

	(void)a;
	(void)b;
	c->n++;
}

/* The cheap counter: rdtsc, or CNTVCT_EL0 on aarch64 (what rewire trace's
 * ring clock reads on each). */
static inline unsigned long long stamp(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
	unsigned long long t;

	__asm__ volatile("mrs %0, cntvct_el0" : "=r"(t));
	return t;
#else
	return 0;
#endif
}

__attribute__((noinline)) void tpb_probe_ring(void *data, long a, long b)
{
	struct tpb_event *e = &ring.ev[ring.head++ & (TPB_RING_SIZE - 1)];

	e->tsc = stamp();
	e->a = a;
	e->b = b;
	e->data = data;
}

unsigned long tpb_ring_head(void)
{
	return ring.head;
}

__attribute__((noinline)) void tpb_probe_hits(void *data, long a, long b)
{
	struct tpb_counter *c = data;

	(void)a;
	(void)b;
	__atomic_fetch_add(&c->n, 1, __ATOMIC_RELAXED);
}
