// SPDX-License-Identifier: MIT
/*
 * sink_feed: drives the CTF and Chrome sinks of `rewire trace`
 * (tools/rewire/trace_ctf.c, trace_chrome.c) with a fixed, synthetic
 * session that has every case a real one has but rarely shows on demand:
 * every argument kind at its extremes (INT64_MIN, UINT64_MAX, NaN, -0.0,
 * strings with quotes, escapes, control bytes, bytes that are not UTF-8,
 * cut at 256 bytes, NULL), names that are not TSDL identifiers, a tid used
 * by two slots, drops on a thread (also before its first event) and
 * without a slot, corrupt data, a late event, and graph-mode calls that
 * nest, leaf, are left without a return, return without an entry or are
 * still open at the end. Writes what it fed
 * as an oracle (JSON lines, exact: strings in hex, doubles as their bits)
 * for check_ctf.py and check_chrome.py (test_trace_formats.sh).
 *
 *	sink_feed feed CTF_DIR CHROME_FILE ORACLE_FILE
 *	sink_feed bench ctf|chrome-json OUT N	ns per event on stdout
 *	sink_feed open CTF_DIR			the CTF sink's checks of
 *						CTF_DIR: exit 1 and why
 */
#include "trace_out.h"

#include "ctl/ring.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct rw_trace_meta metas[5];
static struct rw_trace_func_meta funcs[3];
static FILE *oracle;
static struct rw_trace_sink *sinks[2];
static size_t nsinks;
static uint64_t now_ns = 1732556000123456789ull;

static void die(const char *what, int err)
{
	fprintf(stderr, "sink_feed: %s: %s\n", what, strerror(-err));
	exit(1);
}

static void field(struct rw_trace_meta *m, const char *name, int kind)
{
	struct rw_trace_meta_field *f = &m->fields[m->nargs++];

	snprintf(f->name, sizeof(f->name), "%s", name);
	f->kind = kind;
}

static void setup(void)
{
	struct rw_trace_meta *m = metas;

	m->id = 0;
	snprintf(m->name, sizeof(m->name), "tf_ints");
	field(m, "neg", RW_TRACE_KIND_SIGNED);
	field(m, "big", RW_TRACE_KIND_UNSIGNED);
	field(m, "ptr", RW_TRACE_KIND_POINTER);
	field(m, "flag", RW_TRACE_KIND_BOOL);
	m++;
	m->id = 1;
	snprintf(m->name, sizeof(m->name), "tf_strs");
	field(m, "s", RW_TRACE_KIND_STRING);
	field(m, "t", RW_TRACE_KIND_STRING);
	m++;
	m->id = 2;
	snprintf(m->name, sizeof(m->name), "tf_float");
	field(m, "d", RW_TRACE_KIND_FLOAT);
	field(m, "e", RW_TRACE_KIND_FLOAT);
	m++;
	/* Not TSDL identifiers; the reader's names are clean of spaces,
	 * quotes and backslashes, nothing more. */
	m->id = 3;
	snprintf(m->name, sizeof(m->name), "tf.odd-name:x");
	field(m, "event", RW_TRACE_KIND_SIGNED);
	field(m, "_x", RW_TRACE_KIND_UNSIGNED);
	field(m, "9lives", RW_TRACE_KIND_SIGNED);
	field(m, "a-b", RW_TRACE_KIND_SIGNED);
	field(m, "s", RW_TRACE_KIND_STRING);
	field(m, "s_status", RW_TRACE_KIND_UNSIGNED);
	field(m, "string", RW_TRACE_KIND_BOOL);
	m++;
	m->id = 7; /* ids may have gaps */
	snprintf(m->name, sizeof(m->name), "tf_none");

	const char *names[] = { "outer", "inner", "leaf" };
	const char *display[] = { "outer()", "inner(int, char const*)",
				  "leaf()" };
	for (int i = 0; i < 3; i++) {
		funcs[i].addr = 0x401000u + 0x100u * (unsigned)i;
		funcs[i].size = 0x80;
		snprintf(funcs[i].name, sizeof(funcs[i].name), "%s", names[i]);
		snprintf(funcs[i].display, sizeof(funcs[i].display), "%s",
			 display[i]);
	}
}

static void hex(FILE *f, const void *p, size_t n)
{
	const unsigned char *c = p;

	fputc('"', f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", c[i]);
	fputc('"', f);
}

static void deliver(const struct rw_trace_event *ev)
{
	for (size_t i = 0; i < nsinks; i++) {
		int err = sinks[i]->ops->event(sinks[i], ev);

		if (err)
			die("event", err);
	}
}

static void note(enum rw_trace_note_kind kind, uint32_t slot, int32_t tid,
		 uint64_t count, const char *why)
{
	struct rw_trace_note n = { .kind = kind,
				   .ns = now_ns,
				   .tid = tid,
				   .slot = slot,
				   .count = count,
				   .why = why };
	static const char *const kinds[] = { "dropped", "noslot", "nested",
					     "corrupt", "late" };

	for (size_t i = 0; i < nsinks; i++) {
		int err = sinks[i]->ops->note(sinks[i], &n);

		if (err)
			die("note", err);
	}
	if (oracle)
		fprintf(oracle,
			"{\"k\":\"%s\",\"tid\":%d,\"slot\":%" PRIu32
			",\"ns\":%" PRIu64 ",\"n\":%" PRIu64 "}\n",
			kinds[kind], (int)tid, slot, now_ns, count);
}

/* A value of an argument: numbers as bits, strings as bytes + flags. */
struct val {
	uint64_t bits;
	const char *s;
	size_t len;
	uint32_t flags;
};

static void tp(uint32_t slot, int32_t tid, const struct rw_trace_meta *m,
	       const struct val *v, bool late)
{
	struct rw_trace_event ev = { .kind = RW_TRACE_EV_TP,
				     .ns = now_ns,
				     .raw_ts = now_ns,
				     .tid = tid,
				     .slot = slot,
				     .late = late,
				     .late_ns = late ? 1234 : 0,
				     .tp = m };

	for (unsigned i = 0; i < m->nargs; i++) {
		ev.args[i].kind = m->fields[i].kind;
		ev.args[i].bits = v[i].bits;
		if (m->fields[i].kind == RW_TRACE_KIND_STRING) {
			ev.args[i].s = (const unsigned char *)v[i].s;
			ev.args[i].len = (uint32_t)v[i].len;
			ev.args[i].flags = v[i].flags;
		}
	}
	deliver(&ev);
	if (!oracle)
		return;
	fprintf(oracle,
		"{\"k\":\"tp\",\"tid\":%d,\"slot\":%" PRIu32 ",\"ns\":%" PRIu64
		",\"name\":\"%s\",\"late\":%s,\"f\":[",
		(int)tid, slot, now_ns, m->name, late ? "true" : "false");
	for (unsigned i = 0; i < m->nargs; i++) {
		static const char *const kinds[] = { "s", "u",	 "b",
						     "f", "str", "p" };

		fprintf(oracle, "%s[\"%s\",\"%s\",", i ? "," : "",
			m->fields[i].name, kinds[m->fields[i].kind]);
		if (m->fields[i].kind == RW_TRACE_KIND_STRING) {
			fprintf(oracle, "[");
			hex(oracle, v[i].s, v[i].len);
			fprintf(oracle, ",%" PRIu32 "]", v[i].flags);
		} else {
			fprintf(oracle, "\"%016" PRIx64 "\"", v[i].bits);
		}
		fprintf(oracle, "]");
	}
	fprintf(oracle, "]}\n");
}

static void call(uint32_t slot, int32_t tid, bool ret, uint32_t func,
		 uint32_t depth, uint64_t dur)
{
	char caller[64];
	struct rw_trace_event ev = { .kind = ret ? RW_TRACE_EV_RETURN
						 : RW_TRACE_EV_ENTRY,
				     .ns = now_ns,
				     .raw_ts = now_ns,
				     .tid = tid,
				     .slot = slot,
				     .func = &funcs[func],
				     .func_id = func,
				     .depth = depth,
				     .caller = 0x401234u + depth,
				     .caller_name = caller,
				     .duration_ns = ret ? dur : 0 };

	if (depth)
		snprintf(caller, sizeof(caller), "%s+%#x",
			 funcs[func ? func - 1 : 0].name, 0x10 + depth);
	else
		snprintf(caller, sizeof(caller), "main+0x4f");
	deliver(&ev);
	if (oracle)
		fprintf(oracle,
			"{\"k\":\"%s\",\"tid\":%d,\"slot\":%" PRIu32
			",\"ns\":%" PRIu64
			",\"function\":\"%s\",\"address\":%" PRIu64
			",\"depth\":%" PRIu32 ",\"caller\":%" PRIu64
			",\"caller_name\":\"%s\",\"dur\":%" PRIu64 "}\n",
			ret ? "return" : "entry", (int)tid, slot, now_ns,
			funcs[func].display, funcs[func].addr, depth, ev.caller,
			caller, ret ? dur : 0);
}

static uint64_t dbits(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

#define STR(x)                                 \
	{                                      \
		.s = (x), .len = sizeof(x) - 1 \
	}

static void session(void)
{
	static char longs[RW_TRACE_MAX_STRING];
	const struct rw_trace_meta *ints = &metas[0], *strs = &metas[1],
				   *flt = &metas[2], *odd = &metas[3],
				   *none = &metas[4];

	memset(longs, 'x', sizeof(longs));
	longs[0] = 'L';
	/* Thread 1001 (slot 0): numbers, and a nested call with a leaf. */
	tp(0, 1001, ints,
	   (struct val[]){ { .bits = (uint64_t)INT64_MIN },
			   { .bits = UINT64_MAX },
			   { .bits = 0xdeadbeefcafebabeull },
			   { .bits = 1 } },
	   false);
	now_ns += 1000;
	/* Thread 1002 (slot 1): strings. */
	tp(1, 1002, strs,
	   (struct val[]){
		   STR("quote \" back \\ nl \n tab \t cr \r ctl \x01 del \x7f"),
		   STR("a, b = { c } ( \"x\" : container = 1 )") },
	   false);
	now_ns += 1;
	tp(0, 1001, ints,
	   (struct val[]){ { .bits = (uint64_t)-1 },
			   { .bits = 0 },
			   { .bits = 0 },
			   { .bits = 0 } },
	   false);
	tp(1, 1002, strs,
	   (struct val[]){ STR("\xff\xfe not UTF-8, \xc3\xa9 is, \xc3"),
			   { .s = longs,
			     .len = sizeof(longs),
			     .flags = RW_TRACE_STR_TRUNCATED } },
	   false);
	now_ns += 77;
	tp(1, 1002, strs,
	   (struct val[]){ { .s = NULL, .flags = RW_TRACE_STR_NULL },
			   { .s = "", .len = 0 } },
	   false);
	now_ns += 1;
	/* Thread 1003 (slot 2): floats and odd names. */
	tp(2, 1003, flt,
	   (struct val[]){ { .bits = dbits(0.1) },
			   { .bits = dbits(-2.5e-300) } },
	   false);
	now_ns += 10;
	tp(2, 1003, flt,
	   (struct val[]){ { .bits = dbits(1e300) }, { .bits = dbits(-0.0) } },
	   false);
	tp(2, 1003, flt,
	   (struct val[]){ { .bits = dbits(NAN) },
			   { .bits = dbits(INFINITY) } },
	   false);
	tp(2, 1003, flt,
	   (struct val[]){ { .bits = dbits(-INFINITY) },
			   { .bits = dbits(123456789.123) } },
	   false);
	now_ns += 999999999;
	tp(2, 1003, odd,
	   (struct val[]){ { .bits = 1 },
			   { .bits = 2 },
			   { .bits = (uint64_t)-3 },
			   { .bits = 4 },
			   STR("odd"),
			   { .bits = 6 },
			   { .bits = 1 } },
	   false);
	tp(2, 1003, none, NULL, false);
	now_ns += 5;
	/* Drops: on a thread, without a slot, nested; corrupt data. */
	note(RW_TRACE_NOTE_DROPPED, 1, 1002, 5, NULL);
	tp(1, 1002, strs, (struct val[]){ STR("after drop"), STR("") }, false);
	now_ns += 3;
	note(RW_TRACE_NOTE_NOSLOT, UINT32_MAX, 0, 3, NULL);
	note(RW_TRACE_NOTE_NESTED, UINT32_MAX, 0, 1, NULL);
	note(RW_TRACE_NOTE_CORRUPT, 2, 1003, 48, "bad string");
	note(RW_TRACE_NOTE_DROPPED, 1, 1002, 2, NULL);
	now_ns += 3;
	tp(1, 1002, strs, (struct val[]){ STR("again"), STR("") }, false);
	/* Thread 1004 (slot 4) loses events before its first one. */
	note(RW_TRACE_NOTE_DROPPED, 4, 1004, 9, NULL);
	tp(4, 1004, none, NULL, false);
	/* A late event of thread 1003 (after a later one of 1002). */
	now_ns -= 2;
	note(RW_TRACE_NOTE_LATE, 2, 1003, 1234, NULL);
	tp(2, 1003, none, NULL, true);
	now_ns += 2;

	/* Graph mode. Thread 1001: outer { inner { leaf; tp } }. */
	call(0, 1001, false, 0, 0, 0);
	now_ns += 100;
	call(0, 1001, false, 1, 1, 0);
	now_ns += 100;
	call(0, 1001, false, 2, 2, 0);
	now_ns += 50;
	call(0, 1001, true, 2, 2, 48);
	now_ns += 10;
	tp(0, 1001, none, NULL, false);
	now_ns += 10;
	call(0, 1001, true, 1, 1, 169);
	now_ns += 10;
	call(0, 1001, true, 0, 0, 279);
	now_ns += 10;
	/* Thread 1002: outer { inner (left: the next call is at its depth)
	 * leaf }, then a return of inner without its entry at depth 0
	 * (outer is left), then outer still open at the end. */
	call(1, 1002, false, 0, 0, 0);
	now_ns += 10;
	call(1, 1002, false, 1, 1, 0);
	now_ns += 10;
	call(1, 1002, false, 2, 1, 0);
	now_ns += 10;
	call(1, 1002, true, 2, 1, 9);
	now_ns += 1000;
	call(1, 1002, true, 1, 0, 500);
	now_ns += 10;
	call(1, 1002, false, 0, 0, 0);
	now_ns += 10;
	/* A later thread with the tid of thread 1001 (slot 3). */
	tp(3, 1001, ints,
	   (struct val[]){ { .bits = 42 },
			   { .bits = 42 },
			   { .bits = 0x1000 },
			   { .bits = 1 } },
	   false);
}

static void begin_all(bool graph)
{
	struct rw_trace_session_info info = {
		.pid = getpid(),
		.session = 1,
		.version = 2,
		.clock_id = CLOCK_REALTIME,
		.clock = "realtime",
		.source_clock = "tsc",
		.cal_tsc = 1000,
		.cal_realtime = 1732555999987654321ull,
		.cal_monotonic = 123456789,
		.meta = metas,
		.nmeta = 5,
		.funcs = funcs,
		.nfuncs = 3,
		.graph = graph,
		.ring_size = 256 * 1024,
		.nslots = 64,
	};

	for (size_t i = 0; i < nsinks; i++) {
		int err = sinks[i]->ops->begin(sinks[i], &info);

		if (err)
			die("begin", err);
	}
}

static void end_all(uint64_t events)
{
	struct rw_trace_summary sum = { .events = events,
					.dropped = 20,
					.noslot = 3,
					.nested = 1,
					.corrupt = 1,
					.late = 1 };

	for (size_t i = 0; i < nsinks; i++) {
		int err = sinks[i]->ops->flush(sinks[i]);

		if (!err)
			err = sinks[i]->ops->end(sinks[i], &sum);
		if (err)
			die("end", err);
		sinks[i]->ops->destroy(sinks[i]);
	}
	nsinks = 0;
}

/* ns per event of one sink: N events of the three kinds most sessions
 * have (3 arguments with a short string, and calls in graph mode). */
static int bench(const char *fmt, const char *out, long n)
{
	struct timespec a, b, ca, cb;
	FILE *f = NULL;
	int err;

	if (!strcmp(fmt, "ctf")) {
		err = rw_trace_sink_ctf(out, &sinks[0]);
	} else {
		f = fopen(out, "w");
		if (!f)
			die(out, -errno);
		err = rw_trace_sink_chrome(f, &sinks[0]);
	}
	if (err)
		die(out, err);
	nsinks = 1;
	/* kv_request(op, key, len): 3 arguments, short strings. */
	struct rw_trace_meta *m = &metas[4];
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "kv_request");
	field(m, "op", RW_TRACE_KIND_STRING);
	field(m, "key", RW_TRACE_KIND_STRING);
	field(m, "len", RW_TRACE_KIND_SIGNED);
	begin_all(true);
	clock_gettime(CLOCK_MONOTONIC, &a);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
	for (long i = 0; i < n; i++) {
		struct rw_trace_event ev = { .kind = RW_TRACE_EV_TP,
					     .ns = now_ns,
					     .tid = 1000 + (int32_t)(i & 3),
					     .slot = (uint32_t)(i & 3),
					     .tp = m };

		now_ns += 100;
		if (i % 4 == 3) {
			/* One call in four events: entry + return. */
			call((uint32_t)(i & 3), 1000 + (int32_t)(i & 3),
			     (i / 4) & 1, 0, 0, 100);
			continue;
		}
		ev.args[0] = (struct rw_trace_arg){
			.kind = RW_TRACE_KIND_STRING,
			.s = (const unsigned char *)"GET",
			.len = 3
		};
		ev.args[1] = (struct rw_trace_arg){
			.kind = RW_TRACE_KIND_STRING,
			.s = (const unsigned char *)"key:000017",
			.len = 10
		};
		ev.args[2] =
			(struct rw_trace_arg){ .kind = RW_TRACE_KIND_SIGNED,
					       .bits = (uint64_t)i };
		deliver(&ev);
	}
	end_all((uint64_t)n);
	clock_gettime(CLOCK_MONOTONIC, &b);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
	if (f)
		fclose(f);
	/* CPU time is the figure on a shared machine; wall time includes
	 * waiting for the CPU and the disk. */
	printf("%s: %ld events, %.1f ns/event CPU, %.1f ns/event wall\n", fmt,
	       n,
	       ((double)(cb.tv_sec - ca.tv_sec) * 1e9 +
		(double)(cb.tv_nsec - ca.tv_nsec)) /
		       (double)n,
	       ((double)(b.tv_sec - a.tv_sec) * 1e9 +
		(double)(b.tv_nsec - a.tv_nsec)) /
		       (double)n);
	return 0;
}

int main(int argc, char **argv)
{
	FILE *chrome;
	int err;

	setup();
	if (argc == 3 && !strcmp(argv[1], "open")) {
		err = rw_trace_sink_ctf(argv[2], &sinks[0]);
		if (err) {
			fprintf(stderr, "%s: %s\n", argv[2], strerror(-err));
			return 1;
		}
		sinks[0]->ops->destroy(sinks[0]);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "bench"))
		return bench(argv[2], argv[3], atol(argv[4]));
	if (argc != 5 || strcmp(argv[1], "feed")) {
		fprintf(stderr,
			"usage: sink_feed feed CTF_DIR CHROME ORACLE\n"
			"       sink_feed bench ctf|chrome-json OUT N\n");
		return 2;
	}
	err = rw_trace_sink_ctf(argv[2], &sinks[0]);
	if (err)
		die(argv[2], err);
	chrome = fopen(argv[3], "w");
	if (!chrome)
		die(argv[3], -errno);
	err = rw_trace_sink_chrome(chrome, &sinks[1]);
	if (err)
		die("chrome", err);
	nsinks = 2;
	oracle = fopen(argv[4], "w");
	if (!oracle)
		die(argv[4], -errno);
	begin_all(true);
	session();
	end_all(0);
	if (fclose(chrome) || fclose(oracle))
		die("close", -errno);
	return 0;
}
