/* SPDX-License-Identifier: MIT */
/*
 * The reading side of `rewire trace` (trace_reader.h, trace_out.h).
 *
 * A poll (rw_trace_reader_poll()):
 *
 *   1. Take a clock point: the reader's clock (CLOCK_REALTIME or
 *      CLOCK_MONOTONIC, the output clock) read between two reads of the
 *      session's clock (the TSC, or a clockid), the narrowest of a few
 *      tries. It extends the table that converts ts to ns (see Clock) and
 *      says what "now" is for the reorder window.
 *   2. For each slot (read_slot()), the consumer steps C1-C4 of
 *      src/ctl/ring.h:
 *      a. Load the slot's tid (acquire, P1); 0: never claimed, skip.
 *      b. C1: load head (acquire). Check head - tail against the ring size
 *         (tail is our own copy, never read back from the shared memory).
 *      c. C2: for each record, read its 8-byte prefix, check that the
 *         length stays inside the available bytes and the ring, copy the
 *         record into the slot's queue (our memory) and check the copy
 *         only; convert its ts to ns once, here. Padding is skipped.
 *      d. C4: store the new tail (release), once per slot and every
 *         quarter ring, so that a busy producer gets its space back early.
 *      e. C3: load the slot's drop counter (relaxed) and queue a note for
 *         its growth.
 *   3. Queue notes for the growth of the header's noslot and nested
 *      counters (a queue of their own).
 *   4. Deliver (deliver()): while the queue whose first item has the
 *      smallest ns (a heap of queues) has one at or before now minus the
 *      window, take it out and hand it to every sink.
 *
 * Anything that does not check out in 2c makes the reader queue a
 * "corrupt" note and move its tail to the head it loaded: what is skipped
 * is what was available, and the next poll starts clean.
 *
 * The clock points are taken at step 1, before the heads are loaded in
 * step 2b, and a thread takes its ts before it publishes the record (P5):
 * so every record read has a ts before the last point (give or take the
 * skew of the TSC between CPUs) and is converted by interpolation between
 * two points, never by extrapolation that a later point would contradict.
 * The conversion is a fixed, non-decreasing function of ts for a given
 * table, and points are only appended: one event gets one ns, and the order
 * of one thread's events is kept.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* F_GET_SEALS */
#endif
#include "trace_reader.h"
#include "trace_out.h"
#include "utf8.h"

#include "ctl/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Static_assert(RW_TRACE_MAX_FIELDS == RW_TRACE_MAX_ARGS,
	       "as many fields as a tracepoint has arguments");

/* A graph entry waits at most this long for its thread's next record (so
 * that a leaf call is printed on one line with its return). */
#define HOLD_NS 100000000ull

/* Above this many bytes queued in all, events go out whatever the window
 * (the window is bounded in memory as well as in time). */
#define QUEUE_MAX (256ull << 20)

/* Clock points kept; older ones are thinned out (every other one) when the
 * table is full, so the table spans any session with recent points dense. */
#define CLOCK_POINTS 256

/* --- Queues --------------------------------------------------------------- */

enum { QI_EVENT, QI_NOTE };

/* An item of a queue; an event's record (a multiple of 8 bytes) or a
 * note's struct qnote follows. Small: the queues hold a window's worth of
 * events, and copying them is most of the reader's time. */
struct qitem {
	uint64_t ns;  /* the output clock */
	uint32_t len; /* bytes that follow */
	uint8_t type; /* QI_* */
	uint8_t note; /* enum rw_trace_note_kind */
	uint8_t leaf; /* a RETURN whose entry was delivered as a leaf */
	uint8_t reserved;
};

struct qnote {
	uint64_t count;
	const char *why; /* CORRUPT notes: a static string */
};

_Static_assert(sizeof(struct qitem) == 16 && sizeof(struct qnote) == 16,
	       "records stay aligned");

/* Items of one slot, in ring order: b[rd..wr). Compacted (moved to the
 * start) when the read side passes the middle, grown by doubling. */
struct queue {
	unsigned char *b;
	size_t rd, wr, cap;
	size_t n; /* items */
};

/* A clock point: the session's clock (raw) and the output clock at one
 * instant. */
struct clockpt {
	uint64_t raw, out;
};

struct rslot {
	uint64_t tail;	  /* ours; stored into the slot in C4 */
	uint64_t dropped; /* the slot's counter at the last poll */
	uint64_t bytes;	  /* record bytes read, all polls */
	uint64_t records; /* records read, all polls */
	struct queue q;
	struct rw_trace_thread_stats st;
	bool in_heap;
};

/* Output being built (see Printing). */
struct obuf {
	FILE *f;
	size_t n;
	char b[64 * 1024];
};

/* The text and JSON sinks. */
struct line_sink {
	struct rw_trace_sink base;
	bool json, graph;
	struct obuf out;
};

struct rw_trace_reader {
	unsigned char *map;
	size_t size;
	struct rw_trace_shm *shm;
	struct rw_trace_slot *slots;
	const unsigned char *data;
	uint32_t nslots;
	uint64_t ring_size, mask;
	/* The constant part of the header, as checked at open. */
	struct rw_trace_shm hdr;
	bool overwrite;
	/* Descriptions by id; known[id] says whether the id was described. */
	struct rw_trace_meta *meta;
	bool *known;
	uint32_t nids;
	struct rw_trace_meta *meta_list; /* as given, cleaned */
	size_t nmeta;
	/* rs[0..nslots-1]: the slots; rs[nslots]: noslot and nested notes. */
	struct rslot *rs;
	uint64_t noslot, nested; /* header counters at the last poll */
	uint64_t dropped, corrupt, late;
	/* Function records (rw_trace_reader_set_funcs). */
	const struct rw_trace_func_meta *funcs;
	size_t nfuncs;
	bool graph;
	rw_trace_resolve_fn resolve;
	void *resolve_arg;
	/* Clock (see Clock). */
	uint32_t src_clock; /* RW_TRACE_CLOCK_TSC or a clockid */
	int out_clock;	    /* CLOCK_REALTIME or CLOCK_MONOTONIC */
	bool identity;	    /* ts is already in the output clock */
	struct clockpt pts[CLOCK_POINTS];
	size_t npts;
	bool cal_in_table;     /* pts[0] is the calibration, alone */
	uint64_t now_ns;       /* the output clock at the last point */
	uint64_t last_poll_ns; /* CLOCK_MONOTONIC of the last poll */
	uint64_t max_poll_gap_ns;
	/* Merge. */
	uint64_t window_ns;
	uint32_t *heap; /* indices into rs, by their first item's ns */
	size_t nheap;
	uint64_t queued;  /* bytes in all queues */
	uint64_t last_ns; /* ns of the latest event delivered */
	uint64_t limit, delivered;
	/* Sinks. */
	struct rw_trace_sink **sinks;
	size_t nsinks;
	bool begun, finished;
	int error;		  /* the first error of a sink */
	struct line_sink *compat; /* rw_trace_reader_drain()'s sink */
	struct rw_trace_thread_stats *sum_threads;
	char caller[600];
};

/* --- Opening -------------------------------------------------------------- */

/* Names may come from a buggy process: nothing that breaks a line or a
 * JSON string, and always terminated. */
static void clean_name(char *s, size_t size)
{
	s[size - 1] = '\0';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c == 0x7f || c == '"' || c == '\\')
			*s = '?';
	}
}

static bool kind_ok(int k)
{
	return k >= RW_TRACE_KIND_SIGNED && k <= RW_TRACE_KIND_POINTER;
}

static void meta_clean(struct rw_trace_meta *m)
{
	clean_name(m->name, sizeof(m->name));
	for (unsigned k = 0; k < m->nargs; k++) {
		clean_name(m->fields[k].name, sizeof(m->fields[k].name));
		m->fields[k].ctype[sizeof(m->fields[k].ctype) - 1] = '\0';
	}
}

static int meta_load(struct rw_trace_reader *r,
		     const struct rw_trace_meta *meta, size_t nmeta)
{
	uint32_t nids = 0;

	for (size_t i = 0; i < nmeta; i++) {
		if (meta[i].id >= RW_TRACE_MAX_TRACEPOINTS ||
		    meta[i].nargs > RW_TRACE_MAX_FIELDS)
			return -EINVAL;
		for (unsigned k = 0; k < meta[i].nargs; k++)
			if (!kind_ok(meta[i].fields[k].kind))
				return -EINVAL;
		if (meta[i].id + 1 > nids)
			nids = meta[i].id + 1;
	}
	r->nids = nids;
	r->meta = calloc(nids ? nids : 1, sizeof(*r->meta));
	r->known = calloc(nids ? nids : 1, sizeof(*r->known));
	r->meta_list = calloc(nmeta ? nmeta : 1, sizeof(*r->meta_list));
	if (!r->meta || !r->known || !r->meta_list)
		return -ENOMEM;
	for (size_t i = 0; i < nmeta; i++) {
		struct rw_trace_meta *m = &r->meta[meta[i].id];

		if (r->known[meta[i].id])
			return -EINVAL;
		r->known[meta[i].id] = true;
		*m = meta[i];
		meta_clean(m);
		r->meta_list[i] = *m;
	}
	r->nmeta = nmeta;
	return 0;
}

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* The header, read once: the geometry is ours from now on. Version 1
 * (ts in CLOCK_REALTIME ns, no calibration, no sub-buffers) and version 2
 * (ring.h) are taken. */
static int header_check(struct rw_trace_reader *r, size_t shm_size)
{
	struct rw_trace_shm h;
	uint64_t total;

	/* The constant part only: the counters change under us. */
	memset(&h, 0, sizeof(h));
	memcpy(&h, r->map, offsetof(struct rw_trace_shm, dropped_noslot));
	if (memcmp(h.magic, RW_TRACE_MAGIC, sizeof(h.magic)) != 0 ||
	    h.version < RW_TRACE_VERSION_MIN || h.version > RW_TRACE_VERSION)
		return -EPROTO;
	if (h.version == 1) {
		/* Its header stops at session: what follows is not ours to
		 * interpret. */
		memset(&h.flags, 0,
		       offsetof(struct rw_trace_shm, dropped_noslot) -
			       offsetof(struct rw_trace_shm, flags));
		if (h.clock != CLOCK_REALTIME)
			return -EBADMSG;
	}
	if (h.hdr_size != RW_TRACE_SHM_HDR ||
	    h.slot_size != sizeof(struct rw_trace_slot) || h.nslots == 0 ||
	    h.nslots > RW_TRACE_SLOTS_MAX || h.ring_size < RW_TRACE_RING_MIN ||
	    h.ring_size > RW_TRACE_RING_MAX || !pow2(h.ring_size) ||
	    h.data_offset != rw_trace_data_offset(h.nslots) ||
	    h.max_string != RW_TRACE_MAX_STRING)
		return -EBADMSG;
	if (h.clock != CLOCK_REALTIME && h.clock != CLOCK_MONOTONIC &&
	    h.clock != RW_TRACE_CLOCK_TSC)
		return -EBADMSG;
#if !defined(__x86_64__) && !defined(__aarch64__)
	if (h.clock == RW_TRACE_CLOCK_TSC)
		return -EPROTONOSUPPORT;
#endif
	if (h.flags & ~RW_TRACE_F_OVERWRITE)
		return -EBADMSG;
	/* Sub-buffers: 0 (a version 2 writer without them) is the whole
	 * ring; an overwriting session needs them (S4). */
	if (h.version >= 2 && h.subbuf_size != 0 &&
	    (!pow2(h.subbuf_size) || h.subbuf_size > h.ring_size ||
	     h.subbuf_size < RW_TRACE_SUBBUF_MIN))
		return -EBADMSG;
	if ((h.flags & RW_TRACE_F_OVERWRITE) && !h.subbuf_size)
		return -EBADMSG;
	total = rw_trace_total_size(h.nslots, h.ring_size);
	if (h.total_size != total || total != shm_size)
		return -EBADMSG;
	if (!h.subbuf_size)
		h.subbuf_size = (uint32_t)h.ring_size;
	r->hdr = h;
	r->overwrite = (h.flags & RW_TRACE_F_OVERWRITE) != 0;
	r->src_clock = h.clock;
	r->nslots = h.nslots;
	r->ring_size = h.ring_size;
	r->mask = h.ring_size - 1;
	r->shm = (struct rw_trace_shm *)r->map;
	r->slots = (struct rw_trace_slot *)(r->map + RW_TRACE_SHM_HDR);
	r->data = r->map + h.data_offset;
	return 0;
}

static void clock_reset(struct rw_trace_reader *r);
static uint64_t mono_ns(void);

int rw_trace_reader_open(int memfd, size_t shm_size,
			 const struct rw_trace_meta *meta, size_t nmeta,
			 struct rw_trace_reader **out)
{
	struct rw_trace_reader *r;
	struct stat st;
	int seals, err;
	void *p;

	if (!out || memfd < 0 || (nmeta && !meta) ||
	    shm_size < RW_TRACE_SHM_HDR || shm_size > SIZE_MAX / 2)
		return -EINVAL;
	*out = NULL;
	if (fstat(memfd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADF;
	/* Mapping past the end of the file would fault; so would a file
	 * that the process shrinks later, hence the seal. */
	seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return -EPERM;
	if (st.st_size < 0 || (uint64_t)st.st_size < shm_size)
		return -EBADMSG;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	err = meta_load(r, meta, nmeta);
	if (err)
		goto fail;
	p = mmap(NULL, shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (p == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	r->map = p;
	r->size = shm_size;
	err = header_check(r, shm_size);
	if (err)
		goto fail;
	r->rs = calloc((size_t)r->nslots + 1, sizeof(*r->rs));
	r->heap = calloc((size_t)r->nslots + 1, sizeof(*r->heap));
	r->sum_threads = calloc(r->nslots, sizeof(*r->sum_threads));
	if (!r->rs || !r->heap || !r->sum_threads) {
		err = -ENOMEM;
		goto fail;
	}
	/* Start where the slots are now (0 for a new session); a wrong tail
	 * shows up as corrupt at the first poll. */
	for (uint32_t i = 0; i <= r->nslots; i++) {
		r->rs[i].st.slot = i;
		if (i < r->nslots)
			r->rs[i].tail = atomic_load_explicit(
				&r->slots[i].tail, memory_order_relaxed);
	}
	r->rs[r->nslots].st.slot = UINT32_MAX;
	r->window_ns = RW_TRACE_WINDOW_DEFAULT;
	r->out_clock = CLOCK_REALTIME;
	clock_reset(r);
	r->last_poll_ns = mono_ns();
	*out = r;
	return 0;
fail:
	rw_trace_reader_close(r);
	return err;
}

void rw_trace_reader_close(struct rw_trace_reader *r)
{
	if (!r)
		return;
	if (r->map)
		munmap(r->map, r->size);
	if (r->rs)
		for (uint32_t i = 0; i <= r->nslots; i++)
			free(r->rs[i].q.b);
	for (size_t i = 0; i < r->nsinks; i++)
		rw_trace_sink_destroy(r->sinks[i]);
	free(r->sinks);
	free(r->rs);
	free(r->heap);
	free(r->sum_threads);
	free(r->meta);
	free(r->known);
	free(r->meta_list);
	free(r);
}

uint64_t rw_trace_reader_dropped(const struct rw_trace_reader *r)
{
	return r ? r->dropped : 0;
}

uint64_t rw_trace_reader_corrupt(const struct rw_trace_reader *r)
{
	return r ? r->corrupt : 0;
}

uint64_t rw_trace_reader_events(const struct rw_trace_reader *r)
{
	return r ? r->delivered : 0;
}

void rw_trace_reader_set_window(struct rw_trace_reader *r, uint64_t ns)
{
	if (r)
		r->window_ns = ns;
}

void rw_trace_reader_set_limit(struct rw_trace_reader *r, uint64_t max)
{
	if (r)
		r->limit = max;
}

/* --- Clock ---------------------------------------------------------------- */

/*
 * ts counts the session's clock (ring.h): TSC ticks, or CLOCK_MONOTONIC or
 * CLOCK_REALTIME ns. The output clock is CLOCK_REALTIME or CLOCK_MONOTONIC.
 * When they differ, ns is interpolated linearly between the two points of
 * the table around ts (pts[], increasing in both raw and out): the
 * session's calibration (the first point) and one point per poll or feed.
 * Between two points the conversion follows whatever the clocks did (NTP
 * slewing, a TSC whose rate is not quite tsc_hz); its error is that of the
 * points (half the width of the bracket of each, tens of ns) and does not
 * grow with the length of the session. Before the first point or after
 * the last, the nearest segment's rate is used (tsc_hz when the table has
 * a single point).
 */

static uint64_t ts_ns(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec;
}

static uint64_t clock_ns(int id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return ts_ns(&t);
}

static uint64_t mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* The session's clock, as the traced threads read it. */
static uint64_t raw_now(uint32_t src)
{
#ifdef __x86_64__
	if (src == RW_TRACE_CLOCK_TSC) {
		uint64_t t;

		/* lfence: the read stays between what comes before and after
		 * it (rdtsc alone may be executed early or late). */
		__builtin_ia32_lfence();
		t = __builtin_ia32_rdtsc();
		__builtin_ia32_lfence();
		return t;
	}
#elif defined(__aarch64__)
	if (src == RW_TRACE_CLOCK_TSC) {
		uint64_t t;

		/* The traced process's counter, CNTVCT_EL0 (one for the whole
		 * machine); isb on both sides, as lfence on x86-64: the read
		 * is not executed early or late. */
		__asm__ volatile("isb; mrs %0, cntvct_el0; isb"
				 : "=r"(t)
				 :
				 : "memory");
		return t;
	}
#endif
	return clock_ns((int)src);
}

/* Appends @p if it keeps the table increasing; thins the table when full. */
static void clock_add(struct rw_trace_reader *r, struct clockpt p)
{
	if (r->npts) {
		const struct clockpt *l = &r->pts[r->npts - 1];

		if (p.raw <= l->raw || p.out < l->out) {
			/* Our own points win over a calibration that
			 * contradicts them (the process is buggy). */
			if (r->npts == 1 && r->cal_in_table)
				r->npts = 0;
			else
				return;
		}
	}
	r->cal_in_table = false;
	if (r->npts == CLOCK_POINTS) {
		/* Keep the first point (the calibration) and the newer half;
		 * drop every other point of the older half. */
		size_t k = 1;

		for (size_t i = 1; i < CLOCK_POINTS; i++)
			if (i >= CLOCK_POINTS / 2 || i % 2 == 0)
				r->pts[k++] = r->pts[i];
		r->npts = k;
	}
	r->pts[r->npts++] = p;
}

/* Step 1: a point, and now. */
static void clock_point(struct rw_trace_reader *r)
{
	struct clockpt best = { 0, 0 };
	uint64_t width = UINT64_MAX;

	if (r->identity) {
		r->now_ns = clock_ns(r->out_clock);
		return;
	}
	for (int i = 0; i < 4; i++) {
		uint64_t a = raw_now(r->src_clock);
		uint64_t o = clock_ns(r->out_clock);
		uint64_t b = raw_now(r->src_clock);

		if (b >= a && b - a < width) {
			width = b - a;
			best.raw = a + (b - a) / 2;
			best.out = o;
		}
		/* Narrow enough: about a clock_gettime() through the vDSO. */
		if (width < 200)
			break;
	}
	if (width != UINT64_MAX)
		clock_add(r, best);
	r->now_ns = best.out ? best.out : clock_ns(r->out_clock);
}

/* A new table for the output clock: the session's calibration, and a point
 * of ours. */
static void clock_reset(struct rw_trace_reader *r)
{
	const struct rw_trace_shm *h = &r->hdr;
	bool rt = r->out_clock == CLOCK_REALTIME;

	r->npts = 0;
	r->cal_in_table = false;
	r->identity = r->src_clock == (uint32_t)r->out_clock;
	if (r->identity) {
		clock_point(r);
		return;
	}
	if (h->version >= 2 && h->cal_realtime && h->cal_monotonic) {
		uint64_t raw = h->clock == RW_TRACE_CLOCK_TSC ? h->cal_tsc
			       : h->clock == CLOCK_MONOTONIC  ? h->cal_monotonic
							      : h->cal_realtime;

		if (raw) {
			clock_add(r, (struct clockpt){ raw,
						       rt ? h->cal_realtime
							  : h->cal_monotonic });
			r->cal_in_table = true;
		}
	}
	clock_point(r);
}

int rw_trace_reader_set_clock(struct rw_trace_reader *r, int clock_id)
{
	if (!r || (clock_id != CLOCK_REALTIME && clock_id != CLOCK_MONOTONIC))
		return -EINVAL;
	if (clock_id != r->out_clock) {
		r->out_clock = clock_id;
		clock_reset(r);
	}
	return 0;
}

/* ns of @a + (@raw - a.raw) * @num / @den, clamped to 64 bits. */
static uint64_t lerp(uint64_t base, uint64_t from, uint64_t raw,
		     unsigned __int128 num, unsigned __int128 den)
{
	__int128 d = (__int128)raw - (__int128)from;
	__int128 v;

	if (!den)
		return base;
	if (d >= 0)
		v = (__int128)base +
		    (__int128)(((unsigned __int128)d * num) / den);
	else
		v = (__int128)base -
		    (__int128)(((unsigned __int128)(-d) * num + den - 1) / den);
	if (v < 0)
		return 0;
	if (v > (__int128)UINT64_MAX)
		return UINT64_MAX;
	return (uint64_t)v;
}

static uint64_t seg(const struct clockpt *a, const struct clockpt *b,
		    uint64_t raw)
{
	return lerp(a->out, a->raw, raw, b->out - a->out, b->raw - a->raw);
}

/* ts (the session's clock) to ns of the output clock. */
static uint64_t convert(const struct rw_trace_reader *r, uint64_t raw)
{
	const struct clockpt *p = r->pts;
	size_t n = r->npts, lo, hi;

	if (r->identity || !n)
		return raw;
	if (n == 1) {
		uint64_t hz = r->src_clock == RW_TRACE_CLOCK_TSC
				      ? r->hdr.tsc_hz
				      : 1000000000ull;

		return hz ? lerp(p[0].out, p[0].raw, raw, 1000000000ull, hz)
			  : p[0].out;
	}
	/* Most events fall in the last segment. */
	if (raw >= p[n - 2].raw)
		return seg(&p[n - 2], &p[n - 1], raw);
	if (raw < p[1].raw)
		return seg(&p[0], &p[1], raw);
	/* p[lo].raw <= raw < p[hi].raw */
	lo = 1;
	hi = n - 2;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (p[mid].raw <= raw)
			lo = mid;
		else
			hi = mid;
	}
	return seg(&p[lo], &p[hi], raw);
}

/* --- Queues and the merge heap -------------------------------------------- */

/* Room for @need bytes at the end of @q; NULL when out of memory. */
static unsigned char *q_room(struct queue *q, size_t need)
{
	if (q->cap - q->wr < need && q->rd) {
		memmove(q->b, q->b + q->rd, q->wr - q->rd);
		q->wr -= q->rd;
		q->rd = 0;
	}
	if (q->cap - q->wr < need) {
		size_t cap = q->cap ? q->cap : 64 * 1024;
		unsigned char *b;

		while (cap - q->wr < need)
			cap *= 2;
		b = realloc(q->b, cap);
		if (!b)
			return NULL;
		q->b = b;
		q->cap = cap;
	}
	return q->b + q->wr;
}

static struct qitem *q_head(const struct queue *q)
{
	return (struct qitem *)(void *)(q->b + q->rd);
}

/* The item after the first, or NULL. */
static struct qitem *q_second(const struct queue *q)
{
	struct qitem *h = q_head(q);
	size_t off = q->rd + sizeof(*h) + h->len;

	return off < q->wr ? (struct qitem *)(void *)(q->b + off) : NULL;
}

static bool heap_less(const struct rw_trace_reader *r, uint32_t a, uint32_t b)
{
	uint64_t na = q_head(&r->rs[a].q)->ns, nb = q_head(&r->rs[b].q)->ns;

	return na < nb || (na == nb && a < b);
}

static void heap_swap(struct rw_trace_reader *r, size_t i, size_t j)
{
	uint32_t t = r->heap[i];

	r->heap[i] = r->heap[j];
	r->heap[j] = t;
}

static void heap_push(struct rw_trace_reader *r, uint32_t idx)
{
	size_t i = r->nheap++;

	r->heap[i] = idx;
	r->rs[idx].in_heap = true;
	while (i && heap_less(r, r->heap[i], r->heap[(i - 1) / 2])) {
		heap_swap(r, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

/* The top's queue changed its first item, or emptied. */
static void heap_fix_top(struct rw_trace_reader *r)
{
	size_t i = 0;

	if (!r->rs[r->heap[0]].q.n) {
		r->rs[r->heap[0]].in_heap = false;
		r->heap[0] = r->heap[--r->nheap];
		if (!r->nheap)
			return;
	}
	for (;;) {
		size_t l = 2 * i + 1, m = i;

		if (l < r->nheap && heap_less(r, r->heap[l], r->heap[m]))
			m = l;
		if (l + 1 < r->nheap &&
		    heap_less(r, r->heap[l + 1], r->heap[m]))
			m = l + 1;
		if (m == i)
			return;
		heap_swap(r, i, m);
		i = m;
	}
}

/* Makes the item written at the end of rs[@idx]'s queue part of it. */
static void q_commit(struct rw_trace_reader *r, uint32_t idx, size_t bytes)
{
	struct queue *q = &r->rs[idx].q;

	q->wr += bytes;
	q->n++;
	r->queued += bytes;
	if (!r->rs[idx].in_heap)
		heap_push(r, idx);
}

static void q_note(struct rw_trace_reader *r, uint32_t idx,
		   enum rw_trace_note_kind kind, uint64_t count,
		   const char *why)
{
	const size_t bytes = sizeof(struct qitem) + sizeof(struct qnote);
	unsigned char *p = q_room(&r->rs[idx].q, bytes);
	struct qitem it = {
		.ns = r->now_ns,
		.len = sizeof(struct qnote),
		.type = QI_NOTE,
		.note = (uint8_t)kind,
	};
	struct qnote n = { count, why };

	if (!p)
		return; /* out of memory: the counts stay in the summary */
	memcpy(p, &it, sizeof(it));
	memcpy(p + sizeof(it), &n, sizeof(n));
	q_commit(r, idx, bytes);
}

/* --- Decoding ------------------------------------------------------------- */

/* Checks the copy of a tracepoint record (@len bytes at @b) and decodes its
 * arguments into @a; NULL if it is sound, else what is wrong. */
static const char *decode(const struct rw_trace_reader *r,
			  const unsigned char *b, uint64_t len,
			  const struct rw_trace_meta **mp,
			  struct rw_trace_arg *a)
{
	const struct rw_trace_meta *m;
	struct rw_trace_rec rec;
	uint64_t off = RW_TRACE_REC_HDR, soff;

	memcpy(&rec, b, sizeof(rec));
	if (rec.id >= r->nids || !r->known[rec.id])
		return "unknown tracepoint id";
	m = &r->meta[rec.id];
	if (rec.nargs != m->nargs)
		return "wrong argument count";
	/* The 8-byte slots, then the strings' bytes in argument order. */
	soff = off + 8 * (uint64_t)m->nargs;
	if (soff > len)
		return "record too short";
	for (unsigned i = 0; i < m->nargs; i++, off += 8) {
		a[i].kind = m->fields[i].kind;
		a[i].s = NULL;
		a[i].len = a[i].flags = 0;
		memcpy(&a[i].bits, b + off, 8);
		if (m->fields[i].kind == RW_TRACE_KIND_STRING) {
			struct rw_trace_str sh;
			uint64_t n;

			memcpy(&sh, b + off, sizeof(sh));
			n = ((uint64_t)sh.len + 7) & ~(uint64_t)7;
			if (sh.len > RW_TRACE_MAX_STRING ||
			    (sh.flags &
			     ~(RW_TRACE_STR_TRUNCATED | RW_TRACE_STR_NULL)) ||
			    ((sh.flags & RW_TRACE_STR_NULL) && sh.len) ||
			    n > len - soff)
				return "bad string";
			a[i].s = b + soff;
			a[i].len = sh.len;
			a[i].flags = sh.flags;
			a[i].bits = 0;
			soff += n;
		}
	}
	if (soff != len)
		return "record length";
	*mp = m;
	return NULL;
}

/* Checks the copy of a function record (@len bytes at @b). */
static const char *decode_func(const struct rw_trace_reader *r,
			       const unsigned char *b, uint64_t len,
			       struct rw_trace_func_rec *rec)
{
	memset(rec, 0, sizeof(*rec));
	memcpy(rec, b, len < sizeof(*rec) ? (size_t)len : sizeof(*rec));
	if (len != (rec->hdr.id == RW_TRACE_FUNC_ENTRY
			    ? RW_TRACE_FUNC_ENTRY_LEN
			    : RW_TRACE_FUNC_RETURN_LEN))
		return "record length";
	if (rec->hdr.nargs || rec->func >= r->nfuncs)
		return "unknown function id";
	return NULL;
}

/* Checks the record copied at @b (@len bytes, 16 or more); NULL if sound. */
static const char *check_record(const struct rw_trace_reader *r,
				const unsigned char *b, uint64_t len)
{
	struct rw_trace_arg a[RW_TRACE_MAX_ARGS];
	const struct rw_trace_meta *m;
	struct rw_trace_func_rec fr;
	uint16_t id;

	memcpy(&id, b + 4, sizeof(id));
	if (id == RW_TRACE_FUNC_ENTRY || id == RW_TRACE_FUNC_RETURN)
		return decode_func(r, b, len, &fr);
	return decode(r, b, len, &m, a);
}

/*
 * Takes one record out of @src (@avail bytes there, the position @pos in a
 * ring of @room bytes to its end) into slot @idx's queue: step 2c. Returns
 * the bytes consumed (padding included), or 0 with *@why set.
 */
static uint64_t take_record(struct rw_trace_reader *r, uint32_t idx,
			    const unsigned char *src, uint64_t avail,
			    uint64_t room, const char **why)
{
	struct rw_trace_rec pre;
	struct qitem *it;
	unsigned char *dst;
	uint64_t len, ts;

	if (avail < RW_TRACE_PAD_HDR) {
		*why = "partial record";
		return 0;
	}
	memcpy(&pre, src, RW_TRACE_PAD_HDR);
	len = pre.len;
	if (len < RW_TRACE_PAD_HDR || len % 8 || len > avail || len > room) {
		*why = "record length";
		return 0;
	}
	if (pre.id == RW_TRACE_PAD)
		return len;
	if (len < RW_TRACE_REC_HDR || len > RW_TRACE_MAX_RECORD) {
		*why = "record length";
		return 0;
	}
	dst = q_room(&r->rs[idx].q, sizeof(*it) + len);
	if (!dst) {
		*why = "out of memory";
		return 0;
	}
	/* C2: a copy, then checks of the copy only. */
	memcpy(dst + sizeof(*it), src, len);
	*why = check_record(r, dst + sizeof(*it), len);
	if (*why)
		return 0;
	memcpy(&ts, dst + sizeof(*it) + 8, sizeof(ts));
	it = (struct qitem *)(void *)dst;
	memset(it, 0, sizeof(*it));
	it->ns = convert(r, ts);
	it->len = (uint32_t)len;
	it->type = QI_EVENT;
	q_commit(r, idx, sizeof(*it) + len);
	r->rs[idx].bytes += len;
	r->rs[idx].records++;
	return len;
}

static void note_corrupt(struct rw_trace_reader *r, uint32_t idx,
			 const char *why, uint64_t skipped)
{
	r->corrupt++;
	r->rs[idx].st.corrupt++;
	q_note(r, idx, RW_TRACE_NOTE_CORRUPT, skipped, why);
}

/* A ring size that holds @bytes written between two reads, with room to
 * spare (a power of two, at most RW_TRACE_RING_MAX). */
static uint64_t ring_for(uint64_t bytes)
{
	uint64_t want = bytes + bytes / 2, v = RW_TRACE_RING_MIN;

	while (v < want && v < RW_TRACE_RING_MAX)
		v *= 2;
	return v;
}

/* Step 2 for slot @i owned by @tid; @gap_ns since the last poll. */
static void read_slot(struct rw_trace_reader *r, uint32_t i, int32_t tid,
		      uint64_t gap_ns)
{
	struct rw_trace_slot *s = &r->slots[i];
	struct rslot *rs = &r->rs[i];
	const unsigned char *ring = r->data + (uint64_t)i * r->ring_size;
	uint64_t head, tail = rs->tail, stored = tail, d, got, dropped = 0;
	const char *why = NULL;

	rs->st.tid = tid;
	/* Step 2b: C1. */
	head = atomic_load_explicit(&s->head, memory_order_acquire);
	if (head - tail > r->ring_size || (head - tail) % 8)
		why = "head out of range";
	/* Step 2c: C2. */
	while (!why && tail != head) {
		uint64_t pos = tail & r->mask, n;

		n = take_record(r, i, ring + pos, head - tail,
				r->ring_size - pos, &why);
		if (!n)
			break;
		tail += n;
		/* Step 2d, early: give a quarter ring back at a time. */
		if (tail - stored >= r->ring_size / 4) {
			atomic_store_explicit(&s->tail, tail,
					      memory_order_release);
			stored = tail;
		}
	}
	got = tail - rs->tail;
	if (why) {
		note_corrupt(r, i, why, head - tail);
		tail = head;
	}
	/* Step 2d: C4. Also when nothing was read but the shared tail is not
	 * ours (a buggy process wrote it): the producer would take its ring
	 * for full until we put it right. */
	rs->tail = tail;
	if (tail != stored ||
	    atomic_load_explicit(&s->tail, memory_order_relaxed) != tail)
		atomic_store_explicit(&s->tail, tail, memory_order_release);
	/* Step 2e: C3. */
	d = atomic_load_explicit(&s->dropped, memory_order_relaxed);
	if (d > rs->dropped) {
		dropped = d - rs->dropped;
		q_note(r, i, RW_TRACE_NOTE_DROPPED, dropped, NULL);
		r->dropped += dropped;
		rs->st.dropped += dropped;
	}
	rs->dropped = d;
	/* What the thread wrote since the last poll, what was dropped
	 * counted at the thread's average record size. */
	if (dropped && rs->records)
		got += dropped * (rs->bytes / rs->records);
	if (got > rs->st.peak_bytes)
		rs->st.peak_bytes = got;
	if (dropped)
		rs->st.ring_needed = ring_for(rs->st.peak_bytes);
	if (got && gap_ns) {
		double rate = (double)got * 1e9 / (double)gap_ns;

		if (rate > rs->st.peak_rate)
			rs->st.peak_rate = rate;
	}
}

/* Step 3. */
static void read_counter(struct rw_trace_reader *r, const _Atomic uint64_t *c,
			 uint64_t *seen, enum rw_trace_note_kind kind)
{
	uint64_t v = atomic_load_explicit(c, memory_order_relaxed);

	if (v > *seen) {
		q_note(r, r->nslots, kind, v - *seen, NULL);
		r->dropped += v - *seen;
	}
	*seen = v;
}

/* Steps 1 to 3. */
static void read_all(struct rw_trace_reader *r)
{
	uint64_t now = mono_ns(), gap = now - r->last_poll_ns;

	if (gap > r->max_poll_gap_ns)
		r->max_poll_gap_ns = gap;
	r->last_poll_ns = now;
	clock_point(r);
	/* An overwriting session is read by snapshots (feed), never here:
	 * its tail means nothing and its rings are not ours to consume. */
	for (uint32_t i = 0; i < r->nslots && !r->overwrite; i++) {
		/* Step 2a. */
		int32_t tid = atomic_load_explicit(&r->slots[i].tid,
						   memory_order_acquire);

		if (tid != 0)
			read_slot(r, i, tid, gap);
	}
	read_counter(r, &r->shm->dropped_noslot, &r->noslot,
		     RW_TRACE_NOTE_NOSLOT);
	read_counter(r, &r->shm->dropped_nested, &r->nested,
		     RW_TRACE_NOTE_NESTED);
}

/* --- Delivery ------------------------------------------------------------- */

static void sink_result(struct rw_trace_reader *r, struct rw_trace_sink *s,
			int e)
{
	if (e < 0 && !s->error) {
		s->error = e;
		if (!r->error)
			r->error = e;
	}
}

static void session_info(const struct rw_trace_reader *r,
			 struct rw_trace_session_info *in)
{
	const struct rw_trace_shm *h = &r->hdr;

	memset(in, 0, sizeof(*in));
	in->pid = (int)h->pid;
	in->session = h->session;
	in->version = h->version;
	in->clock_id = r->out_clock;
	in->clock = r->out_clock == CLOCK_MONOTONIC ? "monotonic" : "realtime";
	in->source_clock = h->clock == RW_TRACE_CLOCK_TSC ? "tsc"
			   : h->clock == CLOCK_MONOTONIC  ? "monotonic"
							  : "realtime";
	in->cal_tsc = h->cal_tsc;
	in->cal_realtime = h->cal_realtime;
	in->cal_monotonic = h->cal_monotonic;
	in->tsc_hz = h->tsc_hz;
	in->meta = r->meta_list;
	in->nmeta = r->nmeta;
	in->funcs = r->funcs;
	in->nfuncs = r->nfuncs;
	in->graph = r->graph;
	in->ring_size = r->ring_size;
	in->nslots = r->nslots;
	in->overwrite = r->overwrite;
}

static void sinks_begin(struct rw_trace_reader *r)
{
	struct rw_trace_session_info in;

	if (r->begun)
		return;
	r->begun = true;
	session_info(r, &in);
	for (size_t i = 0; i < r->nsinks; i++) {
		struct rw_trace_sink *s = r->sinks[i];

		if (s->ops->begin)
			sink_result(r, s, s->ops->begin(s, &in));
	}
}

static void sinks_note(struct rw_trace_reader *r, const struct rw_trace_note *n)
{
	for (size_t i = 0; i < r->nsinks; i++) {
		struct rw_trace_sink *s = r->sinks[i];

		if (!s->error && s->ops->note)
			sink_result(r, s, s->ops->note(s, n));
	}
}

static void sinks_event(struct rw_trace_reader *r,
			const struct rw_trace_event *ev)
{
	for (size_t i = 0; i < r->nsinks; i++) {
		struct rw_trace_sink *s = r->sinks[i];

		if (!s->error && s->ops->event)
			sink_result(r, s, s->ops->event(s, ev));
	}
}

static void sinks_flush(struct rw_trace_reader *r)
{
	for (size_t i = 0; i < r->nsinks; i++) {
		struct rw_trace_sink *s = r->sinks[i];

		if (!s->error && s->ops->flush)
			sink_result(r, s, s->ops->flush(s));
	}
}

/* "name+0xOFF" for @addr: inside a function of the table, else the
 * resolver's answer, else the address. */
static void caller_name(struct rw_trace_reader *r, uint64_t addr, char *out,
			size_t size)
{
	size_t lo = 0, hi = r->nfuncs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->funcs[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && addr - r->funcs[lo - 1].addr < r->funcs[lo - 1].size) {
		snprintf(out, size, "%s+%#" PRIx64, r->funcs[lo - 1].name,
			 addr - r->funcs[lo - 1].addr);
		return;
	}
	if (r->resolve && r->resolve(r->resolve_arg, addr, out, size) && *out)
		return;
	snprintf(out, size, "%#" PRIx64, addr);
}

static uint16_t item_id(const struct qitem *it)
{
	uint16_t id;

	memcpy(&id, (const unsigned char *)(it + 1) + 4, sizeof(id));
	return id;
}

/* A function record queued (already checked). */
static void item_func(const struct qitem *it, struct rw_trace_func_rec *fr)
{
	memset(fr, 0, sizeof(*fr));
	memcpy(fr, it + 1, it->len < sizeof(*fr) ? it->len : sizeof(*fr));
}

/* Hands item @it of rs[@idx] to the sinks. */
static void deliver_item(struct rw_trace_reader *r, uint32_t idx,
			 struct qitem *it)
{
	struct rslot *rs = &r->rs[idx];
	struct rw_trace_event ev;
	uint16_t id;

	if (it->type == QI_NOTE) {
		struct qnote qn;
		struct rw_trace_note n = {
			.kind = (enum rw_trace_note_kind)it->note,
			.ns = it->ns,
			.tid = idx < r->nslots ? rs->st.tid : 0,
			.slot = idx < r->nslots ? idx : UINT32_MAX,
		};

		memcpy(&qn, it + 1, sizeof(qn));
		n.count = qn.count;
		n.why = qn.why;
		sinks_note(r, &n);
		return;
	}
	/* All but the arguments, which decode() fills. */
	memset(&ev, 0, offsetof(struct rw_trace_event, args));
	memset(&ev.func, 0, sizeof(ev) - offsetof(struct rw_trace_event, func));
	ev.ns = it->ns;
	memcpy(&ev.raw_ts, (const unsigned char *)(it + 1) + 8,
	       sizeof(ev.raw_ts));
	ev.tid = rs->st.tid;
	ev.slot = idx;
	id = item_id(it);
	if (id == RW_TRACE_FUNC_ENTRY || id == RW_TRACE_FUNC_RETURN) {
		struct rw_trace_func_rec fr;

		item_func(it, &fr);
		ev.kind = id == RW_TRACE_FUNC_ENTRY ? RW_TRACE_EV_ENTRY
						    : RW_TRACE_EV_RETURN;
		ev.func = &r->funcs[fr.func];
		ev.func_id = fr.func;
		ev.depth = fr.depth;
		ev.caller = fr.caller;
		caller_name(r, fr.caller, r->caller, sizeof(r->caller));
		ev.caller_name = r->caller;
		if (ev.kind == RW_TRACE_EV_RETURN) {
			ev.duration_ns = fr.ns;
			ev.leaf = it->leaf;
		} else {
			/* A leaf: the thread's next record is this call's
			 * return. */
			struct qitem *next = q_second(&rs->q);
			struct rw_trace_func_rec nr;

			if (next && next->type == QI_EVENT &&
			    item_id(next) == RW_TRACE_FUNC_RETURN) {
				item_func(next, &nr);
				if (nr.func == fr.func &&
				    nr.depth == fr.depth) {
					ev.leaf = true;
					ev.duration_ns = nr.ns;
					next->leaf = 1;
				}
			}
		}
	} else {
		ev.kind = RW_TRACE_EV_TP;
		/* Checked when it was queued. */
		decode(r, (const unsigned char *)(it + 1), it->len, &ev.tp,
		       ev.args);
	}
	if (it->ns < r->last_ns && !r->compat) {
		struct rw_trace_note n = {
			.kind = RW_TRACE_NOTE_LATE,
			.ns = it->ns,
			.tid = ev.tid,
			.slot = idx,
			.count = r->last_ns - it->ns,
		};

		ev.late = true;
		ev.late_ns = n.count;
		r->late++;
		rs->st.late++;
		sinks_note(r, &n);
	} else {
		r->last_ns = it->ns;
	}
	sinks_event(r, &ev);
	rs->st.events++;
	r->delivered++;
}

enum dmode {
	D_WINDOW, /* what the reorder window lets through */
	D_HOLD,	  /* everything, but graph entries still wait for their
		   * return (up to HOLD_NS) */
	D_ALL,	  /* everything */
};

/* Step 4: delivers items in ns order; at most @max events. */
static long deliver(struct rw_trace_reader *r, enum dmode mode, long max)
{
	long n = 0;

	while (r->nheap) {
		uint32_t idx = r->heap[0];
		struct queue *q = &r->rs[idx].q;
		struct qitem *it = q_head(q);
		bool force = r->queued > QUEUE_MAX;
		size_t bytes = sizeof(*it) + it->len;

		if (mode == D_WINDOW && !force &&
		    (it->ns > r->now_ns || r->now_ns - it->ns < r->window_ns))
			break;
		if (mode != D_ALL && !force && r->graph &&
		    it->type == QI_EVENT &&
		    item_id(it) == RW_TRACE_FUNC_ENTRY && !q_second(q) &&
		    it->ns + HOLD_NS > r->now_ns)
			break;
		if (it->type == QI_EVENT &&
		    ((r->limit && r->delivered >= r->limit) || n >= max))
			break;
		if (!r->begun)
			sinks_begin(r);
		deliver_item(r, idx, it);
		if (it->type == QI_EVENT)
			n++;
		q->rd += bytes;
		q->n--;
		r->queued -= bytes;
		if (!q->n)
			q->rd = q->wr = 0;
		heap_fix_top(r);
	}
	return n;
}

/* --- The pipeline --------------------------------------------------------- */

void rw_trace_sink_destroy(struct rw_trace_sink *s)
{
	if (s && s->ops && s->ops->destroy)
		s->ops->destroy(s);
}

int rw_trace_reader_add_sink(struct rw_trace_reader *r, struct rw_trace_sink *s)
{
	struct rw_trace_sink **v;

	if (!s)
		return -EINVAL;
	if (!r || r->begun || !s->ops) {
		rw_trace_sink_destroy(s);
		return -EINVAL;
	}
	v = realloc(r->sinks, (r->nsinks + 1) * sizeof(*v));
	if (!v) {
		rw_trace_sink_destroy(s);
		return -ENOMEM;
	}
	s->error = 0;
	r->sinks = v;
	r->sinks[r->nsinks++] = s;
	return 0;
}

static long pipeline_end(struct rw_trace_reader *r, long n)
{
	if (n > 0 || r->begun)
		sinks_flush(r);
	return r->error ? r->error : n;
}

long rw_trace_reader_poll(struct rw_trace_reader *r)
{
	if (!r)
		return -EINVAL;
	read_all(r);
	return pipeline_end(r, deliver(r, D_WINDOW, LONG_MAX));
}

long rw_trace_reader_feed(struct rw_trace_reader *r, uint32_t slot, int32_t tid,
			  const void *buf, size_t len)
{
	const unsigned char *b = buf;
	const char *why = NULL;
	size_t pos = 0;

	if (!r || slot >= r->nslots || (len && !buf))
		return -EINVAL;
	clock_point(r);
	r->rs[slot].st.tid = tid;
	while (pos < len) {
		uint64_t n = take_record(r, slot, b + pos, len - pos, len - pos,
					 &why);

		if (!n)
			break;
		pos += n;
	}
	if (why)
		note_corrupt(r, slot, why, len - pos);
	return pipeline_end(r, deliver(r, D_WINDOW, LONG_MAX));
}

long rw_trace_reader_flush_all(struct rw_trace_reader *r)
{
	if (!r)
		return -EINVAL;
	clock_point(r);
	return pipeline_end(r, deliver(r, D_ALL, LONG_MAX));
}

void rw_trace_reader_summary(struct rw_trace_reader *r,
			     struct rw_trace_summary *out)
{
	size_t k = 0;

	memset(out, 0, sizeof(*out));
	if (!r)
		return;
	for (uint32_t i = 0; i < r->nslots; i++) {
		struct rw_trace_thread_stats *st = &r->rs[i].st;

		if (!st->tid && !st->events && !st->dropped && !st->corrupt)
			continue;
		st->ring_needed = st->dropped ? ring_for(st->peak_bytes) : 0;
		r->sum_threads[k++] = *st;
	}
	out->events = r->delivered;
	out->dropped = r->dropped;
	out->noslot = r->noslot;
	out->nested = r->nested;
	out->corrupt = r->corrupt;
	out->late = r->late;
	out->threads = r->sum_threads;
	out->nthreads = k;
	out->ring_size = r->ring_size;
	out->max_poll_gap_ns = r->max_poll_gap_ns;
	out->window_ns = r->window_ns;
}

int rw_trace_reader_finish(struct rw_trace_reader *r)
{
	struct rw_trace_summary sum;

	if (!r)
		return -EINVAL;
	if (r->finished)
		return r->error;
	r->finished = true;
	read_all(r);
	deliver(r, D_ALL, LONG_MAX);
	sinks_begin(r);
	sinks_flush(r);
	rw_trace_reader_summary(r, &sum);
	for (size_t i = 0; i < r->nsinks; i++) {
		struct rw_trace_sink *s = r->sinks[i];

		if (s->ops->end)
			sink_result(r, s, s->ops->end(s, &sum));
	}
	return r->error;
}

/* --- Function records ----------------------------------------------------- */

void rw_trace_reader_set_funcs(struct rw_trace_reader *r,
			       const struct rw_trace_func_meta *funcs, size_t n,
			       bool graph)
{
	if (!r)
		return;
	r->funcs = funcs;
	r->nfuncs = n;
	r->graph = graph;
}

void rw_trace_reader_set_resolver(struct rw_trace_reader *r,
				  rw_trace_resolve_fn fn, void *arg)
{
	if (!r)
		return;
	r->resolve = fn;
	r->resolve_arg = arg;
}

/* --- Printing ------------------------------------------------------------- */

/*
 * Lines are built in the sink's buffer and written with one fwrite() per
 * 48 KiB or so and at the end of a poll: the reader must format events
 * faster than threads record them, and stdio's printf machinery per field
 * was the bottleneck (about 4 us per event).
 */
static void ob_flush(struct obuf *o)
{
	if (o->n)
		fwrite(o->b, 1, o->n, o->f);
	o->n = 0;
}

static void ob_mem(struct obuf *o, const void *p, size_t n)
{
	if (n > sizeof(o->b) - o->n) {
		ob_flush(o);
		if (n > sizeof(o->b)) {
			fwrite(p, 1, n, o->f);
			return;
		}
	}
	memcpy(o->b + o->n, p, n);
	o->n += n;
}

static void ob_c(struct obuf *o, char c)
{
	if (o->n == sizeof(o->b))
		ob_flush(o);
	o->b[o->n++] = c;
}

static void ob_s(struct obuf *o, const char *s)
{
	ob_mem(o, s, strlen(s));
}

static void ob_u64(struct obuf *o, uint64_t v)
{
	char t[20];
	int i = 20;

	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	ob_mem(o, t + i, (size_t)(20 - i));
}

static void ob_i64(struct obuf *o, int64_t v)
{
	if (v < 0) {
		ob_c(o, '-');
		ob_u64(o, 0 - (uint64_t)v);
	} else {
		ob_u64(o, (uint64_t)v);
	}
}

static const char hexdig[] = "0123456789abcdef";

/* 0x and the lowercase hex digits of @v, as glibc's %p prints non-NULL. */
static void ob_hex(struct obuf *o, uint64_t v)
{
	char t[18];
	int i = 18;

	do {
		t[--i] = hexdig[v & 15];
		v >>= 4;
	} while (v);
	t[--i] = 'x';
	t[--i] = '0';
	ob_mem(o, t + i, (size_t)(18 - i));
}

static void ob_fmt(struct obuf *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void ob_fmt(struct obuf *o, const char *fmt, ...)
{
	char t[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t, sizeof(t), fmt, ap);
	va_end(ap);
	if (n > 0)
		ob_mem(o, t, (size_t)n < sizeof(t) ? (size_t)n : sizeof(t) - 1);
}

/* "SEC.NNNNNNNNN" */
static void ob_ts(struct obuf *o, uint64_t ts)
{
	char t[9];
	uint64_t ns = ts % 1000000000u;

	ob_u64(o, ts / 1000000000u);
	ob_c(o, '.');
	for (int i = 8; i >= 0; i--) {
		t[i] = (char)('0' + ns % 10);
		ns /= 10;
	}
	ob_mem(o, t, 9);
}

/* As rw_tracepoint_format() prints a string. */
static void put_text_string(struct obuf *o, const unsigned char *s, size_t n)
{
	ob_c(o, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			ob_c(o, '\\');
			ob_c(o, (char)c);
		} else if (c == '\n') {
			ob_mem(o, "\\n", 2);
		} else if (c < 0x20 || c == 0x7f) {
			char t[4] = { '\\', 'x', hexdig[c >> 4],
				      hexdig[c & 15] };

			ob_mem(o, t, 4);
		} else {
			ob_c(o, (char)c);
		}
	}
	ob_c(o, '"');
}

static void put_json_string(struct obuf *o, const unsigned char *s, size_t n)
{
	size_t i = 0;

	ob_c(o, '"');
	while (i < n) {
		unsigned char c = s[i];
		size_t len;

		if (c == '"' || c == '\\') {
			ob_c(o, '\\');
			ob_c(o, (char)c);
		} else if (c == '\n') {
			ob_mem(o, "\\n", 2);
		} else if (c == '\t') {
			ob_mem(o, "\\t", 2);
		} else if (c == '\r') {
			ob_mem(o, "\\r", 2);
		} else if (c < 0x20 || c == 0x7f) {
			char t[6] = { '\\',	      'u',	     '0', '0',
				      hexdig[c >> 4], hexdig[c & 15] };

			ob_mem(o, t, 6);
		} else if (c < 0x80) {
			ob_c(o, (char)c);
		} else if ((len = utf8_len(s + i, n - i)) != 0) {
			ob_mem(o, s + i, len);
			i += len;
			continue;
		} else {
			ob_mem(o, "\\ufffd", 6);
		}
		i++;
	}
	ob_c(o, '"');
}

/* Names come from the process: escaped in JSON, control bytes replaced in
 * text. */
static void put_name(struct obuf *o, bool json, const char *s)
{
	if (json) {
		put_json_string(o, (const unsigned char *)s, strlen(s));
		return;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		ob_c(o, c < 0x20 || c == 0x7f ? '?' : (char)c);
	}
}

static void ob_spaces(struct obuf *o, unsigned n)
{
	while (n--)
		ob_c(o, ' ');
}

/* --- The text and JSON sinks ---------------------------------------------- */

static void print_tp(struct obuf *o, bool json, const struct rw_trace_event *ev)
{
	const struct rw_trace_meta *m = ev->tp;
	const struct rw_trace_arg *a = ev->args;
	bool trunc = false;

	if (!json) {
		ob_ts(o, ev->ns);
		ob_c(o, ' ');
		ob_i64(o, ev->tid);
		ob_c(o, ' ');
		ob_s(o, m->name);
		ob_c(o, ':');
	} else {
		ob_s(o, "{\"ts\":");
		ob_u64(o, ev->ns);
		ob_s(o, ",\"tid\":");
		ob_i64(o, ev->tid);
		ob_s(o, ",\"tp\":\"");
		ob_s(o, m->name);
		ob_s(o, "\",\"args\":{");
	}
	for (unsigned i = 0; i < m->nargs; i++) {
		uint64_t v = a[i].bits;
		double d;

		if (!json) {
			ob_c(o, ' ');
			ob_s(o, m->fields[i].name);
			ob_c(o, '=');
		} else {
			if (i)
				ob_c(o, ',');
			ob_c(o, '"');
			ob_s(o, m->fields[i].name);
			ob_mem(o, "\":", 2);
		}
		switch (m->fields[i].kind) {
		case RW_TRACE_KIND_SIGNED:
			ob_i64(o, (int64_t)v);
			break;
		case RW_TRACE_KIND_UNSIGNED:
			ob_u64(o, v);
			break;
		case RW_TRACE_KIND_BOOL:
			ob_s(o, v ? "true" : "false");
			break;
		case RW_TRACE_KIND_FLOAT:
			memcpy(&d, &v, sizeof(d));
			if (!json)
				ob_fmt(o, "%g", d);
			else if (isfinite(d))
				ob_fmt(o, "%.17g", d);
			else
				ob_s(o, "null");
			break;
		case RW_TRACE_KIND_STRING:
			if (a[i].flags & RW_TRACE_STR_NULL) {
				ob_s(o, json ? "null" : "(null)");
				break;
			}
			if (json) {
				put_json_string(o, a[i].s, a[i].len);
			} else {
				put_text_string(o, a[i].s, a[i].len);
				if (a[i].flags & RW_TRACE_STR_TRUNCATED)
					ob_mem(o, "...", 3);
			}
			trunc |= (a[i].flags & RW_TRACE_STR_TRUNCATED) != 0;
			break;
		default:
			if (json) {
				ob_c(o, '"');
				ob_hex(o, v);
				ob_c(o, '"');
			} else if (v) {
				ob_hex(o, v);
			} else {
				ob_s(o, "(nil)"); /* as %p prints NULL */
			}
			break;
		}
	}
	if (!json) {
		ob_c(o, '\n');
		return;
	}
	ob_c(o, '}');
	if (trunc) {
		bool first = true;

		ob_s(o, ",\"truncated\":[");
		for (unsigned i = 0; i < m->nargs; i++) {
			if (m->fields[i].kind != RW_TRACE_KIND_STRING ||
			    !(a[i].flags & RW_TRACE_STR_TRUNCATED))
				continue;
			if (!first)
				ob_c(o, ',');
			ob_c(o, '"');
			ob_s(o, m->fields[i].name);
			ob_c(o, '"');
			first = false;
		}
		ob_c(o, ']');
	}
	if (ev->late) {
		ob_s(o, ",\"late_ns\":");
		ob_u64(o, ev->late_ns);
	}
	ob_mem(o, "}\n", 2);
}

/* The duration column of the graph: "%10.3f us", or blanks. */
#define DUR_WIDTH 13
static void put_duration(struct obuf *o, uint64_t ns, bool have)
{
	if (!have) {
		ob_spaces(o, DUR_WIDTH);
		return;
	}
	ob_fmt(o, "%10.3f us", (double)ns / 1000.0);
}

/* One graph line: "TS TID DURATION |  " + indentation + @what. */
static void graph_line(struct obuf *o, const struct rw_trace_event *ev,
		       bool have_ns, const char *what)
{
	ob_ts(o, ev->ns);
	ob_c(o, ' ');
	ob_i64(o, ev->tid);
	ob_c(o, ' ');
	put_duration(o, ev->duration_ns, have_ns);
	ob_s(o, " |  ");
	ob_spaces(o, 2 * (ev->depth < 64 ? ev->depth : 64));
	if (!strcmp(what, "}")) {
		ob_s(o, "} /* ");
		put_name(o, false, ev->func->display);
		ob_s(o, " */\n");
		return;
	}
	put_name(o, false, ev->func->display);
	ob_s(o, what);
	ob_c(o, '\n');
}

static void print_func(struct obuf *o, bool json, bool graph,
		       const struct rw_trace_event *ev)
{
	bool entry = ev->kind == RW_TRACE_EV_ENTRY;

	if (json) {
		ob_s(o, "{\"ts\":");
		ob_u64(o, ev->ns);
		ob_s(o, ",\"tid\":");
		ob_i64(o, ev->tid);
		ob_s(o, entry ? ",\"event\":\"entry\",\"function\":"
			      : ",\"event\":\"return\",\"function\":");
		put_name(o, true, ev->func->display);
		ob_s(o, ",\"depth\":");
		ob_u64(o, ev->depth);
		ob_s(o, ",\"caller\":");
		put_name(o, true, ev->caller_name);
		if (!entry) {
			ob_s(o, ",\"duration_ns\":");
			ob_u64(o, ev->duration_ns);
		}
		if (ev->late) {
			ob_s(o, ",\"late_ns\":");
			ob_u64(o, ev->late_ns);
		}
		ob_mem(o, "}\n", 2);
		return;
	}
	if (!graph) {
		ob_ts(o, ev->ns);
		ob_c(o, ' ');
		ob_i64(o, ev->tid);
		ob_c(o, ' ');
		put_name(o, false, ev->func->display);
		ob_s(o, " <- ");
		put_name(o, false, ev->caller_name);
		ob_c(o, '\n');
		return;
	}
	if (entry)
		/* A leaf: its entry and its return on one line. */
		graph_line(o, ev, ev->leaf, ev->leaf ? ";" : " {");
	else if (!ev->leaf)
		graph_line(o, ev, true, "}");
}

static void print_note(struct obuf *o, bool json, const struct rw_trace_note *n)
{
	switch (n->kind) {
	case RW_TRACE_NOTE_DROPPED:
		if (json)
			ob_fmt(o,
			       "{\"ts\":%" PRIu64 ",\"dropped\":%" PRIu64
			       ",\"tid\":%d}\n",
			       n->ns, n->count, (int)n->tid);
		else
			ob_fmt(o,
			       "# rewire: %" PRIu64
			       " events dropped on thread %d\n",
			       n->count, (int)n->tid);
		break;
	case RW_TRACE_NOTE_NOSLOT:
	case RW_TRACE_NOTE_NESTED:
		if (json)
			ob_fmt(o,
			       "{\"ts\":%" PRIu64 ",\"dropped\":%" PRIu64
			       ",\"reason\":\"%s\"}\n",
			       n->ns, n->count,
			       n->kind == RW_TRACE_NOTE_NOSLOT ? "no_slot"
							       : "nested");
		else
			ob_fmt(o, "# rewire: %" PRIu64 " events dropped: %s\n",
			       n->count,
			       n->kind == RW_TRACE_NOTE_NOSLOT
				       ? "no free slot"
				       : "nested in the probe");
		break;
	case RW_TRACE_NOTE_CORRUPT:
		if (json) {
			ob_fmt(o, "{\"ts\":%" PRIu64 ",\"corrupt\":\"%s\"",
			       n->ns, n->why);
			ob_fmt(o, ",\"tid\":%d,\"skipped\":%" PRIu64 "}\n",
			       (int)n->tid, n->count);
		} else {
			ob_fmt(o, "# rewire: corrupt data on thread %d (%s), ",
			       (int)n->tid, n->why);
			ob_fmt(o, "%" PRIu64 " bytes skipped\n", n->count);
		}
		break;
	case RW_TRACE_NOTE_LATE:
		/* JSON: "late_ns" in the event itself. */
		if (!json)
			ob_fmt(o,
			       "# rewire: the next event of thread %d arrived "
			       "%" PRIu64 ".%03u us late (placed out of "
			       "order)\n",
			       (int)n->tid, n->count / 1000,
			       (unsigned)(n->count % 1000));
		break;
	}
}

static struct line_sink *line_of(struct rw_trace_sink *s)
{
	return (struct line_sink *)s;
}

/* After a write to the FILE: a negative errno if it failed. */
static int line_err(struct line_sink *l)
{
	if (!l->out.f || !ferror(l->out.f))
		return 0;
	return errno == EPIPE ? -EPIPE : errno == ENOSPC ? -ENOSPC : -EIO;
}

/* Room for the longest line (about 14 KiB, JSON). */
static int line_room(struct line_sink *l)
{
	if (l->out.n > sizeof(l->out.b) - 16 * 1024) {
		ob_flush(&l->out);
		return line_err(l);
	}
	return 0;
}

static int line_begin(struct rw_trace_sink *s,
		      const struct rw_trace_session_info *in)
{
	line_of(s)->graph = in->graph;
	return 0;
}

static int line_event(struct rw_trace_sink *s, const struct rw_trace_event *ev)
{
	struct line_sink *l = line_of(s);

	if (ev->kind == RW_TRACE_EV_TP)
		print_tp(&l->out, l->json, ev);
	else
		print_func(&l->out, l->json, l->graph, ev);
	return line_room(l);
}

static int line_note(struct rw_trace_sink *s, const struct rw_trace_note *n)
{
	struct line_sink *l = line_of(s);

	print_note(&l->out, l->json, n);
	return line_room(l);
}

static int line_flush(struct rw_trace_sink *s)
{
	struct line_sink *l = line_of(s);

	/* Whole lines, now: someone may be watching (or piping). */
	ob_flush(&l->out);
	fflush(l->out.f);
	return line_err(l);
}

static void line_destroy(struct rw_trace_sink *s)
{
	free(s);
}

static const struct rw_trace_sink_ops line_ops = {
	.begin = line_begin,
	.event = line_event,
	.note = line_note,
	.flush = line_flush,
	.destroy = line_destroy,
};

static int line_new(FILE *f, bool json, struct rw_trace_sink **out)
{
	struct line_sink *l;

	if (!out)
		return -EINVAL;
	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->base.ops = &line_ops;
	l->json = json;
	l->out.f = f;
	*out = &l->base;
	return 0;
}

int rw_trace_sink_text(FILE *f, struct rw_trace_sink **out)
{
	return f ? line_new(f, false, out) : -EINVAL;
}

int rw_trace_sink_json(FILE *f, struct rw_trace_sink **out)
{
	return f ? line_new(f, true, out) : -EINVAL;
}

/* Built without trace_ctf.c / trace_chrome.c (the tests, the benchmarks):
 * these stand in for them. */
__attribute__((weak)) int rw_trace_sink_ctf(const char *dir,
					    struct rw_trace_sink **out)
{
	(void)dir;
	if (out)
		*out = NULL;
	return -ENOSYS;
}

__attribute__((weak)) int rw_trace_sink_chrome(FILE *f,
					       struct rw_trace_sink **out)
{
	(void)f;
	if (out)
		*out = NULL;
	return -ENOSYS;
}

/* --- Draining into one FILE ----------------------------------------------- */

/*
 * rw_trace_reader_drain() and friends: a line sink of the reader's own
 * whose FILE and format are those of the call, and a merge without window
 * (what a drain reads, it prints).
 */
static long drain_into(struct rw_trace_reader *r, FILE *out, bool json,
		       long max, enum dmode mode, bool read)
{
	struct rw_trace_sink *s;
	long n;

	if (!r || !out || max <= 0)
		return 0;
	if (!r->compat) {
		if (r->nsinks || line_new(out, json, &s) ||
		    rw_trace_reader_add_sink(r, s))
			return 0;
		r->compat = line_of(s);
	}
	r->compat->json = json;
	r->compat->out.f = out;
	if (read)
		read_all(r);
	else
		clock_point(r);
	n = deliver(r, mode, max);
	/* The line sink may have stopped on an error of an earlier FILE. */
	ob_flush(&r->compat->out);
	r->compat->base.error = 0;
	r->error = 0;
	return n;
}

long rw_trace_reader_drain_max(struct rw_trace_reader *r, FILE *out, bool json,
			       long max)
{
	return drain_into(r, out, json, max, D_HOLD, true);
}

long rw_trace_reader_drain(struct rw_trace_reader *r, FILE *out, bool json)
{
	return rw_trace_reader_drain_max(r, out, json, LONG_MAX);
}

void rw_trace_reader_flush(struct rw_trace_reader *r, FILE *out, bool json)
{
	drain_into(r, out, json, LONG_MAX, D_ALL, false);
}
