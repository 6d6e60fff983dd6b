/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 16): LS lists the trace sessions that run in the
 * process, one TRACE_SESSION group each, whichever connection started
 * them (`rewire ps` shows them): a tracepoint session in overwrite mode (a
 * flight recorder), an aggregate (funccount) and a function trace, each on
 * its own connection, seen from a fourth: SESSION (distinct, the flight
 * recorder's the number SNAPSHOT gives), OWNER (the client's pid), KIND,
 * OVERWRITE, NAME* (the tracepoints), PATTERN* (the function globs),
 * SINCE_NS (when it started). A session that stops, or whose connection
 * closes, is no longer listed. Before, LS had no TRACE_SESSION group.
 */
#include <rewire/config.h>

#include "check.h"

/* On aarch64 function tracing may not be there (yet): AGG_START says so,
 * and the test skips with the server's message. */
#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("function tracing needs a code-patching backend");
}
#else

#include "client.h"

#include <rewire/tracepoint.h>

RW_DECLARE_TRACEPOINT(ts_tick, (int, n));
RW_DEFINE_TRACEPOINT(ts_tick, (int, n));

__attribute__((noinline)) int ts_work(int x);
__attribute__((noinline)) int ts_work(int x)
{
	__asm__ volatile("" ::: "memory");
	return x * 3;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t nsessions(struct tc *c)
{
	struct rw_wire_field g;
	size_t n = 0;

	rw_wire_begin(&c->b, RW_MSG_LS);
	CHECK_EQ(tc_call(c, -1), RW_MSG_OK);
	while (tc_group(c, RW_TAG_TRACE_SESSION, n, &g))
		n++;
	return n;
}

/* The session of kind @kind in the last LS reply: checks the fields every
 * session has. */
static void session(struct tc *c, const char *kind, struct rw_wire_field *g,
		    uint64_t *number, int64_t t0)
{
	char have[64];
	uint64_t v;

	for (size_t i = 0; tc_group(c, RW_TAG_TRACE_SESSION, i, g); i++) {
		if (!tc_str(g->data, g->len, RW_TAG_KIND, have, sizeof(have)))
			continue;
		if (strcmp(have, kind))
			continue;
		CHECK(rw_wire_find_u64(g->data, g->len, RW_TAG_SESSION,
				       number));
		CHECK(*number != 0);
		CHECK(rw_wire_find_u64(g->data, g->len, RW_TAG_OWNER, &v));
		CHECK_EQ(v, getpid());
		CHECK(rw_wire_find_u64(g->data, g->len, RW_TAG_SINCE_NS, &v));
		CHECK((int64_t)v >= t0 && (int64_t)v <= mono_ns());
		printf("session %llu: %s\n", (unsigned long long)*number, kind);
		return;
	}
	fprintf(stderr, "no TRACE_SESSION of kind %s\n", kind);
	exit(1);
}

int main(void)
{
	struct tc rec, agg, fn, ls;
	struct rw_wire_field g;
	uint64_t n_rec, n_agg, n_fn, v;
	char path[256], s[64];
	int64_t t0;
	int sum = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	snprintf(path, sizeof(path), "/tmp/rwts.%d", (int)getpid());
	setenv("REWIRE_CTL_DIR", path, 1);
	CHECK_OK(rw_ctl_start());
	tc_connect(&rec);
	tc_connect(&agg);
	tc_connect(&fn);
	tc_connect(&ls);
	tc_hello(&rec);
	tc_hello(&agg);
	tc_hello(&fn);
	tc_hello(&ls);
	CHECK_EQ(nsessions(&ls), 0);
	t0 = mono_ns();

	rw_wire_begin(&rec.b, RW_MSG_TRACE_START);
	rw_wire_str(&rec.b, RW_TAG_NAME, "ts_tick");
	rw_wire_u64(&rec.b, RW_TAG_OVERWRITE, 1);
	CHECK_EQ(tc_call(&rec, -1), RW_MSG_OK);
	rw_wire_begin(&agg.b, RW_MSG_AGG_START);
	rw_wire_str(&agg.b, RW_TAG_PATTERN, "ts_work");
	rw_wire_u64(&agg.b, RW_TAG_MODE, 1);
	if (tc_call(&agg, -1) != RW_MSG_OK)
		SKIP("AGG_START: %s", tc_message(&agg));
	rw_wire_begin(&fn.b, RW_MSG_TRACE_START);
	rw_wire_str(&fn.b, RW_TAG_PATTERN, "ts_wor*");
	rw_wire_str(&fn.b, RW_TAG_PATTERN, "!nothing*");
	CHECK_EQ(tc_call(&fn, -1), RW_MSG_OK);
	for (int i = 0; i < 10; i++) {
		rw_trace_ts_tick(i);
		sum += ts_work(i);
	}
	CHECK_EQ(sum, 135);

	CHECK_EQ(nsessions(&ls), 3);
	session(&ls, "trace", &g, &n_rec, t0);
	CHECK(rw_wire_find_u64(g.data, g.len, RW_TAG_OVERWRITE, &v));
	CHECK_EQ(v, 1);
	CHECK(tc_str(g.data, g.len, RW_TAG_NAME, s, sizeof(s)));
	CHECK(!strcmp(s, "ts_tick"));
	CHECK(!tc_str(g.data, g.len, RW_TAG_PATTERN, s, sizeof(s)));
	session(&ls, "aggregate", &g, &n_agg, t0);
	CHECK(rw_wire_find_u64(g.data, g.len, RW_TAG_OVERWRITE, &v));
	CHECK_EQ(v, 0);
	CHECK(tc_str(g.data, g.len, RW_TAG_PATTERN, s, sizeof(s)));
	CHECK(!strcmp(s, "ts_work"));
	CHECK(!tc_str(g.data, g.len, RW_TAG_NAME, s, sizeof(s)));
	session(&ls, "functions", &g, &n_fn, t0);
	{
		struct rw_wire_iter it;
		struct rw_wire_field f;
		const char *want[] = { "ts_wor*", "!nothing*" };
		size_t k = 0;

		rw_wire_iter_group(&it, &g);
		while (rw_wire_next(&it, &f)) {
			if (f.tag != RW_TAG_PATTERN)
				continue;
			CHECK(k < 2);
			CHECK(rw_wire_get_str(&f, s, sizeof(s)));
			CHECK(!strcmp(s, want[k]));
			k++;
		}
		CHECK_EQ(k, 2);
	}
	CHECK(n_rec != n_agg && n_agg != n_fn && n_rec != n_fn);

	/* The flight recorder's number is SNAPSHOT's. */
	rw_wire_begin(&ls.b, RW_MSG_SNAPSHOT);
	CHECK_EQ(tc_call(&ls, -1), RW_MSG_OK);
	CHECK(rw_wire_find_u64(ls.m.payload, ls.m.len, RW_TAG_SESSION, &v));
	CHECK_EQ(v, n_rec);

	rw_wire_begin(&rec.b, RW_MSG_TRACE_STOP);
	CHECK_EQ(tc_call(&rec, -1), RW_MSG_OK);
	CHECK_EQ(nsessions(&ls), 2);
	tc_close(&fn);
	/* The server sees the hang-up when it polls next; LS comes after. */
	for (int i = 0; i < 100 && nsessions(&ls) != 1; i++)
		usleep(10000);
	CHECK_EQ(nsessions(&ls), 1);
	session(&ls, "aggregate", &g, &n_agg, t0);
	rw_wire_begin(&agg.b, RW_MSG_AGG_STOP);
	CHECK_EQ(tc_call(&agg, -1), RW_MSG_OK);
	CHECK_EQ(nsessions(&ls), 0);

	tc_close(&rec);
	tc_close(&agg);
	tc_close(&ls);
	CHECK_OK(rw_ctl_stop());
	rmdir(path);
	printf("PASS\n");
	return 0;
}
#endif
