/* SPDX-License-Identifier: MIT */
/*
 * Function records in `rewire trace` sessions (src/ctl/trace.c, ring.h)
 * and their reader (tools/rewire/trace_reader.c, compiled in), in-process:
 * the session the control server starts for `rewire trace --function`,
 * on this program's own patchable functions.
 *
 * Oracles:
 *   - graph, text: two threads each make N calls of tf_outer(), which
 *     calls tf_inner() once: exactly 2N "tf_outer() {" lines, 2N leaf
 *     lines "tf_inner();" indented one level deeper, 2N closing lines, in
 *     that order per thread, with the durations in their column; the
 *     tracepoint of the same session comes out too;
 *   - entries, JSON: 2N entries of tf_inner (depth 0: without returns
 *     nothing is known to be active around a call), each with
 *     tf_outer+0xOFF as its caller (resolved from the session's own
 *     table), 2N of tf_outer at depth 0 whose caller (outside the table,
 *     no resolver) is an address, nothing else;
 *   - damage: a function record with an id outside the table, or with the
 *     wrong length, makes the reader report "corrupt" and skip, never read
 *     outside the record;
 *   - the session's table: rw__trace_nfuncs() and the ids of the records
 *     are rw_ftrace_func_at()'s order.
 * Skipped (77) on the generic backend: it has no function tracing. The
 * graph part runs on x86-64 and aarch64.
 */
#include <rewire/ftrace.h>
#include <rewire/tracepoint.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "ctl/ring.h"
#include "ctl/trace.h"
#include "trace_reader.h"
#include "trace_meta.h"

RW_DECLARE_TRACEPOINT(tf_mark, (int, n));
RW_DEFINE_TRACEPOINT(tf_mark, (int, n));

#define N 500

int tf_outer(int x);
int tf_inner(int x);

static volatile int sink;

int tf_inner(int x)
{
	return x * 5 + sink;
}

int tf_outer(int x)
{
	int y = tf_inner(x) + 1;

	sink = y & 1;
	return y;
}

static void *caller(void *arg)
{
	(void)arg;
	for (int i = 0; i < N; i++)
		tf_outer(i);
	return NULL;
}

static void run_threads(void)
{
	pthread_t t[2];

	for (int i = 0; i < 2; i++)
		CHECK_OK(pthread_create(&t[i], NULL, caller, NULL));
	for (int i = 0; i < 2; i++)
		CHECK_OK(pthread_join(t[i], NULL));
}

struct sess {
	struct rw__trace *t;
	struct rw_trace_reader *r;
	struct rw_trace_func_meta *funcs;
	size_t nfuncs;
};

static int start(struct sess *s, const char *const *tps, size_t ntps,
		 const char *const *fns, size_t nfns, bool graph)
{
	struct rw_trace_meta meta[4];
	char err[512] = "";
	size_t n;
	int e;

	memset(s, 0, sizeof(*s));
	e = rw__trace_start_funcs(tps, ntps, fns, nfns, graph, 0, &s->t, err,
				  sizeof(err));
	if (e)
		return e;
	n = rw_test_trace_meta(s->t, meta, 4);
	CHECK_OK(rw_trace_reader_open(rw__trace_fd(s->t), rw__trace_size(s->t),
				      meta, n, &s->r));
	/* The table the server sends with FUNCS. */
	s->nfuncs = rw__trace_nfuncs(s->t);
	CHECK(s->nfuncs == rw_ftrace_nfuncs(rw__trace_ftrace(s->t)));
	s->funcs = calloc(s->nfuncs, sizeof(*s->funcs));
	CHECK(s->funcs);
	for (size_t i = 0; i < s->nfuncs; i++) {
		const struct rw_ftrace_func *f =
			rw_ftrace_func_at(rw__trace_ftrace(s->t), i);

		s->funcs[i].addr = f->addr;
		s->funcs[i].size = f->size;
		snprintf(s->funcs[i].name, sizeof(s->funcs[i].name), "%s",
			 f->name);
		snprintf(s->funcs[i].display, sizeof(s->funcs[i].display),
			 "%s()", f->name);
	}
	rw_trace_reader_set_funcs(s->r, s->funcs, s->nfuncs, graph);
	return 0;
}

static void stop(struct sess *s)
{
	rw__trace_stop(s->t);
	rw_trace_reader_close(s->r);
	free(s->funcs);
}

static char *drain(struct sess *s, bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f);
	rw_trace_reader_drain(s->r, f, json);
	rw_trace_reader_flush(s->r, f, json);
	CHECK(fclose(f) == 0);
	return buf;
}

static size_t count(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_graph(void)
{
	const char *tps[] = { "tf_mark" };
	const char *fns[] = { "tf_outer", "tf_inner" };
	struct sess s;
	char *out, *line, *save = NULL;
	unsigned state[1 << 16] = { 0 };

	CHECK_OK(start(&s, tps, 1, fns, 2, true));
	CHECK(s.nfuncs == 2);
	rw_trace_tf_mark(1);
	run_threads();
	out = drain(&s, false);
	CHECK(count(out, "|  tf_outer() {\n") == 2 * N);
	CHECK(count(out, " us |    tf_inner();\n") == 2 * N);
	CHECK(count(out, " us |  } /* tf_outer() */\n") == 2 * N);
	CHECK(count(out, " tf_mark: n=1\n") == 1);
	CHECK(!strstr(out, "dropped") && !strstr(out, "corrupt"));
	/* Per thread: open, leaf, close, open... */
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long tid;
		unsigned *st;

		CHECK(sscanf(line, "%*u.%*u %lu", &tid) == 1);
		st = &state[tid & 0xffff];
		if (strstr(line, "tf_mark"))
			continue;
		if (strstr(line, "tf_outer() {"))
			CHECK(*st == 0);
		else if (strstr(line, "tf_inner();"))
			CHECK(*st == 1);
		else
			CHECK(*st == 2 && strstr(line, "} /* tf_outer() */"));
		*st = (*st + 1) % 3;
	}
	free(out);
	stop(&s);
}

static void test_json(void)
{
	const char *fns[] = { "tf_*" };
	struct sess s;
	char *out;

	CHECK_OK(start(&s, NULL, 0, fns, 1, false));
	CHECK(s.nfuncs == 2);
	run_threads();
	out = drain(&s, true);
	CHECK(count(out, "\"event\":\"entry\",\"function\":\"tf_inner()\","
			 "\"depth\":0,\"caller\":\"tf_outer+0x") == 2 * N);
	CHECK(count(out, "\"event\":\"entry\",\"function\":\"tf_outer()\","
			 "\"depth\":0,\"caller\":\"0x") == 2 * N);
	CHECK(count(out, "\n") == 4 * N);
	free(out);
	stop(&s);
}

/* A record written into the calling thread's ring behind the producer's
 * back, as a buggy process could. */
static void forge(struct sess *s, uint16_t id, uint32_t len, uint32_t func)
{
	size_t size = rw__trace_size(s->t);
	unsigned char *map = mmap(NULL, size, PROT_READ | PROT_WRITE,
				  MAP_SHARED, rw__trace_fd(s->t), 0);
	const struct rw_trace_shm *h = (const void *)map;
	struct rw_trace_slot *slot = NULL;
	struct rw_trace_func_rec rec;
	pid_t tid = (pid_t)syscall(SYS_gettid);
	uint64_t head;
	uint32_t i;

	CHECK(map != MAP_FAILED);
	for (i = 0; i < h->nslots && !slot; i++) {
		struct rw_trace_slot *sl =
			(struct rw_trace_slot *)(map + RW_TRACE_SHM_HDR) + i;

		if (atomic_load(&sl->tid) == tid)
			slot = sl;
	}
	CHECK(slot);
	i--;
	head = atomic_load(&slot->head);
	CHECK((head & (h->ring_size - 1)) + 64 <= h->ring_size);
	memset(&rec, 0, sizeof(rec));
	rec.hdr.len = len;
	rec.hdr.id = id;
	rec.func = func;
	memcpy(map + h->data_offset + (uint64_t)i * h->ring_size +
		       (head & (h->ring_size - 1)),
	       &rec, len <= sizeof(rec) ? len : sizeof(rec));
	atomic_store(&slot->head, head + len);
	munmap(map, size);
}

static void test_damage(void)
{
	const char *fns[] = { "tf_inner" };
	struct sess s;
	char *out;

	/* An id outside the table (a graph session). */
	CHECK_OK(start(&s, NULL, 0, fns, 1, true));
	tf_outer(1);
	forge(&s, RW_TRACE_FUNC_ENTRY, RW_TRACE_FUNC_ENTRY_LEN, 7);
	out = drain(&s, false);
	CHECK(count(out, "tf_inner();") == 1);
	CHECK(strstr(out, "corrupt data on thread") &&
	      strstr(out, "(unknown function id)"));
	free(out);
	stop(&s);

	/* An entry with a return's length. */
	CHECK_OK(start(&s, NULL, 0, fns, 1, false));
	tf_outer(1);
	forge(&s, RW_TRACE_FUNC_ENTRY, RW_TRACE_FUNC_RETURN_LEN, 0);
	out = drain(&s, true);
	CHECK(count(out, "\"function\":\"tf_inner()\"") == 1);
	CHECK(strstr(out, ",\"corrupt\":\"record length\""));
	free(out);
	stop(&s);
}

int main(void)
{
	const char *fns[] = { "tf_inner" };
	struct rw__trace *t;
	char err[256];
	int e;

	e = rw__trace_start_funcs(NULL, 0, fns, 1, false, 0, &t, err,
				  sizeof(err));
	if (e == -EOPNOTSUPP) {
		printf("SKIP: no function tracing on this backend\n");
		return 77;
	}
	CHECK_OK(e);
	rw__trace_stop(t);
	test_graph();
	test_json();
	test_damage();
	printf("PASS\n");
	return 0;
}
