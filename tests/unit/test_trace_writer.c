/* SPDX-License-Identifier: MIT */
/*
 * The producer of `rewire trace` (src/ctl/trace.c) against ring.h version
 * 2, read with the tests' own decoder (tests/common/ring_decode.h), not
 * the rewire command's reader:
 *
 *   - clocks: with REWIRE_TRACE_CLOCK=monotonic every ts lies between two
 *     CLOCK_MONOTONIC reads around the event; with =tsc (x86-64, aarch64)
 *     between two reads of the counter (rdtsc, CNTVCT_EL0); the header
 *     says which, and its calibration brackets the session's start (on
 *     aarch64 its tsc_hz is CNTFRQ_EL0, and the counter is the automatic
 *     choice); opts.clock overrides, a bad one is refused;
 *   - generated writers: two sessions on the same tracepoints, one with
 *     the writers and one with the generic probe, record the same bytes
 *     (all but ts) for every kind of argument: signed, unsigned, bool,
 *     float, pointer, strings NULL, empty, short, 255, 256 and 257+ bytes
 *     (cut, flagged), strings that end at the last byte of a page before
 *     an unmapped page, 0 and 8 arguments; the string records also match
 *     what ring.h says they hold, byte for byte;
 *   - the writers pad, record and drop where the generic probe does: the
 *     heads and drop counts of a writer session and a generic one stay
 *     equal event after event, through wraps and a full ring;
 *   - a tracepoint of a program built with an old header (abi 0, or 1:
 *     an older writer interface) is recorded through the generic probe;
 *     its recorder is never called;
 *   - sub-buffers: no record straddles a multiple of subbuf_size, in an
 *     overwrite session (4 KiB sub-buffers) and a normal one;
 *   - overwrite mode: with nobody reading, a million events into a 64 KiB
 *     ring finish, nothing is counted dropped, and S1-S4 over the ring
 *     give whole records, the newest ones, consecutive;
 *   - fork: a child's writer records nothing into the parent's rings.
 */
#include <rewire/tracepoint.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "ctl/ring.h"
#include "ctl/trace.h"
#include "ring_decode.h"
#include "trace_writer.h"

RW_DECLARE_TRACEPOINT(tw_seq, (long, seq), (const char *, s));
RW_DEFINE_TRACEPOINT(tw_seq, (long, seq), (const char *, s));
RW_DECLARE_TRACEPOINT(tw_none);
RW_DEFINE_TRACEPOINT(tw_none);
RW_DECLARE_TRACEPOINT(tw_str, (const char *, s));
RW_DEFINE_TRACEPOINT(tw_str, (const char *, s));
/* Numbers after the last string (its long copy commits out of line). */
RW_DECLARE_TRACEPOINT(tw_tail, (const char *, s), (long, x), (int, y));
RW_DEFINE_TRACEPOINT(tw_tail, (const char *, s), (long, x), (int, y));
enum tw_color { TW_RED = -1, TW_GREEN = 7 };
RW_DECLARE_TRACEPOINT(tw_eight, (signed char, c), (unsigned short, us),
		      (long long, ll), (bool, b), (double, d),
		      (const char *, s1), (void *, p), (char *, s2));
RW_DEFINE_TRACEPOINT(tw_eight, (signed char, c), (unsigned short, us),
		     (long long, ll), (bool, b), (double, d),
		     (const char *, s1), (void *, p), (char *, s2));
RW_DECLARE_TRACEPOINT(tw_mixed, (float, f), (enum tw_color, col),
		      (unsigned long, ul), (int, i), (const char *, s));
RW_DEFINE_TRACEPOINT(tw_mixed, (float, f), (enum tw_color, col),
		     (unsigned long, ul), (int, i), (const char *, s));

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The backends with a counter (rw__arch_tsc_present()). */
#if defined(RW_BACKEND_X86_64) || defined(RW_BACKEND_AARCH64)
#define HAVE_TSC 1
#endif
#ifdef RW_BACKEND_X86_64
static uint64_t tsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}
#elif defined(RW_BACKEND_AARCH64)
/* isb on both sides: the read is neither early nor late with respect to
 * the event between two of them. */
static uint64_t tsc(void)
{
	uint64_t t;

	__asm__ volatile("isb; mrs %0, cntvct_el0; isb" : "=r"(t)::"memory");
	return t;
}

static uint64_t cntfrq(void)
{
	uint64_t f;

	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(f));
	return f & 0xffffffffu;
}
#endif

static struct rw__trace *start(struct rw__trace_opts *o, const char *pat)
{
	const char *pats[1] = { pat };
	struct rw__trace *t = NULL;
	char err[512] = "";
	int e;

	if (!o->patterns) {
		o->patterns = pats;
		o->npatterns = 1;
	}
	e = rw__trace_start_opts(o, &t, err, sizeof(err));
	if (e) {
		fprintf(stderr, "rw__trace_start_opts(%s): %d %s\n",
			o->patterns[0], e, err);
		exit(1);
	}
	o->patterns = NULL;
	return t;
}

/* --- Collecting records ---------------------------------------------------- */

struct recs {
	unsigned char **rec;
	uint32_t *len;
	size_t n, cap;
};

static int collect(void *arg, const unsigned char *rec, uint32_t len,
		   uint64_t pos)
{
	struct recs *c = arg;

	(void)pos;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->rec = realloc(c->rec, c->cap * sizeof(*c->rec));
		c->len = realloc(c->len, c->cap * sizeof(*c->len));
		CHECK(c->rec && c->len);
	}
	c->rec[c->n] = malloc(len);
	CHECK(c->rec[c->n]);
	memcpy(c->rec[c->n], rec, len);
	c->len[c->n++] = len;
	return 0;
}

static void recs_free(struct recs *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->rec[i]);
	free(c->rec);
	free(c->len);
	memset(c, 0, sizeof(*c));
}

/* Every record of this thread's slot of @t, drained (C1-C4). */
static void drain_mine(struct rw__trace *t, struct recs *c)
{
	struct rd_map m;
	uint64_t tail;
	int i;

	rd_open(&m, rw__trace_fd(t), rw__trace_size(t));
	i = rd_slot_of(&m, my_tid());
	CHECK(i >= 0);
	tail = atomic_load(&rd_slot(&m, (uint32_t)i)->tail);
	CHECK_EQ(rd_consume(&m, (uint32_t)i, &tail, collect, c), 0);
	CHECK_EQ(atomic_load(&rd_slot(&m, (uint32_t)i)->dropped), 0);
	rd_close(&m);
}

static uint64_t rec_ts(const unsigned char *rec)
{
	struct rw_trace_rec r;

	memcpy(&r, rec, sizeof(r));
	return r.ts;
}

/* --- Clocks ------------------------------------------------------------------ */

/* The header of @t (a copy of its constant part). */
static struct rw_trace_shm header_of(const struct rw__trace *t)
{
	struct rw_trace_shm h;
	struct rd_map m;

	rd_open(&m, rw__trace_fd(t), rw__trace_size(t));
	memcpy(&h, m.h, offsetof(struct rw_trace_shm, dropped_noslot));
	rd_close(&m);
	return h;
}

/* A session in the clock @env asks for; events stamped between reads of
 * the clock the header names. */
static void check_clock(const char *env, unsigned want)
{
	struct rw__trace_opts o = { 0 };
	uint64_t rt0, rt1, mono0, mono1, before[3], after[3];
	struct rw_trace_shm h;
	struct rw__trace *t;
	struct recs c = { 0 };

	if (env)
		CHECK_EQ(setenv("REWIRE_TRACE_CLOCK", env, 1), 0);
	else
		CHECK_EQ(unsetenv("REWIRE_TRACE_CLOCK"), 0);
	rt0 = clock_ns(CLOCK_REALTIME);
	mono0 = clock_ns(CLOCK_MONOTONIC);
	t = start(&o, "tw_seq");
	mono1 = clock_ns(CLOCK_MONOTONIC);
	rt1 = clock_ns(CLOCK_REALTIME);
	h = header_of(t);
	CHECK_EQ(h.version, RW_TRACE_VERSION);
	CHECK_EQ(h.clock, want);
	CHECK_EQ(rw__trace_clock(t), want);
	CHECK_EQ(h.flags, 0);
	CHECK_EQ(h.subbuf_size, h.ring_size);
	CHECK(h.cal_realtime >= rt0 && h.cal_realtime <= rt1);
	CHECK(h.cal_monotonic >= mono0 && h.cal_monotonic <= mono1);
	for (int i = 0; i < 3; i++) {
#ifdef HAVE_TSC
		before[i] = want == RW_TRACE_CLOCK_TSC
				    ? tsc()
				    : clock_ns(CLOCK_MONOTONIC);
		rw_trace_tw_seq(i, "x");
		after[i] = want == RW_TRACE_CLOCK_TSC
				   ? tsc()
				   : clock_ns(CLOCK_MONOTONIC);
#else
		before[i] = clock_ns(CLOCK_MONOTONIC);
		rw_trace_tw_seq(i, "x");
		after[i] = clock_ns(CLOCK_MONOTONIC);
#endif
	}
	drain_mine(t, &c);
	CHECK_EQ(c.n, 3);
	for (int i = 0; i < 3; i++) {
		uint64_t ts = rec_ts(c.rec[i]);

		if (ts < before[i] || ts > after[i]) {
			fprintf(stderr,
				"clock %s: ts %llu not in [%llu, %llu]\n",
				env ? env : "(auto)", (unsigned long long)ts,
				(unsigned long long)before[i],
				(unsigned long long)after[i]);
			exit(1);
		}
	}
	if (want == RW_TRACE_CLOCK_TSC) {
		CHECK(h.cal_tsc != 0);
		CHECK(h.cal_tsc <= before[0]);
		printf("  tsc: cal_tsc %llu, tsc_hz %llu\n",
		       (unsigned long long)h.cal_tsc,
		       (unsigned long long)h.tsc_hz);
#ifdef RW_BACKEND_AARCH64
		/* The frequency is the one the machine says. */
		CHECK_EQ(h.tsc_hz, cntfrq());
#endif
	} else {
		CHECK_EQ(h.cal_tsc, 0);
		CHECK_EQ(h.tsc_hz, 0);
	}
	recs_free(&c);
	rw__trace_stop(t);
	unsetenv("REWIRE_TRACE_CLOCK");
}

static void test_clock_monotonic(void)
{
	check_clock("monotonic", CLOCK_MONOTONIC);
}

static void test_clock_tsc(void)
{
#ifdef HAVE_TSC
	check_clock("tsc", RW_TRACE_CLOCK_TSC);
#else
	/* No counter on this backend: the monotonic clock. */
	check_clock("tsc", CLOCK_MONOTONIC);
#endif
}

static void test_clock_choice(void)
{
	struct rw__trace_opts o = { 0 };
	const char *pats[1] = { "tw_seq" };
	struct rw__trace *t = NULL;
	char err[256];
	unsigned want_auto = CLOCK_MONOTONIC;

#ifdef RW_BACKEND_X86_64
	{
		/* What the machine says, read here independently. */
		FILE *f = fopen("/proc/cpuinfo", "r");
		char line[8192];
		bool c = false, n = false;

		while (f && fgets(line, sizeof(line), f)) {
			if (strncmp(line, "flags", 5))
				continue;
			c = strstr(line, " constant_tsc") != NULL;
			n = strstr(line, " nonstop_tsc") != NULL;
			break;
		}
		if (f)
			fclose(f);
		if (c && n)
			want_auto = RW_TRACE_CLOCK_TSC;
	}
#elif defined(RW_BACKEND_AARCH64)
	/* The generic timer's count is invariant by the architecture. */
	want_auto = RW_TRACE_CLOCK_TSC;
#endif
	/* Auto: the TSC where it is invariant. A machine whose CPUID says
	 * invariant without the cpuinfo flags also gets the TSC. */
	unsetenv("REWIRE_TRACE_CLOCK");
	t = start(&o, "tw_seq");
	if (want_auto == RW_TRACE_CLOCK_TSC)
		CHECK_EQ(rw__trace_clock(t), RW_TRACE_CLOCK_TSC);
	printf("  auto: %s\n",
	       rw__trace_clock(t) == RW_TRACE_CLOCK_TSC ? "tsc" : "monotonic");
	rw__trace_stop(t);
	/* The options win over the environment. */
	setenv("REWIRE_TRACE_CLOCK", "tsc", 1);
	o.clock = CLOCK_MONOTONIC;
	t = start(&o, "tw_seq");
	CHECK_EQ(rw__trace_clock(t), CLOCK_MONOTONIC);
	CHECK_EQ(header_of(t).clock, CLOCK_MONOTONIC);
	rw__trace_stop(t);
	unsetenv("REWIRE_TRACE_CLOCK");
	/* Bad requests. */
	o.patterns = pats;
	o.npatterns = 1;
	o.clock = CLOCK_REALTIME + 77;
	CHECK_EQ(rw__trace_start_opts(&o, &t, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "clock"));
	o.clock = RW_TRACE_CLOCK_TSC;
#ifdef HAVE_TSC
	CHECK_OK(rw__trace_start_opts(&o, &t, err, sizeof(err)));
	CHECK_EQ(rw__trace_clock(t), RW_TRACE_CLOCK_TSC);
	rw__trace_stop(t);
#else
	CHECK_EQ(rw__trace_start_opts(&o, &t, err, sizeof(err)), -EOPNOTSUPP);
#endif
}

/* --- Generated writers against the generic probe ------------------------------ */

/* A string of @n bytes 'a'.. that ends at the last byte of a page whose
 * next page is not mapped: reading past its NUL would fault. */
static char *edge_page;

static const char *at_page_end(size_t n)
{
	char *end;

	if (!edge_page) {
		edge_page = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(edge_page != MAP_FAILED);
		CHECK_EQ(mprotect(edge_page + 2 * 4096, 4096, PROT_NONE), 0);
	}
	end = edge_page + 2 * 4096; /* the unmapped page */
	CHECK(n + 1 <= 2 * 4096);
	for (size_t i = 0; i < n; i++)
		end[-1 - (long)n + (long)i] = (char)('a' + i % 26);
	end[-1] = '\0';
	return end - 1 - n;
}

static char *make_str(size_t n, char c)
{
	char *s = malloc(n + 1);

	CHECK(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Fires every case once. */
static void fire_all(void)
{
	static const size_t lens[] = { 0,   1,	 3,   7,   8,	 9,   15,
				       16,  17,	 63,  64,  255,	 256, 257,
				       258, 300, 511, 512, 1000, 4000 };
	char buf[64];

	rw_trace_tw_none();
	rw_trace_tw_str(NULL);
	rw_trace_tw_str("");
	rw_trace_tw_str("GET");
	for (size_t i = 0; i < NELEM(lens); i++) {
		char *s = make_str(lens[i], (char)('A' + i));

		rw_trace_tw_str(s);
		/* Unaligned starts. */
		for (size_t k = 1; k < 8 && k <= lens[i]; k++)
			rw_trace_tw_str(s + k);
		free(s);
	}
	for (size_t n = 0; n <= 40; n++)
		rw_trace_tw_str(at_page_end(n));
	rw_trace_tw_str(at_page_end(300));
	/* Bytes that are not ASCII, and 0x80 / 0x01 patterns that the
	 * word-at-a-time NUL test must not take for a NUL. */
	memset(buf, 0, sizeof(buf));
	for (int i = 0; i < 40; i++)
		buf[i] = (char)(i % 3 == 0 ? 0x80 : i % 3 == 1 ? 0x01 : 0xff);
	rw_trace_tw_str(buf);
	rw_trace_tw_eight(-5, 65535, -1234567890123ll, true, -0.25, "s1",
			  (void *)buf, NULL);
	rw_trace_tw_eight(127, 0, 0, false, 1e300, NULL, NULL, buf + 3);
	rw_trace_tw_eight(-128, 1, 1ll << 62, true, 0.0 / 0.0, "",
			  (void *)(uintptr_t)0xdeadbeef, (char *)"");
	rw_trace_tw_mixed(1.5f, TW_RED, ~0ul, -7, "mixed");
	rw_trace_tw_mixed(-0.0f, TW_GREEN, 0, 1 << 30,
			  at_page_end(256)); /* 256: not cut */
	rw_trace_tw_seq(-1, at_page_end(257));
	rw_trace_tw_tail("ab", 11, -1);
	rw_trace_tw_tail("longer than eight", -12, 2);
	rw_trace_tw_tail(NULL, 13, -3);
	rw_trace_tw_tail(at_page_end(3), 14, 4);
}

/* ring.h's string argument, checked against the string itself. */
static void check_str_rec(const unsigned char *rec, uint32_t len, unsigned arg,
			  unsigned nargs, const char *s, uint32_t *soff)
{
	struct rw_trace_str sh;
	size_t n = s ? strlen(s) : 0;
	uint32_t want = n > 256 ? 256 : (uint32_t)n;

	memcpy(&sh, rec + 16 + 8 * arg, sizeof(sh));
	if (!*soff)
		*soff = 16 + 8 * nargs;
	CHECK_EQ(sh.len, want);
	CHECK_EQ(sh.flags, !s	     ? RW_TRACE_STR_NULL
			   : n > 256 ? RW_TRACE_STR_TRUNCATED
				     : 0);
	CHECK(*soff + ((want + 7) & ~7u) <= len);
	CHECK(memcmp(rec + *soff, s ? s : "", want) == 0);
	for (uint32_t k = want; k < ((want + 7) & ~7u); k++)
		CHECK_EQ(rec[*soff + k], 0);
	*soff += (want + 7) & ~7u;
}

static void test_writer_identical(void)
{
	const char *pats[] = { "tw_none",  "tw_str", "tw_eight",
			       "tw_mixed", "tw_seq", "tw_tail" };
	struct rw__trace_opts o = { 0 };
	struct rw__trace *tw, *tg;
	struct recs cw = { 0 }, cg = { 0 };
	uint32_t soff = 0;
	unsigned str_id = 0;

	o.patterns = pats;
	o.npatterns = NELEM(pats);
	tw = start(&o, NULL);
	o.patterns = pats;
	o.npatterns = NELEM(pats);
	o.generic = true;
	tg = start(&o, NULL);
	for (size_t i = 0; i < NELEM(pats); i++) {
		CHECK(rw__trace_uses_writer(tw, i));
		CHECK(!rw__trace_uses_writer(tg, i));
		CHECK(!strcmp(rw__trace_tp(tw, i)->name,
			      rw__trace_tp(tg, i)->name));
		if (!strcmp(rw__trace_tp(tw, i)->name, "tw_str"))
			str_id = (unsigned)i;
	}
	fire_all();
	drain_mine(tw, &cw);
	drain_mine(tg, &cg);
	CHECK(cw.n > 100);
	CHECK_EQ(cw.n, cg.n);
	for (size_t i = 0; i < cw.n; i++) {
		if (cw.len[i] != cg.len[i] ||
		    memcmp(cw.rec[i], cg.rec[i], 8) != 0 ||
		    memcmp(cw.rec[i] + 16, cg.rec[i] + 16, cw.len[i] - 16)) {
			fprintf(stderr,
				"record %zu: writer (%u bytes) and generic "
				"(%u bytes) differ\n",
				i, cw.len[i], cg.len[i]);
			for (uint32_t k = 0; k < cw.len[i] && k < cg.len[i];
			     k++)
				if (cw.rec[i][k] != cg.rec[i][k])
					fprintf(stderr,
						"  byte %u: %02x %02x\n", k,
						cw.rec[i][k], cg.rec[i][k]);
			exit(1);
		}
	}
	/* The layout itself, for the strings (records 1..3: NULL, "",
	 * "GET"). */
	for (int i = 1; i <= 3; i++) {
		static const char *const want[] = { NULL, "", "GET" };
		struct rw_trace_rec r;

		memcpy(&r, cw.rec[i], sizeof(r));
		CHECK_EQ(r.id, str_id);
		CHECK_EQ(r.nargs, 1);
		CHECK_EQ(r.flags, 0);
		CHECK_EQ(r.len, 24 + ((want[i - 1] ? strlen(want[i - 1]) : 0) +
				      7) / 8 * 8);
		soff = 0;
		check_str_rec(cw.rec[i], r.len, 0, 1, want[i - 1], &soff);
	}
	/* Every tw_str record: the length, flags, bytes and zero padding
	 * ring.h says; the cut ones end where the string was cut. */
	for (size_t i = 0; i < cw.n; i++) {
		struct rw_trace_rec r;
		struct rw_trace_str sh;

		memcpy(&r, cw.rec[i], sizeof(r));
		if (r.id != str_id)
			continue;
		memcpy(&sh, cw.rec[i] + 16, sizeof(sh));
		CHECK(sh.len <= 256);
		CHECK_EQ(r.len, 24 + (sh.len + 7) / 8 * 8);
		CHECK((sh.flags & RW_TRACE_STR_TRUNCATED) == 0 ||
		      sh.len == 256);
		CHECK(memchr(cw.rec[i] + 24, 0, sh.len) == NULL);
		for (uint32_t k = sh.len; k < (sh.len + 7) / 8 * 8; k++)
			CHECK_EQ(cw.rec[i][24 + k], 0);
	}
	printf("  %zu records, identical\n", cw.n);
	recs_free(&cw);
	recs_free(&cg);
	rw__trace_stop(tw);
	rw__trace_stop(tg);
}

/* --- A tracepoint built with the old header ------------------------------------ */

static void test_abi0(void)
{
	struct rw__trace_opts o = { 0 };
	struct rw__trace *t;
	struct recs c = { 0 };
	uint32_t soff = 0;
	int64_t a;

	tw_abi0_setup();
	CHECK_EQ(tw_abi0_abi(), 0);
	CHECK_EQ(rw_tracepoint_ptr(tw_seq)->abi, RW__TP_ABI);
	/* Listing (`rewire ls`) names a session's writer as its probe. */
	CHECK(rw__trace_is_probe_of(rw_tracepoint_ptr(tw_seq),
				    rw_tracepoint_ptr(tw_seq)->recorder));
	CHECK(!rw__trace_is_probe_of(rw_tracepoint_ptr(tw_abi0),
				     rw_tracepoint_ptr(tw_abi0)->recorder));
	t = start(&o, "tw_abi0");
	CHECK(!rw__trace_uses_writer(t, 0));
	tw_abi0_fire(42, "old");
	tw_abi0_fire(-1, NULL);
	drain_mine(t, &c);
	CHECK_EQ(c.n, 2);
	CHECK_EQ(tw_abi0_recorder_calls, 0);
	memcpy(&a, c.rec[0] + 16, 8);
	CHECK_EQ(a, 42);
	check_str_rec(c.rec[0], c.len[0], 1, 2, "old", &soff);
	soff = 0;
	check_str_rec(c.rec[1], c.len[1], 1, 2, NULL, &soff);
	recs_free(&c);
	rw__trace_stop(t);

	/* abi 1: a writer of the older rw__trace_reserve() interface. */
	CHECK_EQ(rw_tracepoint_ptr(tw_abi1)->abi, 1);
	t = start(&o, "tw_abi1");
	CHECK(!rw__trace_uses_writer(t, 0));
	tw_abi1_fire(7, "abi1");
	drain_mine(t, &c);
	CHECK_EQ(c.n, 1);
	CHECK_EQ(tw_abi0_recorder_calls, 0);
	memcpy(&a, c.rec[0] + 16, 8);
	CHECK_EQ(a, 7);
	soff = 0;
	check_str_rec(c.rec[0], c.len[0], 1, 2, "abi1", &soff);
	recs_free(&c);
	rw__trace_stop(t);
}

/* --- Sub-buffers and overwrite mode ---------------------------------------------- */

struct seqs {
	long first, last, n;
	bool broken;
};

/* tw_seq records: consecutive sequence numbers. */
static int seq_check(void *arg, const unsigned char *rec, uint32_t len,
		     uint64_t pos)
{
	struct seqs *q = arg;
	struct rw_trace_rec r;
	int64_t seq;

	(void)len;
	(void)pos;
	memcpy(&r, rec, sizeof(r));
	if (r.id != 0 || r.nargs != 2)
		return 0;
	memcpy(&seq, rec + 16, 8);
	if (q->n && seq != q->last + 1) {
		fprintf(stderr, "seq %lld after %ld\n", (long long)seq,
			q->last);
		q->broken = true;
		return 1;
	}
	if (!q->n)
		q->first = (long)seq;
	q->last = (long)seq;
	q->n++;
	return 0;
}

/* A string of 0..300 bytes, changing with @i, so that records of many
 * sizes meet the sub-buffers' ends. */
static const char *var_str(long i)
{
	static char s[301];
	size_t n = (size_t)(i * 37 % 301);

	memset(s, 'v', n);
	s[n] = '\0';
	return s;
}

static void overwrite_run(bool generic, long nev)
{
	struct rw__trace_opts o = { 0 };
	struct rw_trace_shm h;
	struct rw__trace *t;
	struct rd_map m;
	struct seqs q = { 0, 0, 0, false };
	uint64_t first, end;
	int i;

	o.overwrite = true;
	o.ring_bytes = 4096; /* raised to the overwrite minimum */
	o.generic = generic;
	t = start(&o, "tw_seq");
	CHECK(rw__trace_overwrite(t));
	CHECK_EQ(rw__trace_uses_writer(t, 0), !generic);
	h = header_of(t);
	CHECK_EQ(h.flags, RW_TRACE_F_OVERWRITE);
	CHECK_EQ(h.ring_size, RW_TRACE_OVERWRITE_RING_MIN);
	CHECK_EQ(h.subbuf_size, RW_TRACE_SUBBUF_MIN);
	/* Nobody reads: the thread must neither block nor drop. */
	for (long k = 0; k < nev; k++)
		rw_trace_tw_seq(k, var_str(k));
	CHECK_EQ(rw__trace_dropped(t), 0);
	rd_open(&m, rw__trace_fd(t), rw__trace_size(t));
	i = rd_slot_of(&m, my_tid());
	CHECK(i >= 0);
	CHECK_EQ(atomic_load(&rd_slot(&m, (uint32_t)i)->dropped), 0);
	CHECK_EQ(atomic_load(&rd_slot(&m, (uint32_t)i)->tail), 0);
	CHECK(atomic_load(&rd_slot(&m, (uint32_t)i)->head) > h.ring_size);
	/* O1: the announcement covers the last record. */
	CHECK(atomic_load(&rd_slot(&m, (uint32_t)i)->reserve) >=
	      atomic_load(&rd_slot(&m, (uint32_t)i)->head));
	CHECK_EQ(rd_snapshot(&m, (uint32_t)i, seq_check, &q, &first, &end), 0);
	CHECK(!q.broken);
	CHECK_EQ(q.last, nev - 1);
	/* At most one sub-buffer (and a record) given up: the rest of the
	 * ring is the newest events. */
	CHECK(end - first >= h.ring_size - h.subbuf_size);
	printf("  %s: %ld events, the last %ld in the snapshot (%llu "
	       "bytes)\n",
	       generic ? "generic" : "writer", nev, q.n,
	       (unsigned long long)(end - first));
	rd_close(&m);
	rw__trace_stop(t);
}

static void test_overwrite(void)
{
	overwrite_run(false, 1000000);
	overwrite_run(true, 200000);
}

/* Normal mode: sub-buffers are the ring; records still never straddle
 * its end (rd_walk checks), with a reader that keeps up. */
static void test_subbuf_normal(void)
{
	struct rw__trace_opts o = { 0 };
	struct rw__trace *t;
	struct rd_map m;
	struct seqs q = { 0, 0, 0, false };
	uint64_t tail = 0;
	int i;

	o.ring_bytes = 4096;
	t = start(&o, "tw_seq");
	CHECK(!rw__trace_overwrite(t));
	rd_open(&m, rw__trace_fd(t), rw__trace_size(t));
	CHECK_EQ(m.h->subbuf_size, 4096);
	rw_trace_tw_seq(0, "");
	i = rd_slot_of(&m, my_tid());
	CHECK(i >= 0);
	CHECK_EQ(rd_consume(&m, (uint32_t)i, &tail, seq_check, &q), 0);
	for (long k = 1; k < 20000; k++) {
		rw_trace_tw_seq(k, var_str(k));
		if (k % 8 == 0)
			CHECK_EQ(rd_consume(&m, (uint32_t)i, &tail, seq_check,
					    &q),
				 0);
	}
	CHECK_EQ(rd_consume(&m, (uint32_t)i, &tail, seq_check, &q), 0);
	CHECK(!q.broken);
	CHECK_EQ(q.n + (long)atomic_load(&rd_slot(&m, (uint32_t)i)->dropped),
		 20000);
	rd_close(&m);
	rw__trace_stop(t);
}

/* Sub-buffers in an overwrite session drained as a normal one would be:
 * every record of the whole run, none straddling 4 KiB. */
static void test_subbuf_overwrite(void)
{
	struct rw__trace_opts o = { 0 };
	struct rw__trace *t;
	struct rd_map m;
	struct seqs q = { 0, 0, 0, false };
	uint64_t tail = 0;
	int i;

	o.overwrite = true;
	t = start(&o, "tw_seq");
	rd_open(&m, rw__trace_fd(t), rw__trace_size(t));
	CHECK_EQ(m.h->ring_size, RW_TRACE_RING_DEFAULT);
	CHECK_EQ(m.h->subbuf_size, RW_TRACE_RING_DEFAULT / RW_TRACE_SUBBUFS);
	rw_trace_tw_seq(0, "");
	i = rd_slot_of(&m, my_tid());
	CHECK(i >= 0);
	for (long k = 1; k < 20000; k++) {
		rw_trace_tw_seq(k, var_str(k));
		/* Well before the ring wraps onto unread records. */
		if (k % 64 == 0)
			CHECK_EQ(rd_consume(&m, (uint32_t)i, &tail, seq_check,
					    &q),
				 0);
	}
	CHECK_EQ(rd_consume(&m, (uint32_t)i, &tail, seq_check, &q), 0);
	CHECK(!q.broken);
	CHECK_EQ(q.n, 20000);
	rd_close(&m);
	rw__trace_stop(t);
}

/*
 * The writer pads, records and drops where the generic probe does: two
 * sessions on tw_seq, one of each, 4 KiB rings drained after every event
 * (the rings wrap, padding at their ends), then not drained (they fill):
 * the heads and drop counts stay equal event after event.
 */
static int count_rec(void *arg, const unsigned char *rec, uint32_t len,
		     uint64_t pos)
{
	(void)rec;
	(void)len;
	(void)pos;
	++*(long *)arg;
	return 0;
}

static void test_writer_same_layout(void)
{
	struct rw__trace_opts o = { 0 };
	struct rw__trace *t[2];
	struct rd_map m[2];
	uint64_t tail[2] = { 0, 0 };
	long nrec[2] = { 0, 0 };
	int slot[2];

	for (int k = 0; k < 2; k++) {
		o.ring_bytes = 4096;
		o.generic = k == 1;
		t[k] = start(&o, "tw_seq");
		CHECK_EQ(rw__trace_uses_writer(t[k], 0), k == 0);
		rd_open(&m[k], rw__trace_fd(t[k]), rw__trace_size(t[k]));
	}
	rw_trace_tw_seq(0, "");
	for (int k = 0; k < 2; k++) {
		slot[k] = rd_slot_of(&m[k], my_tid());
		CHECK(slot[k] >= 0);
	}
	for (long i = 1; i < 6000; i++) {
		bool drain = i < 5000;
		struct rw_trace_slot *s0, *s1;

		rw_trace_tw_seq(i, var_str(i));
		s0 = rd_slot(&m[0], (uint32_t)slot[0]);
		s1 = rd_slot(&m[1], (uint32_t)slot[1]);
		if (atomic_load(&s0->head) != atomic_load(&s1->head) ||
		    atomic_load(&s0->dropped) != atomic_load(&s1->dropped)) {
			fprintf(stderr,
				"event %ld: writer head %llu dropped %llu, "
				"generic head %llu dropped %llu\n",
				i, (unsigned long long)atomic_load(&s0->head),
				(unsigned long long)atomic_load(&s0->dropped),
				(unsigned long long)atomic_load(&s1->head),
				(unsigned long long)atomic_load(&s1->dropped));
			exit(1);
		}
		for (int k = 0; drain && k < 2; k++)
			CHECK_EQ(rd_consume(&m[k], (uint32_t)slot[k], &tail[k],
					    count_rec, &nrec[k]),
				 0);
	}
	CHECK_EQ(nrec[0], nrec[1]);
	CHECK(nrec[0] >= 5000);
	CHECK(atomic_load(&rd_slot(&m[0], (uint32_t)slot[0])->dropped) > 0);
	CHECK_EQ(rw__trace_dropped(t[0]), rw__trace_dropped(t[1]));
	printf("  %ld records each, %llu dropped each\n", nrec[0],
	       (unsigned long long)rw__trace_dropped(t[0]));
	for (int k = 0; k < 2; k++) {
		rd_close(&m[k]);
		rw__trace_stop(t[k]);
	}
}

/* --- fork ------------------------------------------------------------------------ */

static void test_fork(void)
{
	struct rw__trace_opts o = { 0 };
	struct rw__trace *t;
	struct rd_map m;
	uint64_t head;
	pid_t pid;
	int st, i;

#ifdef RW_TSAN
	puts("  skipped under ThreadSanitizer (see test_trace_ring)");
	return;
#endif
	t = start(&o, "tw_seq");
	CHECK(rw__trace_uses_writer(t, 0));
	rw_trace_tw_seq(0, "parent");
	rd_open(&m, rw__trace_fd(t), rw__trace_size(t));
	i = rd_slot_of(&m, my_tid());
	CHECK(i >= 0);
	head = atomic_load(&rd_slot(&m, (uint32_t)i)->head);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		for (int k = 0; k < 100; k++)
			rw_trace_tw_seq(k, "child");
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(atomic_load(&rd_slot(&m, (uint32_t)i)->head), head);
	CHECK_EQ(atomic_load(&m.h->slots_claimed), 1);
	CHECK_EQ(rw__trace_dropped(t), 0);
	rd_close(&m);
	rw__trace_stop(t);
}

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
	{ "clock_monotonic", test_clock_monotonic },
	{ "clock_tsc", test_clock_tsc },
	{ "clock_choice", test_clock_choice },
	{ "writer_identical", test_writer_identical },
	{ "writer_same_layout", test_writer_same_layout },
	{ "abi0", test_abi0 },
	{ "subbuf_normal", test_subbuf_normal },
	{ "subbuf_overwrite", test_subbuf_overwrite },
	{ "overwrite", test_overwrite },
	{ "fork", test_fork },
};

/* test_trace_writer [NAME...]: all tests, or the ones named. */
int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < NELEM(tests); i++) {
		bool run = argc < 2;
		uint64_t t0 = rw_test_now_ns();

		for (int k = 1; k < argc; k++)
			run |= !strcmp(argv[k], tests[i].name);
		if (!run)
			continue;
		tests[i].fn();
		printf("%s: ok (%.0f ms)\n", tests[i].name,
		       (double)(rw_test_now_ns() - t0) / 1e6);
	}
	CHECK_OK(rw_tracepoint_synchronize_unregister());
	printf("test_trace_writer: ok\n");
	return 0;
}
