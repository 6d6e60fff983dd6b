/* SPDX-License-Identifier: MIT */
/*
 * `rewire trace --filter` in-process (src/ctl/trace.c, filters_setup and
 * filter_probe): sessions started with rw__trace_start_opts() and a
 * filter, fired from several threads, checked through the shared memory
 * without a reader:
 *   - an event the filter keeps out writes nothing and claims nothing: a
 *     thread whose every event fails claims no slot; the bytes written are
 *     exactly the passing events' records; the session counts the rest
 *     (rw__trace_filtered), those of a tracepoint lacking the filter's
 *     fields (state 2) included;
 *   - two sessions on one tracepoint, one filtered, one not, each get what
 *     they asked for;
 *   - the start's errors carry the column (syntax, unknown name, a type
 *     mismatch in every tracepoint, no tracepoint having every field, a
 *     filter with function patterns only) and attach nothing.
 */
#include "check.h"

#include "ctl/ring.h"
#include "ctl/trace.h"

#include <pthread.h>
#include <sys/mman.h>

#include <rewire/tracepoint.h>

RW_DECLARE_TRACEPOINT(tf_req, (int, x), (const char *, s));
RW_DEFINE_TRACEPOINT(tf_req, (int, x), (const char *, s));
RW_DECLARE_TRACEPOINT(tf_other, (unsigned long, y));
RW_DEFINE_TRACEPOINT(tf_other, (unsigned long, y));
RW_DECLARE_TRACEPOINT(tf_str, (const char *, x));
RW_DEFINE_TRACEPOINT(tf_str, (const char *, x));

#define THREADS 4
#define EVENTS 1000
/* tf_req's record: header, two slots, "key"/"val" padded to 8. */
#define REC (RW_TRACE_REC_HDR + 2 * 8 + 8)

/* Thread 3 fires only events the filter keeps out (x < 0). */
static void *worker(void *arg)
{
	long id = (long)arg;

	for (int i = 0; i < EVENTS; i++) {
		int x = id == 3 ? -1 - i : i % 100;

		rw_trace_tf_req(x, i & 1 ? "key" : "val");
		rw_trace_tf_other((unsigned long)i);
	}
	return NULL;
}

static bool passes(long id, int i)
{
	int x = id == 3 ? -1 - i : i % 100;

	/* "x > 5 && s == 'k*'" */
	return x > 5 && (i & 1);
}

static int start(const char *const *pats, size_t n, const char *filter,
		 struct rw__trace **t, unsigned *col, char *err, size_t len)
{
	struct rw__trace_opts o = {
		.patterns = pats,
		.npatterns = n,
		.ring_bytes = 1u << 20,
		.filter = filter,
		.filter_column = col,
	};

	return rw__trace_start_opts(&o, t, err, len);
}

static void check_session(void)
{
	const char *pats[2] = { "tf_req", "tf_other" };
	struct rw__trace *t, *plain;
	struct rw_trace_shm *h, *hp;
	pthread_t th[THREADS];
	uint64_t bytes = 0, want = 0, all = 0;
	unsigned col = 99;
	char err[256];

	CHECK_OK(start(pats, 2, "x > 5 && s == 'k*'", &t, &col, err,
		       sizeof(err)));
	CHECK_EQ(col, 0);
	CHECK_OK(start(pats, 1, NULL, &plain, &col, err, sizeof(err)));
	CHECK_EQ(rw__trace_count(t), 2);
	for (size_t i = 0; i < 2; i++) {
		const char *name = rw__trace_tp(t, i)->name;

		CHECK_EQ(rw__trace_filter_state(t, i),
			 !strcmp(name, "tf_req") ? 1 : 2);
		CHECK_EQ(rw__trace_filter_state(plain, i), 0);
	}
	for (long i = 0; i < THREADS; i++)
		CHECK(!pthread_create(&th[i], NULL, worker, (void *)i));
	for (long i = 0; i < THREADS; i++)
		CHECK(!pthread_join(th[i], NULL));
	for (long id = 0; id < THREADS; id++)
		for (int i = 0; i < EVENTS; i++)
			want += passes(id, i);
	CHECK(want > 0);

	h = mmap(NULL, rw__trace_size(t), PROT_READ, MAP_SHARED,
		 rw__trace_fd(t), 0);
	hp = mmap(NULL, rw__trace_size(plain), PROT_READ, MAP_SHARED,
		  rw__trace_fd(plain), 0);
	CHECK(h != MAP_FAILED && hp != MAP_FAILED);
	/* The thread whose events all fail claimed no slot. */
	CHECK_EQ(atomic_load(&h->slots_claimed), THREADS - 1);
	CHECK_EQ(atomic_load(&hp->slots_claimed), THREADS);
	for (uint32_t i = 0; i < h->nslots; i++) {
		const struct rw_trace_slot *s =
			(const struct rw_trace_slot *)((const char *)h +
						       RW_TRACE_SHM_HDR) +
			i;

		bytes += atomic_load(&s->head);
		CHECK_EQ(atomic_load(&s->dropped), 0);
	}
	for (uint32_t i = 0; i < hp->nslots; i++)
		all += atomic_load(
			&((const struct rw_trace_slot *)((const char *)hp +
							 RW_TRACE_SHM_HDR) +
			  i)
				 ->head);
	/* The passing events' records and nothing else (the 1 MiB ring
	 * holds them all, no padding). */
	CHECK_EQ(bytes, want * REC);
	CHECK_EQ(all, (uint64_t)THREADS * EVENTS * REC);
	/* Kept out: the failing tf_req events and every tf_other one. */
	CHECK_EQ(rw__trace_filtered(t), 2ull * THREADS * EVENTS - want);
	CHECK_EQ(rw__trace_filtered(plain), 0);
	CHECK_EQ(rw__trace_dropped(t), 0);
	munmap(h, rw__trace_size(t));
	munmap(hp, rw__trace_size(plain));
	rw__trace_stop(t);
	rw__trace_stop(plain);
	/* Detached: the tracepoints have no probe left. */
	CHECK(!rw_tracepoint_enabled(tf_req));
	CHECK(!rw_tracepoint_enabled(tf_other));
	printf("session: %llu of %d events kept, 1 thread claimed nothing\n",
	       (unsigned long long)want, THREADS * EVENTS);
}

static void expect(const char *const *pats, size_t n, const char *filter,
		   int want, unsigned wcol, const char *msg)
{
	struct rw__trace *t = (struct rw__trace *)&t;
	unsigned col = 99;
	char err[256] = "";
	int e = start(pats, n, filter, &t, &col, err, sizeof(err));

	if (e != want || col != wcol || !strstr(err, msg)) {
		fprintf(stderr, "'%s': %d, column %u, '%s'\n want %d, %u, %s\n",
			filter, e, col, err, want, wcol, msg);
		CHECK(0);
	}
	CHECK(t == NULL);
	CHECK(!rw_tracepoint_enabled(tf_req));
}

static void check_errors(void)
{
	const char *both[2] = { "tf_req", "tf_other" };
	const char *other[1] = { "tf_other" };
	const char *two[2] = { "tf_req", "tf_str" };
	const char *funcs[1] = { "no_such_function_*" };
	struct rw__trace_opts o = { .funcs = funcs,
				    .nfuncs = 1,
				    .filter = "x > 1" };
	struct rw__trace *t = NULL;
	unsigned col = 99;
	char err[256];

	expect(both, 2, "x > 5 &&", -EINVAL, 9,
	       "--filter, column 9: unexpected end of the expression");
	expect(both, 2, "z > 5", -ENOENT, 1, "no field 'z'");
	expect(both, 2, "yy > 5", -ENOENT, 1, "did you mean 'y'?");
	/* tf_other lacks s, tf_req lacks y: every name is some
	 * tracepoint's, none has them all. */
	expect(both, 2, "s == 'a' || y == 1", -ENOENT, 1,
	       "no traced tracepoint has every field the filter names");
	/* x: an integer in tf_req, a string in tf_str; the comparison fits
	 * neither one's... */
	expect(two, 2, "x == true", -EINVAL, 6, "type mismatch");
	/* ...but where it fits one, the other records nothing. */
	CHECK_OK(start(two, 2, "x == 3", &t, &col, err, sizeof(err)));
	for (size_t i = 0; i < 2; i++)
		CHECK_EQ(rw__trace_filter_state(t, i),
			 !strcmp(rw__trace_tp(t, i)->name, "tf_req") ? 1 : 2);
	rw__trace_stop(t);
	expect(other, 1, "x > 1", -ENOENT, 1, "no field 'x'; did you mean 'y'");
	/* Function patterns only: nothing to filter. */
	t = NULL;
	o.filter_column = &col;
	CHECK_EQ(rw__trace_start_opts(&o, &t, err, sizeof(err)), -EINVAL);
	CHECK(t == NULL);
	CHECK_EQ(col, 0);
	CHECK(strstr(err, "function events are not filtered"));
	printf("errors: ok\n");
}

int main(void)
{
	check_session();
	check_errors();
	return 0;
}
