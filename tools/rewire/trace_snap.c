// SPDX-License-Identifier: MIT
/*
 * Snapshots of overwrite rings (trace_snap.h): the reader's side of ring.h's
 * overwrite mode, S1-S4.
 */
#include "trace_snap.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t tsc_now(void)
{
#if defined(__x86_64__)
	return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
	uint64_t t;

	__asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(t) : : "memory");
	return t;
#else
	return 0;
#endif
}

int rw_trace_snap_check(const void *map, size_t size, struct rw_trace_shm *hdr)
{
	struct rw_trace_shm h;
	uint64_t total;

	if (!map || size < RW_TRACE_SHM_HDR)
		return -EBADMSG;
	/* The constant part only: the counters change under us. */
	memset(&h, 0, sizeof(h));
	memcpy(&h, map, offsetof(struct rw_trace_shm, dropped_noslot));
	if (memcmp(h.magic, RW_TRACE_MAGIC, sizeof(h.magic)) != 0 ||
	    h.version < 2 || h.version > RW_TRACE_VERSION)
		return -EPROTO;
	if (h.hdr_size != RW_TRACE_SHM_HDR ||
	    h.slot_size != sizeof(struct rw_trace_slot) || h.nslots == 0 ||
	    h.nslots > RW_TRACE_SLOTS_MAX || h.ring_size < RW_TRACE_RING_MIN ||
	    h.ring_size > RW_TRACE_RING_MAX ||
	    (h.ring_size & (h.ring_size - 1)) != 0 ||
	    h.data_offset != rw_trace_data_offset(h.nslots) ||
	    h.max_string != RW_TRACE_MAX_STRING)
		return -EBADMSG;
	if (h.clock != RW_TRACE_CLOCK_TSC && h.clock != CLOCK_MONOTONIC &&
	    h.clock != CLOCK_REALTIME)
		return -EBADMSG;
#if !defined(__x86_64__) && !defined(__aarch64__)
	if (h.clock == RW_TRACE_CLOCK_TSC)
		return -EBADMSG;
#endif
	total = rw_trace_total_size(h.nslots, h.ring_size);
	if (h.total_size != total || total != size)
		return -EBADMSG;
	if (!(h.flags & RW_TRACE_F_OVERWRITE))
		return -EINVAL;
	/* Sub-buffers: a power of two, at least a page, dividing the ring
	 * (both powers of two: at most the ring). */
	if (h.subbuf_size < RW_TRACE_SUBBUF_MIN ||
	    (h.subbuf_size & (h.subbuf_size - 1)) != 0 ||
	    h.subbuf_size > h.ring_size)
		return -EBADMSG;
	*hdr = h;
	return 0;
}

/* S2: the ring's bytes of positions [lo, hi) (hi - lo <= ring_size) into
 * @dst, with relaxed 8-byte loads (positions and sizes are multiples of
 * 8). */
static void ring_copy(uint8_t *dst, const uint8_t *ring, uint64_t ring_size,
		      uint64_t lo, uint64_t hi)
{
	uint64_t mask = ring_size - 1;

	for (uint64_t p = lo; p < hi; p += 8) {
		const uint64_t *src = (const uint64_t *)(ring + (p & mask));
		uint64_t w = __atomic_load_n(src, __ATOMIC_RELAXED);

		memcpy(dst + (p - lo), &w, 8);
	}
}

/* Reads one word per page of the ring's first @n bytes: the mapping's page
 * faults are then taken before S1, not during S2, which is the window in
 * which the thread may write over what is being copied. Only pages the
 * thread wrote (the memfd is sparse: a page read first would be allocated
 * by the read). */
static void ring_touch(const uint8_t *ring, uint64_t n)
{
	for (uint64_t p = 0; p < n; p += RW_TRACE_PAGE)
		(void)__atomic_load_n((const uint64_t *)(ring + p),
				      __ATOMIC_RELAXED);
}

int rw_trace_snap_slot_copy(const void *map, const struct rw_trace_shm *hdr,
			    struct rw_trace_snap_slot *s)
{
	const struct rw_trace_slot *slot =
		(const struct rw_trace_slot *)((const uint8_t *)map +
					       RW_TRACE_SHM_HDR) +
		s->index;
	const uint8_t *ring = (const uint8_t *)map + hdr->data_offset +
			      (uint64_t)s->index * hdr->ring_size;
	uint64_t ring_size = hdr->ring_size, sub = hdr->subbuf_size, h;

	if (s->index >= hdr->nslots)
		return -EINVAL;
	s->len = 0;
	s->lapped = false;
	if (!s->mem) {
		s->mem = malloc(ring_size);
		if (!s->mem)
			return -ENOMEM;
	}
	s->buf = s->mem;
	/* Our own pages and the mapping's faulted in before the copy, so
	 * that S2 runs at the speed of memory. */
	memset(s->mem, 0, ring_size);
	h = atomic_load_explicit(&slot->head, memory_order_relaxed);
	ring_touch(ring, h < ring_size ? h : ring_size);
	for (unsigned try = 0; try < RW_TRACE_SNAP_TRIES; try++) {
		uint64_t r, lo, valid, start;

		/* S1 (pairs with P5). */
		h = atomic_load_explicit(&slot->head, memory_order_acquire);
		if (h & 7) {
			s->corrupt = true;
			s->why = "head not a multiple of 8";
			break;
		}
		lo = h > ring_size ? h - ring_size : 0;
		/* S2. */
		ring_copy(s->mem, ring, ring_size, lo, h);
		/* S3 (the fence pairs with O1's). */
		atomic_thread_fence(memory_order_acquire);
		r = atomic_load_explicit(&slot->reserve, memory_order_relaxed);
		s->head = h;
		s->reserve = r;
		if (r < h) {
			/* O1 comes before P5: a thread that does not
			 * announce is not writing in overwrite mode. */
			s->corrupt = true;
			s->why = "reserve behind head (not an overwrite ring)";
			break;
		}
		/* S4: every byte below r - ring_size may have been written
		 * over while S2 ran; the next sub-buffer boundary starts a
		 * record. */
		valid = r > ring_size ? r - ring_size : 0;
		start = (valid + sub - 1) & ~(sub - 1);
		if (start < lo)
			start = lo; /* (lo is 0 here: the ring never wrapped) */
		if (start >= h && h > lo && try + 1 < RW_TRACE_SNAP_TRIES)
			continue; /* written over entirely: again */
		if (start >= h) {
			s->lapped = h > lo;
			start = h;
		}
		s->start = start;
		s->given_up = start - lo;
		s->buf = s->mem + (start - lo);
		s->len = (size_t)(h - start);
		break;
	}
	return 0;
}

int rw_trace_snap_take(const void *map, size_t size, struct rw_trace_snap *out)
{
	const struct rw_trace_slot *slots;
	const struct rw_trace_shm *shm = map;
	uint64_t t0;
	int err;

	memset(out, 0, sizeof(*out));
	err = rw_trace_snap_check(map, size, &out->hdr);
	if (err)
		return err;
	slots = (const struct rw_trace_slot *)((const uint8_t *)map +
					       RW_TRACE_SHM_HDR);
	out->slots = calloc(out->hdr.nslots, sizeof(*out->slots));
	if (!out->slots)
		return -ENOMEM;
	t0 = clock_ns(CLOCK_MONOTONIC);
	for (uint32_t i = 0; i < out->hdr.nslots; i++) {
		struct rw_trace_snap_slot *s = &out->slots[out->nslots];
		/* P1: a claimed slot's tid is stored before its first
		 * head. */
		int32_t tid = atomic_load_explicit(&slots[i].tid,
						   memory_order_acquire);

		if (!tid)
			continue;
		s->index = i;
		s->tid = tid;
		err = rw_trace_snap_slot_copy(map, &out->hdr, s);
		if (err) {
			rw_trace_snap_free(out);
			return err;
		}
		out->nslots++;
	}
	/* The moment of the snapshot, in every clock, just after the copies
	 * (a few ms at most): every event copied is older (each slot's S1
	 * came before). */
	out->now_realtime = clock_ns(CLOCK_REALTIME);
	out->now_monotonic = clock_ns(CLOCK_MONOTONIC);
	out->copy_ns = out->now_monotonic - t0;
	switch (out->hdr.clock) {
	case RW_TRACE_CLOCK_TSC:
		out->now_ts = tsc_now();
		if (out->hdr.tsc_hz)
			out->ts_hz = (double)out->hdr.tsc_hz;
		else if (out->now_monotonic > out->hdr.cal_monotonic &&
			 out->now_ts > out->hdr.cal_tsc)
			out->ts_hz = (double)(out->now_ts - out->hdr.cal_tsc) *
				     1e9 /
				     (double)(out->now_monotonic -
					      out->hdr.cal_monotonic);
		else
			out->ts_hz = 1e9; /* no better guess: ages in ticks */
		break;
	case CLOCK_MONOTONIC:
		out->now_ts = out->now_monotonic;
		out->ts_hz = 1e9;
		break;
	default:
		out->now_ts = out->now_realtime;
		out->ts_hz = 1e9;
		break;
	}
	out->dropped_noslot = atomic_load_explicit(&shm->dropped_noslot,
						   memory_order_relaxed);
	out->dropped_nested = atomic_load_explicit(&shm->dropped_nested,
						   memory_order_relaxed);
	return 0;
}

void rw_trace_snap_trim(const struct rw_trace_snap *snap,
			struct rw_trace_snap_slot *s, uint64_t min_ts)
{
	size_t pos = 0;
	bool kept = false;
	uint64_t sub = snap->hdr.subbuf_size;

	s->off = s->len;
	s->records = s->cut = 0;
	s->first_ts = s->last_ts = s->oldest_ts = 0;
	s->returns = false;
	while (pos < s->len) {
		struct rw_trace_rec rec;
		size_t left = s->len - pos;
		uint64_t at = s->start + pos;

		memset(&rec, 0, sizeof(rec));
		memcpy(&rec, s->buf + pos,
		       left < sizeof(rec) ? left : sizeof(rec));
		if (rec.id == RW_TRACE_PAD) {
			/* P4: padding fills up to the next sub-buffer. */
			uint64_t end = (at | (sub - 1)) + 1;

			if (rec.len < RW_TRACE_PAD_HDR || (rec.len & 7) ||
			    rec.len > left || at + rec.len != end) {
				s->why = "bad padding record";
				goto bad;
			}
			pos += rec.len;
			continue;
		}
		if (left < RW_TRACE_REC_HDR || rec.len < RW_TRACE_REC_HDR ||
		    (rec.len & 7) || rec.len > left ||
		    rec.len > RW_TRACE_MAX_RECORD ||
		    (at & ~(sub - 1)) != ((at + rec.len - 1) & ~(sub - 1))) {
			s->why = "bad record length";
			goto bad;
		}
		if (!s->oldest_ts)
			s->oldest_ts = rec.ts;
		if (!kept && rec.ts >= min_ts) {
			kept = true;
			s->off = pos;
			s->first_ts = rec.ts;
		}
		if (kept) {
			s->records++;
			s->last_ts = rec.ts;
			s->returns |= rec.id == RW_TRACE_FUNC_RETURN;
		} else {
			s->cut++;
		}
		pos += rec.len;
	}
	return;
bad:
	s->corrupt = true;
	s->len = pos;
	if (s->off > s->len)
		s->off = s->len;
}

double rw_trace_snap_age(const struct rw_trace_snap *snap, uint64_t ts)
{
	double d = ts <= snap->now_ts ? (double)(snap->now_ts - ts)
				      : -(double)(ts - snap->now_ts);

	return d / snap->ts_hz;
}

uint64_t rw_trace_snap_cutoff(const struct rw_trace_snap *snap, double seconds)
{
	double d = seconds * snap->ts_hz;

	if (seconds <= 0)
		return snap->now_ts;
	if (d >= (double)snap->now_ts)
		return 0;
	return snap->now_ts - (uint64_t)d;
}

void rw_trace_snap_free(struct rw_trace_snap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nslots; i++)
		free(s->slots[i].mem);
	free(s->slots);
	s->slots = NULL;
	s->nslots = 0;
}
