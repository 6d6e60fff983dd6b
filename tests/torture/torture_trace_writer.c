/* SPDX-License-Identifier: MIT */
/*
 * `rewire trace` producer torture: the generated writers (and the generic
 * probe, for comparison) under a concurrent consumer, in normal and in
 * overwrite mode, read with the tests' own decoder of ring.h
 * (tests/common/ring_decode.h), not the rewire command's reader.
 *
 * Normal mode: NT producer threads fire tw_ev(thread, seq, string) as fast
 * as they can into small rings (4 to 16 KiB, so that they fill) while a
 * consumer drains every claimed slot (C1-C4) at random moments. Odd
 * threads fire a second tracepoint, tw_evg (another id in the same rings).
 * Rounds alternate the generated writers and the generic probe
 * (opts.generic). Oracle: per thread, seq
 * numbers come out in order and each at most once; every string is the
 * one fired (its length and bytes encode thread and seq); fired == read +
 * dropped on the thread's slot, exactly; nothing is malformed.
 *
 * Overwrite mode: the same producers into 64 KiB overwriting rings while a
 * snapshot thread copies every slot (S1-S4), slowly (a delay in the middle
 * of each copy, so that the producers write over what it copies). Oracle:
 * every snapshot decodes into whole records (framing, strings), each
 * thread's seq numbers consecutive within a snapshot and never going back
 * from one snapshot to the next; the producers never block and nothing is
 * counted dropped; a last snapshot after they stop ends at each thread's
 * last event.
 *
 * Short by default (2 rounds of each mode, 0.3 s each: writers, then the
 * generic probe); REWIRE_TORTURE_LONG=1 runs 20 rounds of 2 s.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <rewire/tracepoint.h>

#include "check.h"
#include "ctl/ring.h"
#include "ctl/trace.h"

static uint64_t copy_delay_ns;
#define RD_COPY_DELAY() copy_delay()
static void copy_delay(void);
#include "ring_decode.h"

RW_DECLARE_TRACEPOINT(tw_ev, (int, th), (long, seq), (const char *, s));
RW_DEFINE_TRACEPOINT(tw_ev, (int, th), (long, seq), (const char *, s));
RW_DECLARE_TRACEPOINT(tw_evg, (int, th), (long, seq), (const char *, s));
RW_DEFINE_TRACEPOINT(tw_evg, (int, th), (long, seq), (const char *, s));

#define NT 4

static void copy_delay(void)
{
	uint64_t t0 = rw_test_now_ns();

	while (rw_test_now_ns() - t0 < copy_delay_ns)
		;
}

/* The string of event (th, seq): seq % 300 bytes (up to 299, some cut at
 * 256), each 'a' + (th + seq) % 26. */
static size_t str_len(long seq)
{
	return (size_t)(seq % 300);
}

static char str_char(int th, long seq)
{
	return (char)('a' + (th + seq) % 26);
}

struct prod {
	pthread_t th;
	int idx;
	_Atomic pid_t tid;
	_Atomic long fired;
};

static struct prod prods[NT];
static atomic_bool stop;
static atomic_int started;

static void *prod_main(void *arg)
{
	struct prod *p = arg;
	char s[301];
	long seq = 0;

	atomic_store(&p->tid, (pid_t)syscall(SYS_gettid));
	atomic_fetch_add(&started, 1);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		size_t n = str_len(seq);

		memset(s, str_char(p->idx, seq), n);
		s[n] = '\0';
		if (p->idx & 1)
			rw_trace_tw_evg(p->idx, seq, s);
		else
			rw_trace_tw_ev(p->idx, seq, s);
		atomic_store_explicit(&p->fired, ++seq, memory_order_relaxed);
		if (seq % 4096 == 0)
			sched_yield();
	}
	return NULL;
}

/* --- Checking records ----------------------------------------------------------- */

struct view {
	long last[NT]; /* last seq seen per thread, -1 none */
	long n[NT];
	bool consecutive; /* overwrite snapshots: no gap within one */
	long snap_first[NT];
};

static int check_rec(void *arg, const unsigned char *rec, uint32_t len,
		     uint64_t pos)
{
	struct view *v = arg;
	struct rw_trace_rec r;
	struct rw_trace_str sh;
	int64_t th, seq;
	size_t want;

	(void)pos;
	memcpy(&r, rec, sizeof(r));
	if (r.nargs != 3 || len < 16 + 24) {
		fprintf(stderr, "record: nargs %u len %u\n", r.nargs, len);
		return 1;
	}
	memcpy(&th, rec + 16, 8);
	memcpy(&seq, rec + 24, 8);
	memcpy(&sh, rec + 32, 8);
	if (th < 0 || th >= NT || seq < 0) {
		fprintf(stderr, "record: thread %lld seq %lld\n", (long long)th,
			(long long)seq);
		return 1;
	}
	want = str_len(seq) > 256 ? 256 : str_len(seq);
	if (sh.len != want ||
	    sh.flags != (str_len(seq) > 256 ? RW_TRACE_STR_TRUNCATED : 0) ||
	    len != 40 + (want + 7) / 8 * 8) {
		fprintf(stderr,
			"thread %lld seq %lld: string len %u flags %u, record "
			"%u bytes\n",
			(long long)th, (long long)seq, sh.len, sh.flags, len);
		return 1;
	}
	for (size_t k = 0; k < (want + 7) / 8 * 8; k++) {
		char c = k < want ? str_char((int)th, seq) : 0;

		if ((char)rec[40 + k] != c) {
			fprintf(stderr, "thread %lld seq %lld: byte %zu\n",
				(long long)th, (long long)seq, k);
			return 1;
		}
	}
	if (seq <= v->last[th] ||
	    (v->consecutive && v->n[th] && seq != v->last[th] + 1)) {
		fprintf(stderr, "thread %lld: seq %lld after %ld\n",
			(long long)th, (long long)seq, v->last[th]);
		return 1;
	}
	if (!v->n[th])
		v->snap_first[th] = (long)seq;
	v->last[th] = (long)seq;
	v->n[th]++;
	return 0;
}

static void producers_start(void)
{
	atomic_store(&stop, false);
	atomic_store(&started, 0);
	for (int i = 0; i < NT; i++) {
		prods[i].idx = i;
		atomic_store(&prods[i].tid, 0);
		atomic_store(&prods[i].fired, 0);
		CHECK_EQ(pthread_create(&prods[i].th, NULL, prod_main,
					&prods[i]),
			 0);
	}
	while (atomic_load(&started) < NT)
		sched_yield();
}

static void producers_stop(void)
{
	atomic_store(&stop, true);
	for (int i = 0; i < NT; i++)
		CHECK_EQ(pthread_join(prods[i].th, NULL), 0);
}

static int slot_of_prod(const struct rd_map *m, int i)
{
	return rd_slot_of(m, atomic_load(&prods[i].tid));
}

/* --- Normal mode ------------------------------------------------------------------ */

static void round_normal(unsigned seed, uint64_t dur_ns, bool generic)
{
	struct rw__trace_opts o = { 0 };
	const char *pats[2] = { "tw_ev", "tw_evg" };
	size_t ring = (size_t)4096 << (seed % 3);
	struct view v;
	struct rw__trace *t;
	struct rd_map m;
	uint64_t tail[NT] = { 0 }, t0;
	long read = 0, dropped = 0, fired = 0;
	char err[256];

	memset(&v, 0, sizeof(v));
	for (int i = 0; i < NT; i++)
		v.last[i] = -1;
	o.patterns = pats;
	o.npatterns = 2;
	o.ring_bytes = ring;
	o.generic = generic;
	CHECK_OK(rw__trace_start_opts(&o, &t, err, sizeof(err)));
	CHECK_EQ(rw__trace_uses_writer(t, 0), !generic);
	rd_open(&m, rw__trace_fd(t), rw__trace_size(t));
	producers_start();
	t0 = rw_test_now_ns();
	while (rw_test_now_ns() - t0 < dur_ns) {
		for (int i = 0; i < NT; i++) {
			int s = slot_of_prod(&m, i);

			if (s >= 0)
				CHECK_EQ(rd_consume(&m, (uint32_t)s, &tail[i],
						    check_rec, &v),
					 0);
		}
		seed = seed * 1103515245u + 12345u;
		if (seed % 4 == 0)
			usleep(seed % 2000);
	}
	producers_stop();
	for (int i = 0; i < NT; i++) {
		int s = slot_of_prod(&m, i);
		long d;

		CHECK(s >= 0);
		CHECK_EQ(rd_consume(&m, (uint32_t)s, &tail[i], check_rec, &v),
			 0);
		d = (long)atomic_load(&rd_slot(&m, (uint32_t)s)->dropped);
		if (v.n[i] + d != atomic_load(&prods[i].fired)) {
			fprintf(stderr,
				"thread %d: fired %ld, read %ld, dropped %ld\n",
				i, atomic_load(&prods[i].fired), v.n[i], d);
			exit(1);
		}
		read += v.n[i];
		dropped += d;
		fired += atomic_load(&prods[i].fired);
	}
	CHECK_EQ((long)rw__trace_dropped(t), dropped);
	printf("  normal %s, %zu KiB rings: %ld fired, %ld read, %ld "
	       "dropped\n",
	       generic ? "generic" : "writers", ring >> 10, fired, read,
	       dropped);
	rd_close(&m);
	rw__trace_stop(t);
}

/* --- Overwrite mode ---------------------------------------------------------------- */

static void round_overwrite(unsigned seed, uint64_t dur_ns, bool generic)
{
	struct rw__trace_opts o = { 0 };
	const char *pats[2] = { "tw_ev", "tw_evg" };
	long prev_last[NT], snaps = 0, torn_guard = 0;
	struct rw__trace *t;
	struct rd_map m;
	uint64_t t0;
	char err[256];

	o.patterns = pats;
	o.npatterns = 2;
	o.overwrite = true;
	o.generic = generic;
	CHECK_OK(rw__trace_start_opts(&o, &t, err, sizeof(err)));
	rd_open(&m, rw__trace_fd(t), rw__trace_size(t));
	CHECK_EQ(m.h->flags, RW_TRACE_F_OVERWRITE);
	for (int i = 0; i < NT; i++)
		prev_last[i] = -1;
	producers_start();
	t0 = rw_test_now_ns();
#ifndef RW_TSAN
	/* S2 reads bytes the producers may be writing: the seqlock of
	 * ring.h, by design, which TSan reports as a race. Under TSan the
	 * snapshots are taken once the producers stop. */
	while (rw_test_now_ns() - t0 < dur_ns) {
		for (int i = 0; i < NT; i++) {
			int s = slot_of_prod(&m, i);
			struct view v;

			if (s < 0)
				continue;
			memset(&v, 0, sizeof(v));
			for (int k = 0; k < NT; k++)
				v.last[k] = -1;
			v.consecutive = true;
			seed = seed * 1103515245u + 12345u;
			copy_delay_ns = seed % 3 ? 0 : seed % 200000;
			CHECK_EQ(rd_snapshot(&m, (uint32_t)s, check_rec, &v,
					     NULL, NULL),
				 0);
			copy_delay_ns = 0;
			if (v.n[i]) {
				CHECK(v.last[i] >= prev_last[i]);
				prev_last[i] = v.last[i];
			}
			snaps++;
			torn_guard += v.n[i];
		}
	}
#else
	(void)seed;
	(void)prev_last;
	while (rw_test_now_ns() - t0 < dur_ns)
		usleep(1000);
#endif
	producers_stop();
	CHECK_EQ(rw__trace_dropped(t), 0);
	for (int i = 0; i < NT; i++) {
		int s = slot_of_prod(&m, i);
		struct view v;

		CHECK(s >= 0);
		CHECK_EQ(atomic_load(&rd_slot(&m, (uint32_t)s)->dropped), 0);
		memset(&v, 0, sizeof(v));
		for (int k = 0; k < NT; k++)
			v.last[k] = -1;
		v.consecutive = true;
		CHECK_EQ(rd_snapshot(&m, (uint32_t)s, check_rec, &v, NULL,
				     NULL),
			 0);
		CHECK_EQ(v.last[i], atomic_load(&prods[i].fired) - 1);
		CHECK(v.n[i] > 100);
	}
	printf("  overwrite %s: %ld snapshots, %ld records checked in them\n",
	       generic ? "generic" : "writers", snaps, torn_guard);
	rd_close(&m);
	rw__trace_stop(t);
}

int main(void)
{
	int rounds = (int)rw_test_scale(2, 20);
	uint64_t dur = (uint64_t)rw_test_scale(300, 2000) * 1000000ull;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int r = 0; r < rounds; r++) {
		round_normal((unsigned)r * 7919u + 1, dur, r % 2 == 1);
		round_overwrite((unsigned)r * 104729u + 3, dur, r % 2 == 1);
	}
	CHECK_OK(rw_tracepoint_synchronize_unregister());
	printf("torture_trace_writer: ok\n");
	return 0;
}
