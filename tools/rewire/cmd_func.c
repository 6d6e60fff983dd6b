// SPDX-License-Identifier: MIT
/*
 * rewire funccount PID GLOB... and rewire funclatency PID GLOB...: calls
 * per function, and log2 histograms of their durations, computed in the
 * process (src/ctl/agg.h: a probe that only adds to counters), printed per
 * interval like bcc's funccount and funclatency, the histograms drawn like
 * bpftrace's hist().
 *
 * 1. AGG_START with the patterns; the reply gives the number of functions,
 *    whose table FUNCS brings (funcs_fetch()).
 * 2. Every --interval: AGG_READ (in pages) gives the totals since the
 *    start; the interval's figures are the differences from the last
 *    snapshot. The socket becoming readable between requests means the
 *    process closed it (it exited): exit 3.
 * 3. On Ctrl-C, SIGTERM or --duration: AGG_STOP (the probe comes off; the
 *    counters stay), a last AGG_READ, the last interval, then the totals of
 *    the whole run.
 * If this command dies instead, the process detaches the probe when the
 * connection closes.
 */
#include "rewire.h"

#include "trace_reader.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 65 /* RW__AGG_BUCKETS: 0, then [2^(b-1), 2^b) */
#define MODE_COUNT 1
#define MODE_LATENCY 2

enum { OPT_INTERVAL = 10, OPT_DURATION, OPT_PER_FUNCTION };
static const struct opt func_opts[] = {
	{ "interval", 'i', true, OPT_INTERVAL },
	{ "duration", 'd', true, OPT_DURATION },
	{ "per-function", 0, false, OPT_PER_FUNCTION },
	{ NULL, 0, false, 0 },
};

struct hist {
	uint64_t hits, total_ns;
	uint64_t b[BUCKETS];
};

/* A snapshot: per function, and all together (index n). */
struct snap {
	size_t n;
	struct hist *h; /* n + 1 */
	uint64_t recursion, shadow_full;
};

static void snap_init(struct snap *s, size_t n)
{
	s->n = n;
	s->h = xmalloc(sizeof(*s->h) * (n + 1));
	memset(s->h, 0, sizeof(*s->h) * (n + 1));
	s->recursion = s->shadow_full = 0;
}

static void hist_read(const struct rw_wire_field *grp, struct hist *h)
{
	struct rw_wire_iter it;
	struct rw_wire_field f;
	uint64_t b = UINT64_MAX, v;

	memset(h, 0, sizeof(*h));
	rw_wire_find_u64(grp->data, grp->len, RW_TAG_HITS, &h->hits);
	rw_wire_find_u64(grp->data, grp->len, RW_TAG_TOTAL_NS, &h->total_ns);
	rw_wire_iter_group(&it, grp);
	while (rw_wire_next(&it, &f)) {
		if (f.tag == RW_TAG_BUCKET)
			rw_wire_get_u64(&f, &b);
		else if (f.tag == RW_TAG_VALUE && b < BUCKETS &&
			 rw_wire_get_u64(&f, &v))
			h->b[b] = v;
	}
}

/* AGG_READ, every page, into @s. Returns 0 or an exit code. */
static int snap_read(struct conn *c, struct snap *s)
{
	uint64_t from = 0;

	memset(s->h, 0, sizeof(*s->h) * (s->n + 1));
	for (;;) {
		struct rw_wire_msg m = { .fd = -1 };
		struct rw_wire_iter it;
		struct rw_wire_field f;
		uint64_t next = s->n;
		int ret;

		conn_begin(c, RW_MSG_AGG_READ);
		rw_wire_u64(&c->buf, RW_TAG_FROM, from);
		ret = conn_request(c, &m, "read");
		if (ret)
			return ret;
		rw_wire_iter_init(&it, m.payload, m.len);
		while (rw_wire_next(&it, &f)) {
			uint64_t id = UINT64_MAX;

			if (f.tag != RW_TAG_HIST || f.kind != RW_WK_GROUP)
				continue;
			if (!rw_wire_find_u64(f.data, f.len, RW_TAG_ID, &id))
				id = s->n; /* all together */
			if (id <= s->n)
				hist_read(&f, &s->h[id]);
		}
		rw_wire_find_u64(m.payload, m.len, RW_TAG_NEXT, &next);
		rw_wire_find_u64(m.payload, m.len, RW_TAG_RECURSION,
				 &s->recursion);
		rw_wire_find_u64(m.payload, m.len, RW_TAG_SHADOW_FULL,
				 &s->shadow_full);
		rw_wire_msg_free(&m);
		if (next >= s->n)
			return 0;
		if (next <= from)
			return fail(EX_PROTO, -EPROTO,
				    "process %d: AGG_READ does not advance",
				    (int)c->pid);
		from = next;
	}
}

/* @d = @a - @b, counter by counter (counters only grow). */
static void hist_sub(struct hist *d, const struct hist *a, const struct hist *b)
{
	d->hits = a->hits - b->hits;
	d->total_ns = a->total_ns - b->total_ns;
	for (int i = 0; i < BUCKETS; i++)
		d->b[i] = a->b[i] - b->b[i];
}

/* --- Printing -------------------------------------------------------------- */

/* 1024-based, as bpftrace: "512", "1K", "512K", "1M"... */
static void pow2_label(uint64_t v, char *out, size_t size)
{
	static const char suffix[] = "KMGTPE";
	int k = -1;

	while (v >= 1024 && v % 1024 == 0 && k < 5) {
		v /= 1024;
		k++;
	}
	if (k < 0)
		snprintf(out, size, "%" PRIu64, v);
	else
		snprintf(out, size, "%" PRIu64 "%c", v, suffix[k]);
}

static void bucket_label(int b, char *out, size_t size)
{
	char lo[24], hi[24];

	if (b <= 1) {
		snprintf(out, size, "[%d]", b);
		return;
	}
	pow2_label(1ull << (b - 1), lo, sizeof(lo));
	if (b == 64)
		snprintf(hi, sizeof(hi), "...");
	else
		pow2_label(1ull << b, hi, sizeof(hi));
	snprintf(out, size, "[%s, %s)", lo, hi);
}

#define BAR 52

/* bpftrace's hist(): the buckets from the first to the last not empty. */
static void hist_print(const struct hist *h, const char *title)
{
	int first = -1, last = -1;
	uint64_t max = 0;

	for (int i = 0; i < BUCKETS; i++) {
		if (!h->b[i])
			continue;
		if (first < 0)
			first = i;
		last = i;
		if (h->b[i] > max)
			max = h->b[i];
	}
	printf("%s:\n", title);
	for (int i = first; i >= 0 && i <= last; i++) {
		char label[64];
		int w = (int)((h->b[i] * BAR + max / 2) / max);

		if (h->b[i] && !w)
			w = 1;
		bucket_label(i, label, sizeof(label));
		printf("%-20s %8" PRIu64 " |", label, h->b[i]);
		for (int k = 0; k < BAR; k++)
			putchar(k < w ? '@' : ' ');
		printf("|\n");
	}
	if (h->hits)
		printf("avg = %" PRIu64 " ns, total: %" PRIu64
		       " ns, count: %" PRIu64 "\n",
		       h->total_ns / h->hits, h->total_ns, h->hits);
	else
		printf("no calls\n");
	printf("\n");
}

static void hist_json(struct json *j, const struct hist *h)
{
	json_ku64(j, "count", h->hits);
	json_ku64(j, "total_ns", h->total_ns);
	json_key(j, "hist");
	json_arr_begin(j);
	for (int i = 0; i < BUCKETS; i++) {
		if (!h->b[i])
			continue;
		json_obj_begin(j);
		json_ku64(j, "from", i ? 1ull << (i - 1) : 0);
		if (i < 64)
			json_ku64(j, "to", i ? 1ull << i : 1);
		json_ku64(j, "count", h->b[i]);
		json_obj_end(j);
	}
	json_arr_end(j);
}

struct ctx {
	int mode;
	bool per_func;
	struct rw_trace_func_meta *funcs;
	size_t n;
};

struct row {
	size_t id;
	uint64_t hits;
};

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->hits != y->hits)
		return x->hits < y->hits ? 1 : -1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* One report: an interval's differences (@d), or the totals (@total). */
static void report(const struct ctx *x, const struct hist *d, bool total,
		   double secs)
{
	struct row *rows = xmalloc(sizeof(*rows) * (x->n + 1));
	size_t nrows = 0;
	struct timespec now;
	struct tm tm;
	char when[32];

	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	for (size_t i = 0; i < x->n; i++)
		if (d[i].hits)
			rows[nrows++] = (struct row){ i, d[i].hits };
	qsort(rows, nrows, sizeof(*rows), row_cmp);

	if (g.json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j);
		json_ku64(&j, "ts_ns",
			  (uint64_t)now.tv_sec * 1000000000ull +
				  (uint64_t)now.tv_nsec);
		json_kbool(&j, "total", total);
		json_ku64(&j, "ms", (uint64_t)(secs * 1000 + 0.5));
		if (x->mode == MODE_LATENCY && !x->per_func) {
			json_key(&j, "all");
			json_obj_begin(&j);
			hist_json(&j, &d[x->n]);
			json_obj_end(&j);
		}
		json_key(&j, "functions");
		json_arr_begin(&j);
		for (size_t r = 0; r < nrows; r++) {
			const struct rw_trace_func_meta *f =
				&x->funcs[rows[r].id];

			json_obj_begin(&j);
			json_kstr(&j, "function", f->display);
			json_kstr(&j, "symbol", f->name);
			if (x->mode == MODE_COUNT)
				json_ku64(&j, "count", rows[r].hits);
			else if (x->per_func)
				hist_json(&j, &d[rows[r].id]);
			else {
				json_ku64(&j, "count", rows[r].hits);
				json_ku64(&j, "total_ns",
					  d[rows[r].id].total_ns);
			}
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_obj_end(&j);
		json_done(&j);
		free(rows);
		return;
	}

	if (total)
		printf("Total (%.1f s):\n", secs);
	else
		printf("%s\n", when);
	if (x->mode == MODE_COUNT) {
		struct table t;
		const char *head[] = { "FUNC", "COUNT" };

		table_init(&t, 2, head);
		for (size_t r = 0; r < nrows; r++) {
			char cnt[24];
			const char *cells[2] = { x->funcs[rows[r].id].display,
						 cnt };

			snprintf(cnt, sizeof(cnt), "%" PRIu64, rows[r].hits);
			table_add(&t, cells);
		}
		table_print(&t, stdout);
		printf("\n");
	} else if (!x->per_func) {
		hist_print(&d[x->n], "ns");
	} else if (!nrows) {
		printf("no calls\n\n");
	} else {
		for (size_t r = 0; r < nrows; r++) {
			char title[600];

			snprintf(title, sizeof(title), "%s (ns)",
				 x->funcs[rows[r].id].display);
			hist_print(&d[rows[r].id], title);
		}
	}
	fflush(stdout);
	free(rows);
}

static double secs_since(uint64_t start_ms)
{
	return (double)(now_ms() - start_ms) / 1000.0;
}

static int run(int argc, char **argv, int mode)
{
	struct optv v;
	struct conn c;
	struct rw_wire_msg m = { .fd = -1 };
	struct ctx x = { mode, false, NULL, 0 };
	struct snap cur = { 0, NULL, 0, 0 }, prev = { 0, NULL, 0, 0 };
	struct hist *d = NULL;
	double interval = 1, duration = 0;
	uint64_t nfuncs = 0, start = now_ms(), next_tick, deadline = 0;
	bool lost = false;
	unsigned reports = 0;
	int ret;
	pid_t pid;

	ret = opts_parse(argc, argv, func_opts, &v, false);
	if (ret)
		return ret < 0 ? EX_OK : ret;
	if (v.npos < 2)
		return usage_error(v.npos ? "missing GLOB"
					  : "expected PID GLOB...");
	if (!parse_pid(v.pos[0], &pid))
		return usage_error("'%s' is not a process id", v.pos[0]);
	if (v.set[OPT_INTERVAL] &&
	    (!parse_seconds(v.arg[OPT_INTERVAL], &interval) || interval < 0.01))
		return usage_error("--interval: '%s' is not a number of "
				   "seconds (at least 0.01)",
				   v.arg[OPT_INTERVAL]);
	if (v.set[OPT_DURATION] &&
	    (!parse_seconds(v.arg[OPT_DURATION], &duration) || duration <= 0))
		return usage_error(
			"--duration: '%s' is not a number of seconds",
			v.arg[OPT_DURATION]);
	if (v.set[OPT_PER_FUNCTION] && mode != MODE_LATENCY)
		return usage_error("--per-function is for funclatency");
	x.per_func = v.set[OPT_PER_FUNCTION];
	for (int i = 1; i < v.npos; i++)
		if (!*v.pos[i] || !strcmp(v.pos[i], "!"))
			return usage_error("empty function pattern");

	ret = conn_open(pid, &c);
	if (ret)
		return ret;
	g_interrupted = 0;
	sig_catch();
	conn_begin(&c, RW_MSG_AGG_START);
	for (int i = 1; i < v.npos; i++)
		rw_wire_str(&c.buf, RW_TAG_PATTERN, v.pos[i]);
	rw_wire_u64(&c.buf, RW_TAG_MODE, (uint64_t)mode);
	if (x.per_func)
		rw_wire_u64(&c.buf, RW_TAG_PER_FUNCTION, 1);
	ret = conn_request(&c, &m, "%s", g.cmd);
	if (ret)
		goto out;
	rw_wire_find_u64(m.payload, m.len, RW_TAG_NFUNCS, &nfuncs);
	rw_wire_msg_free(&m);
	ret = funcs_fetch(&c, nfuncs, &x.funcs);
	if (ret)
		goto stop;
	x.n = (size_t)nfuncs;
	snap_init(&cur, x.n);
	snap_init(&prev, x.n);
	d = xmalloc(sizeof(*d) * (x.n + 1));
	if (!g.quiet)
		msg("%s: %s %zu function%s of process %d: %s%s (Ctrl-C to "
		    "end)",
		    g.cmd,
		    mode == MODE_COUNT ? "counting the calls of" : "timing",
		    x.n, x.n == 1 ? "" : "s", (int)pid,
		    x.n ? x.funcs[0].display : "", x.n > 1 ? ", ..." : "");

	start = now_ms();
	next_tick = start + (uint64_t)(interval * 1000);
	if (duration > 0)
		deadline = start + (uint64_t)(duration * 1000);
	for (;;) {
		struct pollfd pfd = { .fd = c.fd, .events = POLLIN };
		uint64_t now = now_ms(), wake = next_tick;
		int pr;

		if (g_interrupted || (deadline && now >= deadline))
			break;
		if (deadline && deadline < wake)
			wake = deadline;
		pr = poll(&pfd, 1, wake > now ? (int)(wake - now) : 0);
		if (pr > 0) {
			/* Nothing comes unasked: the process closed the
			 * connection. */
			lost = true;
			break;
		}
		if (g_interrupted || now_ms() < next_tick)
			continue;
		if (deadline && now_ms() >= deadline)
			break;
		ret = snap_read(&c, &cur);
		if (ret)
			goto stop;
		for (size_t i = 0; i <= x.n; i++)
			hist_sub(&d[i], &cur.h[i], &prev.h[i]);
		report(&x, d, false, interval);
		reports++;
		memcpy(prev.h, cur.h, sizeof(*cur.h) * (x.n + 1));
		while (next_tick <= now_ms())
			next_tick += (uint64_t)(interval * 1000);
	}
	if (lost) {
		ret = conn_lost(&c, -ECONNRESET);
		goto out;
	}

stop:
	g_interrupted = 0;
	conn_begin(&c, RW_MSG_AGG_STOP);
	{
		int sret = conn_call(&c, &m, 10000);

		if (!sret)
			rw_wire_msg_free(&m);
		else if (sret == EX_FAIL)
			sret = conn_fail(&c, "stop");
		if (!ret)
			ret = sret;
	}
	if (!ret && cur.h) {
		/* The probe is off: these totals are final. */
		ret = snap_read(&c, &cur);
		if (!ret) {
			bool moved = false;

			for (size_t i = 0; i <= x.n; i++) {
				hist_sub(&d[i], &cur.h[i], &prev.h[i]);
				moved |= d[i].hits != 0;
			}
			/* The last interval, unless it is the whole run. */
			if (moved && reports)
				report(&x, d, false, interval);
			report(&x, cur.h, true, secs_since(start));
			if (!g.quiet && cur.recursion)
				msg("%s: %" PRIu64 " calls not counted: made "
				    "from inside a probe",
				    g.cmd, cur.recursion);
			if (!g.quiet && cur.shadow_full)
				msg("%s: %" PRIu64 " returns not timed: "
				    "calls nested more than %d deep",
				    g.cmd, cur.shadow_full, 256);
		}
	}
out:
	free(cur.h);
	free(prev.h);
	free(d);
	free(x.funcs);
	conn_close(&c);
	return ret;
}

int cmd_funccount(int argc, char **argv)
{
	return run(argc, argv, MODE_COUNT);
}

int cmd_funclatency(int argc, char **argv)
{
	return run(argc, argv, MODE_LATENCY);
}
