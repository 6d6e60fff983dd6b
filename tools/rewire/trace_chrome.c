/* SPDX-License-Identifier: MIT */
/*
 * `rewire trace --format chrome-json`: the session in the Chrome
 * trace-event format (the "JSON Object Format" of Google's "Trace Event
 * Format" document), which Perfetto's UI (ui.perfetto.dev, "Open trace
 * file") and chrome://tracing open:
 *
 *	{"traceEvents":[
 *	{"ph":"M","pid":P,"tid":P,"name":"process_name","args":{"name":"kv"}},
 *	{"ph":"M","pid":P,"tid":T,"name":"thread_name","args":{"name":"..."}},
 *	{"ph":"i","s":"t","name":"kv_request","cat":"tracepoint",
 *	 "ts":123456.789,"pid":P,"tid":T,"args":{"op":"GET",...}},
 *	{"ph":"X","name":"handle()","cat":"function","ts":...,"dur":12.300,
 *	 "pid":P,"tid":T,"args":{"depth":0,"caller":"main+0x4f",
 *	 "duration_ns":12298}},
 *	...],
 *	"displayTimeUnit":"ns",
 *	"otherData":{"tracer":"rewire","pid":P,"clock":"realtime",
 *	 "ts_base_s":1732556000,...}}
 *
 * One track per thread: pid is the traced process, tid the thread, named
 * by a thread_name metadata event ("comm (TID)" from /proc while the
 * thread lives, else "thread TID").
 *
 * Times: "ts" and "dur" are microseconds printed with exactly three
 * decimals, and ts counts from otherData's "ts_base_s", the session's start
 * in whole seconds of the output clock: an event's ns (the same as the text
 * output's) is ts_base_s * 10^9 + ts * 1000. Counting from the start keeps
 * the number small enough for a reader that parses it into a double to
 * keep the nanoseconds (an absolute realtime ts, about 1.7e15 us, would
 * keep a quarter of a microsecond).
 *
 * Tracepoints are instant events of thread scope, their arguments typed as
 * JSON allows: integers exact (also beyond 2^53), bools, doubles with 17
 * significant digits (NaN and infinities: null), strings escaped (bytes
 * that are not UTF-8 become U+FFFD; a NULL string is null), pointers as
 * "0x..." strings. "rewire.truncated":["key",...] lists the strings that
 * were cut at 256 bytes, "rewire.late_ns" marks an event the reorder window
 * placed late.
 *
 * Functions. Without --graph, a call is an instant event (cat "function").
 * With --graph, a call whose return was recorded is a complete event
 * ("X": ts of the entry, dur to the return). To write complete events in
 * the order of their start, a thread's events are held back while it has
 * a call open, up to HOLD_MAX events; past that the outermost open calls
 * are written as "B" and closed by an "E" at their return (a long-running
 * main loop does not hold everything back). A call without a recorded
 * return becomes:
 *   - "B" without "E" when it was still open at the end of the session
 *     (Perfetto draws it to the end of the trace, "Did not end");
 *   - an instant event with "returned":false when its thread went on
 *     without returning from it (a later call at its depth or above, or
 *     a return from an outer call: it unwound, or its return was dropped);
 * and a return whose entry was not recorded (dropped, or made before the
 * session) is a complete event that starts duration_ns before the return,
 * with "entry":false.
 *
 * Losses are instant events of category "rewire" on the thread's track
 * ("rewire: events dropped", args dropped) or, for threads without a slot
 * and probes entered recursively, of process scope; corrupt data likewise.
 * The totals are in otherData.
 *
 * The output is valid JSON whatever the events hold, and stays valid when
 * the session ends early: end() (or destroy() after an error) closes the
 * array and the object.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "trace_out.h"
#include "utf8.h"

#include "ctl/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Events a thread holds back while a call is open, at most. */
#define HOLD_MAX 8192u
/* Open calls a thread keeps track of (the probe's shadow stack is
 * smaller); deeper ones are written as instants. */
#define STACK_MAX 256u

/* A growing string. */
struct jb {
	char *p;
	size_t len, cap;
	bool oom;
};

/* A call seen entering (graph mode), whose return is awaited. */
struct pend {
	uint32_t func_id, depth;
	uint64_t ns;
	uint64_t item; /* its place among the thread's items */
	bool began;    /* written as "B": its return is an "E" */
	/* The event's text after "ph" ("name":...,"args":{...}}), for "i"
	 * or "B". */
	char *tail;
};

struct cthread {
	uint32_t slot;
	int32_t tid;
	struct pend *stack;
	size_t nstack, capstack;
	/* Items held back: items[k] is item number base + k; NULL while
	 * the call it stands for is open. Written up to first. */
	char **items;
	size_t nitems, capitems, first;
	uint64_t base;
};

struct chrome_sink {
	struct rw_trace_sink sink;
	FILE *f;
	bool begun, ended, first;
	bool graph;
	int pid;
	char clock[16], source[16];
	struct cthread **by_slot;
	uint32_t nslots;
	struct cthread **all;
	size_t nall;
	/* ts counts from here: the session's start in the output clock,
	 * in whole seconds (otherData's ts_base_s). */
	uint64_t base;
	struct jb j; /* the event being built */
	uint64_t events;
};

static inline struct chrome_sink *to_chrome(struct rw_trace_sink *s)
{
	return (struct chrome_sink *)s;
}

/* --- JSON text -------------------------------------------------------------- */

static bool jb_grow(struct jb *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 1024;
	char *p;

	if (b->oom)
		return false;
	while (b->len + n + 1 > cap)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

/* Inlined: most of an event is short pieces (a key, a digit, a quote). */
static inline void jb_mem(struct jb *b, const void *s, size_t n)
{
	if (__builtin_expect(b->len + n + 1 > b->cap, 0) && !jb_grow(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* A string literal: its length is known at compile time. */
#define JB_LIT(b, lit) jb_mem((b), "" lit, sizeof(lit) - 1)

static void jb_s(struct jb *b, const char *s)
{
	jb_mem(b, s, strlen(s));
}

static void jb_u64(struct jb *b, uint64_t v)
{
	char t[20];
	int i = 20;

	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	jb_mem(b, t + i, (size_t)(20 - i));
}

static void jb_i64(struct jb *b, int64_t v)
{
	if (v < 0) {
		jb_mem(b, "-", 1);
		jb_u64(b, 0 - (uint64_t)v);
	} else {
		jb_u64(b, (uint64_t)v);
	}
}

/* ns as microseconds with three decimals: exact. */
static void jb_us(struct jb *b, uint64_t ns)
{
	char t[4] = { '.', (char)('0' + ns / 100 % 10),
		      (char)('0' + ns / 10 % 10), (char)('0' + ns % 10) };

	jb_u64(b, ns / 1000);
	jb_mem(b, t, 4);
}

/* A timestamp: @ns from the base, as microseconds. */
static void jb_ts(const struct chrome_sink *s, struct jb *b, uint64_t ns)
{
	if (ns >= s->base) {
		jb_us(b, ns - s->base);
	} else {
		jb_mem(b, "-", 1);
		jb_us(b, s->base - ns);
	}
}

static const char hexdig[] = "0123456789abcdef";

/* A JSON string of @n bytes: escapes, and U+FFFD for bytes that are not
 * UTF-8 (JSON text is Unicode). */
static void jb_str(struct jb *b, const void *str, size_t n)
{
	const unsigned char *s = str;
	size_t i = 0;

	jb_mem(b, "\"", 1);
	while (i < n) {
		unsigned char c = s[i];
		size_t len;

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			size_t k = i + 1;

			while (k < n && s[k] >= 0x20 && s[k] < 0x7f &&
			       s[k] != '"' && s[k] != '\\')
				k++;
			jb_mem(b, s + i, k - i);
			i = k;
			continue;
		}
		if (c == '"' || c == '\\') {
			char t[2] = { '\\', (char)c };

			jb_mem(b, t, 2);
		} else if (c == '\n') {
			jb_mem(b, "\\n", 2);
		} else if (c == '\t') {
			jb_mem(b, "\\t", 2);
		} else if (c == '\r') {
			jb_mem(b, "\\r", 2);
		} else if (c < 0x20 || c == 0x7f) {
			char t[6] = { '\\',	      'u',	     '0', '0',
				      hexdig[c >> 4], hexdig[c & 15] };

			jb_mem(b, t, 6);
		} else if ((len = utf8_len(s + i, n - i)) != 0) {
			jb_mem(b, s + i, len);
			i += len;
			continue;
		} else {
			jb_mem(b, "\\ufffd", 6);
		}
		i++;
	}
	jb_mem(b, "\"", 1);
}

static void jb_cstr(struct jb *b, const char *s)
{
	jb_str(b, s, strlen(s));
}

static void jb_hex(struct jb *b, uint64_t v)
{
	char t[20];
	int i = 20;

	t[--i] = '"';
	do {
		t[--i] = hexdig[v & 15];
		v >>= 4;
	} while (v);
	t[--i] = 'x';
	t[--i] = '0';
	t[--i] = '"';
	jb_mem(b, t + i, (size_t)(20 - i));
}

static void jb_double(struct jb *b, double d)
{
	char t[40];
	int n;

	if (!isfinite(d)) {
		JB_LIT(b, "null");
		return;
	}
	/* 17 digits: the same double when read back; ".0" when %g prints
	 * an integer, so that a reader sees a double (and -0.0 keeps its
	 * sign). */
	n = snprintf(t, sizeof(t), "%.17g", d);
	if (n <= 0 || n > 30)
		return;
	if (!strpbrk(t, ".e"))
		memcpy(t + n, ".0", 3), n += 2;
	jb_mem(b, t, (size_t)n);
}

/* ,"pid":P,"tid":T */
static void jb_ids(struct jb *b, int pid, int32_t tid)
{
	JB_LIT(b, ",\"pid\":");
	jb_i64(b, pid);
	JB_LIT(b, ",\"tid\":");
	jb_i64(b, tid);
}

/* --- Writing ---------------------------------------------------------------- */

/* One event (a complete JSON object) into the array. */
static void put_event(struct chrome_sink *s, const char *text, size_t len)
{
	if (!s->first)
		fputs(",\n", s->f);
	s->first = false;
	fwrite(text, 1, len, s->f);
}

static int io_error(struct chrome_sink *s)
{
	return ferror(s->f) ? (errno ? -errno : -EIO) : 0;
}

/* /proc/PID/task/TID/comm (or /proc/PID/comm for @tid 0), or "". */
static void comm_of(int pid, int32_t tid, char *out, size_t size)
{
	char path[80];
	ssize_t n;
	int fd;

	out[0] = '\0';
	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid,
			 (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, out, size - 1);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

static struct cthread *thread_of(struct chrome_sink *s, uint32_t slot,
				 int32_t tid)
{
	struct cthread *t, **all;
	struct jb m = { 0 };
	char comm[64], name[96];

	if (slot >= s->nslots) {
		uint32_t n = slot + 1 > 2 * s->nslots ? slot + 1
						      : 2 * s->nslots;
		struct cthread **p;

		if (slot == UINT32_MAX)
			return NULL;
		p = realloc(s->by_slot, n * sizeof(*p));
		if (!p)
			return NULL;
		memset(p + s->nslots, 0, (n - s->nslots) * sizeof(*p));
		s->by_slot = p;
		s->nslots = n;
	}
	if (s->by_slot[slot])
		return s->by_slot[slot];
	all = realloc(s->all, (s->nall + 1) * sizeof(*all));
	if (!all)
		return NULL;
	s->all = all;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->slot = slot;
	t->tid = tid;
	s->all[s->nall++] = t;
	s->by_slot[slot] = t;

	/* Its track's name, once per tid (a tid reused by a later thread
	 * of the session shares the track). */
	for (size_t i = 0; i + 1 < s->nall; i++)
		if (s->all[i]->tid == tid)
			return t;
	comm_of(s->pid, tid, comm, sizeof(comm));
	if (comm[0])
		snprintf(name, sizeof(name), "%s (%d)", comm, (int)tid);
	else
		snprintf(name, sizeof(name), "thread %d", (int)tid);
	JB_LIT(&m, "{\"ph\":\"M\",\"name\":\"thread_name\"");
	jb_ids(&m, s->pid, tid);
	JB_LIT(&m, ",\"args\":{\"name\":");
	jb_cstr(&m, name);
	JB_LIT(&m, "}}");
	if (m.oom) {
		free(m.p);
		return NULL;
	}
	put_event(s, m.p, m.len);
	free(m.p);
	return t;
}

/* Writes the items of @t that are ready, in order. */
static void thread_flush(struct chrome_sink *s, struct cthread *t)
{
	while (t->first < t->nitems && t->items[t->first]) {
		put_event(s, t->items[t->first], strlen(t->items[t->first]));
		free(t->items[t->first]);
		t->items[t->first] = NULL;
		t->first++;
	}
	if (t->first == t->nitems) {
		t->base += t->nitems;
		t->nitems = t->first = 0;
	}
}

/* Appends an item to @t (@text NULL: a call's place, filled later); the
 * number of the item, or UINT64_MAX without memory. */
static uint64_t thread_add(struct cthread *t, const char *text, size_t len)
{
	char *c = NULL;

	if (t->nitems == t->capitems) {
		size_t cap = t->capitems ? 2 * t->capitems : 64;
		char **p = realloc(t->items, cap * sizeof(*p));

		if (!p)
			return UINT64_MAX;
		t->items = p;
		t->capitems = cap;
	}
	if (text) {
		c = malloc(len + 1);
		if (!c)
			return UINT64_MAX;
		memcpy(c, text, len + 1);
	}
	t->items[t->nitems++] = c;
	return t->base + t->nitems - 1;
}

/* Sets held item @n to "{" @head @tail. */
static int thread_fill(struct cthread *t, uint64_t n, const char *head,
		       const char *tail)
{
	size_t a = strlen(head), b = strlen(tail);
	char *c = malloc(1 + a + b + 1);

	if (!c)
		return -ENOMEM;
	c[0] = '{';
	memcpy(c + 1, head, a);
	memcpy(c + 1 + a, tail, b + 1);
	free(t->items[n - t->base]);
	t->items[n - t->base] = c;
	return 0;
}

/* Writes @text for thread @t: at once, or after what it holds back. */
static int thread_put(struct chrome_sink *s, struct cthread *t,
		      const char *text, size_t len)
{
	if (t->first == t->nitems) {
		put_event(s, text, len);
		return 0;
	}
	return thread_add(t, text, len) == UINT64_MAX ? -ENOMEM : 0;
}

/* Too much held back: the outermost open calls become "B" until the
 * first held item can be written. */
static int thread_relieve(struct chrome_sink *s, struct cthread *t)
{
	for (size_t i = 0; i < t->nstack && t->nitems - t->first > HOLD_MAX;
	     i++) {
		struct pend *p = &t->stack[i];
		int err;

		if (p->began)
			continue;
		err = thread_fill(t, p->item, "\"ph\":\"B\",", p->tail);
		if (err)
			return err;
		p->began = true;
		thread_flush(s, t);
	}
	return 0;
}

/* The call on top of @t's stack will not return: its thread went on at
 * @ns without it. */
static int thread_abandon(struct chrome_sink *s, struct cthread *t, uint64_t ns)
{
	struct pend *p = &t->stack[--t->nstack];
	int err = 0;

	if (p->began) {
		/* Close the "B" where we learned it will not return. */
		struct jb e = { 0 };

		JB_LIT(&e, "{\"ph\":\"E\",\"ts\":");
		jb_ts(s, &e, ns);
		jb_ids(&e, s->pid, t->tid);
		JB_LIT(&e, ",\"args\":{\"returned\":false}}");
		err = e.oom ? -ENOMEM : thread_put(s, t, e.p, e.len);
		free(e.p);
	} else {
		/* "args":{...}} -> "args":{...,"returned":false}} */
		size_t n = strlen(p->tail);
		char *c = malloc(n + 32);

		if (!c) {
			err = -ENOMEM;
		} else {
			memcpy(c, p->tail, n - 2);
			strcpy(c + n - 2, ",\"returned\":false}}");
			err = thread_fill(t, p->item,
					  "\"ph\":\"i\",\"s\":\"t\",", c);
			free(c);
		}
	}
	free(p->tail);
	return err;
}

/* --- Events ------------------------------------------------------------------ */

static void tp_args(struct jb *b, const struct rw_trace_event *ev)
{
	const struct rw_trace_meta *m = ev->tp;
	bool trunc = false;

	JB_LIT(b, ",\"args\":{");
	for (unsigned i = 0; i < m->nargs; i++) {
		const struct rw_trace_arg *a = &ev->args[i];
		double d;

		if (i)
			jb_mem(b, ",", 1);
		jb_cstr(b, m->fields[i].name);
		jb_mem(b, ":", 1);
		switch (m->fields[i].kind) {
		case RW_TRACE_KIND_SIGNED:
			jb_i64(b, (int64_t)a->bits);
			break;
		case RW_TRACE_KIND_UNSIGNED:
			jb_u64(b, a->bits);
			break;
		case RW_TRACE_KIND_BOOL:
			jb_s(b, a->bits ? "true" : "false");
			break;
		case RW_TRACE_KIND_FLOAT:
			memcpy(&d, &a->bits, sizeof(d));
			jb_double(b, d);
			break;
		case RW_TRACE_KIND_STRING:
			if ((a->flags & RW_TRACE_STR_NULL) || !a->s)
				JB_LIT(b, "null");
			else
				jb_str(b, a->s, a->len);
			trunc |= (a->flags & RW_TRACE_STR_TRUNCATED) != 0;
			break;
		default:
			jb_hex(b, a->bits);
			break;
		}
	}
	if (trunc) {
		bool first = true;

		jb_s(b, m->nargs ? ",\"rewire.truncated\":["
				 : "\"rewire.truncated\":[");
		for (unsigned i = 0; i < m->nargs; i++) {
			if (m->fields[i].kind != RW_TRACE_KIND_STRING ||
			    !(ev->args[i].flags & RW_TRACE_STR_TRUNCATED))
				continue;
			if (!first)
				jb_mem(b, ",", 1);
			jb_cstr(b, m->fields[i].name);
			first = false;
		}
		jb_mem(b, "]", 1);
	}
	if (ev->late) {
		jb_s(b, m->nargs || trunc ? ",\"rewire.late_ns\":"
					  : "\"rewire.late_ns\":");
		jb_u64(b, ev->late_ns);
	}
	JB_LIT(b, "}}");
}

/* "name":...,"cat":"function","ts":T,"pid":P,"tid":T,"args":{"depth":D,
 * "caller":C[,...]}} of a function event at @ns. */
static void func_tail(struct chrome_sink *s, struct jb *b,
		      const struct rw_trace_event *ev, uint64_t ns)
{
	JB_LIT(b, "\"name\":");
	jb_cstr(b, ev->func->display);
	JB_LIT(b, ",\"cat\":\"function\",\"ts\":");
	jb_ts(s, b, ns);
	jb_ids(b, s->pid, ev->tid);
	JB_LIT(b, ",\"args\":{\"depth\":");
	jb_u64(b, ev->depth);
	JB_LIT(b, ",\"caller\":");
	jb_cstr(b, ev->caller_name ? ev->caller_name : "");
	if (ev->late) {
		JB_LIT(b, ",\"rewire.late_ns\":");
		jb_u64(b, ev->late_ns);
	}
	JB_LIT(b, "}}");
}

static int graph_entry(struct chrome_sink *s, struct cthread *t,
		       const struct rw_trace_event *ev)
{
	struct jb *b = &s->j;
	struct pend *p;
	int err;

	/* Calls at this depth or deeper that are still open were left. */
	while (t->nstack && t->stack[t->nstack - 1].depth >= ev->depth) {
		err = thread_abandon(s, t, ev->ns);
		if (err)
			return err;
	}
	if (t->nstack == STACK_MAX) {
		/* Deeper than we follow: an instant. */
		JB_LIT(b, "{\"ph\":\"i\",\"s\":\"t\",");
		func_tail(s, b, ev, ev->ns);
		return b->oom ? -ENOMEM : thread_put(s, t, b->p, b->len);
	}
	if (t->nstack == t->capstack) {
		size_t cap = t->capstack ? 2 * t->capstack : 16;
		struct pend *q = realloc(t->stack, cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		t->stack = q;
		t->capstack = cap;
	}
	func_tail(s, b, ev, ev->ns);
	if (b->oom)
		return -ENOMEM;
	p = &t->stack[t->nstack];
	*p = (struct pend){ .func_id = ev->func_id,
			    .depth = ev->depth,
			    .ns = ev->ns };
	p->tail = strdup(b->p);
	p->item = thread_add(t, NULL, 0);
	if (!p->tail || p->item == UINT64_MAX) {
		free(p->tail);
		return -ENOMEM;
	}
	t->nstack++;
	return thread_relieve(s, t);
}

static int graph_return(struct chrome_sink *s, struct cthread *t,
			const struct rw_trace_event *ev)
{
	struct jb *b = &s->j;
	struct pend *p;
	uint64_t start;
	int err;

	/* Deeper calls still open were left without a return. */
	while (t->nstack && t->stack[t->nstack - 1].depth > ev->depth) {
		err = thread_abandon(s, t, ev->ns);
		if (err)
			return err;
	}
	p = t->nstack ? &t->stack[t->nstack - 1] : NULL;
	if (p && p->depth == ev->depth && p->func_id != ev->func_id) {
		/* Another call at this depth: its return and this one's
		 * entry were not recorded. */
		err = thread_abandon(s, t, ev->ns);
		if (err)
			return err;
		p = NULL;
	}
	if (p && p->began) {
		JB_LIT(b, "{\"ph\":\"E\",\"ts\":");
		jb_ts(s, b, ev->ns);
		jb_ids(b, s->pid, t->tid);
		JB_LIT(b, ",\"args\":{\"duration_ns\":");
		jb_u64(b, ev->duration_ns);
		JB_LIT(b, "}}");
		free(p->tail);
		t->nstack--;
		return b->oom ? -ENOMEM : thread_put(s, t, b->p, b->len);
	}
	if (p) {
		start = p->ns;
	} else {
		/* No entry: it started duration_ns before, but not before
		 * the call around it. */
		start = ev->duration_ns < ev->ns ? ev->ns - ev->duration_ns : 0;
		if (t->nstack && start < t->stack[t->nstack - 1].ns)
			start = t->stack[t->nstack - 1].ns;
	}
	JB_LIT(b, "{\"ph\":\"X\",\"dur\":");
	jb_us(b, ev->ns >= start ? ev->ns - start : 0);
	JB_LIT(b, ",");
	func_tail(s, b, ev, start);
	/* ...}} -> ...,"duration_ns":N[,"entry":false]}} */
	b->len -= 2;
	JB_LIT(b, ",\"duration_ns\":");
	jb_u64(b, ev->duration_ns);
	if (!p)
		JB_LIT(b, ",\"entry\":false");
	JB_LIT(b, "}}");
	if (b->oom)
		return -ENOMEM;
	if (!p)
		return thread_put(s, t, b->p, b->len);
	err = thread_fill(t, p->item, "", b->p + 1);
	free(p->tail);
	t->nstack--;
	thread_flush(s, t);
	return err;
}

static int chrome_event(struct rw_trace_sink *sk,
			const struct rw_trace_event *ev)
{
	struct chrome_sink *s = to_chrome(sk);
	struct cthread *t = thread_of(s, ev->slot, ev->tid);
	struct jb *b = &s->j;
	int err;

	if (!t)
		return -ENOMEM;
	b->len = 0;
	b->oom = false;
	if (ev->kind == RW_TRACE_EV_TP) {
		if (!ev->tp || ev->tp->nargs > RW_TRACE_MAX_FIELDS)
			return 0;
		JB_LIT(b, "{\"ph\":\"i\",\"s\":\"t\",\"name\":");
		jb_cstr(b, ev->tp->name);
		JB_LIT(b, ",\"cat\":\"tracepoint\",\"ts\":");
		jb_ts(s, b, ev->ns);
		jb_ids(b, s->pid, ev->tid);
		tp_args(b, ev);
		err = b->oom ? -ENOMEM : thread_put(s, t, b->p, b->len);
	} else if (!ev->func) {
		return 0;
	} else if (!s->graph) {
		JB_LIT(b, "{\"ph\":\"i\",\"s\":\"t\",");
		func_tail(s, b, ev, ev->ns);
		err = b->oom ? -ENOMEM : thread_put(s, t, b->p, b->len);
	} else if (ev->kind == RW_TRACE_EV_ENTRY) {
		err = graph_entry(s, t, ev);
	} else {
		err = graph_return(s, t, ev);
	}
	s->events++;
	return err ? err : io_error(s);
}

static int chrome_note(struct rw_trace_sink *sk, const struct rw_trace_note *n)
{
	struct chrome_sink *s = to_chrome(sk);
	struct cthread *t = NULL;
	struct jb *b = &s->j;
	const char *name;

	switch (n->kind) {
	case RW_TRACE_NOTE_DROPPED:
		name = "rewire: events dropped (ring full)";
		break;
	case RW_TRACE_NOTE_NOSLOT:
		name = "rewire: events dropped (no free slot)";
		break;
	case RW_TRACE_NOTE_NESTED:
		name = "rewire: events dropped (nested in the probe)";
		break;
	case RW_TRACE_NOTE_CORRUPT:
		name = "rewire: corrupt data skipped";
		break;
	default:
		return 0; /* late: flagged on the event */
	}
	if (n->slot != UINT32_MAX && n->tid) {
		t = thread_of(s, n->slot, n->tid);
		if (!t)
			return -ENOMEM;
	}
	b->len = 0;
	b->oom = false;
	jb_s(b, t ? "{\"ph\":\"i\",\"s\":\"t\",\"name\":"
		  : "{\"ph\":\"i\",\"s\":\"p\",\"name\":");
	jb_cstr(b, name);
	JB_LIT(b, ",\"cat\":\"rewire\",\"ts\":");
	jb_ts(s, b, n->ns);
	jb_ids(b, s->pid, t ? t->tid : s->pid);
	if (n->kind == RW_TRACE_NOTE_CORRUPT) {
		JB_LIT(b, ",\"args\":{\"why\":");
		jb_cstr(b, n->why ? n->why : "");
		JB_LIT(b, ",\"skipped_bytes\":");
	} else {
		JB_LIT(b, ",\"args\":{\"dropped\":");
	}
	jb_u64(b, n->count);
	JB_LIT(b, "}}");
	if (b->oom)
		return -ENOMEM;
	if (t)
		return thread_put(s, t, b->p, b->len);
	put_event(s, b->p, b->len);
	return io_error(s);
}

static int chrome_flush(struct rw_trace_sink *sk)
{
	struct chrome_sink *s = to_chrome(sk);

	if (fflush(s->f))
		return -errno;
	return 0;
}

static int chrome_begin(struct rw_trace_sink *sk,
			const struct rw_trace_session_info *info)
{
	struct chrome_sink *s = to_chrome(sk);
	struct jb m = { 0 };
	char comm[64];
	uint64_t cal;

	s->pid = info->pid;
	s->graph = info->graph;
	/* Readers parse ts into a double: an absolute realtime ts (about
	 * 1.7e15 us) keeps a quarter of a microsecond, one that counts from
	 * the session's start keeps the ns for months. */
	cal = info->clock_id == CLOCK_MONOTONIC ? info->cal_monotonic
						: info->cal_realtime;
	if (!cal) {
		/* No calibration (a version 1 session): an hour ago is
		 * before any event a live session delivers. */
		struct timespec now;

		clock_gettime(info->clock_id == CLOCK_MONOTONIC
				      ? CLOCK_MONOTONIC
				      : CLOCK_REALTIME,
			      &now);
		cal = now.tv_sec > 3600
			      ? (uint64_t)(now.tv_sec - 3600) * 1000000000u
			      : 0;
	}
	s->base = cal / 1000000000u * 1000000000u;
	snprintf(s->clock, sizeof(s->clock), "%s",
		 info->clock_id == CLOCK_MONOTONIC ? "monotonic" : "realtime");
	snprintf(s->source, sizeof(s->source), "%s",
		 info->source_clock ? info->source_clock : "");
	if (info->nslots) {
		s->by_slot = calloc(info->nslots, sizeof(*s->by_slot));
		if (!s->by_slot)
			return -ENOMEM;
		s->nslots = info->nslots;
	}
	fputs("{\"traceEvents\":[\n", s->f);
	s->begun = true;
	s->first = true;
	comm_of(s->pid, 0, comm, sizeof(comm));
	JB_LIT(&m, "{\"ph\":\"M\",\"name\":\"process_name\"");
	jb_ids(&m, s->pid, s->pid);
	JB_LIT(&m, ",\"args\":{\"name\":");
	jb_cstr(&m, comm[0] ? comm : "rewire trace");
	JB_LIT(&m, "}}");
	if (!m.oom)
		put_event(s, m.p, m.len);
	free(m.p);
	return m.oom ? -ENOMEM : io_error(s);
}

/* The end of the array and of the object; @sum may be NULL (destroyed
 * after an error). */
static void close_json(struct chrome_sink *s,
		       const struct rw_trace_summary *sum)
{
	struct jb b = { 0 };

	if (!s->begun || s->ended)
		return;
	s->ended = true;
	jb_s(&b, "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{"
		 "\"tracer\":\"rewire\"");
#ifdef REWIRE_VERSION
	JB_LIT(&b, ",\"version\":\"" REWIRE_VERSION "\"");
#endif
	JB_LIT(&b, ",\"pid\":");
	jb_i64(&b, s->pid);
	JB_LIT(&b, ",\"clock\":");
	jb_cstr(&b, s->clock);
	JB_LIT(&b, ",\"ts_base_s\":");
	jb_u64(&b, s->base / 1000000000u);
	if (s->source[0]) {
		JB_LIT(&b, ",\"source_clock\":");
		jb_cstr(&b, s->source);
	}
	if (sum) {
		JB_LIT(&b, ",\"events\":");
		jb_u64(&b, sum->events);
		JB_LIT(&b, ",\"dropped\":");
		jb_u64(&b, sum->dropped);
		JB_LIT(&b, ",\"dropped_no_slot\":");
		jb_u64(&b, sum->noslot);
		JB_LIT(&b, ",\"dropped_nested\":");
		jb_u64(&b, sum->nested);
		JB_LIT(&b, ",\"corrupt\":");
		jb_u64(&b, sum->corrupt);
		JB_LIT(&b, ",\"late\":");
		jb_u64(&b, sum->late);
	} else {
		JB_LIT(&b, ",\"incomplete\":true");
	}
	JB_LIT(&b, "}}\n");
	if (!b.oom)
		fwrite(b.p, 1, b.len, s->f);
	else
		fputs("\n]}\n", s->f);
	free(b.p);
}

static int chrome_end(struct rw_trace_sink *sk,
		      const struct rw_trace_summary *sum)
{
	struct chrome_sink *s = to_chrome(sk);
	int err = 0;

	if (!s->begun)
		return 0;
	/* Calls still open: "B" without "E" (they did not end). */
	for (size_t i = 0; i < s->nall; i++) {
		struct cthread *t = s->all[i];

		for (size_t k = 0; k < t->nstack; k++) {
			struct pend *p = &t->stack[k];

			if (!p->began && !err)
				err = thread_fill(t, p->item, "\"ph\":\"B\",",
						  p->tail);
			p->began = true;
		}
		thread_flush(s, t);
	}
	close_json(s, sum);
	if (fflush(s->f) && !err)
		err = -errno;
	return err ? err : io_error(s);
}

static void chrome_destroy(struct rw_trace_sink *sk)
{
	struct chrome_sink *s = to_chrome(sk);

	if (!s)
		return;
	/* Valid JSON even after an error: what was held is lost. */
	close_json(s, NULL);
	fflush(s->f);
	for (size_t i = 0; i < s->nall; i++) {
		struct cthread *t = s->all[i];

		for (size_t k = 0; k < t->nstack; k++)
			free(t->stack[k].tail);
		for (size_t k = t->first; k < t->nitems; k++)
			free(t->items[k]);
		free(t->stack);
		free(t->items);
		free(t);
	}
	free(s->all);
	free(s->by_slot);
	free(s->j.p);
	free(s);
}

static const struct rw_trace_sink_ops chrome_ops = {
	.begin = chrome_begin,
	.event = chrome_event,
	.note = chrome_note,
	.flush = chrome_flush,
	.end = chrome_end,
	.destroy = chrome_destroy,
};

int rw_trace_sink_chrome(FILE *f, struct rw_trace_sink **out)
{
	struct chrome_sink *s;

	if (!f || !out)
		return -EINVAL;
	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->sink.ops = &chrome_ops;
	s->f = f;
	*out = &s->sink;
	return 0;
}
