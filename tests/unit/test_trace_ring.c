/* SPDX-License-Identifier: MIT */
/*
 * `rewire trace` rings: sessions (src/ctl/trace.c) written by traced
 * threads and read by the rewire command's reader
 * (tools/rewire/trace_reader.c, compiled into this test).
 *
 * Oracles:
 *   - format: a line is "SEC.NSEC TID " followed by exactly what
 *     rw_tracepoint_format() prints for the same arguments; strings cut at
 *     256 bytes end in "..."; the JSON lines are checked literally;
 *   - accounting: for every thread, its sequence numbers come out in
 *     order, each at most once, and produced == read + dropped on its tid,
 *     exactly (with a reader draining concurrently, and with none);
 *   - overflow: with nobody reading, a producer firing 200,000 events into
 *     a 4 KiB ring finishes (bounded time) and what is read is exactly the
 *     first events, the rest counted as dropped;
 *   - two and six sessions at once each see every event once, one slot per
 *     thread (six sessions overflow the 4-entry TLS cache);
 *   - slots run out: the threads beyond them are counted as "no free slot";
 *   - stopping while threads fire: no crash (ASan: no use after free);
 *   - fork: the child records nothing into the parent's rings;
 *   - signals: events fired by a signal handler inside the probe are
 *     counted, and the accounting still balances;
 *   - damage: a bad header is refused at open; garbage heads, tails and
 *     record bytes make the reader report "corrupt" and skip, never crash,
 *     and tracing recovers afterwards.
 */
#include <rewire/tracepoint.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "ctl/ring.h"
#include "ctl/trace.h"
#include "trace_reader.h"
#include "trace_meta.h"

RW_DECLARE_TRACEPOINT(ring_seq, (int, thread), (long, seq), (unsigned, len),
		      (const char *, name));
RW_DEFINE_TRACEPOINT(ring_seq, (int, thread), (long, seq), (unsigned, len),
		     (const char *, name));
RW_DECLARE_TRACEPOINT(ring_str, (long, seq), (const char *, s));
RW_DEFINE_TRACEPOINT(ring_str, (long, seq), (const char *, s));
enum color { RED = -1, GREEN = 7 };
RW_DECLARE_TRACEPOINT(ring_all, (char, c), (unsigned short, us), (long, l),
		      (bool, b), (double, d), (const char *, s), (void *, p),
		      (enum color, col));
RW_DEFINE_TRACEPOINT(ring_all, (char, c), (unsigned short, us), (long, l),
		     (bool, b), (double, d), (const char *, s), (void *, p),
		     (enum color, col));
RW_DECLARE_TRACEPOINT(ring_sig, (long, seq));
RW_DEFINE_TRACEPOINT(ring_sig, (long, seq));
RW_DECLARE_TRACEPOINT(other_tp, (int, x));
RW_DEFINE_TRACEPOINT(other_tp, (int, x));

#define MAXT 80
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- Sessions and readers -------------------------------------------------- */

/* The descriptions the control server sends with TRACE_START's reply. */
static size_t meta_of(const struct rw__trace *t, struct rw_trace_meta *m,
		      size_t cap)
{
	size_t n = rw_test_trace_meta(t, m, cap);

	CHECK(n <= cap);
	return n;
}

struct session {
	struct rw__trace *t;
	struct rw_trace_reader *r;
};

static void session_start(struct session *s, const char *pattern, size_t ring)
{
	const char *pats[1] = { pattern };
	struct rw_trace_meta meta[16];
	char err[256] = "";
	size_t n;
	int e;

	e = rw__trace_start(pats, 1, ring, &s->t, err, sizeof(err));
	if (e) {
		fprintf(stderr, "rw__trace_start(%s): %d %s\n", pattern, e,
			err);
		exit(1);
	}
	n = meta_of(s->t, meta, 16);
	CHECK_OK(rw_trace_reader_open(rw__trace_fd(s->t), rw__trace_size(s->t),
				      meta, n, &s->r));
}

/* Stop the session; the reader keeps its mapping and can drain the rest. */
static void session_end(struct session *s)
{
	rw__trace_stop(s->t);
	s->t = NULL;
}

static void session_close(struct session *s)
{
	if (s->t)
		session_end(s);
	rw_trace_reader_close(s->r);
	s->r = NULL;
}

/* One drain into a string (free() it). */
static char *drain(struct rw_trace_reader *r, bool json, long *events)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	long n;

	CHECK(f);
	n = rw_trace_reader_drain(r, f, json);
	CHECK(fclose(f) == 0);
	if (events)
		*events = n;
	return buf;
}

/* The header, mapped by the test itself (to read counters, or damage it). */
static struct rw_trace_shm *shm_map(const struct rw__trace *t)
{
	void *p = mmap(NULL, rw__trace_size(t), PROT_READ | PROT_WRITE,
		       MAP_SHARED, rw__trace_fd(t), 0);

	CHECK(p != MAP_FAILED);
	return p;
}

static struct rw_trace_slot *shm_slot(struct rw_trace_shm *h, uint32_t i)
{
	return (struct rw_trace_slot *)((char *)h + RW_TRACE_SHM_HDR) + i;
}

/* The slot of thread @tid, or -1. */
static int shm_slot_of(struct rw_trace_shm *h, pid_t tid)
{
	for (uint32_t i = 0; i < h->nslots; i++)
		if (atomic_load(&shm_slot(h, i)->tid) == tid)
			return (int)i;
	return -1;
}

/* --- Accounting of ring_seq events ------------------------------------------ */

struct tally {
	long read[MAXT], last[MAXT];
	pid_t tid[MAXT];
	struct {
		pid_t tid;
		long n;
	} drops[256];
	int ndrops;
	long noslot, nested, corrupt, other;
};

static void tally_init(struct tally *y)
{
	memset(y, 0, sizeof(*y));
	for (int i = 0; i < MAXT; i++)
		y->last[i] = -1;
}

static void tally_drop(struct tally *y, pid_t tid, long n)
{
	for (int i = 0; i < y->ndrops; i++) {
		if (y->drops[i].tid == tid) {
			y->drops[i].n += n;
			return;
		}
	}
	CHECK(y->ndrops < 256);
	y->drops[y->ndrops].tid = tid;
	y->drops[y->ndrops++].n = n;
}

static long tally_dropped(const struct tally *y, pid_t tid)
{
	for (int i = 0; i < y->ndrops; i++)
		if (y->drops[i].tid == tid)
			return y->drops[i].n;
	return 0;
}

/* Reads text output: ring_seq lines and the comment lines. */
static void tally_text(struct tally *y, const char *text)
{
	const char *line = text;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		unsigned long long sec, nsec;
		int tid, thread;
		long n, seq;
		char copy[256];

		CHECK(nl);
		/* sscanf() takes strlen() of its input: give it one line. */
		if ((size_t)(nl - line) >= sizeof(copy)) {
			y->other++;
			line = nl + 1;
			continue;
		}
		memcpy(copy, line, (size_t)(nl - line));
		copy[nl - line] = '\0';
		if (sscanf(copy, "# rewire: %ld events dropped on thread %d",
			   &n, &tid) == 2) {
			tally_drop(y, tid, n);
		} else if (sscanf(copy,
				  "# rewire: %ld events dropped: no free "
				  "slot",
				  &n) == 1 &&
			   strstr(copy, "no free slot")) {
			y->noslot += n;
		} else if (sscanf(copy, "# rewire: %ld events dropped: nested",
				  &n) == 1 &&
			   strstr(copy, "nested")) {
			y->nested += n;
		} else if (!strncmp(copy, "# rewire: corrupt", 17)) {
			y->corrupt++;
		} else if (sscanf(copy,
				  "%llu.%llu %d ring_seq: thread=%d seq=%ld",
				  &sec, &nsec, &tid, &thread, &seq) == 5) {
			CHECK(thread >= 0 && thread < MAXT);
			CHECK(nsec < 1000000000ull);
			if (y->tid[thread] == 0)
				y->tid[thread] = tid;
			CHECK_EQ(y->tid[thread], tid);
			if (seq <= y->last[thread]) {
				fprintf(stderr,
					"thread %d: seq %ld after %ld\n",
					thread, seq, y->last[thread]);
				exit(1);
			}
			y->last[thread] = seq;
			y->read[thread]++;
		} else {
			y->other++;
		}
		line = nl + 1;
	}
}

static void tally_drain(struct tally *y, struct rw_trace_reader *r)
{
	char *s = drain(r, false, NULL);

	tally_text(y, s);
	free(s);
}

/* --- Format ---------------------------------------------------------------- */

/* The text after "SEC.NSEC TID " of @line, checking both. */
static const char *line_body(const char *line, pid_t tid, uint64_t t0,
			     uint64_t t1)
{
	unsigned long long sec, nsec;
	int ltid, off = 0;
	uint64_t ts;

	CHECK(sscanf(line, "%llu.%llu %d %n", &sec, &nsec, &ltid, &off) == 3);
	CHECK(off > 0);
	CHECK(nsec < 1000000000ull);
	CHECK(line[strcspn(line, ".")] == '.' &&
	      strcspn(line, ".") < strcspn(line, " "));
	CHECK(strcspn(line, " ") - strcspn(line, ".") == 10); /* 9 digits */
	CHECK_EQ(ltid, tid);
	ts = sec * 1000000000ull + nsec;
	CHECK(ts >= t0 && ts <= t1);
	return line + off;
}

/* Next line of @s into @buf (without its newline); NULL at the end. */
static const char *next_line(const char **s, char *buf, size_t size)
{
	const char *nl;
	size_t n;

	if (!*s || !**s)
		return NULL;
	nl = strchr(*s, '\n');
	CHECK(nl);
	n = (size_t)(nl - *s);
	CHECK(n < size);
	memcpy(buf, *s, n);
	buf[n] = '\0';
	*s = nl + 1;
	return buf;
}

static void test_errors(void)
{
	const char *none[1] = { "nothing_like_this*" };
	const char *mixed[2] = { "ring_seq", "nothing_like_this" };
	const char *empty[1] = { "" };
	struct rw__trace *t = (struct rw__trace *)1;
	char err[128];

	CHECK_EQ(rw__trace_start(NULL, 0, 0, &t, err, sizeof(err)), -EINVAL);
	CHECK_EQ(rw__trace_start(empty, 1, 0, &t, err, sizeof(err)), -EINVAL);
	CHECK_EQ(rw__trace_start(none, 1, 0, &t, err, sizeof(err)), -ENOENT);
	CHECK(t == NULL);
	CHECK(!strcmp(err, "no tracepoint matches 'nothing_like_this*'"));
	/* One pattern matches, the other not: nothing stays attached. */
	CHECK_EQ(rw__trace_start(mixed, 2, 0, &t, err, sizeof(err)), -ENOENT);
	CHECK(!strcmp(err, "no tracepoint matches 'nothing_like_this'"));
	CHECK_EQ(rw_tracepoint_probe_count(rw_tracepoint_ptr(ring_seq)), 0);
	CHECK(!rw_tracepoint_enabled(ring_seq));
	/* No error buffer is fine. */
	CHECK_EQ(rw__trace_start(none, 1, 0, &t, NULL, 0), -ENOENT);
	rw__trace_stop(NULL);
	CHECK_EQ(rw__trace_fd(NULL), -EINVAL);
}

static void test_session_shape(void)
{
	static const struct {
		size_t ask;
		uint64_t ring;
	} sizes[] = { { 0, RW_TRACE_RING_DEFAULT },
		      { 1, RW_TRACE_RING_MIN },
		      { 5000, 8192 },
		      { 65536, 65536 },
		      { (size_t)1 << 40, RW_TRACE_RING_MAX } };
	const char *pats[3] = { "ring_*", "ring_seq", "ring_s?q" };
	struct rw__trace *t;
	struct rw_trace_shm *h;
	char err[128];
	bool seen[4] = { false };

	/* Overlapping patterns: each tracepoint once. */
	CHECK_OK(rw__trace_start(pats, 3, 0, &t, err, sizeof(err)));
	CHECK_EQ(rw__trace_count(t), 4);
	for (size_t i = 0; i < 4; i++) {
		const char *name = rw__trace_tp(t, i)->name;

		if (!strcmp(name, "ring_seq"))
			seen[0] = true;
		else if (!strcmp(name, "ring_str"))
			seen[1] = true;
		else if (!strcmp(name, "ring_all"))
			seen[2] = true;
		else if (!strcmp(name, "ring_sig"))
			seen[3] = true;
	}
	CHECK(seen[0] && seen[1] && seen[2] && seen[3]);
	CHECK(rw__trace_tp(t, 4) == NULL);
	CHECK_EQ(rw_tracepoint_probe_count(rw_tracepoint_ptr(ring_seq)), 1);
	CHECK_EQ(rw_tracepoint_probe_count(rw_tracepoint_ptr(other_tp)), 0);
	CHECK(rw__trace_fd(t) >= 0);
	CHECK_EQ(fcntl(rw__trace_fd(t), F_GET_SEALS) & F_SEAL_SHRINK,
		 F_SEAL_SHRINK);
	rw__trace_stop(t);
	CHECK_EQ(rw_tracepoint_probe_count(rw_tracepoint_ptr(ring_seq)), 0);

	/* The largest rings (64 slots of 64 MiB, sparse) pass the default
	 * cap on all sessions' memory together (src/ctl/trace.c). */
	setenv("REWIRE_TRACE_MEM_MAX", "8G", 1);
	for (size_t i = 0; i < NELEM(sizes); i++) {
		const char *p1[1] = { "ring_seq" };

		CHECK_OK(rw__trace_start(p1, 1, sizes[i].ask, &t, err,
					 sizeof(err)));
		h = shm_map(t);
		CHECK(!memcmp(h->magic, RW_TRACE_MAGIC, 8));
		CHECK_EQ(h->ring_size, sizes[i].ring);
		CHECK(h->nslots >= RW_TRACE_SLOTS_MIN);
		CHECK_EQ(h->total_size, rw__trace_size(t));
		CHECK_EQ(h->ntracepoints, 1);
		CHECK_EQ(h->pid, getpid());
		munmap(h, rw__trace_size(t));
		rw__trace_stop(t);
	}
	unsetenv("REWIRE_TRACE_MEM_MAX");
}

static void test_format(void)
{
	static char word[] = "word";
	struct session s;
	union rw_tp_value v[8];
	char expect[512], buf[512];
	const char *out, *p, *body;
	uint64_t t0, t1;
	long n;

	session_start(&s, "ring_all", 0);
	t0 = realtime_ns();
	rw_trace_ring_all('x', 65535, -42, true, 2.5, "he said \"hi\"\n",
			  (void *)word, GREEN);
	rw_trace_ring_all(-1, 0, 0, false, -1e-300, NULL, NULL, RED);
	t1 = realtime_ns();
	out = drain(s.r, false, &n);
	CHECK_EQ(n, 2);

	v[0].s = 'x';
	v[1].u = 65535;
	v[2].s = -42;
	v[3].u = 1;
	v[4].f = 2.5;
	v[5].str = "he said \"hi\"\n";
	v[6].ptr = word;
	v[7].u = GREEN;
	/* enum color has a negative member: signed. */
	if (rw_tracepoint_ptr(ring_all)->fields[7].kind == RW_TP_SIGNED)
		v[7].s = GREEN;
	CHECK(rw_tracepoint_format(rw_tracepoint_ptr(ring_all), v, expect,
				   sizeof(expect)) < (int)sizeof(expect));
	p = out;
	body = line_body(next_line(&p, buf, sizeof(buf)), my_tid(), t0, t1);
	if (strcmp(body, expect)) {
		fprintf(stderr, "got    '%s'\nexpect '%s'\n", body, expect);
		exit(1);
	}
	v[0].s = (char)-1; /* 255 where char is unsigned (aarch64) */
	v[1].u = 0;
	v[2].s = 0;
	v[3].u = 0;
	v[4].f = -1e-300;
	v[5].str = NULL;
	v[6].ptr = NULL;
	if (rw_tracepoint_ptr(ring_all)->fields[7].kind == RW_TP_SIGNED)
		v[7].s = RED;
	else
		v[7].u = (unsigned long long)(long long)RED;
	rw_tracepoint_format(rw_tracepoint_ptr(ring_all), v, expect,
			     sizeof(expect));
	body = line_body(next_line(&p, buf, sizeof(buf)), my_tid(), t0, t1);
	if (strcmp(body, expect)) {
		fprintf(stderr, "got    '%s'\nexpect '%s'\n", body, expect);
		exit(1);
	}
	CHECK(next_line(&p, buf, sizeof(buf)) == NULL);
	free((void *)out);

	/* JSON. */
	rw_trace_ring_all('x', 7, -42, true, 2.5, "a\tb", (void *)0x1000, RED);
	out = drain(s.r, true, &n);
	CHECK_EQ(n, 1);
	snprintf(expect, sizeof(expect),
		 ",\"tid\":%d,\"tp\":\"ring_all\",\"args\":{\"c\":120,\"us\":7,"
		 "\"l\":-42,\"b\":true,\"d\":2.5,\"s\":\"a\\tb\","
		 "\"p\":\"0x1000\",\"col\":-1}}\n",
		 (int)my_tid());
	CHECK(!strncmp(out, "{\"ts\":", 6));
	if (!strstr(out, expect)) {
		fprintf(stderr, "got    '%s'\nexpect '...%s'\n", out, expect);
		exit(1);
	}
	free((void *)out);
	session_close(&s);
}

static void test_strings(void)
{
	static const char *const plain[] = {
		"plain",
		"quote\" back\\ nl\n cr\r tab\t del\x7f bell\a",
		"",
		"caf\xc3\xa9 \xff\xfe end",
	};
	char long300[301], s256[257], s257[258], expect[1024], buf[1024];
	struct session s;
	union rw_tp_value v[2];
	const char *out, *p, *body;
	long n, seq = 0;
	uint64_t t0, t1;

	memset(long300, 'a', 300);
	long300[300] = '\0';
	memset(s256, 'b', 256);
	s256[256] = '\0';
	memset(s257, 'c', 257);
	s257[257] = '\0';

	session_start(&s, "ring_str", 0);
	t0 = realtime_ns();
	for (size_t i = 0; i < NELEM(plain); i++)
		rw_trace_ring_str(seq++, plain[i]);
	rw_trace_ring_str(seq++, NULL);
	rw_trace_ring_str(seq++, s256);
	rw_trace_ring_str(seq++, s257);
	rw_trace_ring_str(seq++, long300);
	t1 = realtime_ns();
	out = drain(s.r, false, &n);
	CHECK_EQ(n, seq);
	p = out;
	seq = 0;
	for (size_t i = 0; i < NELEM(plain) + 2; i++) {
		v[0].s = seq++;
		v[1].str = i < NELEM(plain)    ? plain[i]
			   : i == NELEM(plain) ? NULL
					       : s256;
		rw_tracepoint_format(rw_tracepoint_ptr(ring_str), v, expect,
				     sizeof(expect));
		body = line_body(next_line(&p, buf, sizeof(buf)), my_tid(), t0,
				 t1);
		if (strcmp(body, expect)) {
			fprintf(stderr, "got    '%s'\nexpect '%s'\n", body,
				expect);
			exit(1);
		}
	}
	/* Cut at 256 bytes, then "...". */
	for (int k = 0; k < 2; k++) {
		char cut[257];

		memcpy(cut, k ? long300 : s257, 256);
		cut[256] = '\0';
		v[0].s = seq++;
		v[1].str = cut;
		rw_tracepoint_format(rw_tracepoint_ptr(ring_str), v, expect,
				     sizeof(expect));
		strcat(expect, "...");
		body = line_body(next_line(&p, buf, sizeof(buf)), my_tid(), t0,
				 t1);
		if (strcmp(body, expect)) {
			fprintf(stderr, "got    '%s'\nexpect '%s'\n", body,
				expect);
			exit(1);
		}
	}
	CHECK(next_line(&p, buf, sizeof(buf)) == NULL);
	free((void *)out);

	/* JSON: escapes, UTF-8, null, truncation. */
	seq = 0;
	for (size_t i = 0; i < NELEM(plain); i++)
		rw_trace_ring_str(seq++, plain[i]);
	rw_trace_ring_str(seq++, NULL);
	rw_trace_ring_str(seq++, long300);
	out = drain(s.r, true, &n);
	CHECK_EQ(n, seq);
	CHECK(strstr(out, "\"args\":{\"seq\":0,\"s\":\"plain\"}}\n"));
	CHECK(strstr(out, "\"args\":{\"seq\":1,\"s\":\"quote\\\" back\\\\ "
			  "nl\\n cr\\r tab\\t del\\u007f bell\\u0007\"}}\n"));
	CHECK(strstr(out, "\"args\":{\"seq\":2,\"s\":\"\"}}\n"));
	CHECK(strstr(out, "\"args\":{\"seq\":3,\"s\":\"caf\xc3\xa9 "
			  "\\ufffd\\ufffd end\"}}\n"));
	CHECK(strstr(out, "\"args\":{\"seq\":4,\"s\":null}}\n"));
	snprintf(
		expect, sizeof(expect),
		"\"args\":{\"seq\":5,\"s\":\"%.256s\"},\"truncated\":[\"s\"]}\n",
		long300);
	CHECK(strstr(out, expect));
	free((void *)out);
	session_close(&s);
}

/* --- Threads ---------------------------------------------------------------- */

struct firer {
	pthread_t th;
	int idx;
	long n;
	pid_t tid;
	atomic_bool *stop; /* fire until set, if n < 0 */
	long fired;
	int pace; /* sleep 50 us every pace events (0: never) */
};

static void *fire_seq(void *p)
{
	struct firer *f = p;
	long seq = 0;

	f->tid = my_tid();
	if (f->n >= 0) {
		for (; seq < f->n; seq++) {
			rw_trace_ring_seq(f->idx, seq, (unsigned)seq, "GET");
			if (f->pace && seq % f->pace == 0)
				usleep(50);
		}
	} else {
		while (!atomic_load_explicit(f->stop, memory_order_relaxed))
			rw_trace_ring_seq(f->idx, seq++, 1, "PUT");
	}
	f->fired = seq;
	return NULL;
}

struct drainer {
	pthread_t th;
	struct rw_trace_reader *r;
	struct tally *y;
	atomic_bool done;
	long drains;
};

static void *drain_loop(void *p)
{
	struct drainer *d = p;

	while (!atomic_load(&d->done)) {
		tally_drain(d->y, d->r);
		d->drains++;
		usleep(200);
	}
	return NULL;
}

/* @nthreads threads fire @n events each into rings of @ring bytes while a
 * reader drains (or not); produced == read + dropped, per thread. */
static void run_accounting(int nthreads, long n, size_t ring, bool reader,
			   int pace, long *total_dropped)
{
	struct firer f[MAXT];
	struct drainer d;
	struct tally y;
	struct session s;
	long dropped = 0;

	CHECK(nthreads <= MAXT);
	tally_init(&y);
	session_start(&s, "ring_seq", ring);
	memset(&d, 0, sizeof(d));
	d.r = s.r;
	d.y = &y;
	if (reader)
		CHECK_EQ(pthread_create(&d.th, NULL, drain_loop, &d), 0);
	for (int i = 0; i < nthreads; i++) {
		f[i] = (struct firer){ 0, i, n, 0, NULL, 0, pace };
		CHECK_EQ(pthread_create(&f[i].th, NULL, fire_seq, &f[i]), 0);
	}
	for (int i = 0; i < nthreads; i++)
		CHECK_EQ(pthread_join(f[i].th, NULL), 0);
	if (reader) {
		atomic_store(&d.done, true);
		CHECK_EQ(pthread_join(d.th, NULL), 0);
	}
	session_end(&s);
	tally_drain(&y, s.r); /* what was left */
	CHECK_EQ(y.corrupt, 0);
	CHECK_EQ(y.other, 0);
	CHECK_EQ(y.noslot, 0);
	CHECK_EQ(y.nested, 0);
	for (int i = 0; i < nthreads; i++) {
		long dr = tally_dropped(&y, f[i].tid);

		if (y.read[i])
			CHECK_EQ(y.tid[i], f[i].tid);
		if (y.read[i] + dr != n) {
			fprintf(stderr,
				"thread %d (tid %d): %ld read + %ld dropped "
				"!= %ld\n",
				i, (int)f[i].tid, y.read[i], dr, n);
			exit(1);
		}
		dropped += dr;
	}
	CHECK_EQ((long)rw_trace_reader_dropped(s.r), dropped);
	session_close(&s);
	if (total_dropped)
		*total_dropped = dropped;
	printf("accounting: %d threads x %ld events, ring %zu, reader %s, "
	       "pace %d: %ld dropped, %ld drains\n",
	       nthreads, n, ring, reader ? "on" : "off", pace, dropped,
	       d.drains);
}

static void test_accounting(void)
{
	long dropped;
	long n = rw_test_scale(20000, 500000);

	/* Room for everything: nothing may be dropped. */
	run_accounting(1, 2000, 1u << 20, false, 0, &dropped);
	CHECK_EQ(dropped, 0);
	/* A concurrent reader, flat out (mostly drops) and with the
	 * producers pausing now and then (reads and drops mixed), rings of
	 * 4 KiB, 64 KiB and the default. */
	run_accounting(4, n, 4096, true, 0, NULL);
	run_accounting(4, n, 4096, true, 16, NULL);
	run_accounting(2, n, 4096, true, 64, NULL);
	run_accounting(4, n, 65536, true, 0, NULL);
	run_accounting(4, n, 65536, true, 256, NULL);
	run_accounting(3, n, 0, true, 1024, NULL);
}

static void test_overflow(void)
{
	const char *p1[1] = { "ring_seq" };
	const long n = 200000;
	struct rw_trace_reader *r;
	struct rw_trace_meta meta[4];
	struct rw__trace *t;
	struct tally y;
	uint64_t t0, el;
	char err[128];
	long read_first, per;

	CHECK_OK(rw__trace_start(p1, 1, 4096, &t, err, sizeof(err)));
	CHECK_OK(rw_trace_reader_open(rw__trace_fd(t), rw__trace_size(t), meta,
				      meta_of(t, meta, 4), &r));
	/* Nobody reads: the producer must not wait. */
	t0 = rw_test_now_ns();
	for (long i = 0; i < n; i++)
		rw_trace_ring_seq(0, i, 3, "GET");
	el = rw_test_now_ns() - t0;
	printf("overflow: %ld events into a full 4 KiB ring in %.1f ms\n", n,
	       (double)el / 1e6);
	CHECK(el < 20ull * 1000000000ull);
	/* 56 bytes per event: 73 fit in 4096 bytes. */
	per = 16 + 3 * 8 + 8 + 8;
	tally_init(&y);
	tally_drain(&y, r);
	read_first = y.read[0];
	CHECK_EQ(read_first, 4096 / per);
	CHECK_EQ(y.last[0], read_first - 1); /* exactly the first events */
	CHECK_EQ(tally_dropped(&y, my_tid()), n - read_first);
	CHECK_EQ(rw__trace_dropped(t), (uint64_t)(n - read_first));
	CHECK_EQ(rw_trace_reader_dropped(r), (uint64_t)(n - read_first));
	/* Read, and there is room again: the next events are recorded. */
	for (long i = n; i < n + 10; i++)
		rw_trace_ring_seq(0, i, 3, "GET");
	tally_drain(&y, r);
	CHECK_EQ(y.read[0], read_first + 10);
	CHECK_EQ(y.last[0], n + 9);
	/* Stop returns the session's final count of drops: the same. */
	CHECK_EQ(rw__trace_stop(t), (uint64_t)(n - read_first));
	rw_trace_reader_close(r);
}

static void test_two_sessions(void)
{
	enum { NS = 6, NT = 2 };
	struct session s[NS];
	struct firer f[NT];
	struct tally y[NS];
	const long n = 3000;

	/* Two, then six at once (more than the TLS cache's 4 ways). */
	for (int round = 0; round < 2; round++) {
		int ns = round ? NS : 2;

		for (int k = 0; k < ns; k++) {
			session_start(&s[k], k % 2 ? "ring_*" : "ring_seq",
				      1u << 20);
			tally_init(&y[k]);
		}
		CHECK_EQ(rw_tracepoint_probe_count(rw_tracepoint_ptr(ring_seq)),
			 ns);
		for (int i = 0; i < NT; i++) {
			f[i] = (struct firer){ 0, i, n, 0, NULL, 0, 0 };
			CHECK_EQ(pthread_create(&f[i].th, NULL, fire_seq,
						&f[i]),
				 0);
		}
		for (int i = 0; i < NT; i++)
			CHECK_EQ(pthread_join(f[i].th, NULL), 0);
		for (int k = 0; k < ns; k++) {
			struct rw_trace_shm *h = shm_map(s[k].t);

			/* One slot per thread, even after cache misses. */
			CHECK_EQ(atomic_load(&h->slots_claimed), NT);
			munmap(h, rw__trace_size(s[k].t));
			tally_drain(&y[k], s[k].r);
			for (int i = 0; i < NT; i++) {
				CHECK_EQ(y[k].read[i], n);
				CHECK_EQ(y[k].tid[i], f[i].tid);
			}
			CHECK_EQ(rw_trace_reader_dropped(s[k].r), 0);
		}
		/* Stopping one leaves the others running. */
		session_close(&s[0]);
		rw_trace_ring_seq(0, n, 0, "after");
		for (int k = 1; k < ns; k++) {
			long e;
			char *o = drain(s[k].r, false, &e);

			CHECK_EQ(e, 1);
			CHECK(strstr(o, "name=\"after\""));
			free(o);
			session_close(&s[k]);
		}
		CHECK_EQ(rw_tracepoint_probe_count(rw_tracepoint_ptr(ring_seq)),
			 0);
	}
}

static void test_no_slot(void)
{
	struct session s;
	struct firer f[MAXT];
	struct tally y;
	struct rw_trace_shm *h;
	uint32_t nslots;
	int nt;
	long read = 0;
	bool distinct = true;

	session_start(&s, "ring_seq", 4096);
	h = shm_map(s.t);
	nslots = h->nslots;
	nt = (int)nslots + 6;
	CHECK(nt <= MAXT);
	/* One after the other: every thread has a new tid. */
	for (int i = 0; i < nt; i++) {
		f[i] = (struct firer){ 0, i, 1, 0, NULL, 0, 0 };
		CHECK_EQ(pthread_create(&f[i].th, NULL, fire_seq, &f[i]), 0);
		CHECK_EQ(pthread_join(f[i].th, NULL), 0);
		for (int k = 0; k < i; k++)
			if (f[k].tid == f[i].tid)
				distinct = false;
	}
	tally_init(&y);
	tally_drain(&y, s.r);
	for (int i = 0; i < nt; i++)
		read += y.read[i];
	CHECK_EQ(read + y.noslot, nt);
	if (distinct) {
		CHECK_EQ(read, nslots);
		CHECK_EQ(y.noslot, 6);
		CHECK_EQ(atomic_load(&h->dropped_noslot), 6);
	}
	CHECK_EQ(rw__trace_dropped(s.t), (uint64_t)y.noslot);
	munmap(h, rw__trace_size(s.t));
	session_close(&s);
}

static void test_stop_while_firing(void)
{
	enum { NT = 4 };
	atomic_bool stop = false;
	struct firer f[NT];
	int cycles = (int)rw_test_scale(30, 300);
	uint64_t t0 = rw_test_now_ns();

	for (int i = 0; i < NT; i++) {
		f[i] = (struct firer){ 0, i, -1, 0, &stop, 0, 0 };
		CHECK_EQ(pthread_create(&f[i].th, NULL, fire_seq, &f[i]), 0);
	}
	/* The short run stops after 20 s once 5 cycles are done: under
	 * emulation (the aarch64 VM) a cycle takes seconds. */
	for (int c = 0; c < cycles; c++) {
		if (!rw_test_long() && c >= 5 &&
		    rw_test_now_ns() - t0 > 20000000000ull)
			break;
		struct session s;
		struct tally y;

		session_start(&s, c % 2 ? "ring_*" : "ring_seq",
			      c % 3 ? 4096 : 0);
		usleep(1000);
		tally_init(&y);
		tally_drain(&y, s.r);
		/* Stop while they fire; then read what is left. */
		session_end(&s);
		tally_drain(&y, s.r);
		CHECK_EQ(y.corrupt, 0);
		session_close(&s);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < NT; i++)
		CHECK_EQ(pthread_join(f[i].th, NULL), 0);
	CHECK(!rw_tracepoint_enabled(ring_seq));
}

static void test_fork(void)
{
	struct session s;
	struct tally y;
	pid_t pid;
	int st;

#ifdef RW_TSAN
	/* TSan cannot start threads in the child of a multithreaded fork
	 * (liburcu starts its call_rcu thread there); the other presets run
	 * this. */
	puts("fork: skipped under ThreadSanitizer");
	return;
#endif
	session_start(&s, "ring_seq", 0);
	rw_trace_ring_seq(0, 0, 0, "parent");
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < 100; i++)
			rw_trace_ring_seq(1, i, 0, "child");
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	rw_trace_ring_seq(0, 1, 0, "parent");
	tally_init(&y);
	tally_drain(&y, s.r);
	CHECK_EQ(y.read[0], 2);
	CHECK_EQ(y.read[1], 0);
	CHECK_EQ(y.ndrops, 0);
	CHECK_EQ(y.corrupt, 0);
	session_close(&s);
}

/* --- Signals: events fired inside the probe ------------------------------- */

static atomic_long sig_fired;

static void on_sig(int sig)
{
	(void)sig;
	rw_trace_ring_sig(-1 - atomic_fetch_add(&sig_fired, 1));
}

struct kicker {
	pthread_t target;
	atomic_bool stop;
};

static void *kick(void *p)
{
	struct kicker *k = p;

	while (!atomic_load(&k->stop)) {
		pthread_kill(k->target, SIGUSR1);
		usleep(20);
	}
	return NULL;
}

static void test_signals(void)
{
	struct sigaction sa, old;
	struct kicker k;
	pthread_t th;
	struct session s;
	long n = rw_test_scale(200000, 2000000), read = 0, e;
	char *out;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sa.sa_flags = SA_RESTART;
	CHECK_OK(sigaction(SIGUSR1, &sa, &old));
	session_start(&s, "ring_sig", 1u << 20);
	k.target = pthread_self();
	atomic_store(&k.stop, false);
	atomic_store(&sig_fired, 0);
	CHECK_EQ(pthread_create(&th, NULL, kick, &k), 0);
	for (long i = 0; i < n; i++) {
		rw_trace_ring_sig(i);
		if (i % 4096 == 0) {
			out = drain(s.r, false, &e);
			read += e;
			free(out);
		}
	}
	atomic_store(&k.stop, true);
	CHECK_EQ(pthread_join(th, NULL), 0);
	CHECK_OK(sigaction(SIGUSR1, &old, NULL));
	out = drain(s.r, false, &e);
	read += e;
	free(out);
	/* Every event is read or counted, wherever it was fired. */
	CHECK_EQ((uint64_t)read + rw_trace_reader_dropped(s.r),
		 (uint64_t)n + (uint64_t)atomic_load(&sig_fired));
	CHECK_EQ(rw_trace_reader_dropped(s.r), rw__trace_dropped(s.t));
	printf("signals: %ld events, %ld from the handler, %llu dropped "
	       "(nested or full)\n",
	       n, atomic_load(&sig_fired),
	       (unsigned long long)rw_trace_reader_dropped(s.r));
	session_close(&s);
}

/* --- Damage ------------------------------------------------------------------ */

static int open_with(struct session *s, size_t size)
{
	struct rw_trace_meta meta[16];
	struct rw_trace_reader *r = NULL;
	size_t n = meta_of(s->t, meta, 16);
	int e = rw_trace_reader_open(rw__trace_fd(s->t), size, meta, n, &r);

	CHECK((e == 0) == (r != NULL));
	rw_trace_reader_close(r);
	return e;
}

static void test_bad_header(void)
{
	struct session s;
	struct rw_trace_shm *h, save;
	struct rw_trace_meta meta[4];
	struct rw_trace_reader *r;
	size_t size;
	int fd, pfd[2];
	unsigned seed = 1;

	session_start(&s, "ring_seq", 0);
	size = rw__trace_size(s.t);
	h = shm_map(s.t);
	memcpy(&save, h, offsetof(struct rw_trace_shm, dropped_noslot));
	CHECK_EQ(open_with(&s, size), 0);
	CHECK_EQ(open_with(&s, size - 8), -EBADMSG);
	CHECK_EQ(open_with(&s, size + 4096), -EBADMSG);
	CHECK_EQ(open_with(&s, 16), -EINVAL);

#define DAMAGE(stmt, expect)                                           \
	do {                                                           \
		stmt;                                                  \
		CHECK_EQ(open_with(&s, size), expect);                 \
		memcpy(h, &save,                                       \
		       offsetof(struct rw_trace_shm, dropped_noslot)); \
	} while (0)
	DAMAGE(h->magic[0] = 'X', -EPROTO);
	DAMAGE(h->version = RW_TRACE_VERSION + 1, -EPROTO);
	DAMAGE(h->version = 0, -EPROTO);
	DAMAGE(h->clock = 7, -EBADMSG);
	DAMAGE(h->flags = 2, -EBADMSG);
	DAMAGE(h->subbuf_size = 3, -EBADMSG);
	DAMAGE(h->nslots = 0, -EBADMSG);
	DAMAGE(h->nslots = 100000, -EBADMSG);
	DAMAGE(h->nslots++, -EBADMSG);
	DAMAGE(h->ring_size = 5000, -EBADMSG);
	DAMAGE(h->ring_size <<= 1, -EBADMSG);
	DAMAGE(h->ring_size = 0, -EBADMSG);
	DAMAGE(h->data_offset = 64, -EBADMSG);
	DAMAGE(h->total_size = ~0ull, -EBADMSG);
	DAMAGE(h->slot_size = 64, -EBADMSG);
	DAMAGE(h->hdr_size = 0, -EBADMSG);
	DAMAGE(h->max_string = 100000, -EBADMSG);
	/* Random garbage over the constant part: refused. */
	for (int i = 0; i < 1000; i++) {
		unsigned char *b = (unsigned char *)h;

		for (size_t k = 0;
		     k < offsetof(struct rw_trace_shm, dropped_noslot); k++)
			b[k] = (unsigned char)rand_r(&seed);
		CHECK(open_with(&s, size) < 0);
		memcpy(h, &save, offsetof(struct rw_trace_shm, dropped_noslot));
	}
#undef DAMAGE
	CHECK_EQ(open_with(&s, size), 0);

	/* Descriptions that do not make sense. */
	meta_of(s.t, meta, 4);
	meta[0].nargs = 9;
	CHECK_EQ(rw_trace_reader_open(rw__trace_fd(s.t), size, meta, 1, &r),
		 -EINVAL);
	meta_of(s.t, meta, 4);
	meta[0].fields[0].kind = 42;
	CHECK_EQ(rw_trace_reader_open(rw__trace_fd(s.t), size, meta, 1, &r),
		 -EINVAL);
	meta_of(s.t, meta, 4);
	meta[1] = meta[0];
	CHECK_EQ(rw_trace_reader_open(rw__trace_fd(s.t), size, meta, 2, &r),
		 -EINVAL);

	/* An unsealed memfd with a good header: refused (it could shrink). */
	fd = memfd_create("unsealed", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, (off_t)size), 0);
	CHECK_EQ(pwrite(fd, h, RW_TRACE_SHM_HDR, 0), RW_TRACE_SHM_HDR);
	meta_of(s.t, meta, 4);
	CHECK_EQ(rw_trace_reader_open(fd, size, meta, 1, &r), -EPERM);
	close(fd);
	CHECK_EQ(pipe(pfd), 0);
	CHECK_EQ(rw_trace_reader_open(pfd[0], size, meta, 1, &r), -EBADF);
	close(pfd[0]);
	close(pfd[1]);
	munmap(h, size);
	session_close(&s);
}

static void test_bad_data(void)
{
	struct session s;
	struct rw_trace_shm *h;
	struct rw_trace_slot *sl;
	struct tally y;
	unsigned char *ring;
	unsigned seed = 7;
	int slot;
	long e;
	char *out;
	uint64_t d0;
	int rounds = (int)rw_test_scale(3000, 100000);

	session_start(&s, "ring_*", 8192);
	h = shm_map(s.t);
	rw_trace_ring_seq(0, 0, 0, "x");
	slot = shm_slot_of(h, my_tid());
	CHECK(slot >= 0);
	sl = shm_slot(h, (uint32_t)slot);
	ring = (unsigned char *)h + h->data_offset +
	       (uint64_t)slot * h->ring_size;
	free(drain(s.r, false, &e));
	CHECK_EQ(e, 1);

	/* A head far ahead, then behind the tail: reported, skipped. */
	atomic_store(&sl->head, 1ull << 40);
	out = drain(s.r, false, &e);
	CHECK_EQ(e, 0);
	CHECK(strstr(out, "# rewire: corrupt data on thread"));
	free(out);
	CHECK_EQ(rw_trace_reader_corrupt(s.r), 1);
	rw_trace_ring_seq(0, 1, 0, "x"); /* the real head is back */
	free(drain(s.r, false, &e));
	CHECK_EQ(e, 0);
	CHECK_EQ(rw_trace_reader_corrupt(s.r), 2);
	rw_trace_ring_seq(0, 2, 0, "x");
	tally_init(&y);
	tally_drain(&y, s.r);
	CHECK_EQ(y.read[0], 1);
	CHECK_EQ(y.last[0], 2);

	/* A tail far ahead of the head: once the producer's own view of the
	 * tail says "full" and it loads the shared one, it takes the ring for
	 * full and counts, until the reader puts its tail back. (A tail that
	 * lies within [tail, head] cannot be told from a true one: the
	 * producer then overwrites unread records, and the reader finds head
	 * too far ahead and skips them.) */
	d0 = rw__trace_dropped(s.t);
	atomic_store(&sl->tail, atomic_load(&sl->head) + (1ull << 40));
	for (int i = 0; i < 400; i++)
		rw_trace_ring_seq(0, 3 + i, 0, "x");
	CHECK(rw__trace_dropped(s.t) > d0);
	tally_drain(&y, s.r);
	CHECK_EQ(y.read[0] - 1 + tally_dropped(&y, my_tid()), 400);
	CHECK(y.read[0] > 1);
	CHECK_EQ(y.corrupt, 0);
	for (int i = 0; i < 10; i++)
		rw_trace_ring_seq(0, 403 + i, 0, "x");
	d0 = (uint64_t)y.read[0];
	tally_drain(&y, s.r);
	CHECK_EQ((uint64_t)y.read[0], d0 + 10);
	CHECK_EQ(y.last[0], 412);

	/* Random bytes over written records, string lengths, ids. */
	for (int i = 0; i < rounds; i++) {
		int nev = 1 + rand_r(&seed) % 4;

		for (int k = 0; k < nev; k++) {
			char str[64];
			int len = rand_r(&seed) % 63;

			memset(str, 'a' + k, (size_t)len);
			str[len] = '\0';
			if (k % 2)
				rw_trace_ring_str(i, str);
			else
				rw_trace_ring_seq(0, i, (unsigned)k, str);
		}
		for (int k = rand_r(&seed) % 3; k > 0; k--) {
			uint64_t at = (uint64_t)rand_r(&seed) % h->ring_size;
			int nb = 1 + rand_r(&seed) % 8;

			for (int b = 0; b < nb; b++)
				ring[(at + (uint64_t)b) % h->ring_size] =
					(unsigned char)rand_r(&seed);
		}
		if (rand_r(&seed) % 50 == 0)
			atomic_store(&sl->head, (uint64_t)rand_r(&seed));
		free(drain(s.r, rand_r(&seed) % 2, &e));
	}
	printf("bad data: %d rounds, %llu corrupt reports\n", rounds,
	       (unsigned long long)rw_trace_reader_corrupt(s.r));
	CHECK(rw_trace_reader_corrupt(s.r) > 2);
	/* Recovered: the next events are read intact. */
	rw_trace_ring_seq(0, 0, 0, "resync");
	free(drain(s.r, false, &e));
	tally_init(&y);
	for (long i = 1; i <= 20; i++)
		rw_trace_ring_seq(0, i, 0, "again");
	tally_drain(&y, s.r);
	CHECK_EQ(y.read[0], 20);
	CHECK_EQ(y.last[0], 20);
	CHECK_EQ(y.corrupt, 0);

	/* Descriptions that disagree with the records. */
	{
		struct rw_trace_meta meta[8];
		struct rw_trace_reader *r2;
		size_t n = meta_of(s.t, meta, 8);

		for (size_t i = 0; i < n; i++)
			if (!strcmp(meta[i].name, "ring_seq"))
				meta[i].nargs = 3;
		CHECK_OK(rw_trace_reader_open(
			rw__trace_fd(s.t), rw__trace_size(s.t), meta, n, &r2));
		rw_trace_ring_seq(0, 21, 0, "x");
		out = drain(r2, false, &e);
		CHECK(strstr(out, "(wrong argument count)"));
		free(out);
		rw_trace_reader_close(r2);
	}
	munmap(h, rw__trace_size(s.t));
	session_close(&s);
}

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
	{ "errors", test_errors },
	{ "session_shape", test_session_shape },
	{ "format", test_format },
	{ "strings", test_strings },
	{ "accounting", test_accounting },
	{ "overflow", test_overflow },
	{ "two_sessions", test_two_sessions },
	{ "no_slot", test_no_slot },
	{ "stop_while_firing", test_stop_while_firing },
	{ "fork", test_fork },
	{ "signals", test_signals },
	{ "bad_header", test_bad_header },
	{ "bad_data", test_bad_data },
};

/* test_trace_ring [NAME...]: all tests, or the ones named. */
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
	printf("test_trace_ring: ok\n");
	return 0;
}
