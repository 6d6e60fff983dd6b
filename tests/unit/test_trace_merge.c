/* SPDX-License-Identifier: MIT */
/*
 * The reader's timeline (tools/rewire/trace_reader.c, trace_out.h), on
 * rings built by hand in a sealed memfd, as a traced process of any
 * version would lay them out (src/ctl/ring.h): no librewire session.
 *
 * Oracles:
 *   - merge: the events of three threads come out in ts order, each
 *     thread's in its ring order, to every sink alike;
 *   - window: an event younger than the reorder window stays queued until
 *     a later poll or flush_all; --count's limit is exact;
 *   - late: an event older than one already delivered is delivered next,
 *     flagged late by the right amount, after a LATE note, counted; the
 *     text says "arrived N us late", the JSON has "late_ns";
 *   - clock: a TSC session (clock TSC, calibration) converts each event to
 *     within a few us of clock_gettime() read around its rdtsc (aarch64:
 *     its read of CNTVCT_EL0), in
 *     CLOCK_REALTIME and in CLOCK_MONOTONIC, over polls spread in time; a
 *     CLOCK_MONOTONIC session likewise; a calibration that contradicts the
 *     clocks is overruled by the reader's own points; after more polls
 *     than the table keeps points (it is thinned), an event published
 *     long after its ts still converts within the bound;
 *   - version 1: a header of version 1 (CLOCK_REALTIME ts, bytes after
 *     session not interpreted) is read, ts printed as they are;
 *   - feed: a linear copy of records (padding included) is decoded as
 *     polled records are; damage in it is a CORRUPT note;
 *   - graph: a leaf call whose return is its thread's next record is
 *     folded even when other threads' events fall between the two;
 *   - drops: a slot's drop counter becomes a DROPPED note and per-thread
 *     counts in the summary, with a ring size that would have held them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ctl/ring.h"
#include "trace_out.h"
#include "trace_reader.h"

#define NSLOTS 4
#define RING 4096

/* --- Hand-built sessions -------------------------------------------------- */

struct fake {
	int fd;
	size_t size;
	unsigned char *map;
	struct rw_trace_shm *h;
	uint64_t head[NSLOTS];
};

static uint64_t now_of(clockid_t id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* The counters the reader converts (x86-64's TSC, aarch64's CNTVCT_EL0),
 * read as it reads them: neither early nor late. */
#if defined(__x86_64__)
#define HAVE_TSC 1
static uint64_t tsc(void)
{
	uint64_t t;

	__builtin_ia32_lfence();
	t = __builtin_ia32_rdtsc();
	__builtin_ia32_lfence();
	return t;
}
#elif defined(__aarch64__)
#define HAVE_TSC 1
static uint64_t tsc(void)
{
	uint64_t t;

	__asm__ volatile("isb; mrs %0, cntvct_el0; isb" : "=r"(t)::"memory");
	return t;
}
#endif

/* A session of @version whose ts count @clock (RW_TRACE_CLOCK_TSC or a
 * clockid). */
static void fake_new(struct fake *f, unsigned version, uint32_t clock)
{
	struct rw_trace_shm *h;

	memset(f, 0, sizeof(*f));
	f->size = rw_trace_total_size(NSLOTS, RING);
	f->fd = memfd_create("fake-trace", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(f->fd >= 0);
	CHECK_EQ(ftruncate(f->fd, (off_t)f->size), 0);
	CHECK_EQ(fcntl(f->fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	f->map = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd,
		      0);
	CHECK(f->map != MAP_FAILED);
	h = f->h = (struct rw_trace_shm *)f->map;
	memcpy(h->magic, RW_TRACE_MAGIC, sizeof(h->magic));
	h->version = version;
	h->hdr_size = RW_TRACE_SHM_HDR;
	h->nslots = NSLOTS;
	h->slot_size = sizeof(struct rw_trace_slot);
	h->ring_size = RING;
	h->data_offset = rw_trace_data_offset(NSLOTS);
	h->total_size = f->size;
	h->clock = clock;
	h->max_string = RW_TRACE_MAX_STRING;
	h->ntracepoints = 2;
	h->pid = (uint32_t)getpid();
	h->session = 1;
	if (version == 1) {
		/* Whatever a version 1 writer left after session is not
		 * read as calibration or flags. */
		memset(&h->flags, 0xa5,
		       offsetof(struct rw_trace_shm, dropped_noslot) -
			       offsetof(struct rw_trace_shm, flags));
		return;
	}
	h->subbuf_size = RING;
#ifdef HAVE_TSC
	if (clock == RW_TRACE_CLOCK_TSC) {
		uint64_t a = tsc();

		h->cal_realtime = now_of(CLOCK_REALTIME);
		h->cal_monotonic = now_of(CLOCK_MONOTONIC);
		h->cal_tsc = a + (tsc() - a) / 2;
		return;
	}
#endif
	h->cal_realtime = now_of(CLOCK_REALTIME);
	h->cal_monotonic = now_of(CLOCK_MONOTONIC);
}

static struct rw_trace_slot *fslot(struct fake *f, unsigned i)
{
	return (struct rw_trace_slot *)(f->map + RW_TRACE_SHM_HDR) + i;
}

/* Appends @len bytes at @rec to slot @i's ring (no wrap in these tests)
 * and publishes them (P1, P4, P5). */
static void put(struct fake *f, unsigned i, int32_t tid, const void *rec,
		uint32_t len)
{
	struct rw_trace_slot *s = fslot(f, i);
	unsigned char *ring = f->map + f->h->data_offset + (uint64_t)i * RING;

	CHECK(f->head[i] + len <= RING);
	atomic_store(&s->tid, tid);
	memcpy(ring + f->head[i], rec, len);
	f->head[i] += len;
	atomic_store(&s->head, f->head[i]);
}

/* tp 0: ev(long seq) */
static void put_ev(struct fake *f, unsigned i, int32_t tid, uint64_t ts,
		   long seq)
{
	unsigned char b[24];
	struct rw_trace_rec r = { 24, 0, 1, 0, ts };

	memcpy(b, &r, 16);
	memcpy(b + 16, &seq, 8);
	put(f, i, tid, b, sizeof(b));
}

static void put_func(struct fake *f, unsigned i, int32_t tid, uint64_t ts,
		     bool entry, uint32_t func, uint32_t depth, uint64_t ns)
{
	struct rw_trace_func_rec r;

	memset(&r, 0, sizeof(r));
	r.hdr.len = entry ? RW_TRACE_FUNC_ENTRY_LEN : RW_TRACE_FUNC_RETURN_LEN;
	r.hdr.id = entry ? RW_TRACE_FUNC_ENTRY : RW_TRACE_FUNC_RETURN;
	r.hdr.ts = ts;
	r.func = func;
	r.depth = depth;
	r.caller = 0x1234;
	r.ns = ns;
	put(f, i, tid, &r, r.hdr.len);
}

static void fake_free(struct fake *f)
{
	munmap(f->map, f->size);
	close(f->fd);
}

static const struct rw_trace_meta meta[1] = {
	{ .id = 0,
	  .name = "ev",
	  .nargs = 1,
	  .fields = { { "seq", "long", RW_TRACE_KIND_SIGNED } } },
};

static struct rw_trace_reader *open_reader(struct fake *f)
{
	struct rw_trace_reader *r;

	CHECK_OK(rw_trace_reader_open(f->fd, f->size, meta, 1, &r));
	return r;
}

/* --- A sink that remembers ------------------------------------------------ */

#define MAXREC 256

struct rec {
	bool note;
	int kind;
	uint64_t ns, count;
	int32_t tid;
	long seq;
	bool late, leaf;
	uint64_t late_ns;
};

struct mem_sink {
	struct rw_trace_sink base;
	struct rec r[MAXREC];
	int n;
	bool begun, ended;
	struct rw_trace_summary sum;
};

static int ms_begin(struct rw_trace_sink *s,
		    const struct rw_trace_session_info *in)
{
	struct mem_sink *m = (struct mem_sink *)s;

	CHECK(!m->begun && m->n == 0);
	CHECK(in->pid == (int)getpid());
	m->begun = true;
	return 0;
}

static int ms_event(struct rw_trace_sink *s, const struct rw_trace_event *ev)
{
	struct mem_sink *m = (struct mem_sink *)s;
	struct rec *r = &m->r[m->n++];

	CHECK(m->begun && m->n <= MAXREC);
	memset(r, 0, sizeof(*r));
	r->kind = (int)ev->kind;
	r->ns = ev->ns;
	r->tid = ev->tid;
	r->late = ev->late;
	r->late_ns = ev->late_ns;
	r->leaf = ev->leaf;
	if (ev->kind == RW_TRACE_EV_TP) {
		CHECK(!strcmp(ev->tp->name, "ev"));
		CHECK(ev->args[0].kind == RW_TRACE_KIND_SIGNED);
		r->seq = (long)ev->args[0].bits;
	}
	return 0;
}

static int ms_note(struct rw_trace_sink *s, const struct rw_trace_note *n)
{
	struct mem_sink *m = (struct mem_sink *)s;
	struct rec *r = &m->r[m->n++];

	CHECK(m->begun && m->n <= MAXREC);
	memset(r, 0, sizeof(*r));
	r->note = true;
	r->kind = (int)n->kind;
	r->tid = n->tid;
	r->count = n->count;
	r->ns = n->ns;
	return 0;
}

static int ms_end(struct rw_trace_sink *s, const struct rw_trace_summary *sum)
{
	struct mem_sink *m = (struct mem_sink *)s;

	CHECK(!m->ended);
	m->ended = true;
	m->sum = *sum;
	return 0;
}

static void ms_destroy(struct rw_trace_sink *s)
{
	(void)s; /* static storage */
}

static const struct rw_trace_sink_ops ms_ops = {
	.begin = ms_begin,
	.event = ms_event,
	.note = ms_note,
	.end = ms_end,
	.destroy = ms_destroy,
};

static struct mem_sink *mem_sink(struct rw_trace_reader *r)
{
	static struct mem_sink m[8];
	static int next;
	struct mem_sink *s = &m[next++ % 8];

	memset(s, 0, sizeof(*s));
	s->base.ops = &ms_ops;
	CHECK_OK(rw_trace_reader_add_sink(r, &s->base));
	return s;
}

/* Events only, of @m, into @out; returns how many. */
static int events_of(const struct mem_sink *m, struct rec *out)
{
	int n = 0;

	for (int i = 0; i < m->n; i++)
		if (!m->r[i].note)
			out[n++] = m->r[i];
	return n;
}

/* --- Tests ---------------------------------------------------------------- */

/* Three threads whose events interleave in time; a fourth slot unused. */
static void test_merge(void)
{
	struct fake f;
	struct rw_trace_reader *r;
	struct mem_sink *m;
	struct rec ev[MAXREC];
	uint64_t base = now_of(CLOCK_MONOTONIC) - 2000000000ull;
	long last[3] = { -1, -1, -1 };
	int n;

	fake_new(&f, 2, CLOCK_MONOTONIC);
	r = open_reader(&f);
	CHECK_OK(rw_trace_reader_set_clock(r, CLOCK_MONOTONIC));
	m = mem_sink(r);
	/* Thread k fires at base + 1000 * (3 * seq + k): round robin in
	 * time, but each ring is written as a block. */
	for (unsigned k = 0; k < 3; k++)
		for (long seq = 0; seq < 20; seq++)
			put_ev(&f, k, 100 + (int)k,
			       base + 1000 * (uint64_t)(3 * seq + k), seq);
	CHECK_EQ(rw_trace_reader_poll(r), 60);
	n = events_of(m, ev);
	CHECK_EQ(n, 60);
	for (int i = 0; i < n; i++) {
		int k = ev[i].tid - 100;

		CHECK(k >= 0 && k < 3);
		/* One timeline: exactly the interleaving of the ts. */
		CHECK_EQ(ev[i].ns, base + 1000 * (uint64_t)i);
		CHECK_EQ(i % 3, k);
		CHECK(ev[i].seq == last[k] + 1);
		last[k] = ev[i].seq;
		CHECK(!ev[i].late);
	}
	CHECK_OK(rw_trace_reader_finish(r));
	CHECK(m->ended && m->sum.events == 60 && m->sum.late == 0);
	CHECK_EQ(m->sum.nthreads, 3);
	rw_trace_reader_close(r);
	fake_free(&f);
	printf("merge: ok\n");
}

/* The window holds young events back; flush_all and the limit. */
static void test_window(void)
{
	struct fake f;
	struct rw_trace_reader *r;
	struct mem_sink *m;
	uint64_t now = now_of(CLOCK_MONOTONIC);

	fake_new(&f, 2, CLOCK_MONOTONIC);
	r = open_reader(&f);
	CHECK_OK(rw_trace_reader_set_clock(r, CLOCK_MONOTONIC));
	rw_trace_reader_set_window(r, 100000000ull);
	m = mem_sink(r);
	put_ev(&f, 0, 7, now - 500000000ull, 0);  /* 500 ms old: out */
	put_ev(&f, 1, 8, now + 5000000000ull, 1); /* 5 s ahead: held */
	put_ev(&f, 0, 7, now + 6000000000ull, 2);
	CHECK_EQ(rw_trace_reader_poll(r), 1);
	CHECK_EQ(rw_trace_reader_poll(r), 0);
	CHECK_EQ(rw_trace_reader_events(r), 1);
	CHECK_EQ(rw_trace_reader_flush_all(r), 2);
	CHECK_EQ(m->n, 3);
	CHECK(m->r[1].seq == 1 && m->r[2].seq == 2);
	rw_trace_reader_close(r);
	fake_free(&f);

	/* --count: exactly the first N of the timeline. */
	fake_new(&f, 2, CLOCK_MONOTONIC);
	r = open_reader(&f);
	CHECK_OK(rw_trace_reader_set_clock(r, CLOCK_MONOTONIC));
	rw_trace_reader_set_limit(r, 5);
	m = mem_sink(r);
	for (long seq = 0; seq < 8; seq++)
		put_ev(&f, (unsigned)seq % 2, 7 + (int)seq % 2,
		       now - 1000000000ull + (uint64_t)seq, seq);
	CHECK_EQ(rw_trace_reader_poll(r), 5);
	CHECK_OK(rw_trace_reader_finish(r));
	CHECK_EQ(rw_trace_reader_events(r), 5);
	CHECK_EQ(m->n, 5);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(m->r[i].seq, i);
	rw_trace_reader_close(r);
	fake_free(&f);
	printf("window: ok\n");
}

/* An event that comes after the window let a later one through. */
static void test_late(void)
{
	struct fake f;
	struct rw_trace_reader *r;
	struct mem_sink *m;
	struct rw_trace_sink *text, *json;
	char *tbuf = NULL, *jbuf = NULL;
	size_t tlen = 0, jlen = 0;
	FILE *tf = open_memstream(&tbuf, &tlen);
	FILE *jf = open_memstream(&jbuf, &jlen);
	uint64_t t0 = now_of(CLOCK_MONOTONIC) - 3000000000ull;
	struct rw_trace_summary sum;
	char want[128];

	CHECK(tf && jf);
	fake_new(&f, 2, CLOCK_MONOTONIC);
	r = open_reader(&f);
	CHECK_OK(rw_trace_reader_set_clock(r, CLOCK_MONOTONIC));
	m = mem_sink(r);
	CHECK_OK(rw_trace_sink_text(tf, &text));
	CHECK_OK(rw_trace_reader_add_sink(r, text));
	CHECK_OK(rw_trace_sink_json(jf, &json));
	CHECK_OK(rw_trace_reader_add_sink(r, json));
	put_ev(&f, 0, 11, t0 + 1000000, 0);
	put_ev(&f, 0, 11, t0 + 2000000, 1);
	CHECK_EQ(rw_trace_reader_poll(r), 2);
	/* Thread 12 publishes an event 1.5 ms older than the last one
	 * written (it was preempted longer than the window). */
	put_ev(&f, 1, 12, t0 + 500000, 2);
	put_ev(&f, 0, 11, t0 + 3000000, 3);
	CHECK_EQ(rw_trace_reader_poll(r), 2);
	CHECK_OK(rw_trace_reader_finish(r));
	CHECK_EQ(m->n, 5);
	CHECK(m->r[2].note && m->r[2].kind == RW_TRACE_NOTE_LATE &&
	      m->r[2].tid == 12 && m->r[2].count == 1500000);
	CHECK(!m->r[3].note && m->r[3].seq == 2 && m->r[3].late &&
	      m->r[3].late_ns == 1500000);
	CHECK(!m->r[4].late && m->r[4].seq == 3);
	rw_trace_reader_summary(r, &sum);
	CHECK_EQ(sum.late, 1);
	CHECK(fclose(tf) == 0 && fclose(jf) == 0);
	CHECK(strstr(tbuf, "# rewire: the next event of thread 12 arrived "
			   "1500.000 us late"));
	snprintf(want, sizeof(want),
		 "{\"ts\":%llu,\"tid\":12,\"tp\":\"ev\",\"args\":{\"seq\":2},"
		 "\"late_ns\":1500000}\n",
		 (unsigned long long)(t0 + 500000));
	CHECK(strstr(jbuf, want));
	/* Integer ns everywhere in JSON, the same ns as the text. */
	snprintf(want, sizeof(want), "{\"ts\":%llu,\"tid\":11,",
		 (unsigned long long)(t0 + 3000000));
	CHECK(strstr(jbuf, want));
	snprintf(want, sizeof(want), "%llu.%09llu 11 ev: seq=3\n",
		 (unsigned long long)((t0 + 3000000) / 1000000000),
		 (unsigned long long)((t0 + 3000000) % 1000000000));
	CHECK(strstr(tbuf, want));
	rw_trace_reader_close(r);
	free(tbuf);
	free(jbuf);
	fake_free(&f);
	printf("late: ok\n");
}

/*
 * Events whose ts the test takes between two clock_gettime() reads, spread
 * over @polls polls about 20 ms apart: each must convert to within @tol ns
 * of its bracket, in the output clock @out.
 */
static void check_clock(uint32_t src, clockid_t out, int polls, uint64_t tol,
			bool bogus_cal, unsigned pause_us)
{
	struct fake f;
	struct rw_trace_reader *r;
	struct mem_sink *m;
	struct rec ev[MAXREC];
	uint64_t lo[64], hi[64], old_ts = 0;
	int n = 0, old = -1;

	fake_new(&f, 2, src);
	if (bogus_cal) {
		/* A calibration an hour in the future: the reader's own
		 * points overrule it. */
		f.h->cal_realtime += 3600000000000ull;
		f.h->cal_monotonic += 3600000000000ull;
	}
	r = open_reader(&f);
	CHECK_OK(rw_trace_reader_set_clock(r, out));
	rw_trace_reader_set_window(r, 0);
	m = mem_sink(r);
	for (int p = 0; p < polls; p++) {
		/* At most 20 rounds of events (the rings do not wrap here),
		 * spread over the polls. */
		for (int k = 0; k < 2 && p % (polls > 20 ? polls / 20 : 1) == 0;
		     k++, n++) {
			uint64_t ts;

			CHECK(n < 64);
			lo[n] = now_of(out);
#ifdef HAVE_TSC
			ts = src == RW_TRACE_CLOCK_TSC ? tsc()
						       : now_of((clockid_t)src);
#else
			ts = now_of((clockid_t)src);
#endif
			hi[n] = now_of(out);
			put_ev(&f, (unsigned)k, 20 + k, ts, n);
		}
		if (p == 0) {
			/* An event whose thread publishes it only at the
			 * end (preempted all along): converted last, with
			 * the table as it is then. */
			old = n++;
			lo[old] = now_of(out);
#ifdef HAVE_TSC
			old_ts = src == RW_TRACE_CLOCK_TSC
					 ? tsc()
					 : now_of((clockid_t)src);
#else
			old_ts = now_of((clockid_t)src);
#endif
			hi[old] = now_of(out);
		}
		usleep(pause_us);
		CHECK(rw_trace_reader_poll(r) >= 0);
	}
	put_ev(&f, 2, 29, old_ts, old);
	CHECK_OK(rw_trace_reader_finish(r));
	CHECK_EQ(events_of(m, ev), n);
	for (int i = 0; i < n; i++) {
		long s = ev[i].seq;

		if (s == old)
			CHECK(ev[i].late); /* and a LATE note before it */
		if (ev[i].ns + tol < lo[s] || ev[i].ns > hi[s] + tol) {
			fprintf(stderr,
				"clock %u -> %d: event %ld at %llu, read "
				"between %llu and %llu\n",
				src, (int)out, s, (unsigned long long)ev[i].ns,
				(unsigned long long)lo[s],
				(unsigned long long)hi[s]);
			exit(1);
		}
	}
	rw_trace_reader_close(r);
	fake_free(&f);
}

static void test_clock(void)
{
	/* 20 us: generous for a busy VM; a wrong calibration or a
	 * frequency off by 0.1% is far outside it over 300 ms. */
	const uint64_t tol = 20000;

#ifdef HAVE_TSC
	check_clock(RW_TRACE_CLOCK_TSC, CLOCK_REALTIME, 15, tol, false, 20000);
	check_clock(RW_TRACE_CLOCK_TSC, CLOCK_MONOTONIC, 15, tol, false, 20000);
	check_clock(RW_TRACE_CLOCK_TSC, CLOCK_REALTIME, 3, tol, true, 20000);
	/* More polls than the table keeps points: it is thinned. */
	check_clock(RW_TRACE_CLOCK_TSC, CLOCK_REALTIME, 400, tol, false, 200);
#endif
	check_clock(CLOCK_MONOTONIC, CLOCK_REALTIME, 5, tol, false, 20000);
	check_clock(CLOCK_MONOTONIC, CLOCK_REALTIME, 3, tol, true, 20000);
	check_clock(CLOCK_MONOTONIC, CLOCK_MONOTONIC, 2, 0, false, 20000);
	printf("clock: ok\n");
}

/* A version 1 header: CLOCK_REALTIME ts, printed as they are. */
static void test_v1(void)
{
	struct fake f;
	struct rw_trace_reader *r;
	char *buf = NULL;
	size_t len = 0;
	FILE *o = open_memstream(&buf, &len);
	uint64_t ts = now_of(CLOCK_REALTIME) - 1000000000ull;

	CHECK(o);
	fake_new(&f, 1, CLOCK_REALTIME);
	put_ev(&f, 0, 31, ts, 5);
	r = open_reader(&f);
	CHECK_EQ(rw_trace_reader_drain(r, o, true), 1);
	CHECK(fclose(o) == 0);
	{
		char want[96];

		snprintf(want, sizeof(want),
			 "{\"ts\":%llu,\"tid\":31,\"tp\":\"ev\",\"args\":{"
			 "\"seq\":5}}\n",
			 (unsigned long long)ts);
		if (strcmp(buf, want)) {
			fprintf(stderr, "got %s want %s", buf, want);
			exit(1);
		}
	}
	rw_trace_reader_close(r);
	free(buf);
	/* A version 1 ring is CLOCK_REALTIME or nothing. */
	f.h->clock = CLOCK_MONOTONIC;
	CHECK_EQ(rw_trace_reader_open(f.fd, f.size, meta, 1, &r), -EBADMSG);
	fake_free(&f);
	printf("v1: ok\n");
}

/* feed(): a snapshot's linear copy. */
static void test_feed(void)
{
	struct fake f;
	struct rw_trace_reader *r;
	struct mem_sink *m;
	unsigned char buf[256];
	size_t n = 0;
	uint64_t t = now_of(CLOCK_MONOTONIC) - 1000000000ull;
	struct rw_trace_rec pad = { 16, RW_TRACE_PAD, 0, 0, 0 };

	fake_new(&f, 2, CLOCK_MONOTONIC);
	r = open_reader(&f);
	CHECK_OK(rw_trace_reader_set_clock(r, CLOCK_MONOTONIC));
	m = mem_sink(r);
	for (long seq = 0; seq < 3; seq++) {
		struct rw_trace_rec h = { 24, 0, 1, 0, t + (uint64_t)seq };

		memcpy(buf + n, &h, 16);
		memcpy(buf + n + 16, &seq, 8);
		n += 24;
		if (seq == 1) {
			memcpy(buf + n, &pad, 16);
			n += 16;
		}
	}
	CHECK_EQ(rw_trace_reader_feed(r, 2, 77, buf, n), 3);
	/* Damage: a record whose length leaves the buffer. */
	buf[0] = 200;
	CHECK_EQ(rw_trace_reader_feed(r, 2, 77, buf, n), 0);
	CHECK_EQ(rw_trace_reader_feed(r, NSLOTS, 77, buf, n), -EINVAL);
	CHECK(rw_trace_reader_flush_all(r) >= 0);
	CHECK_EQ(m->n, 4);
	CHECK(m->r[0].tid == 77 && m->r[2].seq == 2);
	CHECK(m->r[3].note && m->r[3].kind == RW_TRACE_NOTE_CORRUPT &&
	      m->r[3].count == n);
	rw_trace_reader_close(r);
	fake_free(&f);
	printf("feed: ok\n");
}

/* Graph: a leaf folded across another thread's event. */
static void test_graph(void)
{
	static const struct rw_trace_func_meta funcs[1] = {
		{ .addr = 0x1000, .size = 0x100, .name = "f", .display = "f()" }
	};
	struct fake f;
	struct rw_trace_reader *r;
	char *buf = NULL;
	size_t len = 0;
	FILE *o = open_memstream(&buf, &len);
	struct rw_trace_sink *text;
	uint64_t t = now_of(CLOCK_MONOTONIC) - 1000000000ull;
	const char *a, *b;

	CHECK(o);
	fake_new(&f, 2, CLOCK_MONOTONIC);
	r = open_reader(&f);
	CHECK_OK(rw_trace_reader_set_clock(r, CLOCK_MONOTONIC));
	rw_trace_reader_set_funcs(r, funcs, 1, true);
	CHECK_OK(rw_trace_sink_text(o, &text));
	CHECK_OK(rw_trace_reader_add_sink(r, text));
	put_func(&f, 0, 41, t + 100, true, 0, 0, 0);
	put_ev(&f, 1, 42, t + 200, 9);
	put_func(&f, 0, 41, t + 300, false, 0, 0, 200);
	CHECK_EQ(rw_trace_reader_poll(r), 3);
	CHECK_OK(rw_trace_reader_finish(r));
	CHECK(fclose(o) == 0);
	a = strstr(buf, " 41      0.200 us |  f();\n");
	b = strstr(buf, " 42 ev: seq=9\n");
	if (!a || !b || a > b || strchr(b, '}')) {
		fprintf(stderr, "graph output:\n%s", buf);
		exit(1);
	}
	rw_trace_reader_close(r);
	free(buf);
	fake_free(&f);
	printf("graph: ok\n");
}

/* Drops: per thread, and what ring would have held them. */
static void test_drops(void)
{
	struct fake f;
	struct rw_trace_reader *r;
	struct mem_sink *m;
	struct rw_trace_summary sum;
	uint64_t t = now_of(CLOCK_MONOTONIC) - 1000000000ull;

	fake_new(&f, 2, CLOCK_MONOTONIC);
	r = open_reader(&f);
	CHECK_OK(rw_trace_reader_set_clock(r, CLOCK_MONOTONIC));
	m = mem_sink(r);
	for (long seq = 0; seq < 100; seq++)
		put_ev(&f, 0, 51, t + (uint64_t)seq, seq);
	atomic_store(&fslot(&f, 0)->dropped, 400);
	atomic_store(&f.h->dropped_noslot, 3);
	CHECK_EQ(rw_trace_reader_poll(r), 100);
	CHECK_OK(rw_trace_reader_finish(r));
	rw_trace_reader_summary(r, &sum);
	CHECK_EQ(sum.dropped, 403);
	CHECK_EQ(sum.noslot, 3);
	CHECK_EQ(sum.nthreads, 1);
	CHECK(sum.threads[0].tid == 51 && sum.threads[0].dropped == 400 &&
	      sum.threads[0].events == 100);
	/* 100 records of 24 bytes read, 400 dropped at that size: 12000
	 * bytes between two reads; with half as much again to spare, a
	 * 32 KiB ring. */
	CHECK_EQ(sum.threads[0].peak_bytes, 12000);
	CHECK_EQ(sum.threads[0].ring_needed, 32768);
	CHECK(m->r[100].note && m->r[100].kind == RW_TRACE_NOTE_DROPPED &&
	      m->r[100].count == 400 && m->r[100].tid == 51);
	rw_trace_reader_close(r);
	fake_free(&f);
	printf("drops: ok\n");
}

int main(void)
{
	test_merge();
	test_window();
	test_late();
	test_clock();
	test_v1();
	test_feed();
	test_graph();
	test_drops();
	printf("PASS\n");
	return 0;
}
