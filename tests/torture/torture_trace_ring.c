/* SPDX-License-Identifier: MIT */
/*
 * `rewire trace` ring torture: short-lived producer threads, a reader that
 * drains at random moments and in random amounts, and a second session
 * started and stopped over and over on the same tracepoints.
 *
 * Each round starts a session A (random ring size, 4 KiB to 64 KiB) and
 * runs producer threads that are created and exit all the time: each
 * fires a random number of events, up to 5,000 (300 in rounds that run
 * out of slots), (id, seq, a string of random length,
 * sometimes longer than 256 bytes or NULL), with random pauses. A reader
 * thread drains A at random intervals, in text or JSON, sometimes only a
 * random number of events (rw_trace_reader_drain_max()). A chaos thread
 * starts and stops session B on the same tracepoints while everything
 * runs; B is read but not checked beyond "no corrupt data".
 *
 * Oracle, at the end of each round (producers joined, A stopped, its last
 * events drained): for every producer, its seq numbers come out in order
 * and each at most once, and the string of every event is the one it
 * fired (its length and letter encode id and seq); for every thread id,
 * the events fired by the producers that had it == events read + events
 * reported dropped on it; producers whose tid never appears (no free slot)
 * account exactly for the "no free slot" drops; nothing is ever reported
 * corrupt.
 *
 * A round has 60 producers (90 in every third round: more than the
 * session's 64 slots) and lasts until they are done or its time is up.
 * Short by default (3 rounds of at most 0.5 s); REWIRE_TORTURE_LONG=1
 * runs 60 rounds of at most 3 s.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <rewire/tracepoint.h>

#include "check.h"
#include "ctl/trace.h"
#include "trace_reader.h"
#include "trace_meta.h"

RW_DECLARE_TRACEPOINT(tr_ev, (long, id), (long, seq), (const char *, s));
RW_DEFINE_TRACEPOINT(tr_ev, (long, id), (long, seq), (const char *, s));
RW_DECLARE_TRACEPOINT(tr_num, (long, id), (long, seq), (double, x),
		      (unsigned char, b));
RW_DEFINE_TRACEPOINT(tr_num, (long, id), (long, seq), (double, x),
		     (unsigned char, b));

#define MAXP 128 /* producers per round, at most */

/*
 * A producer. The parser learns of it only through the rings, which TSan
 * cannot follow (the reader maps the memfd at another address), so what
 * the parser reads of it is atomic, and what it writes is its own (the
 * arrays below).
 */
struct producer {
	long id;
	_Atomic long n; /* events to fire */
	pid_t tid;
	unsigned seed;
};

static struct producer prod[MAXP];
static atomic_long nalloc; /* producers created (may pass maxp) */
static long maxp;	   /* producers this round */
static atomic_bool round_over;

/* The parser's. */
static long read_of[MAXP], last_of[MAXP];
static pid_t tid_of_id[MAXP];

static long nprod(void)
{
	long n = atomic_load(&nalloc);

	return n < maxp ? n : maxp;
}

/* The string of event (id, seq): length (id * 7 + seq) % 300, letter by
 * seq, or NULL for every 97th seq. */
static size_t str_len(long id, long seq)
{
	return (size_t)((id * 7 + seq) % 300);
}

static char str_char(long seq)
{
	return (char)('a' + seq % 26);
}

static void *producer_main(void *p)
{
	struct producer *pr = p;
	char buf[301];

	pr->tid = (pid_t)syscall(SYS_gettid);
	for (long seq = 0; seq < atomic_load(&pr->n); seq++) {
		size_t len = str_len(pr->id, seq);

		if (seq % 5 == 4) {
			rw_trace_tr_num(pr->id, seq, (double)seq / 4,
					(unsigned char)seq);
		} else if (seq % 97 == 96) {
			rw_trace_tr_ev(pr->id, seq, NULL);
		} else {
			memset(buf, str_char(seq), len);
			buf[len] = '\0';
			rw_trace_tr_ev(pr->id, seq, buf);
		}
		switch (rand_r(&pr->seed) % 64) {
		case 0:
			sched_yield();
			break;
		case 1:
			usleep((useconds_t)(rand_r(&pr->seed) % 500));
			break;
		default:
			break;
		}
		if (atomic_load_explicit(&round_over, memory_order_relaxed) &&
		    seq % 1024 == 1023) {
			/* Time is up: stop early, and say so. */
			atomic_store(&pr->n, seq + 1);
			break;
		}
	}
	return NULL;
}

static atomic_int spawners_done;

/* Creates producers, up to 8 alive at a time, until maxp were created or
 * the round is over; then joins them. */
static void *spawner_main(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	pthread_t live[8];
	int nlive = 0;

	for (;;) {
		bool more = !atomic_load(&round_over);
		long i = -1;

		if (more && nlive < 8) {
			i = atomic_fetch_add(&nalloc, 1);
			if (i >= maxp) {
				more = false;
				i = -1;
			}
		}
		if (i >= 0) {
			prod[i].id = i;
			prod[i].tid = 0;
			prod[i].seed = seed + (unsigned)i;
			atomic_store(&prod[i].n,
				     1 + rand_r(&seed) %
						     (maxp > 64 ? 300 : 5000));
			CHECK_EQ(pthread_create(&live[nlive++], NULL,
						producer_main, &prod[i]),
				 0);
			continue;
		}
		if (!nlive)
			break;
		CHECK_EQ(pthread_join(live[0], NULL), 0);
		memmove(live, live + 1, sizeof(live[0]) * (size_t)(nlive - 1));
		nlive--;
	}
	atomic_fetch_add(&spawners_done, 1);
	return NULL;
}

/* --- Parsing what session A printed ------------------------------------- */

struct drops {
	pid_t tid;
	long n;
};
static struct drops drops[MAXP];
static int ndrops;
static long noslot, corrupt_lines;
static pid_t tid_of_id[MAXP];

static void add_drop(pid_t tid, long n)
{
	for (int i = 0; i < ndrops; i++) {
		if (drops[i].tid == tid) {
			drops[i].n += n;
			return;
		}
	}
	CHECK(ndrops < MAXP);
	drops[ndrops].tid = tid;
	drops[ndrops++].n = n;
}

static void check_event(long id, long seq, int tid)
{
	long n;

	CHECK(id >= 0 && id < MAXP);
	n = atomic_load(&prod[id].n);
	if (seq <= last_of[id] || seq >= n) {
		fprintf(stderr, "producer %ld: seq %ld after %ld (of %ld)\n",
			id, seq, last_of[id], n);
		exit(1);
	}
	if (tid_of_id[id] == 0)
		tid_of_id[id] = tid;
	CHECK_EQ(tid_of_id[id], tid);
	last_of[id] = seq;
	read_of[id]++;
}

/* One line of text: "SEC.NSEC TID tr_ev: id=I seq=S s="..."" etc. */
static void parse_text_line(char *line)
{
	unsigned long long sec, nsec;
	long id, seq, n;
	int tid, off = 0;

	if (sscanf(line, "# rewire: %ld events dropped on thread %d", &n,
		   &tid) == 2) {
		add_drop(tid, n);
	} else if (strstr(line, "# rewire:") == line &&
		   strstr(line, "no free slot")) {
		CHECK(sscanf(line, "# rewire: %ld", &n) == 1);
		noslot += n;
	} else if (strstr(line, "# rewire:") == line) {
		fprintf(stderr, "unexpected: %s\n", line);
		corrupt_lines++;
	} else if (sscanf(line, "%llu.%llu %d tr_ev: id=%ld seq=%ld s=%n", &sec,
			  &nsec, &tid, &id, &seq, &off) == 5 &&
		   off > 0) {
		const char *s = line + off;
		size_t len = str_len(id, seq);

		check_event(id, seq, tid);
		if (seq % 97 == 96) {
			CHECK(!strcmp(s, "(null)"));
			return;
		}
		CHECK(s[0] == '"');
		for (size_t k = 0; k < len && k < 256; k++)
			CHECK(s[1 + k] == str_char(seq));
		if (len > 256)
			CHECK(!strcmp(s + 1 + 256, "\"..."));
		else
			CHECK(!strcmp(s + 1 + len, "\""));
	} else if (sscanf(line, "%llu.%llu %d tr_num: id=%ld seq=%ld", &sec,
			  &nsec, &tid, &id, &seq) == 5) {
		char want[64];

		check_event(id, seq, tid);
		snprintf(want, sizeof(want), " x=%g b=%u", (double)seq / 4,
			 (unsigned)(unsigned char)seq);
		CHECK(strstr(line, want));
	} else {
		fprintf(stderr, "unparsed: %s\n", line);
		exit(1);
	}
}

/* One JSON line: {"ts":...,"tid":T,"tp":"tr_ev","args":{"id":I,"seq":S,...}} */
static void parse_json_line(char *line)
{
	unsigned long long ts;
	long id, seq, n;
	int tid;
	const char *p;

	/* Every line starts with the integer ns. */
	CHECK(sscanf(line, "{\"ts\":%llu,", &ts) == 1);
	if (sscanf(line, "{\"ts\":%llu,\"dropped\":%ld,\"tid\":%d}", &ts, &n,
		   &tid) == 3) {
		add_drop(tid, n);
		return;
	}
	if (strstr(line, "\"reason\":\"no_slot\"")) {
		CHECK(sscanf(line, "{\"ts\":%llu,\"dropped\":%ld", &ts, &n) ==
		      2);
		noslot += n;
		return;
	}
	p = strstr(line, ",\"tid\":");
	if (!p || strstr(line, "\"corrupt\"") || strstr(line, "\"reason\"")) {
		fprintf(stderr, "unexpected: %s\n", line);
		corrupt_lines++;
		return;
	}
	CHECK(sscanf(p, ",\"tid\":%d,", &tid) == 1);
	p = strstr(line, "\"args\":{\"id\":");
	CHECK(p);
	CHECK(sscanf(p, "\"args\":{\"id\":%ld,\"seq\":%ld", &id, &seq) == 2);
	check_event(id, seq, tid);
	if (strstr(line, "\"tp\":\"tr_ev\"")) {
		size_t len = str_len(id, seq);

		if (seq % 97 == 96)
			CHECK(strstr(line, "\"s\":null}}"));
		else if (len > 256)
			CHECK(strstr(line, "\"truncated\":[\"s\"]"));
		else
			CHECK(!strstr(line, "truncated"));
	}
}

static void parse(char *text, bool json)
{
	char *line = text, *nl;

	while (line && *line) {
		nl = strchr(line, '\n');
		CHECK(nl);
		*nl = '\0';
		if (json)
			parse_json_line(line);
		else
			parse_text_line(line);
		line = nl + 1;
	}
}

static long drain_into_parser(struct rw_trace_reader *r, bool json, long max)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	long n;

	CHECK(f);
	n = rw_trace_reader_drain_max(r, f, json, max);
	CHECK(fclose(f) == 0);
	parse(buf, json);
	free(buf);
	return n;
}

/* --- Sessions ------------------------------------------------------------- */

static struct rw_trace_reader *reader_of(struct rw__trace *t)
{
	struct rw_trace_meta meta[4];
	struct rw_trace_reader *r;
	size_t n = rw_test_trace_meta(t, meta, 4);

	CHECK(n <= 4);
	CHECK_OK(rw_trace_reader_open(rw__trace_fd(t), rw__trace_size(t), meta,
				      n, &r));
	return r;
}

static struct rw__trace *start(size_t ring)
{
	const char *pats[1] = { "tr_*" };
	struct rw__trace *t;
	char err[128];

	CHECK_OK(rw__trace_start(pats, 1, ring, &t, err, sizeof(err)));
	CHECK_EQ(rw__trace_count(t), 2);
	return t;
}

struct reader_ctl {
	struct rw_trace_reader *r;
	unsigned seed;
	atomic_bool stop;
	long events, drains;
};

static void *reader_main(void *p)
{
	struct reader_ctl *c = p;

	while (!atomic_load(&c->stop)) {
		long max = rand_r(&c->seed) % 4 ? LONG_MAX
						: 1 + rand_r(&c->seed) % 100;

		c->events += drain_into_parser(c->r, rand_r(&c->seed) % 2, max);
		c->drains++;
		usleep((useconds_t)(rand_r(&c->seed) % 1000));
	}
	return NULL;
}

static void *chaos_main(void *p)
{
	unsigned seed = 99;
	long cycles = 0;

	while (!atomic_load((atomic_bool *)p)) {
		struct rw__trace *t = start(4096u << (rand_r(&seed) % 4));
		struct rw_trace_reader *r = reader_of(t);
		FILE *devnull = fopen("/dev/null", "w");

		CHECK(devnull);
		usleep((useconds_t)(rand_r(&seed) % 2000));
		rw_trace_reader_drain(r, devnull, rand_r(&seed) % 2);
		rw__trace_stop(t);
		rw_trace_reader_drain(r, devnull, false);
		CHECK_EQ(rw_trace_reader_corrupt(r), 0);
		rw_trace_reader_close(r);
		fclose(devnull);
		cycles++;
	}
	return (void *)cycles;
}

static void one_round(int round, double seconds)
{
	unsigned seed = 1234u + (unsigned)round;
	size_t ring = 4096u << (rand_r(&seed) % 5);
	struct rw__trace *t = start(ring);
	struct reader_ctl rc;
	pthread_t reader, spawners[2], chaos;
	atomic_bool chaos_stop = false;
	long fired = 0, read = 0, accounted_noslot = 0, dropped = 0;
	void *cycles;
	uint64_t t0;

	atomic_store(&nalloc, 0);
	atomic_store(&spawners_done, 0);
	maxp = round % 3 == 2 ? 90 : 60; /* 90: more than the 64 slots */
	atomic_store(&round_over, false);
	memset(tid_of_id, 0, sizeof(tid_of_id));
	memset(read_of, 0, sizeof(read_of));
	for (int i = 0; i < MAXP; i++)
		last_of[i] = -1;
	ndrops = 0;
	noslot = corrupt_lines = 0;
	memset(&rc, 0, sizeof(rc));
	rc.r = reader_of(t);
	rc.seed = seed;
	CHECK_EQ(pthread_create(&reader, NULL, reader_main, &rc), 0);
	CHECK_EQ(pthread_create(&chaos, NULL, chaos_main, &chaos_stop), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&spawners[i], NULL, spawner_main,
					(void *)(uintptr_t)(seed + 17u * i)),
			 0);
	t0 = rw_test_now_ns();
	while (rw_test_now_ns() - t0 < (uint64_t)(seconds * 1e9) &&
	       atomic_load(&spawners_done) < 2)
		usleep(10000);
	atomic_store(&round_over, true);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_join(spawners[i], NULL), 0);
	atomic_store(&chaos_stop, true);
	CHECK_EQ(pthread_join(chaos, &cycles), 0);
	atomic_store(&rc.stop, true);
	CHECK_EQ(pthread_join(reader, NULL), 0);
	rw__trace_stop(t);
	rc.events += drain_into_parser(rc.r, false, LONG_MAX);

	/* The oracle. */
	CHECK_EQ(corrupt_lines, 0);
	CHECK_EQ(rw_trace_reader_corrupt(rc.r), 0);
	for (long i = 0; i < nprod(); i++) {
		struct producer *pr = &prod[i];
		bool seen = tid_of_id[i] != 0;

		fired += pr->n;
		read += read_of[i];
		for (int k = 0; k < ndrops && !seen; k++)
			seen = drops[k].tid == pr->tid;
		if (!seen)
			accounted_noslot += pr->n;
	}
	CHECK_EQ(read, rc.events);
	/* Per tid: fired == read + dropped. */
	for (long i = 0; i < nprod(); i++) {
		pid_t tid = prod[i].tid;
		long f = 0, r = 0, d = 0;
		bool first = true;

		for (long k = 0; k < i && first; k++)
			first = prod[k].tid != tid;
		if (!first)
			continue;
		for (long k = 0; k < nprod(); k++) {
			if (prod[k].tid != tid)
				continue;
			f += prod[k].n;
			r += read_of[k];
		}
		for (int k = 0; k < ndrops; k++)
			if (drops[k].tid == tid)
				d = drops[k].n;
		if (r + d == 0)
			continue; /* no slot: checked below */
		if (f != r + d) {
			fprintf(stderr,
				"tid %d: fired %ld, read %ld, dropped "
				"%ld\n",
				(int)tid, f, r, d);
			exit(1);
		}
		dropped += d;
	}
	CHECK_EQ(accounted_noslot, noslot);
	CHECK_EQ(fired, read + dropped + noslot);
	CHECK_EQ((long)rw_trace_reader_dropped(rc.r), dropped + noslot);
	printf("round %d: ring %zu, %ld producers, %ld events: %ld read, "
	       "%ld dropped, %ld without a slot; %ld drains; %ld chaos "
	       "sessions\n",
	       round, ring, nprod(), fired, read, dropped, noslot, rc.drains,
	       (long)(intptr_t)cycles);
	rw_trace_reader_close(rc.r);
}

int main(void)
{
	int rounds = (int)rw_test_scale(3, 60);
	double seconds = rw_test_long() ? 3.0 : 0.5;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int r = 0; r < rounds; r++)
		one_round(r, seconds);
	CHECK(!rw_tracepoint_enabled(tr_ev));
	printf("torture_trace_ring: ok\n");
	return 0;
}
