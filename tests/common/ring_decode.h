/* SPDX-License-Identifier: MIT */
/*
 * A minimal decoder of the `rewire trace` rings (src/ctl/ring.h), written
 * from ring.h alone: the oracle of the producer's tests
 * (tests/unit/test_trace_writer.c, tests/torture/torture_trace_writer.c),
 * independent of the rewire command's reader. It maps a session's memfd,
 * drains a slot as the reader does (C1 to C4) or copies it as a snapshot
 * does in overwrite mode (S1 to S4), and walks the records of a linear copy,
 * checking their framing: lengths, padding, sub-buffer boundaries.
 * Include after "ctl/ring.h" and "check.h".
 */
#ifndef REWIRE_TEST_RING_DECODE_H
#define REWIRE_TEST_RING_DECODE_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct rd_map {
	struct rw_trace_shm *h;
	size_t size;
};

static inline void rd_open(struct rd_map *m, int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	CHECK(p != MAP_FAILED);
	m->h = p;
	m->size = size;
}

static inline void rd_close(struct rd_map *m)
{
	munmap(m->h, m->size);
	m->h = NULL;
}

static inline struct rw_trace_slot *rd_slot(const struct rd_map *m, uint32_t i)
{
	return (struct rw_trace_slot *)((char *)m->h + RW_TRACE_SHM_HDR) + i;
}

static inline const unsigned char *rd_ring(const struct rd_map *m, uint32_t i)
{
	return (const unsigned char *)m->h + m->h->data_offset +
	       (uint64_t)i * m->h->ring_size;
}

/* The slot of thread @tid, or -1. */
static inline int rd_slot_of(const struct rd_map *m, int32_t tid)
{
	for (uint32_t i = 0; i < m->h->nslots; i++)
		if (atomic_load(&rd_slot(m, i)->tid) == tid)
			return (int)i;
	return -1;
}

/* Called for each data record (padding is skipped): @rec is @len bytes at
 * ring position @pos. Nonzero stops the walk (and is returned). */
typedef int (*rd_fn)(void *arg, const unsigned char *rec, uint32_t len,
		     uint64_t pos);

/*
 * Walks the records of @buf, a linear copy of ring positions [@from, @from
 * + @n). Every record must be whole, 8-byte aligned, at least 16 bytes (8
 * for padding), with the argument count of its header's id, and must not
 * straddle a multiple of @subbuf. Returns 0, fn's nonzero value, or -1 on
 * a framing error (with the reason on stderr).
 */
static inline int rd_walk(const unsigned char *buf, uint64_t from, uint64_t n,
			  uint64_t subbuf, rd_fn fn, void *arg)
{
	uint64_t off = 0;

	while (off < n) {
		struct rw_trace_rec r;
		uint64_t pos = from + off;
		int e;

		if (n - off < RW_TRACE_PAD_HDR) {
			fprintf(stderr, "ring: %llu bytes left at %llu\n",
				(unsigned long long)(n - off),
				(unsigned long long)pos);
			return -1;
		}
		memset(&r, 0, sizeof(r));
		memcpy(&r, buf + off, RW_TRACE_PAD_HDR);
		if (r.len < RW_TRACE_PAD_HDR || r.len % 8 || r.len > n - off ||
		    (r.id != RW_TRACE_PAD && r.len < RW_TRACE_REC_HDR)) {
			fprintf(stderr,
				"ring: bad record at %llu: len %u id %u\n",
				(unsigned long long)pos, r.len, r.id);
			return -1;
		}
		if (pos / subbuf != (pos + r.len - 1) / subbuf) {
			fprintf(stderr,
				"ring: record at %llu (%u bytes) straddles a "
				"sub-buffer of %llu\n",
				(unsigned long long)pos, r.len,
				(unsigned long long)subbuf);
			return -1;
		}
		if (r.id != RW_TRACE_PAD) {
			e = fn(arg, buf + off, r.len, pos);
			if (e)
				return e;
		}
		off += r.len;
	}
	return 0;
}

/* A test's delay in the middle of a copy (torture: widen the window in
 * which a producer writes over what a snapshot copies). */
#ifndef RD_COPY_DELAY
#define RD_COPY_DELAY() ((void)0)
#endif

/* Copies ring positions [@from, @to) of slot @i into a new buffer. */
static inline unsigned char *rd_copy(const struct rd_map *m, uint32_t i,
				     uint64_t from, uint64_t to)
{
	const unsigned char *ring = rd_ring(m, i);
	uint64_t rs = m->h->ring_size, half = from + (to - from) / 2 / 8 * 8;
	unsigned char *buf = malloc(to - from + 1);

	CHECK(buf);
	for (uint64_t p = from; p < to;) {
		uint64_t at = p % rs, k = rs - at;

		if (k > to - p)
			k = to - p;
		if (p < half && k > half - p)
			k = half - p;
		memcpy(buf + (p - from), ring + at, k);
		p += k;
		if (p == half)
			RD_COPY_DELAY();
	}
	return buf;
}

/* C1 to C4 on slot @i from *@tail: every record written since. */
static inline int rd_consume(const struct rd_map *m, uint32_t i, uint64_t *tail,
			     rd_fn fn, void *arg)
{
	struct rw_trace_slot *s = rd_slot(m, i);
	uint64_t h = atomic_load_explicit(&s->head, memory_order_acquire);
	unsigned char *buf;
	int e;

	CHECK(h >= *tail && h - *tail <= m->h->ring_size);
	buf = rd_copy(m, i, *tail, h);
	e = rd_walk(buf, *tail, h - *tail, m->h->subbuf_size, fn, arg);
	free(buf);
	*tail = h;
	atomic_store_explicit(&s->tail, h, memory_order_release);
	return e;
}

/*
 * S1 to S4 on slot @i of an overwrite session: the records that were
 * surely not overwritten while they were copied. *@first and *@end get the
 * positions decoded (first may equal end: nothing safe).
 */
static inline int rd_snapshot(const struct rd_map *m, uint32_t i, rd_fn fn,
			      void *arg, uint64_t *first, uint64_t *end)
{
	struct rw_trace_slot *s = rd_slot(m, i);
	uint64_t rs = m->h->ring_size, sb = m->h->subbuf_size;
	uint64_t h, lo, r, start;
	unsigned char *buf;
	int e = 0;

	h = atomic_load_explicit(&s->head, memory_order_acquire); /* S1 */
	lo = h > rs ? h - rs : 0;
	buf = rd_copy(m, i, lo, h); /* S2 */
#ifdef RW_TSAN
	/* GCC's TSan refuses fences; it never sees this copy race with a
	 * producer (the tests snapshot stopped producers there). */
	r = atomic_load_explicit(&s->reserve, memory_order_acquire); /* S3 */
#else
	atomic_thread_fence(memory_order_acquire); /* S3 */
	r = atomic_load_explicit(&s->reserve, memory_order_relaxed);
#endif
	start = r > rs ? r - rs : 0; /* S4 */
	if (start < lo)
		start = lo;
	start = (start + sb - 1) / sb * sb;
	if (start < h)
		e = rd_walk(buf + (start - lo), start, h - start, sb, fn, arg);
	else
		start = h;
	free(buf);
	if (first)
		*first = start;
	if (end)
		*end = h;
	return e;
}

#endif /* REWIRE_TEST_RING_DECODE_H */
