/* SPDX-License-Identifier: MIT */
/*
 * Snapshots of overwrite rings (tools/rewire/trace_snap.c, the S1-S4 read
 * of src/ctl/ring.h), against rings written by this test's own producer
 * threads, which follow ring.h's overwrite protocol (O1, P4, P5) with
 * relaxed atomic stores of 8-byte words (the same machine code as plain
 * stores; ThreadSanitizer then checks the protocol's fences).
 *
 * Every record says what it must hold: argument 0 the writer, argument 1
 * its sequence number s, ts = 1000 s + 1, and a string of s % 61 bytes,
 * each ((s + i) * 7) & 0xff. Oracles:
 *   - concurrent: while two threads write as fast as they can into 64 KiB
 *     rings (wrapping every few hundred microseconds), every snapshot
 *     decodes only whole, correct records; per thread their numbers are
 *     consecutive (no hole, no repeat), and the last one is at least the
 *     last the thread had published before the snapshot began; the bytes
 *     given up are at most one sub-buffer plus what was written during
 *     the copy;
 *   - quiescent: a ring written N times over and left alone gives exactly
 *     its last records, from the first sub-buffer boundary after the
 *     oldest byte; a ring that never wrapped gives every record from 0;
 *   - in flight: a record announced (O1) but not published, whose bytes
 *     already overwrote the oldest sub-buffer with garbage, costs that
 *     sub-buffer and nothing else;
 *   - --last: trimming at a ts keeps exactly the records from that ts on;
 *   - damage: a slot whose reserve is behind its head, a record whose
 *     length leaves its sub-buffer, a header that is not an overwrite
 *     session's: reported, never read out of bounds.
 *
 * A copy that skips S3-S4 (decoding from the oldest sub-buffer boundary
 * of [head - ring, head)) fails the concurrent oracle within the first
 * thousand snapshots: torn records, or lengths that make no sense.
 */
#include "check.h"
#include "ctl/ring.h"
#include "trace_snap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSLOTS 4
#define RING (64u * 1024)
#define SUB (4u * 1024)

struct shm {
	uint8_t *map;
	size_t size;
};

static void shm_init(struct shm *s, uint64_t ring, uint32_t sub)
{
	struct rw_trace_shm *h;

	s->size = rw_trace_total_size(NSLOTS, ring);
	s->map = aligned_alloc(RW_TRACE_PAGE, s->size);
	CHECK(s->map);
	memset(s->map, 0, s->size);
	h = (struct rw_trace_shm *)s->map;
	memcpy(h->magic, RW_TRACE_MAGIC, sizeof(h->magic));
	h->version = RW_TRACE_VERSION;
	h->hdr_size = RW_TRACE_SHM_HDR;
	h->nslots = NSLOTS;
	h->slot_size = sizeof(struct rw_trace_slot);
	h->ring_size = ring;
	h->data_offset = rw_trace_data_offset(NSLOTS);
	h->total_size = s->size;
	h->clock = CLOCK_MONOTONIC;
	h->max_string = RW_TRACE_MAX_STRING;
	h->ntracepoints = 1;
	h->pid = 1;
	h->session = 1;
	h->flags = RW_TRACE_F_OVERWRITE;
	h->subbuf_size = sub;
}

static struct rw_trace_slot *slot_of(struct shm *s, unsigned i)
{
	return (struct rw_trace_slot *)(s->map + RW_TRACE_SHM_HDR) + i;
}

static uint8_t *ring_of(struct shm *s, unsigned i)
{
	const struct rw_trace_shm *h = (const void *)s->map;

	return s->map + h->data_offset + (uint64_t)i * h->ring_size;
}

/* --- The producer ---------------------------------------------------------- */

struct writer {
	struct shm *shm;
	unsigned slot;
	uint64_t head; /* the producer's own */
	uint64_t seq;
	_Atomic uint64_t published; /* records whose head is stored */
	_Atomic bool stop;
};

static size_t strlen_of(uint64_t seq)
{
	return (size_t)(seq % 61);
}

/* The record of @seq into @b; returns its length. */
static size_t build(uint8_t *b, unsigned writer, uint64_t seq)
{
	size_t n = strlen_of(seq), len = 16 + 3 * 8 + ((n + 7) & ~(size_t)7);
	struct rw_trace_rec rec = {
		.len = (uint32_t)len, .id = 0, .nargs = 3, .ts = seq * 1000 + 1
	};
	struct rw_trace_str str = { .len = (uint32_t)n };
	uint64_t a0 = writer;

	memset(b, 0, len);
	memcpy(b, &rec, 16);
	memcpy(b + 16, &a0, 8);
	memcpy(b + 24, &seq, 8);
	memcpy(b + 32, &str, 8);
	for (size_t i = 0; i < n; i++)
		b[40 + i] = (uint8_t)(((seq + i) * 7) & 0xff);
	return len;
}

static void put_words(struct shm *s, unsigned slot, uint64_t pos,
		      const uint8_t *src, size_t len)
{
	uint8_t *ring = ring_of(s, slot);
	uint64_t mask = ((const struct rw_trace_shm *)s->map)->ring_size - 1;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t w;

		memcpy(&w, src + i, 8);
		__atomic_store_n((uint64_t *)(ring + ((pos + i) & mask)), w,
				 __ATOMIC_RELAXED);
	}
}

/* O1, P4, P5 for one record. With @publish false, stops after P4 (a
 * thread preempted inside its probe) and writes @garbage instead of the
 * record's bytes. */
static void write_one(struct writer *w, bool publish, bool garbage)
{
	struct rw_trace_slot *sl = slot_of(w->shm, w->slot);
	uint32_t sub = ((const struct rw_trace_shm *)w->shm->map)->subbuf_size;
	uint8_t rec[RW_TRACE_MAX_RECORD];
	size_t len = build(rec, w->slot, w->seq);
	uint64_t in = w->head & (sub - 1), pad = 0;

	if (in + len > sub)
		pad = sub - in;
	/* O1. */
	atomic_store_explicit(&sl->reserve, w->head + pad + len,
			      memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	/* P4. */
	if (pad) {
		uint8_t p[8] = { 0 };
		struct rw_trace_rec ph = { .len = (uint32_t)pad,
					   .id = RW_TRACE_PAD };

		memcpy(p, &ph, 8);
		put_words(w->shm, w->slot, w->head, p, 8);
	}
	if (garbage)
		memset(rec, 0xab, len);
	put_words(w->shm, w->slot, w->head + pad, rec, len);
	if (!publish)
		return;
	/* P5. */
	w->head += pad + len;
	atomic_store_explicit(&sl->head, w->head, memory_order_release);
	w->seq++;
	atomic_store_explicit(&w->published, w->seq, memory_order_release);
}

static void writer_claim(struct writer *w, struct shm *s, unsigned slot)
{
	memset(w, 0, sizeof(*w));
	w->shm = s;
	w->slot = slot;
	atomic_store_explicit(&slot_of(s, slot)->tid, (int32_t)(1000 + slot),
			      memory_order_release);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	while (!atomic_load_explicit(&w->stop, memory_order_relaxed))
		write_one(w, true, false);
	return NULL;
}

/* --- The oracle -------------------------------------------------------------- */

struct seen {
	uint64_t first, last, n;
};

/* Decodes s's records from off: every one whole and correct, the numbers
 * consecutive. */
static void check_slot(const struct rw_trace_snap_slot *s, unsigned writer,
		       struct seen *out)
{
	size_t pos = s->off;
	bool any = false;
	uint64_t next = 0;

	memset(out, 0, sizeof(*out));
	CHECK(!s->corrupt);
	while (pos < s->len) {
		struct rw_trace_rec rec;
		uint8_t want[RW_TRACE_MAX_RECORD];
		uint64_t seq;
		uint64_t at = s->start + pos;

		CHECK(s->len - pos >= 8);
		memcpy(&rec, s->buf + pos, 8);
		if (rec.id == RW_TRACE_PAD) {
			CHECK_EQ(at + rec.len, (at | (SUB - 1)) + 1);
			pos += rec.len;
			continue;
		}
		CHECK(s->len - pos >= 40);
		memcpy(&seq, s->buf + pos + 24, 8);
		CHECK(!any || seq == next);
		CHECK_EQ(rec.len, build(want, writer, seq));
		CHECK(s->len - pos >= rec.len);
		if (memcmp(s->buf + pos, want, rec.len)) {
			fprintf(stderr, "torn record: writer %u seq %llu\n",
				writer, (unsigned long long)seq);
			CHECK(!"every record whole");
		}
		if (!any)
			out->first = seq;
		any = true;
		out->last = seq;
		out->n++;
		next = seq + 1;
		pos += rec.len;
	}
	CHECK_EQ(pos, s->len);
	CHECK_EQ(out->n, s->records);
}

static struct rw_trace_snap_slot *find(struct rw_trace_snap *sn, unsigned slot)
{
	for (size_t i = 0; i < sn->nslots; i++)
		if (sn->slots[i].index == slot)
			return &sn->slots[i];
	fprintf(stderr, "slot %u not in the snapshot\n", slot);
	exit(1);
}

/* --- Tests ------------------------------------------------------------------- */

static void test_concurrent(void)
{
	struct shm s;
	struct writer w[2];
	pthread_t th[2];
	uint64_t deadline = rw_test_now_ns() + 400000000ull;
	unsigned long snaps = 0, records = 0, lapped = 0, wrapped = 0;

	shm_init(&s, RING, SUB);
	for (unsigned i = 0; i < 2; i++) {
		writer_claim(&w[i], &s, i);
		CHECK(!pthread_create(&th[i], NULL, writer_main, &w[i]));
	}
	while (rw_test_now_ns() < deadline || snaps < 50) {
		struct rw_trace_snap sn;
		uint64_t before[2], after[2];

		for (unsigned i = 0; i < 2; i++)
			before[i] = atomic_load_explicit(&w[i].published,
							 memory_order_acquire);
		CHECK_OK(rw_trace_snap_take(s.map, s.size, &sn));
		for (unsigned i = 0; i < 2; i++)
			after[i] = atomic_load_explicit(&w[i].published,
							memory_order_acquire);
		CHECK_EQ(sn.nslots, 2);
		for (unsigned i = 0; i < 2; i++) {
			struct rw_trace_snap_slot *sl = find(&sn, i);
			struct seen seen;

			CHECK(sl);
			CHECK_EQ(sl->tid, 1000 + i);
			rw_trace_snap_trim(&sn, sl, 0);
			check_slot(sl, i, &seen);
			if (sl->lapped) {
				lapped++;
				continue;
			}
			/* Given up: the oldest sub-buffer, and what the
			 * thread wrote while we copied. */
			CHECK(sl->given_up <= SUB + (sl->reserve - sl->head));
			if (sl->head > RING)
				wrapped++;
			if (before[i]) {
				CHECK(seen.n > 0);
				CHECK(seen.last + 1 >= before[i]);
			}
			/* (The head of record after[i] may be stored, its count
			 * not yet.) */
			CHECK(seen.last <= after[i]);
			records += seen.n;
		}
		rw_trace_snap_free(&sn);
		snaps++;
	}
	for (unsigned i = 0; i < 2; i++) {
		atomic_store(&w[i].stop, true);
		pthread_join(th[i], NULL);
	}
	fprintf(stderr,
		"concurrent: %lu snapshots, %lu records checked, writers at "
		"%llu and %llu records, %lu slots lapped during a copy\n",
		snaps, records, (unsigned long long)w[0].seq,
		(unsigned long long)w[1].seq, lapped);
	CHECK(wrapped > 0);
	CHECK(records > 0);
	free(s.map);
}

static void test_quiescent(void)
{
	struct shm s;
	struct writer w, fresh;
	struct rw_trace_snap sn;
	struct rw_trace_snap_slot *sl;
	struct seen seen;
	uint64_t head, lo, start;

	shm_init(&s, RING, SUB);
	writer_claim(&w, &s, 1);
	while (w.head < 5 * RING + 1234)
		write_one(&w, true, false);
	writer_claim(&fresh, &s, 3);
	for (int i = 0; i < 20; i++)
		write_one(&fresh, true, false);

	CHECK_OK(rw_trace_snap_take(s.map, s.size, &sn));
	CHECK_EQ(sn.nslots, 2);
	sl = find(&sn, 1);
	rw_trace_snap_trim(&sn, sl, 0);
	check_slot(sl, 1, &seen);
	head = w.head;
	lo = head - RING;
	start = (lo + SUB - 1) & ~(uint64_t)(SUB - 1);
	CHECK_EQ(sl->head, head);
	CHECK_EQ(sl->start, start);
	CHECK_EQ(sl->given_up, start - lo);
	CHECK(sl->given_up < SUB);
	CHECK_EQ(seen.last, w.seq - 1);
	CHECK_EQ(sl->last_ts, (w.seq - 1) * 1000 + 1);
	CHECK_EQ(sl->first_ts, seen.first * 1000 + 1);

	/* A ring that never wrapped: everything from the first record. */
	sl = find(&sn, 3);
	rw_trace_snap_trim(&sn, sl, 0);
	check_slot(sl, 3, &seen);
	CHECK_EQ(sl->start, 0);
	CHECK_EQ(sl->given_up, 0);
	CHECK_EQ(seen.first, 0);
	CHECK_EQ(seen.n, 20);

	/* --last: from the record of ts >= that of seq first + 100 on. */
	sl = find(&sn, 1);
	{
		uint64_t first = seen.first, k;

		rw_trace_snap_trim(&sn, sl, 0);
		check_slot(sl, 1, &seen);
		first = seen.first;
		k = first + 100;
		rw_trace_snap_trim(&sn, sl, k * 1000 + 1);
		check_slot(sl, 1, &seen);
		CHECK_EQ(seen.first, k);
		CHECK_EQ(sl->cut, 100);
		CHECK_EQ(sl->oldest_ts, first * 1000 + 1);
		/* Past the last record: nothing kept. */
		rw_trace_snap_trim(&sn, sl, w.seq * 1000 + 2);
		CHECK_EQ(sl->records, 0);
		CHECK_EQ(sl->off, sl->len);
	}
	rw_trace_snap_free(&sn);

	/* In flight: a record announced, its bytes (garbage) over the oldest
	 * sub-buffer, its head not stored. */
	write_one(&w, false, true);
	CHECK_OK(rw_trace_snap_take(s.map, s.size, &sn));
	sl = find(&sn, 1);
	rw_trace_snap_trim(&sn, sl, 0);
	check_slot(sl, 1, &seen);
	CHECK_EQ(seen.last, w.seq - 1);
	CHECK(sl->reserve > sl->head);
	CHECK(sl->start >= sl->reserve - RING);
	CHECK(sl->start - (sl->reserve - RING) < SUB);
	rw_trace_snap_free(&sn);
	free(s.map);
}

static void test_damage(void)
{
	struct shm s;
	struct writer w;
	struct rw_trace_snap sn;
	struct rw_trace_snap_slot *sl;
	struct rw_trace_shm *h;
	struct rw_trace_rec bad = { .len = SUB, .id = 0, .nargs = 3 };

	shm_init(&s, RING, SUB);
	h = (struct rw_trace_shm *)s.map;
	writer_claim(&w, &s, 0);
	for (int i = 0; i < 50; i++)
		write_one(&w, true, false);

	/* Reserve behind head: not an overwrite writer. */
	atomic_store(&slot_of(&s, 0)->reserve, 8);
	CHECK_OK(rw_trace_snap_take(s.map, s.size, &sn));
	CHECK(sn.slots[0].corrupt);
	CHECK_EQ(sn.slots[0].len, 0);
	rw_trace_snap_free(&sn);
	atomic_store(&slot_of(&s, 0)->reserve, w.head);

	/* A record whose length leaves its sub-buffer: the data ends
	 * there. */
	put_words(&s, 0, 0, (const uint8_t *)&bad, 8);
	CHECK_OK(rw_trace_snap_take(s.map, s.size, &sn));
	sl = &sn.slots[0];
	rw_trace_snap_trim(&sn, sl, 0);
	CHECK(sl->corrupt);
	CHECK_EQ(sl->len, 0);
	CHECK_EQ(sl->records, 0);
	rw_trace_snap_free(&sn);

	/* Headers. */
	h->flags = 0;
	CHECK_EQ(rw_trace_snap_take(s.map, s.size, &sn), -EINVAL);
	h->flags = RW_TRACE_F_OVERWRITE;
	h->subbuf_size = 100;
	CHECK_EQ(rw_trace_snap_take(s.map, s.size, &sn), -EBADMSG);
	h->subbuf_size = SUB;
	CHECK_EQ(rw_trace_snap_take(s.map, s.size - 8, &sn), -EBADMSG);
	h->version = 1;
	CHECK_EQ(rw_trace_snap_take(s.map, s.size, &sn), -EPROTO);
	h->version = RW_TRACE_VERSION;
	h->magic[0] = 'X';
	CHECK_EQ(rw_trace_snap_take(s.map, s.size, &sn), -EPROTO);
	free(s.map);
}

int main(void)
{
	test_quiescent();
	test_damage();
	test_concurrent();
	printf("ok\n");
	return 0;
}
