// SPDX-License-Identifier: MIT
/*
 * rewire trace PID TRACEPOINT... [--function GLOB...]: stream events
 * through the per-thread rings the process shares with us
 * (trace_reader.h). With --function, the process also attaches a probe to
 * the functions (rewire/ftrace.h); we read their table with FUNCS after
 * the start, and ask for the names of callers (SYMBOLIZE) as they come.
 *
 * 1. TRACE_START with the names; the reply brings the memfd (SCM_RIGHTS),
 *    its size and the description of every tracepoint attached.
 * 2. Every --drain-ms (10 ms), or sooner when the socket wakes us: poll
 *    the reader (trace_out.h), which reads the rings, merges the threads'
 *    events into one timeline and writes those the reorder window lets
 *    through to every output (--format and each --also). The socket
 *    carries nothing during a session, so it becoming readable means the
 *    process closed it (it exited): write what is left, report, exit 3.
 * 3. On SIGINT/SIGTERM, --duration, --count or a closed output: TRACE_STOP
 *    (the process detaches the probes and answers with the drop count),
 *    then finish the reader: what the threads wrote before the detach,
 *    everything still held by the window, the end of each output; then
 *    the summary on stderr, with what to change when events were dropped.
 * If this command dies instead, the process detaches when the connection
 * closes.
 */
#include "rewire.h"

#include "trace_out.h"
#include "trace_reader.h"

#include "ctl/ring.h"
#include "ctl/filter.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_MS_DEFAULT 10

/* Options: one id each; the repeatable ones from OPT_FIRST_REPEAT. */
enum {
	OPT_RING = 10,
	OPT_DURATION,
	OPT_COUNT,
	OPT_OUTPUT,
	OPT_GRAPH,
	OPT_FORMAT,
	OPT_CLOCK,
	OPT_WINDOW,
	OPT_DRAIN,
	OPT_FILTER,
	OPT_FUNCTION = OPT_FIRST_REPEAT,
	OPT_ALSO,
};
static const struct opt trace_opts[] = {
	{ "ring-size", 0, true, OPT_RING },
	{ "duration", 'd', true, OPT_DURATION },
	{ "count", 'c', true, OPT_COUNT },
	{ "output", 'o', true, OPT_OUTPUT },
	{ "function", 'f', true, OPT_FUNCTION },
	{ "graph", 'g', false, OPT_GRAPH },
	{ "format", 'F', true, OPT_FORMAT },
	{ "also", 0, true, OPT_ALSO },
	{ "clock", 0, true, OPT_CLOCK },
	{ "reorder-window", 0, true, OPT_WINDOW },
	{ "drain-ms", 0, true, OPT_DRAIN },
	{ "filter", 0, true, OPT_FILTER },
	{ NULL, 0, false, 0 },
};

/* The settings the options give, checked. */
struct trace_args {
	pid_t pid;
	uint64_t ring, count, window_ns, drain_ms;
	double duration;
	int clock_id;
};

/* --- Outputs -------------------------------------------------------------- */

/* An output: a format and where it goes (NULL or "-": stdout). */
struct output {
	const char *format;
	const char *path;
	FILE *f; /* opened by us; NULL for stdout and directories */
};

#define MAX_OUTPUTS 8

static const char *const formats[] = { "text", "json", "ctf", "chrome-json" };

static bool format_ok(const char *f)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (!strcmp(f, formats[i]))
			return true;
	return false;
}

static bool is_stdout(const char *path)
{
	return !path || !strcmp(path, "-");
}

/* Opens @o and adds its sink to @r. */
static int output_open(struct output *o, struct rw_trace_reader *r)
{
	struct rw_trace_sink *s = NULL;
	FILE *f = stdout;
	int e;

	if (!strcmp(o->format, "ctf")) {
		e = rw_trace_sink_ctf(o->path, &s);
	} else {
		if (!is_stdout(o->path)) {
			f = fopen(o->path, "we");
			if (!f)
				return fail(EX_FAIL, -errno, "%s: %s", o->path,
					    strerror(errno));
			o->f = f;
		}
		e = !strcmp(o->format, "text")	 ? rw_trace_sink_text(f, &s)
		    : !strcmp(o->format, "json") ? rw_trace_sink_json(f, &s)
						 : rw_trace_sink_chrome(f, &s);
	}
	if (e == -ENOSYS)
		return fail(EX_USAGE, e,
			    "--format %s: this rewire was built without it",
			    o->format);
	if (e)
		return fail(EX_FAIL, e, "%s: cannot write %s: %s",
			    o->path ? o->path : "stdout", o->format,
			    err_desc(e));
	e = rw_trace_reader_add_sink(r, s);
	if (e)
		return fail(EX_FAIL, e, "%s: %s", o->format, err_desc(e));
	return 0;
}

/* Closes what output_open() opened; the first error into *@ret. */
static void output_close(struct output *o, int *ret)
{
	if (o->f && fclose(o->f) && !*ret)
		*ret = fail(EX_FAIL, -errno, "%s: %s", o->path,
			    strerror(errno));
	o->f = NULL;
}

/* --format, -o, --also and --json into @outs; returns how many, or -1
 * (usage message printed). */
static int outputs_parse(const struct optv *v, struct output *outs)
{
	const char *fmt = v->set[OPT_FORMAT] ? v->arg[OPT_FORMAT]
			  : g.json	     ? "json"
					     : "text";
	int n = 0, on_stdout = 0;

	if (!format_ok(fmt)) {
		usage_error("--format: '%s' is not text, json, ctf or "
			    "chrome-json",
			    fmt);
		return -1;
	}
	outs[n++] = (struct output){
		.format = fmt,
		.path = v->set[OPT_OUTPUT] ? v->arg[OPT_OUTPUT] : NULL,
	};
	if (v->nrep[OPT_ALSO] > MAX_OUTPUTS - 1) {
		usage_error("--also: at most %d", MAX_OUTPUTS - 1);
		return -1;
	}
	for (int i = 0; i < v->nrep[OPT_ALSO]; i++) {
		char *a = v->rep[OPT_ALSO][i], *eq = strchr(a, '=');

		if (!eq || eq == a || !eq[1]) {
			usage_error("--also: '%s' is not FORMAT=PATH", a);
			return -1;
		}
		*eq = '\0';
		if (!format_ok(a)) {
			usage_error("--also: '%s' is not text, json, ctf or "
				    "chrome-json",
				    a);
			return -1;
		}
		outs[n++] = (struct output){ .format = a, .path = eq + 1 };
	}
	for (int i = 0; i < n; i++) {
		if (!strcmp(outs[i].format, "ctf") && is_stdout(outs[i].path)) {
			usage_error("ctf is a directory: give it with -o DIR "
				    "or --also ctf=DIR");
			return -1;
		}
		on_stdout += is_stdout(outs[i].path);
		for (int k = 0; k < i; k++)
			if (!is_stdout(outs[i].path) &&
			    !is_stdout(outs[k].path) &&
			    !strcmp(outs[i].path, outs[k].path)) {
				usage_error("%s: given for two outputs",
					    outs[i].path);
				return -1;
			}
	}
	if (on_stdout > 1) {
		usage_error("only one output can go to stdout");
		return -1;
	}
	return n;
}

/* The options but the outputs into @a; 0 or the usage error's code. */
static int args_parse(const struct optv *v, struct trace_args *a)
{
	memset(a, 0, sizeof(*a));
	a->window_ns = RW_TRACE_WINDOW_DEFAULT;
	a->drain_ms = DRAIN_MS_DEFAULT;
	a->clock_id = CLOCK_REALTIME;
	if (v->npos < 1 || (v->npos < 2 && !v->nrep[OPT_FUNCTION]))
		return usage_error(
			v->npos ? "missing TRACEPOINT or --function"
				: "expected PID [TRACEPOINT...] [--function "
				  "GLOB...]");
	if (v->set[OPT_GRAPH] && !v->nrep[OPT_FUNCTION])
		return usage_error("--graph needs --function");
	for (int i = 0; i < v->nrep[OPT_FUNCTION]; i++)
		if (!*v->rep[OPT_FUNCTION][i] ||
		    !strcmp(v->rep[OPT_FUNCTION][i], "!"))
			return usage_error("empty function pattern");
	if (!parse_pid(v->pos[0], &a->pid))
		return usage_error("'%s' is not a process id", v->pos[0]);
	if (v->set[OPT_RING] &&
	    (!parse_size(v->arg[OPT_RING], &a->ring) || !a->ring))
		return usage_error("--ring-size: '%s' is not a size in bytes",
				   v->arg[OPT_RING]);
	if (v->set[OPT_DURATION] &&
	    (!parse_seconds(v->arg[OPT_DURATION], &a->duration) ||
	     a->duration <= 0))
		return usage_error(
			"--duration: '%s' is not a number of seconds",
			v->arg[OPT_DURATION]);
	if (v->set[OPT_COUNT] && (!parse_u64(v->arg[OPT_COUNT], &a->count) ||
				  !a->count || a->count > (uint64_t)LONG_MAX))
		return usage_error("--count: '%s' is not a positive number",
				   v->arg[OPT_COUNT]);
	if (v->set[OPT_CLOCK]) {
		if (!strcmp(v->arg[OPT_CLOCK], "realtime"))
			a->clock_id = CLOCK_REALTIME;
		else if (!strcmp(v->arg[OPT_CLOCK], "monotonic"))
			a->clock_id = CLOCK_MONOTONIC;
		else
			return usage_error("--clock: '%s' is not realtime or "
					   "monotonic",
					   v->arg[OPT_CLOCK]);
	}
	if (v->set[OPT_WINDOW]) {
		uint64_t ms;

		if (!parse_u64(v->arg[OPT_WINDOW], &ms) || ms > 60000)
			return usage_error("--reorder-window: '%s' is not a "
					   "number of ms (0 to 60000)",
					   v->arg[OPT_WINDOW]);
		a->window_ns = ms * 1000000;
	}
	if (v->set[OPT_DRAIN] && (!parse_u64(v->arg[OPT_DRAIN], &a->drain_ms) ||
				  !a->drain_ms || a->drain_ms > 10000))
		return usage_error("--drain-ms: '%s' is not a number of ms (1 "
				   "to 10000)",
				   v->arg[OPT_DRAIN]);
	for (int i = 1; i < v->npos; i++)
		if (!*v->pos[i])
			return usage_error("empty tracepoint name");
	return 0;
}

/* --- Summary -------------------------------------------------------------- */

/* "12.3 MiB", "800 KiB", "96 bytes" */
static const char *bytes_str(uint64_t b, char *buf, size_t size)
{
	if (b >= 1024 * 1024)
		snprintf(buf, size, "%.1f MiB", (double)b / (1024.0 * 1024));
	else if (b >= 1024)
		snprintf(buf, size, "%.0f KiB", (double)b / 1024.0);
	else
		snprintf(buf, size, "%llu bytes", (unsigned long long)b);
	return buf;
}

/* A --ring-size argument: "4M", "512K". */
static const char *size_arg(uint64_t b, char *buf, size_t size)
{
	if (b >= 1024 * 1024 && !(b % (1024 * 1024)))
		snprintf(buf, size, "%lluM", (unsigned long long)(b >> 20));
	else
		snprintf(buf, size, "%lluK", (unsigned long long)(b >> 10));
	return buf;
}

static int by_dropped(const void *a, const void *b)
{
	const struct rw_trace_thread_stats *x = a, *y = b;

	return x->dropped < y->dropped ? 1 : x->dropped > y->dropped ? -1 : 0;
}

/*
 * Drops explained: per thread, how many, and what would have kept them:
 * a ring that holds the most the thread wrote between two reads (its
 * burst), or reads often enough that its ring does not fill at its peak
 * rate. Then the reasons that are not about one ring.
 */
static void explain_drops(struct rw_trace_summary *sum,
			  const struct trace_args *a)
{
	struct rw_trace_thread_stats *t;
	size_t n = 0, shown = 0;
	uint64_t gap_ms = sum->max_poll_gap_ns / 1000000;

	t = xmalloc(sizeof(*t) * (sum->nthreads ? sum->nthreads : 1));
	for (size_t i = 0; i < sum->nthreads; i++)
		if (sum->threads[i].dropped)
			t[n++] = sum->threads[i];
	qsort(t, n, sizeof(*t), by_dropped);
	for (size_t i = 0; i < n && shown < 8; i++, shown++) {
		char b1[32], b2[32], b3[32];
		double fill_ms =
			t[i].peak_rate > 0
				? (double)sum->ring_size * 1e3 / t[i].peak_rate
				: 0;

		msg("trace: thread %d: %llu event%s dropped (%llu read): "
		    "its %s ring was full; it wrote up to %s between two "
		    "reads",
		    (int)t[i].tid, (unsigned long long)t[i].dropped,
		    t[i].dropped == 1 ? "" : "s",
		    (unsigned long long)t[i].events,
		    bytes_str(sum->ring_size, b1, sizeof(b1)),
		    bytes_str(t[i].peak_bytes, b2, sizeof(b2)));
		if (t[i].ring_needed > sum->ring_size &&
		    t[i].ring_needed < RW_TRACE_RING_MAX)
			msg("trace:   --ring-size %s would have held that",
			    size_arg(t[i].ring_needed, b3, sizeof(b3)));
		else if (t[i].ring_needed >= RW_TRACE_RING_MAX)
			msg("trace:   more than the largest ring (--ring-size "
			    "%s) holds: read more often",
			    size_arg(RW_TRACE_RING_MAX, b3, sizeof(b3)));
		if (fill_ms > 0 && fill_ms < 2.0 * (double)a->drain_ms)
			msg("trace:   at its peak (%s/s) the ring fills in "
			    "%.1f ms: --drain-ms %llu or less would read it "
			    "in time",
			    bytes_str((uint64_t)t[i].peak_rate, b3, sizeof(b3)),
			    fill_ms,
			    (unsigned long long)(fill_ms / 2 >= 1 ? fill_ms / 2
								  : 1));
	}
	if (n > shown)
		msg("trace: and %zu more thread%s with drops", n - shown,
		    n - shown == 1 ? "" : "s");
	if (n && gap_ms > 2 * a->drain_ms)
		msg("trace: the reader fell behind: up to %llu ms between two "
		    "reads (--drain-ms %llu); writing to a file (-o) rather "
		    "than a terminal keeps it up",
		    (unsigned long long)gap_ms,
		    (unsigned long long)a->drain_ms);
	if (sum->noslot)
		msg("trace: %llu event%s dropped: their threads found no free "
		    "slot (a session has a slot per thread, for the threads "
		    "that fire first; the others are counted here)",
		    (unsigned long long)sum->noslot,
		    sum->noslot == 1 ? "" : "s");
	if (sum->nested)
		msg("trace: %llu event%s dropped: fired inside the probe (by a "
		    "signal handler that interrupted one)",
		    (unsigned long long)sum->nested,
		    sum->nested == 1 ? "" : "s");
	free(t);
}

/* Every second on a terminal's stderr when the events go elsewhere: how
 * many so far, on one line that the summary ends. */
static void progress(struct rw_trace_reader *r, uint64_t *next_ms)
{
	struct rw_trace_summary sum;
	uint64_t now = now_ms();

	if (now < *next_ms)
		return;
	*next_ms = now + 1000;
	rw_trace_reader_summary(r, &sum);
	fprintf(stderr, "\rrewire: trace: %llu events, %llu dropped ",
		(unsigned long long)sum.events,
		(unsigned long long)sum.dropped);
}

static void summary(struct rw_trace_reader *r, const struct trace_args *a,
		    uint64_t dropped, uint64_t recursion)
{
	struct rw_trace_summary sum;
	uint64_t printed;

	rw_trace_reader_summary(r, &sum);
	printed = sum.events;
	if (sum.dropped > dropped)
		dropped = sum.dropped;
	msg("trace: %llu event%s printed, %llu dropped%s%s",
	    (unsigned long long)printed, printed == 1 ? "" : "s",
	    (unsigned long long)dropped,
	    sum.corrupt ? ", corrupt data skipped " : "",
	    sum.corrupt ? "(see the output)" : "");
	if (sum.late)
		msg("trace: %llu event%s arrived after the reorder window "
		    "(%llu ms) and are marked late: --reorder-window sets it",
		    (unsigned long long)sum.late, sum.late == 1 ? "" : "s",
		    (unsigned long long)(sum.window_ns / 1000000));
	if (dropped)
		explain_drops(&sum, a);
	if (recursion)
		msg("trace: %llu function call%s not traced: made "
		    "from inside a probe",
		    (unsigned long long)recursion, recursion == 1 ? "" : "s");
}

size_t trace_read_meta(const struct rw_wire_msg *m, struct rw_trace_meta **out)
{
	struct rw_wire_iter it;
	struct rw_wire_field f;
	struct rw_trace_meta *meta = NULL;
	size_t n = 0;

	rw_wire_iter_init(&it, m->payload, m->len);
	while (rw_wire_next(&it, &f)) {
		struct rw_wire_iter gi;
		struct rw_wire_field c;
		struct rw_trace_meta *t;
		uint64_t id = 0;

		if (f.tag != RW_TAG_TRACEPOINT || f.kind != RW_WK_GROUP)
			continue;
		meta = xrealloc(meta, sizeof(*meta) * (n + 1));
		t = &meta[n++];
		memset(t, 0, sizeof(*t));
		rw_wire_find_u64(f.data, f.len, RW_TAG_ID, &id);
		t->id = (uint32_t)id;
		rw_wire_find_str(f.data, f.len, RW_TAG_NAME, t->name,
				 sizeof(t->name));
		rw_wire_iter_group(&gi, &f);
		while (rw_wire_next(&gi, &c)) {
			struct rw_trace_meta_field *tf;
			uint64_t kind = 0;

			if (c.tag != RW_TAG_FIELD || c.kind != RW_WK_GROUP)
				continue;
			if (t->nargs >= RW_TRACE_MAX_FIELDS) {
				t->nargs++; /* the reader refuses it */
				continue;
			}
			tf = &t->fields[t->nargs++];
			rw_wire_find_str(c.data, c.len, RW_TAG_NAME, tf->name,
					 sizeof(tf->name));
			if (!rw_wire_find_str(c.data, c.len, RW_TAG_CTYPE,
					      tf->ctype, sizeof(tf->ctype)))
				rw_wire_find_str(c.data, c.len, RW_TAG_TYPE,
						 tf->ctype, sizeof(tf->ctype));
			rw_wire_find_u64(c.data, c.len, RW_TAG_KIND, &kind);
			tf->kind = (int)kind;
		}
		if (t->nargs > RW_TRACE_MAX_FIELDS)
			t->nargs = RW_TRACE_MAX_FIELDS + 1;
	}
	*out = meta;
	return n;
}

/* --- --filter (src/ctl/filter.h) ---------------------------------------- */

/* The expression, and a caret under its 1-based column @col, like a
 * compiler: one column per character (UTF-8), tabs kept as tabs, other
 * control characters shown as spaces. */
void trace_filter_show(const char *expr, unsigned col)
{
	size_t n = strlen(expr);

	fputs("  ", stderr);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)expr[i];

		fputc(ch < ' ' && ch != '\t' ? ' ' : ch, stderr);
	}
	fputs("\n  ", stderr);
	for (size_t i = 0; i + 1 < col && i < n; i++) {
		unsigned char ch = (unsigned char)expr[i];

		if ((ch & 0xc0) != 0x80)
			fputc(ch == '\t' ? '\t' : ' ', stderr);
	}
	fputs("^\n", stderr);
}

/* Before connecting: the syntax (names are the process's to check), and
 * what the filter applies to. */
int trace_filter_precheck(const char *expr, bool tracepoints, bool funcs)
{
	struct rw_filter_error err;
	int e;

	if (!tracepoints)
		return usage_error("--filter applies to tracepoint events; "
				   "function events (--function) are not "
				   "filtered");
	e = rw_filter_check(expr, NULL, 0, &err);
	if (e) {
		fail(EX_USAGE, e, "trace: --filter, column %u: %s", err.column,
		     err.msg);
		trace_filter_show(expr, err.column);
		return EX_USAGE;
	}
	if (funcs && !g.quiet)
		msg("trace: --filter applies to the tracepoints' events; "
		    "function events are not filtered");
	return 0;
}

/*
 * TRACE_START's reply to a request with FILTER: every tracepoint group
 * carries FILTERED (1: the filter applies, 2: the tracepoint lacks a
 * field the filter names and records nothing). None at all: the process's
 * librewire ignored the filter.
 */
int trace_filter_states(const struct rw_wire_msg *m, pid_t pid,
			const char *libversion)
{
	struct rw_wire_iter it;
	struct rw_wire_field f;
	size_t with = 0, none = 0;
	char *names = xasprintf("%s", "");

	rw_wire_iter_init(&it, m->payload, m->len);
	while (rw_wire_next(&it, &f)) {
		char name[256] = "";
		uint64_t st = 0;

		if (f.tag != RW_TAG_TRACEPOINT || f.kind != RW_WK_GROUP)
			continue;
		if (!rw_wire_find_u64(f.data, f.len, RW_TAG_FILTERED, &st))
			continue;
		with++;
		if (st != 2)
			continue;
		rw_wire_find_str(f.data, f.len, RW_TAG_NAME, name,
				 sizeof(name));
		{
			char *n = xasprintf("%s%s%s", names, none ? ", " : "",
					    name);

			free(names);
			names = n;
		}
		none++;
	}
	if (!with) {
		free(names);
		return fail(EX_PROTO, -EOPNOTSUPP,
			    "process %d: its librewire (%s) cannot filter "
			    "events (--filter)",
			    (int)pid, libversion);
	}
	if (none && !g.quiet)
		msg("trace: --filter names a field that %zu tracepoint%s "
		    "lack%s; %s record nothing: %s",
		    none, none == 1 ? "" : "s", none == 1 ? "s" : "",
		    none == 1 ? "it will" : "they will", names);
	free(names);
	return 0;
}

int cmd_trace(int argc, char **argv)
{
	struct optv v;
	struct conn c;
	struct rw_wire_msg m = { .fd = -1 };
	struct rw_trace_reader *r = NULL;
	struct rw_trace_meta *meta = NULL;
	struct rw_trace_func_meta *funcs = NULL;
	struct symcache *syms = NULL;
	struct output outs[MAX_OUTPUTS];
	struct trace_args a;
	uint64_t shm_size = 0, deadline = 0;
	uint64_t dropped = 0, nfuncs = 0, recursion = 0, next_ms = 0;
	bool lost = false, show_progress, progress_open = false;
	uint64_t filtered = 0;
	size_t nmeta = 0;
	int memfd = -1, ret, nouts = 0;

	/* The flight recorder does not drain: its own loop. */
	if (trace_wants_snapshot(argc, argv))
		return cmd_trace_snapshot(argc, argv);
	ret = opts_parse(argc, argv, trace_opts, &v, false);
	if (ret)
		return ret < 0 ? EX_OK : ret;
	ret = args_parse(&v, &a);
	if (!ret && v.set[OPT_FILTER])
		ret = trace_filter_precheck(v.arg[OPT_FILTER], v.npos > 1,
					    v.nrep[OPT_FUNCTION] > 0);
	if (ret)
		return ret;
	nouts = outputs_parse(&v, outs);
	if (nouts < 0)
		return EX_USAGE;

	ret = conn_open(a.pid, &c);
	if (ret)
		return ret;
	/* Signals from here on. rw_wire_recv() carries on through EINTR:
	 * a Ctrl-C during the start is seen once the session started, and
	 * then stops it at once. */
	g_interrupted = 0;
	sig_catch();
	conn_begin(&c, RW_MSG_TRACE_START);
	for (int i = 1; i < v.npos; i++)
		rw_wire_str(&c.buf, RW_TAG_NAME, v.pos[i]);
	for (int i = 0; i < v.nrep[OPT_FUNCTION]; i++)
		rw_wire_str(&c.buf, RW_TAG_PATTERN, v.rep[OPT_FUNCTION][i]);
	if (v.set[OPT_GRAPH])
		rw_wire_u64(&c.buf, RW_TAG_GRAPH, 1);
	if (a.ring)
		rw_wire_u64(&c.buf, RW_TAG_RING_SIZE, a.ring);
	if (v.set[OPT_FILTER])
		rw_wire_str(&c.buf, RW_TAG_FILTER, v.arg[OPT_FILTER]);
	ret = conn_request(&c, &m, "trace");
	if (ret && ret != EX_INTR && v.set[OPT_FILTER] && c.errcol)
		trace_filter_show(v.arg[OPT_FILTER], c.errcol);
	if (ret)
		goto out;
	memfd = m.fd;
	m.fd = -1;
	rw_wire_find_u64(m.payload, m.len, RW_TAG_SHM_SIZE, &shm_size);
	rw_wire_find_u64(m.payload, m.len, RW_TAG_NFUNCS, &nfuncs);
	nmeta = trace_read_meta(&m, &meta);
	if (v.set[OPT_FILTER] && nmeta) {
		ret = trace_filter_states(&m, a.pid, c.libversion);
		if (ret) {
			rw_wire_msg_free(&m);
			goto stop;
		}
	}
	rw_wire_msg_free(&m);
	if (v.nrep[OPT_FUNCTION] && !nfuncs) {
		/* A process whose librewire does not know PATTERN took the
		 * session for tracepoints only (or for nothing). */
		ret = fail(EX_PROTO, -EPROTONOSUPPORT,
			   "process %d: its librewire (%s) cannot trace "
			   "functions",
			   (int)a.pid, c.libversion);
		goto stop;
	}
	if (nfuncs) {
		ret = funcs_fetch(&c, nfuncs, &funcs);
		if (ret)
			goto stop;
	}
	if (memfd < 0 || !shm_size) {
		ret = fail(EX_PROTO, -EPROTO,
			   "process %d: TRACE_START's reply carries no shared "
			   "memory",
			   (int)a.pid);
		goto stop;
	}
	ret = rw_trace_reader_open(memfd, (size_t)shm_size, meta, nmeta, &r);
	if (ret) {
		ret = fail(EX_PROTO, ret,
			   "process %d: cannot use its trace memory: %s",
			   (int)a.pid, err_desc(ret));
		goto stop;
	}
	if (nfuncs) {
		syms = symcache_new(&c);
		rw_trace_reader_set_funcs(r, funcs, (size_t)nfuncs,
					  v.set[OPT_GRAPH]);
		rw_trace_reader_set_resolver(r, symcache_resolve, syms);
	}
	rw_trace_reader_set_clock(r, a.clock_id);
	rw_trace_reader_set_window(r, a.window_ns);
	rw_trace_reader_set_limit(r, a.count);
	for (int i = 0; i < nouts && !ret; i++)
		ret = output_open(&outs[i], r);
	if (ret)
		goto stop;
	if (!g.quiet) {
		char *names = xasprintf("%s", "");

		for (size_t i = 0; i < nmeta; i++) {
			char *n = xasprintf("%s%s%s", names, i ? " " : "",
					    meta[i].name);

			free(names);
			names = n;
		}
		if (nmeta)
			msg("tracing %zu tracepoint%s of process %d: %s (Ctrl-C "
			    "to stop)",
			    nmeta, nmeta == 1 ? "" : "s", (int)a.pid, names);
		if (nfuncs)
			msg("tracing %llu function%s of process %d%s: %s%s "
			    "(Ctrl-C to stop)",
			    (unsigned long long)nfuncs, nfuncs == 1 ? "" : "s",
			    (int)a.pid, v.set[OPT_GRAPH] ? " with returns" : "",
			    funcs[0].display, nfuncs > 1 ? ", ..." : "");
		free(names);
	}
	if (a.duration > 0)
		deadline = now_ms() + (uint64_t)(a.duration * 1000);
	show_progress = !g.quiet && isatty(STDERR_FILENO);
	for (int i = 0; i < nouts; i++)
		if (is_stdout(outs[i].path))
			show_progress = false;

	for (;;) {
		struct pollfd pfd = { .fd = c.fd, .events = POLLIN };
		long n = rw_trace_reader_poll(r);
		int pr;

		if (n < 0)
			break; /* an output failed or was closed */
		if (show_progress) {
			progress(r, &next_ms);
			progress_open = true;
		}
		if (g_interrupted ||
		    (a.count && rw_trace_reader_events(r) >= a.count) ||
		    (deadline && now_ms() >= deadline))
			break;
		pr = poll(&pfd, 1, (int)a.drain_ms);
		if (pr > 0) {
			/* Nothing is sent to us during a session: the
			 * process closed the connection. */
			lost = true;
			break;
		}
	}
	if (lost) {
		rw_trace_reader_set_resolver(r, NULL, NULL);
		rw_trace_reader_finish(r);
		dropped = rw_trace_reader_dropped(r);
		ret = conn_lost(&c, -ECONNRESET);
		goto summary;
	}

stop:
	/* TRACE_STOP even after an error above: the probes come off now,
	 * not only when the connection closes. */
	{
		int sret;

		g_interrupted = 0;
		conn_begin(&c, RW_MSG_TRACE_STOP);
		sret = conn_call(&c, &m, 10000);
		if (!sret) {
			rw_wire_find_u64(m.payload, m.len, RW_TAG_DROPPED,
					 &dropped);
			rw_wire_find_u64(m.payload, m.len, RW_TAG_RECURSION,
					 &recursion);
			rw_wire_find_u64(m.payload, m.len, RW_TAG_FILTERED,
					 &filtered);
			rw_wire_msg_free(&m);
		} else if (sret == EX_FAIL) {
			sret = conn_fail(&c, "trace stop");
		}
		if (!ret)
			ret = sret;
	}
summary:
	if (r) {
		/* What the threads wrote before the probes came off, and
		 * what the window still held; the end of each output. */
		int e = rw_trace_reader_finish(r);

		/* A reader of ours that went away (`| head`) is an end,
		 * not an error. */
		if (progress_open)
			fputc('\n', stderr);
		if (e && e != -EPIPE && !ret)
			ret = fail(EX_FAIL, e, "writing the trace: %s",
				   err_desc(e));
		if (!g.quiet)
			summary(r, &a, dropped, recursion);
		if (filtered && !g.quiet)
			msg("trace: %llu event%s filtered out (--filter)",
			    (unsigned long long)filtered,
			    filtered == 1 ? "" : "s");
	}
out:
	rw_trace_reader_close(r);
	for (int i = 0; i < nouts; i++)
		output_close(&outs[i], &ret);
	symcache_free(syms);
	free(funcs);
	if (memfd >= 0)
		close(memfd);
	free(meta);
	conn_close(&c);
	return ret;
}
