// SPDX-License-Identifier: MIT
/*
 * The flight recorder: `rewire trace PID ... --snapshot` and
 * `rewire snapshot PID`.
 *
 * rewire trace PID TRACEPOINT... --snapshot [--on-signal SIG] [--final]
 *   1. TRACE_START with OVERWRITE=1: the traced threads write into rings
 *      that they write over when full (ring.h, overwrite mode); nobody
 *      drains them, and no thread ever waits or drops for a full ring.
 *   2. Wait in ppoll() on the connection, with SIG (default SIGUSR1),
 *      SIGINT and SIGTERM unblocked only there (so none is lost between a
 *      check and the wait):
 *      - SIG: a snapshot (below) to PATH.N, N = 1, 2, ... (-o PATH), or
 *        to stdout;
 *      - SIGINT, SIGTERM, --duration: with --final a last snapshot to PATH
 *        (or stdout), then TRACE_STOP;
 *      - the connection readable: the process exited (crashed?). Its rings
 *        are still mapped here: with --final they are written to PATH,
 *        then exit 3.
 *
 * rewire snapshot PID [-o PATH] [--last SECONDS] [--session N]
 *   SNAPSHOT: the process hands over the memfd of a running overwrite
 *   session (usually a `rewire trace --snapshot` of another terminal) and
 *   the tracepoints' descriptions. The copy is made at once; the function
 *   names (FUNCS) are asked afterwards, since they do not age.
 *
 * A snapshot: every slot copied by S1-S4 (trace_snap.c) into linear
 * buffers, cut to the records of the last SECONDS (--last) by their ts,
 * then fed to the reader's pipeline (trace_out.h: feed, finish) and the
 * sink of --format. What it covers (the time span, the records left out,
 * the bytes of the oldest sub-buffers given up) is said on stderr and, for
 * text and JSON, in a first line of the output.
 */
#include "rewire.h"

#include "trace_out.h"
#include "trace_snap.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The session a snapshot is taken of. */
struct snap_src {
	pid_t pid;
	uint64_t session;
	pid_t owner; /* the rewire command that started it, 0 unknown */
	int memfd;
	size_t shm_size;
	const void *map; /* read-only mapping of the memfd */
	struct rw_trace_meta *meta;
	size_t nmeta;
	struct rw_trace_func_meta *funcs;
	uint64_t nfuncs;
	bool graph;
	struct symcache *syms;
};

enum snap_format { FMT_TEXT, FMT_JSON, FMT_CTF, FMT_CHROME };

struct snap_opts {
	enum snap_format format;
	int clock_id; /* of the output: CLOCK_REALTIME or CLOCK_MONOTONIC */
	double last;  /* seconds; 0: everything the rings hold */
};

static bool parse_format(const char *s, enum snap_format *out)
{
	static const struct {
		const char *name;
		enum snap_format f;
	} t[] = { { "text", FMT_TEXT },
		  { "json", FMT_JSON },
		  { "ctf", FMT_CTF },
		  { "chrome-json", FMT_CHROME } };

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(s, t[i].name)) {
			*out = t[i].f;
			return true;
		}
	return false;
}

static bool parse_clock(const char *s, int *out)
{
	if (!strcmp(s, "realtime"))
		*out = CLOCK_REALTIME;
	else if (!strcmp(s, "monotonic"))
		*out = CLOCK_MONOTONIC;
	else
		return false;
	return true;
}

/* The snapshot signal: a name ("USR1", "SIGUSR1"), "RTMIN+N" or a number.
 * Signals that stop the command, stop or kill it, or report faults are
 * refused. */
static bool parse_signal(const char *s, int *out)
{
	static const struct {
		const char *name;
		int sig;
	} t[] = { { "HUP", SIGHUP },   { "QUIT", SIGQUIT },
		  { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
		  { "ALRM", SIGALRM }, { "WINCH", SIGWINCH },
		  { "URG", SIGURG } };
	uint64_t n;

	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcasecmp(s, t[i].name)) {
			*out = t[i].sig;
			return true;
		}
	if (!strncasecmp(s, "RTMIN+", 6) && parse_u64(s + 6, &n) &&
	    n <= (uint64_t)(SIGRTMAX - SIGRTMIN)) {
		*out = SIGRTMIN + (int)n;
		return true;
	}
	if (parse_u64(s, &n) && n < 65) {
		for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
			if ((int)n == t[i].sig) {
				*out = (int)n;
				return true;
			}
		if ((int)n >= SIGRTMIN && (int)n <= SIGRTMAX) {
			*out = (int)n;
			return true;
		}
	}
	return false;
}

/* Maps the memfd read-only: a snapshot never writes into the process's
 * rings. Returns 0 or an exit code (printed). */
static int snap_map(struct snap_src *src)
{
	struct rw_trace_shm hdr;
	struct stat st;
	void *p;
	int err, seals;

	if (src->memfd < 0 || !src->shm_size)
		return fail(EX_PROTO, -EPROTO,
			    "process %d: the reply carries no shared memory",
			    (int)src->pid);
	/* Mapping past the end of the file would fault, and so would a file
	 * that the process shrinks later: it must be sealed against that
	 * (the process's librewire seals it). */
	if (fstat(src->memfd, &st) || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < src->shm_size ||
	    (seals = fcntl(src->memfd, F_GET_SEALS)) < 0 ||
	    !(seals & F_SEAL_SHRINK))
		return fail(EX_PROTO, -EPERM,
			    "process %d: its trace memory is not a sealed "
			    "file of the size it says",
			    (int)src->pid);
	p = mmap(NULL, src->shm_size, PROT_READ, MAP_SHARED, src->memfd, 0);
	if (p == MAP_FAILED)
		return fail(EX_FAIL, -errno,
			    "process %d: cannot map its trace memory: %s",
			    (int)src->pid, strerror(errno));
	src->map = p;
	err = rw_trace_snap_check(p, src->shm_size, &hdr);
	if (err == -EINVAL)
		return fail(EX_PROTO, err,
			    "process %d: its librewire did not start a "
			    "flight recorder (the session streams: its "
			    "librewire is older than this command)",
			    (int)src->pid);
	if (err)
		return fail(EX_PROTO, err,
			    "process %d: cannot use its trace memory: %s",
			    (int)src->pid, err_desc(err));
	src->session = hdr.session;
	return 0;
}

static void snap_unmap(struct snap_src *src)
{
	if (src->map)
		munmap((void *)src->map, src->shm_size);
	src->map = NULL;
}

/* Functions named by id when their table cannot be had (the session
 * stopped before FUNCS). */
static struct rw_trace_func_meta *funcs_by_id(uint64_t n)
{
	struct rw_trace_func_meta *f = xmalloc(sizeof(*f) * (size_t)n);

	memset(f, 0, sizeof(*f) * (size_t)n);
	for (uint64_t i = 0; i < n; i++) {
		snprintf(f[i].name, sizeof(f[i].name), "function#%llu",
			 (unsigned long long)i);
		snprintf(f[i].display, sizeof(f[i].display), "function#%llu()",
			 (unsigned long long)i);
	}
	return f;
}

/* What a snapshot covers, summed over its slots. */
struct snap_cover {
	size_t threads;
	uint64_t events, cut, given_up;
	size_t lapped, corrupt;
	uint64_t first_ts, last_ts, oldest_ts; /* 0: none */
	bool returns;
};

static void cover_sum(struct rw_trace_snap *sn, uint64_t min_ts,
		      struct snap_cover *cv)
{
	memset(cv, 0, sizeof(*cv));
	for (size_t i = 0; i < sn->nslots; i++) {
		struct rw_trace_snap_slot *s = &sn->slots[i];

		rw_trace_snap_trim(sn, s, min_ts);
		cv->cut += s->cut;
		cv->given_up += s->given_up;
		cv->lapped += s->lapped;
		cv->corrupt += s->corrupt;
		cv->returns |= s->returns;
		if (s->oldest_ts &&
		    (!cv->oldest_ts || s->oldest_ts < cv->oldest_ts))
			cv->oldest_ts = s->oldest_ts;
		if (!s->records)
			continue;
		cv->threads++;
		cv->events += s->records;
		if (!cv->first_ts || s->first_ts < cv->first_ts)
			cv->first_ts = s->first_ts;
		if (s->last_ts > cv->last_ts)
			cv->last_ts = s->last_ts;
	}
}

static void utc_time(uint64_t ns, char *out, size_t size)
{
	time_t sec = (time_t)(ns / 1000000000u);
	struct tm tm;
	char b[32];

	gmtime_r(&sec, &tm);
	strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, size, "%s.%09lluZ", b,
		 (unsigned long long)(ns % 1000000000u));
}

/* "N events of T threads, from A s to B s before the snapshot (...)" */
static char *cover_text(const struct snap_src *src,
			const struct rw_trace_snap *sn,
			const struct snap_cover *cv, const struct snap_opts *o)
{
	char when[64], *span, *last = NULL, *lost = NULL, *s;

	utc_time(sn->now_realtime, when, sizeof(when));
	if (cv->events)
		span = xasprintf("%llu event%s of %zu thread%s, from %.6f s to "
				 "%.6f s before it",
				 (unsigned long long)cv->events,
				 cv->events == 1 ? "" : "s", cv->threads,
				 cv->threads == 1 ? "" : "s",
				 rw_trace_snap_age(sn, cv->first_ts),
				 rw_trace_snap_age(sn, cv->last_ts));
	else
		span = xasprintf("no event");
	if (o->last > 0)
		last = xasprintf("; --last %g: %llu older event%s left out, "
				 "the rings went back %.6f s",
				 o->last, (unsigned long long)cv->cut,
				 cv->cut == 1 ? "" : "s",
				 cv->oldest_ts
					 ? rw_trace_snap_age(sn, cv->oldest_ts)
					 : 0.0);
	if (cv->lapped || cv->corrupt)
		lost = xasprintf("; %zu thread%s wrote over its whole ring "
				 "during the copy, %zu had damaged data",
				 cv->lapped, cv->lapped == 1 ? "" : "s",
				 cv->corrupt);
	s = xasprintf("snapshot of process %d session %llu at %s: %s%s; "
		      "copied in %.3f ms, %llu byte%s of the oldest "
		      "sub-buffers given up%s",
		      (int)src->pid, (unsigned long long)src->session, when,
		      span, last ? last : "", (double)sn->copy_ns / 1e6,
		      (unsigned long long)cv->given_up,
		      cv->given_up == 1 ? "" : "s", lost ? lost : "");
	free(span);
	free(last);
	free(lost);
	return s;
}

static void cover_json(FILE *f, const struct snap_src *src,
		       const struct rw_trace_snap *sn,
		       const struct snap_cover *cv, const struct snap_opts *o)
{
	struct json j;
	uint64_t now = o->clock_id == CLOCK_MONOTONIC ? sn->now_monotonic
						      : sn->now_realtime;

	json_init(&j, f);
	json_obj_begin(&j);
	json_key(&j, "snapshot");
	json_obj_begin(&j);
	json_ku64(&j, "pid", (uint64_t)src->pid);
	json_ku64(&j, "session", src->session);
	if (src->owner)
		json_ku64(&j, "recorder_pid", (uint64_t)src->owner);
	json_ku64(&j, "ts", now);
	json_kstr(&j, "clock",
		  o->clock_id == CLOCK_MONOTONIC ? "monotonic" : "realtime");
	json_ku64(&j, "threads", cv->threads);
	json_ku64(&j, "events", cv->events);
	if (cv->events) {
		/* The span in the output clock, from the ages. */
		json_ku64(&j, "from_ts",
			  now - (uint64_t)(rw_trace_snap_age(sn, cv->first_ts) *
					   1e9));
		json_ku64(&j, "to_ts",
			  now - (uint64_t)(rw_trace_snap_age(sn, cv->last_ts) *
					   1e9));
	}
	if (o->last > 0) {
		json_ku64(&j, "last_ms", (uint64_t)(o->last * 1000));
		json_ku64(&j, "left_out", cv->cut);
	}
	json_ku64(&j, "copy_ns", sn->copy_ns);
	json_ku64(&j, "given_up_bytes", cv->given_up);
	json_ku64(&j, "lapped_threads", cv->lapped);
	json_ku64(&j, "corrupt_threads", cv->corrupt);
	json_obj_end(&j);
	json_obj_end(&j);
	json_done(&j);
}

/* The sink of @o->format writing to @path (NULL or "-": stdout; a
 * directory for CTF). *@f is the FILE opened, if any. Returns 0 or an
 * exit code (printed). */
static int snap_sink(const struct snap_opts *o, const char *path, FILE **f,
		     struct rw_trace_sink **out)
{
	bool std = !path || !strcmp(path, "-");
	int err;

	*f = NULL;
	if (o->format == FMT_CTF) {
		if (std)
			return fail(EX_USAGE, -EINVAL,
				    "--format ctf needs -o DIRECTORY");
		err = rw_trace_sink_ctf(path, out);
	} else {
		*f = std ? stdout : fopen(path, "we");
		if (!*f)
			return fail(EX_FAIL, -errno, "%s: %s", path,
				    strerror(errno));
		if (o->format == FMT_TEXT)
			err = rw_trace_sink_text(*f, out);
		else if (o->format == FMT_JSON)
			err = rw_trace_sink_json(*f, out);
		else
			err = rw_trace_sink_chrome(*f, out);
	}
	if (err) {
		if (*f && *f != stdout)
			fclose(*f);
		*f = NULL;
		return fail(EX_FAIL, err, "%s: cannot write %s: %s",
			    std ? "stdout" : path,
			    o->format == FMT_CTF ? "a CTF trace" : "the output",
			    err_desc(err));
	}
	return 0;
}

/* --- Feeding the reader ------------------------------------------------------
 * The reader delivers what its reorder window lets through at each feed:
 * everything older than the window, which a snapshot's events mostly are.
 * Fed one slot after the other, the second slot's events would all come
 * after the first's newer ones, late. So the slots are merged here: the
 * slot whose next record is the oldest is fed up to the next record of any
 * other slot (a heap of the slots by that ts), and the reader sees the
 * events in ts order whatever its window and its memory bound.
 */
struct feed_cur {
	size_t slot; /* in sn->slots */
	size_t pos;  /* the next record in its buffer */
	uint64_t ts; /* its ts */
};

/* The ts of the first data record at or after @pos (padding skipped, *@pos
 * moved onto it); false at the end. rw_trace_snap_trim() checked every
 * length of [off, len). */
static bool cur_ts(const struct rw_trace_snap_slot *s, size_t *pos,
		   uint64_t *ts)
{
	while (*pos < s->len) {
		struct rw_trace_rec rec = { 0 };

		memcpy(&rec, s->buf + *pos,
		       s->len - *pos < sizeof(rec) ? RW_TRACE_PAD_HDR
						   : sizeof(rec));
		if (rec.id != RW_TRACE_PAD) {
			*ts = rec.ts;
			return true;
		}
		*pos += rec.len;
	}
	return false;
}

static void heap_down(struct feed_cur *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		struct feed_cur t;

		if (l < n && h[l].ts < h[m].ts)
			m = l;
		if (l + 1 < n && h[l + 1].ts < h[m].ts)
			m = l + 1;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static int snap_feed(struct rw_trace_reader *r, const struct rw_trace_snap *sn)
{
	struct feed_cur *h = xmalloc(sizeof(*h) * (sn->nslots + 1));
	size_t n = 0;
	int err = 0;

	for (size_t i = 0; i < sn->nslots; i++) {
		h[n].slot = i;
		h[n].pos = sn->slots[i].off;
		if (cur_ts(&sn->slots[i], &h[n].pos, &h[n].ts))
			n++;
	}
	for (size_t i = n / 2; i-- > 0;)
		heap_down(h, n, i);
	while (n && !err) {
		const struct rw_trace_snap_slot *s = &sn->slots[h[0].slot];
		/* Up to the next record of another slot (the smaller
		 * child's). */
		uint64_t limit = n > 2 && h[2].ts < h[1].ts ? h[2].ts
				 : n > 1		    ? h[1].ts
							    : UINT64_MAX;
		size_t end = h[0].pos;
		uint64_t ts = h[0].ts;
		long got;

		do {
			struct rw_trace_rec rec = { 0 };

			memcpy(&rec, s->buf + end, RW_TRACE_PAD_HDR);
			end += rec.len;
		} while (cur_ts(s, &end, &ts) && ts <= limit);
		got = rw_trace_reader_feed(r, s->index, s->tid,
					   s->buf + h[0].pos, end - h[0].pos);
		if (got < 0)
			err = (int)got;
		h[0].pos = end;
		if (end < s->len) {
			h[0].ts = ts;
		} else {
			h[0] = h[--n];
		}
		heap_down(h, n, 0);
	}
	free(h);
	return err;
}

/*
 * A snapshot of @src's rings to @path: copy (S1-S4), cut to --last, feed
 * the reader, finish. Returns 0 or an exit code (printed).
 */
static int snap_write(struct snap_src *src, struct rw_trace_snap *sn,
		      const struct snap_opts *o, const char *path)
{
	struct rw_trace_reader *r = NULL;
	struct rw_trace_sink *sink = NULL;
	struct snap_cover cv;
	FILE *f = NULL;
	char *text;
	int ret, err;

	cover_sum(sn, o->last > 0 ? rw_trace_snap_cutoff(sn, o->last) : 0, &cv);
	err = rw_trace_reader_open(src->memfd, src->shm_size, src->meta,
				   src->nmeta, &r);
	if (err)
		return fail(EX_PROTO, err,
			    "process %d: cannot use its trace memory: %s",
			    (int)src->pid, err_desc(err));
	if (src->nfuncs)
		rw_trace_reader_set_funcs(r, src->funcs, (size_t)src->nfuncs,
					  src->graph || cv.returns);
	if (src->syms)
		rw_trace_reader_set_resolver(r, symcache_resolve, src->syms);
	rw_trace_reader_set_clock(r, o->clock_id);
	ret = snap_sink(o, path, &f, &sink);
	if (ret)
		goto out;
	err = rw_trace_reader_add_sink(r, sink);
	if (err) {
		ret = fail(EX_FAIL, err, "cannot write the snapshot: %s",
			   err_desc(err));
		goto out;
	}
	text = cover_text(src, sn, &cv, o);
	/* What the snapshot covers, first in the output where a line can
	 * say it (CTF and Chrome JSON have no place for it: stderr). */
	if (o->format == FMT_TEXT)
		fprintf(f, "# rewire: %s\n", text);
	else if (o->format == FMT_JSON)
		cover_json(f, src, sn, &cv, o);
	err = snap_feed(r, sn);
	if (!err)
		err = rw_trace_reader_finish(r);
	if (err)
		ret = fail(EX_FAIL, err, "%s: writing the snapshot: %s",
			   path ? path : "stdout", err_desc(err));
	else if (!g.quiet)
		msg("%s%s%s", text, path ? " -> " : "", path ? path : "");
	free(text);
out:
	rw_trace_reader_close(r);
	if (f && f != stdout) {
		if (fclose(f) && !ret)
			ret = fail(EX_FAIL, -errno, "%s: %s", path,
				   strerror(errno));
	} else if (f) {
		fflush(f);
	}
	return ret;
}

/* --- rewire snapshot ------------------------------------------------------- */

enum {
	OPT_OUTPUT = 10,
	OPT_LAST,
	OPT_FORMAT,
	OPT_SESSION,
	OPT_CLOCK,
};
static const struct opt snapshot_opts[] = {
	{ "output", 'o', true, OPT_OUTPUT },
	{ "last", 0, true, OPT_LAST },
	{ "format", 0, true, OPT_FORMAT },
	{ "session", 0, true, OPT_SESSION },
	{ "clock", 0, true, OPT_CLOCK },
	{ NULL, 0, false, 0 },
};

/* --format, --clock, --last into @o. Returns 0 or EX_USAGE (printed). */
static int out_opts(const struct optv *v, int fmt, int clk, int last,
		    struct snap_opts *o)
{
	o->format = g.json ? FMT_JSON : FMT_TEXT;
	o->clock_id = CLOCK_REALTIME;
	o->last = 0;
	if (v->set[fmt] && !parse_format(v->arg[fmt], &o->format))
		return usage_error("--format: '%s' is not text, json, ctf or "
				   "chrome-json",
				   v->arg[fmt]);
	if (v->set[clk] && !parse_clock(v->arg[clk], &o->clock_id))
		return usage_error("--clock: '%s' is not realtime or monotonic",
				   v->arg[clk]);
	if (v->set[last] &&
	    (!parse_seconds(v->arg[last], &o->last) || o->last <= 0))
		return usage_error("--last: '%s' is not a number of seconds",
				   v->arg[last]);
	return 0;
}

int cmd_snapshot(int argc, char **argv)
{
	struct optv v;
	struct conn c;
	struct rw_wire_msg m = { .fd = -1 };
	struct snap_src src = { .memfd = -1 };
	struct rw_trace_snap sn = { 0 };
	struct snap_opts o;
	uint64_t session = 0, shm_size = 0, owner = 0;
	const char *path;
	int ret;

	ret = opts_parse_pid(argc, argv, snapshot_opts, &v, 1, "expected PID",
			     &src.pid);
	if (ret)
		return ret < 0 ? EX_OK : ret;
	ret = out_opts(&v, OPT_FORMAT, OPT_CLOCK, OPT_LAST, &o);
	if (ret)
		return ret;
	if (v.set[OPT_SESSION] &&
	    (!parse_u64(v.arg[OPT_SESSION], &session) || !session))
		return usage_error("--session: '%s' is not a session number",
				   v.arg[OPT_SESSION]);
	path = v.set[OPT_OUTPUT] ? v.arg[OPT_OUTPUT] : NULL;
	if (path && !strcmp(path, "-"))
		path = NULL;
	if (o.format == FMT_CTF && !path)
		return usage_error("--format ctf needs -o DIRECTORY");

	ret = conn_open(src.pid, &c);
	if (ret)
		return ret;
	conn_begin(&c, RW_MSG_SNAPSHOT);
	if (session)
		rw_wire_u64(&c.buf, RW_TAG_SESSION, session);
	ret = conn_request(&c, &m, "snapshot");
	if (ret)
		goto out;
	src.memfd = m.fd;
	m.fd = -1;
	rw_wire_find_u64(m.payload, m.len, RW_TAG_SHM_SIZE, &shm_size);
	rw_wire_find_u64(m.payload, m.len, RW_TAG_NFUNCS, &src.nfuncs);
	rw_wire_find_u64(m.payload, m.len, RW_TAG_OWNER, &owner);
	src.shm_size = (size_t)shm_size;
	src.owner = (pid_t)owner;
	src.nmeta = trace_read_meta(&m, &src.meta);
	rw_wire_msg_free(&m);
	ret = snap_map(&src);
	if (ret)
		goto out;
	/* The copy first: the rings move on, the names do not. */
	ret = rw_trace_snap_take(src.map, src.shm_size, &sn);
	if (ret) {
		ret = fail(EX_FAIL, ret, "process %d: snapshot: %s",
			   (int)src.pid, err_desc(ret));
		goto out;
	}
	if (src.nfuncs) {
		if (src.nfuncs > RW_TRACE_MAX_FUNCS) {
			ret = fail(EX_PROTO, -EPROTO,
				   "process %d: %llu functions", (int)src.pid,
				   (unsigned long long)src.nfuncs);
			goto out;
		}
		if (funcs_fetch(&c, src.nfuncs, &src.funcs)) {
			msg("snapshot: functions are named by their id");
			src.funcs = funcs_by_id(src.nfuncs);
		}
		src.syms = symcache_new(&c);
	}
	ret = snap_write(&src, &sn, &o, path);
out:
	rw_trace_snap_free(&sn);
	symcache_free(src.syms);
	snap_unmap(&src);
	free(src.funcs);
	free(src.meta);
	if (src.memfd >= 0)
		close(src.memfd);
	conn_close(&c);
	return ret;
}

/* --- rewire trace --snapshot ----------------------------------------------- */

enum {
	TOPT_SNAPSHOT = 10,
	TOPT_RING,
	TOPT_OUTPUT,
	TOPT_FORMAT,
	TOPT_CLOCK,
	TOPT_LAST,
	TOPT_SIGNAL,
	TOPT_FINAL,
	TOPT_DURATION,
	TOPT_GRAPH,
	TOPT_FILTER,
	TOPT_FUNCTION = OPT_FIRST_REPEAT,
};
static const struct opt trace_snap_opts[] = {
	{ "snapshot", 0, false, TOPT_SNAPSHOT },
	{ "ring-size", 0, true, TOPT_RING },
	{ "output", 'o', true, TOPT_OUTPUT },
	{ "format", 0, true, TOPT_FORMAT },
	{ "clock", 0, true, TOPT_CLOCK },
	{ "last", 0, true, TOPT_LAST },
	{ "on-signal", 0, true, TOPT_SIGNAL },
	{ "final", 0, false, TOPT_FINAL },
	{ "duration", 'd', true, TOPT_DURATION },
	{ "graph", 'g', false, TOPT_GRAPH },
	{ "filter", 0, true, TOPT_FILTER },
	{ "function", 'f', true, TOPT_FUNCTION },
	{ NULL, 0, false, 0 },
};

bool trace_wants_snapshot(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return false;
		if (!strcmp(argv[i], "--snapshot"))
			return true;
	}
	return false;
}

static volatile sig_atomic_t snap_requests;

static void on_snap_signal(int sig)
{
	(void)sig;
	snap_requests++;
}

/* One snapshot of the session (signal or final). */
static int snap_now(struct snap_src *src, const struct snap_opts *o,
		    const char *path)
{
	struct rw_trace_snap sn;
	int ret = rw_trace_snap_take(src->map, src->shm_size, &sn);

	if (ret)
		return fail(EX_FAIL, ret, "process %d: snapshot: %s",
			    (int)src->pid, err_desc(ret));
	ret = snap_write(src, &sn, o, path);
	rw_trace_snap_free(&sn);
	return ret;
}

int cmd_trace_snapshot(int argc, char **argv)
{
	struct optv v;
	struct conn c;
	struct rw_wire_msg m = { .fd = -1 };
	struct snap_src src = { .memfd = -1 };
	struct snap_opts o;
	struct sigaction sa;
	sigset_t block, wait_mask, old_mask;
	uint64_t ring = 0, shm_size = 0, deadline = 0, dropped = 0;
	double duration = 0;
	const char *path;
	unsigned written = 0;
	char signame[32];
	bool lost = false;
	int sig = SIGUSR1, ret, sret;

	ret = opts_parse(argc, argv, trace_snap_opts, &v, false);
	if (ret)
		return ret < 0 ? EX_OK : ret;
	if (v.npos < 1 || (v.npos < 2 && !v.nrep[TOPT_FUNCTION]))
		return usage_error(
			v.npos ? "missing TRACEPOINT or --function"
			       : "expected PID [TRACEPOINT...] [--function "
				 "GLOB...] --snapshot");
	if (!parse_pid(v.pos[0], &src.pid))
		return usage_error("'%s' is not a process id", v.pos[0]);
	for (int i = 1; i < v.npos; i++)
		if (!*v.pos[i])
			return usage_error("empty tracepoint name");
	for (int i = 0; i < v.nrep[TOPT_FUNCTION]; i++)
		if (!*v.rep[TOPT_FUNCTION][i] ||
		    !strcmp(v.rep[TOPT_FUNCTION][i], "!"))
			return usage_error("empty function pattern");
	if (v.set[TOPT_GRAPH] && !v.nrep[TOPT_FUNCTION])
		return usage_error("--graph needs --function");
	if (v.set[TOPT_FILTER]) {
		ret = trace_filter_precheck(v.arg[TOPT_FILTER], v.npos > 1,
					    v.nrep[TOPT_FUNCTION] > 0);
		if (ret)
			return ret;
	}
	ret = out_opts(&v, TOPT_FORMAT, TOPT_CLOCK, TOPT_LAST, &o);
	if (ret)
		return ret;
	if (v.set[TOPT_RING] && (!parse_size(v.arg[TOPT_RING], &ring) || !ring))
		return usage_error("--ring-size: '%s' is not a size in bytes",
				   v.arg[TOPT_RING]);
	if (v.set[TOPT_SIGNAL] && !parse_signal(v.arg[TOPT_SIGNAL], &sig))
		return usage_error("--on-signal: '%s' is not a signal rewire "
				   "can take for snapshots (USR1, USR2, HUP, "
				   "QUIT, ALRM, WINCH, URG, RTMIN+N)",
				   v.arg[TOPT_SIGNAL]);
	if (v.set[TOPT_DURATION] &&
	    (!parse_seconds(v.arg[TOPT_DURATION], &duration) || duration <= 0))
		return usage_error(
			"--duration: '%s' is not a number of seconds",
			v.arg[TOPT_DURATION]);
	path = v.set[TOPT_OUTPUT] ? v.arg[TOPT_OUTPUT] : NULL;
	if (path && !strcmp(path, "-"))
		path = NULL;
	if (o.format == FMT_CTF && !path)
		return usage_error("--format ctf needs -o DIRECTORY");

	/* The signals are taken in ppoll() only (below): block them now, so
	 * that one sent while a snapshot is written waits for the next
	 * ppoll() instead of being lost or interrupting the writes. */
	g_interrupted = 0;
	sig_catch();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_snap_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, sig);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old_mask);
	wait_mask = old_mask;
	sigdelset(&wait_mask, sig);
	sigdelset(&wait_mask, SIGINT);
	sigdelset(&wait_mask, SIGTERM);

	ret = conn_open(src.pid, &c);
	if (ret)
		goto restore;
	conn_begin(&c, RW_MSG_TRACE_START);
	for (int i = 1; i < v.npos; i++)
		rw_wire_str(&c.buf, RW_TAG_NAME, v.pos[i]);
	for (int i = 0; i < v.nrep[TOPT_FUNCTION]; i++)
		rw_wire_str(&c.buf, RW_TAG_PATTERN, v.rep[TOPT_FUNCTION][i]);
	if (v.set[TOPT_GRAPH])
		rw_wire_u64(&c.buf, RW_TAG_GRAPH, 1);
	if (ring)
		rw_wire_u64(&c.buf, RW_TAG_RING_SIZE, ring);
	if (v.set[TOPT_FILTER])
		rw_wire_str(&c.buf, RW_TAG_FILTER, v.arg[TOPT_FILTER]);
	rw_wire_u64(&c.buf, RW_TAG_OVERWRITE, 1);
	ret = conn_request(&c, &m, "trace");
	if (ret && ret != EX_INTR && v.set[TOPT_FILTER] && c.errcol)
		trace_filter_show(v.arg[TOPT_FILTER], c.errcol);
	if (ret)
		goto out;
	src.memfd = m.fd;
	m.fd = -1;
	src.owner = getpid();
	src.graph = v.set[TOPT_GRAPH];
	rw_wire_find_u64(m.payload, m.len, RW_TAG_SHM_SIZE, &shm_size);
	rw_wire_find_u64(m.payload, m.len, RW_TAG_NFUNCS, &src.nfuncs);
	src.shm_size = (size_t)shm_size;
	src.nmeta = trace_read_meta(&m, &src.meta);
	if (v.set[TOPT_FILTER] && src.nmeta) {
		ret = trace_filter_states(&m, src.pid, c.libversion);
		if (ret) {
			rw_wire_msg_free(&m);
			goto stop;
		}
	}
	rw_wire_msg_free(&m);
	ret = snap_map(&src);
	if (ret)
		goto stop;
	if (v.nrep[TOPT_FUNCTION] && !src.nfuncs) {
		ret = fail(EX_PROTO, -EPROTONOSUPPORT,
			   "process %d: its librewire (%s) cannot trace "
			   "functions",
			   (int)src.pid, c.libversion);
		goto stop;
	}
	if (src.nfuncs) {
		ret = funcs_fetch(&c, src.nfuncs, &src.funcs);
		if (ret)
			goto stop;
		src.syms = symcache_new(&c);
	}
	if (sig >= SIGRTMIN)
		snprintf(signame, sizeof(signame), "RTMIN+%d", sig - SIGRTMIN);
	else
		snprintf(signame, sizeof(signame), "%s", sigabbrev_np(sig));
	if (!g.quiet)
		msg("flight recorder: process %d, session %llu: %zu "
		    "tracepoint%s, %llu function%s, rings overwritten; "
		    "`kill -%s %d` or `rewire snapshot %d%s` writes the last "
		    "events; Ctrl-C stops%s",
		    (int)src.pid, (unsigned long long)src.session, src.nmeta,
		    src.nmeta == 1 ? "" : "s", (unsigned long long)src.nfuncs,
		    src.nfuncs == 1 ? "" : "s", signame, (int)getpid(),
		    (int)src.pid, path ? " -o FILE" : "",
		    v.set[TOPT_FINAL] ? " (and writes a last snapshot)" : "");
	if (duration > 0)
		deadline = now_ms() + (uint64_t)(duration * 1000);

	for (;;) {
		struct pollfd pfd = { .fd = c.fd, .events = POLLIN };
		struct timespec ts, *tp = NULL;
		int pr;

		while (snap_requests > 0) {
			char *p = NULL;

			snap_requests--;
			written++;
			if (path)
				p = xasprintf("%s.%u", path, written);
			ret = snap_now(&src, &o, p);
			free(p);
			if (ret)
				goto stop;
		}
		if (g_interrupted)
			break;
		if (deadline) {
			uint64_t now = now_ms();

			if (now >= deadline)
				break;
			ts.tv_sec = (time_t)((deadline - now) / 1000);
			ts.tv_nsec = (long)((deadline - now) % 1000) * 1000000;
			tp = &ts;
		}
		pr = ppoll(&pfd, 1, tp, &wait_mask);
		if (pr > 0) {
			/* Nothing is sent to us during a session: the
			 * process closed the connection. */
			lost = true;
			break;
		}
	}
	if (v.set[TOPT_FINAL]) {
		int fret = snap_now(&src, &o, path);

		written += !fret;
		if (!ret)
			ret = fret;
	}
	if (lost) {
		sret = conn_lost(&c, -ECONNRESET);
		if (!ret)
			ret = sret;
		goto summary;
	}

stop:
	g_interrupted = 0;
	conn_begin(&c, RW_MSG_TRACE_STOP);
	sret = conn_call(&c, &m, 10000);
	if (!sret) {
		rw_wire_find_u64(m.payload, m.len, RW_TAG_DROPPED, &dropped);
		rw_wire_msg_free(&m);
	} else if (sret == EX_FAIL) {
		sret = conn_fail(&c, "trace stop");
	}
	if (!ret)
		ret = sret;
summary:
	if (!g.quiet && src.map)
		msg("flight recorder: %u snapshot%s written; %llu event%s not "
		    "recorded (a thread found no free slot, or fired inside "
		    "the probe)",
		    written, written == 1 ? "" : "s",
		    (unsigned long long)dropped, dropped == 1 ? "" : "s");
out:
	symcache_free(src.syms);
	snap_unmap(&src);
	free(src.funcs);
	free(src.meta);
	if (src.memfd >= 0)
		close(src.memfd);
	conn_close(&c);
restore:
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	return ret;
}
