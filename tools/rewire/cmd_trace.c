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
 * 2. Every DRAIN_MS, or sooner when the socket wakes us: drain the rings.
 *    The socket carries nothing during a session, so it becoming readable
 *    means the process closed it (it exited): drain what is left, report,
 *    exit 3.
 * 3. On SIGINT/SIGTERM, --duration, --count or a closed output: drain,
 *    TRACE_STOP (the process detaches the probes and answers with the drop
 *    count), drain what the threads wrote before the detach, summary.
 * If this command dies instead, the process detaches when the connection
 * closes.
 */
#include "rewire.h"

#include "trace_reader.h"

#include "ctl/filter.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DRAIN_MS 10

enum {
	OPT_RING = 10,
	OPT_DURATION,
	OPT_COUNT,
	OPT_OUTPUT,
	OPT_GRAPH,
	OPT_FILTER,
	OPT_FUNCTION = OPT_FIRST_REPEAT,
};
static const struct opt trace_opts[] = {
	{ "ring-size", 0, true, OPT_RING },
	{ "duration", 'd', true, OPT_DURATION },
	{ "count", 'c', true, OPT_COUNT },
	{ "output", 'o', true, OPT_OUTPUT },
	{ "function", 'f', true, OPT_FUNCTION },
	{ "graph", 'g', false, OPT_GRAPH },
	{ "filter", 0, true, OPT_FILTER },
	{ NULL, 0, false, 0 },
};

/* TRACE_START's TRACEPOINT groups into @meta. Returns how many. */
static size_t read_meta(const struct rw_wire_msg *m, struct rw_trace_meta **out)
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
static void filter_show(const char *expr, unsigned col)
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
static int filter_precheck(const char *expr, bool tracepoints, bool funcs)
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
		filter_show(expr, err.column);
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
static int filter_states(const struct rw_wire_msg *m, pid_t pid,
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
	uint64_t ring = 0, count = 0, shm_size = 0, deadline = 0;
	uint64_t dropped = 0, printed = 0, nfuncs = 0, recursion = 0;
	uint64_t filtered = 0;
	double duration = 0;
	FILE *out = stdout;
	bool lost = false, out_closed = false;
	size_t nmeta = 0;
	int memfd = -1, ret;
	pid_t pid;

	ret = opts_parse(argc, argv, trace_opts, &v, false);
	if (ret)
		return ret < 0 ? EX_OK : ret;
	if (v.npos < 1 || (v.npos < 2 && !v.nrep[OPT_FUNCTION]))
		return usage_error(
			v.npos ? "missing TRACEPOINT or --function"
			       : "expected PID [TRACEPOINT...] [--function "
				 "GLOB...]");
	if (v.set[OPT_GRAPH] && !v.nrep[OPT_FUNCTION])
		return usage_error("--graph needs --function");
	for (int i = 0; i < v.nrep[OPT_FUNCTION]; i++)
		if (!*v.rep[OPT_FUNCTION][i] ||
		    !strcmp(v.rep[OPT_FUNCTION][i], "!"))
			return usage_error("empty function pattern");
	if (!parse_pid(v.pos[0], &pid))
		return usage_error("'%s' is not a process id", v.pos[0]);
	if (v.set[OPT_RING] && (!parse_size(v.arg[OPT_RING], &ring) || !ring))
		return usage_error("--ring-size: '%s' is not a size in bytes",
				   v.arg[OPT_RING]);
	if (v.set[OPT_DURATION] &&
	    (!parse_seconds(v.arg[OPT_DURATION], &duration) || duration <= 0))
		return usage_error(
			"--duration: '%s' is not a number of seconds",
			v.arg[OPT_DURATION]);
	if (v.set[OPT_COUNT] && (!parse_u64(v.arg[OPT_COUNT], &count) ||
				 !count || count > (uint64_t)LONG_MAX))
		return usage_error("--count: '%s' is not a positive number",
				   v.arg[OPT_COUNT]);
	for (int i = 1; i < v.npos; i++)
		if (!*v.pos[i])
			return usage_error("empty tracepoint name");
	if (v.set[OPT_FILTER]) {
		ret = filter_precheck(v.arg[OPT_FILTER], v.npos > 1,
				      v.nrep[OPT_FUNCTION] > 0);
		if (ret)
			return ret;
	}
	if (v.set[OPT_OUTPUT] && strcmp(v.arg[OPT_OUTPUT], "-")) {
		out = fopen(v.arg[OPT_OUTPUT], "we");
		if (!out)
			return fail(EX_FAIL, -errno, "%s: %s",
				    v.arg[OPT_OUTPUT], strerror(errno));
	}

	ret = conn_open(pid, &c);
	if (ret)
		goto out;
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
	if (ring)
		rw_wire_u64(&c.buf, RW_TAG_RING_SIZE, ring);
	if (v.set[OPT_FILTER])
		rw_wire_str(&c.buf, RW_TAG_FILTER, v.arg[OPT_FILTER]);
	ret = conn_request(&c, &m, "trace");
	if (ret && ret != EX_INTR && v.set[OPT_FILTER] && c.errcol)
		filter_show(v.arg[OPT_FILTER], c.errcol);
	if (ret)
		goto out;
	memfd = m.fd;
	m.fd = -1;
	rw_wire_find_u64(m.payload, m.len, RW_TAG_SHM_SIZE, &shm_size);
	rw_wire_find_u64(m.payload, m.len, RW_TAG_NFUNCS, &nfuncs);
	nmeta = read_meta(&m, &meta);
	if (v.set[OPT_FILTER] && nmeta) {
		ret = filter_states(&m, pid, c.libversion);
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
			   (int)pid, c.libversion);
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
			   (int)pid);
		goto stop;
	}
	ret = rw_trace_reader_open(memfd, (size_t)shm_size, meta, nmeta, &r);
	if (ret) {
		ret = fail(EX_PROTO, ret,
			   "process %d: cannot use its trace memory: %s",
			   (int)pid, err_desc(ret));
		goto stop;
	}
	if (nfuncs) {
		syms = symcache_new(&c);
		rw_trace_reader_set_funcs(r, funcs, (size_t)nfuncs,
					  v.set[OPT_GRAPH]);
		rw_trace_reader_set_resolver(r, symcache_resolve, syms);
	}
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
			    nmeta, nmeta == 1 ? "" : "s", (int)pid, names);
		if (nfuncs)
			msg("tracing %llu function%s of process %d%s: %s%s "
			    "(Ctrl-C to stop)",
			    (unsigned long long)nfuncs, nfuncs == 1 ? "" : "s",
			    (int)pid, v.set[OPT_GRAPH] ? " with returns" : "",
			    funcs[0].display, nfuncs > 1 ? ", ..." : "");
		free(names);
	}
	if (duration > 0)
		deadline = now_ms() + (uint64_t)(duration * 1000);

	for (;;) {
		struct pollfd pfd = { .fd = c.fd, .events = POLLIN };
		long n;
		int pr;

		if (count)
			n = rw_trace_reader_drain_max(r, out, g.json,
						      (long)(count - printed));
		else
			n = rw_trace_reader_drain(r, out, g.json);
		if (n > 0) {
			printed += (uint64_t)n;
			fflush(out);
		}
		if (ferror(out)) {
			out_closed = true;
			break;
		}
		if (g_interrupted || (count && printed >= count) ||
		    (deadline && now_ms() >= deadline))
			break;
		pr = poll(&pfd, 1, DRAIN_MS);
		if (pr > 0) {
			/* Nothing is sent to us during a session: the
			 * process closed the connection. */
			lost = true;
			break;
		}
	}
	if (lost) {
		rw_trace_reader_set_resolver(r, NULL, NULL);
		if (!count || printed < count)
			printed +=
				(uint64_t)rw_trace_reader_drain(r, out, g.json);
		rw_trace_reader_flush(r, out, g.json);
		fflush(out);
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
	if (r) {
		/* What the threads wrote before the probes came off. */
		if (!out_closed && (!count || printed < count)) {
			long n = count ? rw_trace_reader_drain_max(
						 r, out, g.json,
						 (long)(count - printed))
				       : rw_trace_reader_drain(r, out, g.json);

			if (n > 0)
				printed += (uint64_t)n;
			rw_trace_reader_flush(r, out, g.json);
			fflush(out);
		}
		if (rw_trace_reader_dropped(r) > dropped)
			dropped = rw_trace_reader_dropped(r);
	}
summary:
	if (r && !g.quiet) {
		uint64_t corrupt = rw_trace_reader_corrupt(r);

		msg("trace: %llu event%s printed, %llu dropped%s%s",
		    (unsigned long long)printed, printed == 1 ? "" : "s",
		    (unsigned long long)dropped,
		    corrupt ? ", corrupt data skipped " : "",
		    corrupt ? "(see the output)" : "");
		if (filtered)
			msg("trace: %llu event%s filtered out (--filter)",
			    (unsigned long long)filtered,
			    filtered == 1 ? "" : "s");
		if (recursion)
			msg("trace: %llu function call%s not traced: made "
			    "from inside a probe",
			    (unsigned long long)recursion,
			    recursion == 1 ? "" : "s");
	}
out:
	rw_trace_reader_close(r);
	symcache_free(syms);
	free(funcs);
	if (memfd >= 0)
		close(memfd);
	free(meta);
	if (out != stdout && fclose(out) && !ret)
		ret = fail(EX_FAIL, -errno, "%s: %s", v.arg[OPT_OUTPUT],
			   strerror(errno));
	conn_close(&c);
	return ret;
}
