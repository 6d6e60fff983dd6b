/* SPDX-License-Identifier: MIT */
/*
 * The reading side of `rewire trace` (trace_reader.h). The consumer steps
 * C1-C4 of src/ctl/ring.h, for each slot in turn (drain_slot()):
 *
 *   1. Load the slot's tid (acquire, P1); 0: never claimed, skip.
 *   2. C1: load head (acquire). Check head - tail against the ring size
 *      (tail is our own copy, never read back from the shared memory).
 *   3. C2: for each record, read its 8-byte prefix, check that the length
 *      stays inside the available bytes and the ring, copy the record into
 *      buf and decode the copy only. Padding records are skipped.
 *   4. C4: store the new tail (release), once per slot and every quarter
 *      ring, so that a busy producer gets its space back early.
 *   5. C3: load the slot's drop counter (relaxed) and print its growth.
 *
 * Anything that does not check out makes the reader print a "corrupt" line
 * and move its tail to the head it loaded: what is skipped is what was
 * available, and the next drain starts clean.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* F_GET_SEALS */
#endif
#include "trace_reader.h"
#include "trace_out.h"
#include "utf8.h"

#include "ctl/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Static_assert(RW_TRACE_MAX_FIELDS == RW_TRACE_MAX_ARGS,
	       "as many fields as a tracepoint has arguments");

/* A graph entry held back until its thread's next record (a leaf call is
 * printed on one line with its return). */
struct held {
	bool valid;
	uint32_t func, depth;
	uint64_t ts, caller;
};

struct rslot {
	uint64_t tail;	  /* ours; stored into the slot in C4 */
	uint64_t dropped; /* the slot's counter at the last drain */
	struct held held;
};

/* An entry is held back at most this long. */
#define HOLD_NS 100000000ull

/* Output being built (see Printing). */
struct obuf {
	FILE *f;
	size_t n;
	char b[64 * 1024];
};

struct rw_trace_reader {
	unsigned char *map;
	size_t size;
	struct rw_trace_shm *shm;
	struct rw_trace_slot *slots;
	const unsigned char *data;
	uint32_t nslots;
	uint64_t ring_size, mask;
	/* Descriptions by id; known[id] says whether the id was described. */
	struct rw_trace_meta *meta;
	bool *known;
	uint32_t nids;
	struct rslot *rs;
	uint64_t noslot, nested; /* header counters at the last drain */
	uint64_t dropped, corrupt;
	/* Function records (rw_trace_reader_set_funcs). */
	const struct rw_trace_func_meta *funcs;
	size_t nfuncs;
	bool graph;
	rw_trace_resolve_fn resolve;
	void *resolve_arg;
	unsigned char buf[RW_TRACE_MAX_RECORD] __attribute__((aligned(8)));
	struct obuf out;
};

/* --- Opening --------------------------------------------------------------- */

/* Names may come from a buggy process: nothing that breaks a line or a
 * JSON string, and always terminated. */
static void clean_name(char *s, size_t size)
{
	s[size - 1] = '\0';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c == 0x7f || c == '"' || c == '\\')
			*s = '?';
	}
}

static bool kind_ok(int k)
{
	return k >= RW_TRACE_KIND_SIGNED && k <= RW_TRACE_KIND_POINTER;
}

static int meta_load(struct rw_trace_reader *r,
		     const struct rw_trace_meta *meta, size_t nmeta)
{
	uint32_t nids = 0;

	for (size_t i = 0; i < nmeta; i++) {
		if (meta[i].id >= RW_TRACE_MAX_TRACEPOINTS ||
		    meta[i].nargs > RW_TRACE_MAX_FIELDS)
			return -EINVAL;
		for (unsigned k = 0; k < meta[i].nargs; k++)
			if (!kind_ok(meta[i].fields[k].kind))
				return -EINVAL;
		if (meta[i].id + 1 > nids)
			nids = meta[i].id + 1;
	}
	r->nids = nids;
	r->meta = calloc(nids ? nids : 1, sizeof(*r->meta));
	r->known = calloc(nids ? nids : 1, sizeof(*r->known));
	if (!r->meta || !r->known)
		return -ENOMEM;
	for (size_t i = 0; i < nmeta; i++) {
		struct rw_trace_meta *m = &r->meta[meta[i].id];

		if (r->known[meta[i].id])
			return -EINVAL;
		r->known[meta[i].id] = true;
		*m = meta[i];
		clean_name(m->name, sizeof(m->name));
		for (unsigned k = 0; k < m->nargs; k++) {
			clean_name(m->fields[k].name,
				   sizeof(m->fields[k].name));
			m->fields[k].ctype[sizeof(m->fields[k].ctype) - 1] =
				'\0';
		}
	}
	return 0;
}

/* The header, read once: the geometry is ours from now on. */
static int header_check(struct rw_trace_reader *r, size_t shm_size)
{
	struct rw_trace_shm h;
	uint64_t total;

	/* The constant part only: the counters change under us. */
	memset(&h, 0, sizeof(h));
	memcpy(&h, r->map, offsetof(struct rw_trace_shm, dropped_noslot));
	if (memcmp(h.magic, RW_TRACE_MAGIC, sizeof(h.magic)) != 0 ||
	    h.version != RW_TRACE_VERSION)
		return -EPROTO;
	if (h.hdr_size != RW_TRACE_SHM_HDR ||
	    h.slot_size != sizeof(struct rw_trace_slot) || h.nslots == 0 ||
	    h.nslots > RW_TRACE_SLOTS_MAX || h.ring_size < RW_TRACE_RING_MIN ||
	    h.ring_size > RW_TRACE_RING_MAX ||
	    (h.ring_size & (h.ring_size - 1)) != 0 ||
	    h.data_offset != rw_trace_data_offset(h.nslots) ||
	    h.clock != CLOCK_REALTIME || h.max_string != RW_TRACE_MAX_STRING)
		return -EBADMSG;
	total = rw_trace_total_size(h.nslots, h.ring_size);
	if (h.total_size != total || total != shm_size)
		return -EBADMSG;
	r->nslots = h.nslots;
	r->ring_size = h.ring_size;
	r->mask = h.ring_size - 1;
	r->shm = (struct rw_trace_shm *)r->map;
	r->slots = (struct rw_trace_slot *)(r->map + RW_TRACE_SHM_HDR);
	r->data = r->map + h.data_offset;
	return 0;
}

int rw_trace_reader_open(int memfd, size_t shm_size,
			 const struct rw_trace_meta *meta, size_t nmeta,
			 struct rw_trace_reader **out)
{
	struct rw_trace_reader *r;
	struct stat st;
	int seals, err;
	void *p;

	if (!out || memfd < 0 || (nmeta && !meta) ||
	    shm_size < RW_TRACE_SHM_HDR || shm_size > SIZE_MAX / 2)
		return -EINVAL;
	*out = NULL;
	if (fstat(memfd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADF;
	/* Mapping past the end of the file would fault; so would a file
	 * that the process shrinks later, hence the seal. */
	seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return -EPERM;
	if (st.st_size < 0 || (uint64_t)st.st_size < shm_size)
		return -EBADMSG;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	err = meta_load(r, meta, nmeta);
	if (err)
		goto fail;
	p = mmap(NULL, shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (p == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	r->map = p;
	r->size = shm_size;
	err = header_check(r, shm_size);
	if (err)
		goto fail;
	r->rs = calloc(r->nslots, sizeof(*r->rs));
	if (!r->rs) {
		err = -ENOMEM;
		goto fail;
	}
	/* Start where the slots are now (0 for a new session); a wrong tail
	 * shows up as corrupt at the first drain. */
	for (uint32_t i = 0; i < r->nslots; i++)
		r->rs[i].tail = atomic_load_explicit(&r->slots[i].tail,
						     memory_order_relaxed);
	*out = r;
	return 0;
fail:
	rw_trace_reader_close(r);
	return err;
}

void rw_trace_reader_close(struct rw_trace_reader *r)
{
	if (!r)
		return;
	if (r->map)
		munmap(r->map, r->size);
	free(r->rs);
	free(r->meta);
	free(r->known);
	free(r);
}

uint64_t rw_trace_reader_dropped(const struct rw_trace_reader *r)
{
	return r ? r->dropped : 0;
}

uint64_t rw_trace_reader_corrupt(const struct rw_trace_reader *r)
{
	return r ? r->corrupt : 0;
}

/* --- Decoding -------------------------------------------------------------- */

struct arg {
	uint64_t bits;
	const unsigned char *s; /* strings: into r->buf */
	uint32_t slen, sflags;
};

/* Decodes the copy of a record (@len bytes in r->buf); NULL if it is
 * sound, else what is wrong. */
static const char *decode(const struct rw_trace_reader *r, uint64_t len,
			  const struct rw_trace_meta **mp, uint64_t *ts,
			  struct arg *a)
{
	const unsigned char *b = r->buf;
	const struct rw_trace_meta *m;
	struct rw_trace_rec rec;
	uint64_t off = RW_TRACE_REC_HDR, soff;

	memcpy(&rec, b, sizeof(rec));
	if (rec.id >= r->nids || !r->known[rec.id])
		return "unknown tracepoint id";
	m = &r->meta[rec.id];
	if (rec.nargs != m->nargs)
		return "wrong argument count";
	/* The 8-byte slots, then the strings' bytes in argument order. */
	soff = off + 8 * (uint64_t)m->nargs;
	if (soff > len)
		return "record too short";
	for (unsigned i = 0; i < m->nargs; i++, off += 8) {
		a[i].s = NULL;
		a[i].slen = a[i].sflags = 0;
		memcpy(&a[i].bits, b + off, 8);
		if (m->fields[i].kind == RW_TRACE_KIND_STRING) {
			struct rw_trace_str sh;
			uint64_t n;

			memcpy(&sh, b + off, sizeof(sh));
			n = ((uint64_t)sh.len + 7) & ~(uint64_t)7;
			if (sh.len > RW_TRACE_MAX_STRING ||
			    (sh.flags &
			     ~(RW_TRACE_STR_TRUNCATED | RW_TRACE_STR_NULL)) ||
			    ((sh.flags & RW_TRACE_STR_NULL) && sh.len) ||
			    n > len - soff)
				return "bad string";
			a[i].s = b + soff;
			a[i].slen = sh.len;
			a[i].sflags = sh.flags;
			soff += n;
		}
	}
	if (soff != len)
		return "record length";
	*mp = m;
	*ts = rec.ts;
	return NULL;
}

/* --- Printing ------------------------------------------------------------- */

/*
 * Lines are built in the reader's buffer and written with one fwrite() per
 * 48 KiB or so and at the end of a drain: the reader must format events
 * faster than threads record them, and stdio's printf machinery per field
 * was the bottleneck (about 4 us per event).
 */
static void ob_flush(struct obuf *o)
{
	if (o->n)
		fwrite(o->b, 1, o->n, o->f);
	o->n = 0;
}

static void ob_mem(struct obuf *o, const void *p, size_t n)
{
	if (n > sizeof(o->b) - o->n) {
		ob_flush(o);
		if (n > sizeof(o->b)) {
			fwrite(p, 1, n, o->f);
			return;
		}
	}
	memcpy(o->b + o->n, p, n);
	o->n += n;
}

static void ob_c(struct obuf *o, char c)
{
	if (o->n == sizeof(o->b))
		ob_flush(o);
	o->b[o->n++] = c;
}

static void ob_s(struct obuf *o, const char *s)
{
	ob_mem(o, s, strlen(s));
}

static void ob_u64(struct obuf *o, uint64_t v)
{
	char t[20];
	int i = 20;

	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	ob_mem(o, t + i, (size_t)(20 - i));
}

static void ob_i64(struct obuf *o, int64_t v)
{
	if (v < 0) {
		ob_c(o, '-');
		ob_u64(o, 0 - (uint64_t)v);
	} else {
		ob_u64(o, (uint64_t)v);
	}
}

static const char hexdig[] = "0123456789abcdef";

/* 0x and the lowercase hex digits of @v, as glibc's %p prints non-NULL. */
static void ob_hex(struct obuf *o, uint64_t v)
{
	char t[18];
	int i = 18;

	do {
		t[--i] = hexdig[v & 15];
		v >>= 4;
	} while (v);
	t[--i] = 'x';
	t[--i] = '0';
	ob_mem(o, t + i, (size_t)(18 - i));
}

static void ob_fmt(struct obuf *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void ob_fmt(struct obuf *o, const char *fmt, ...)
{
	char t[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t, sizeof(t), fmt, ap);
	va_end(ap);
	if (n > 0)
		ob_mem(o, t, (size_t)n < sizeof(t) ? (size_t)n : sizeof(t) - 1);
}

/* "SEC.NNNNNNNNN" */
static void ob_ts(struct obuf *o, uint64_t ts)
{
	char t[9];
	uint64_t ns = ts % 1000000000u;

	ob_u64(o, ts / 1000000000u);
	ob_c(o, '.');
	for (int i = 8; i >= 0; i--) {
		t[i] = (char)('0' + ns % 10);
		ns /= 10;
	}
	ob_mem(o, t, 9);
}

/* As rw_tracepoint_format() prints a string. */
static void put_text_string(struct obuf *o, const unsigned char *s, size_t n)
{
	ob_c(o, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			ob_c(o, '\\');
			ob_c(o, (char)c);
		} else if (c == '\n') {
			ob_mem(o, "\\n", 2);
		} else if (c < 0x20 || c == 0x7f) {
			char t[4] = { '\\', 'x', hexdig[c >> 4],
				      hexdig[c & 15] };

			ob_mem(o, t, 4);
		} else {
			ob_c(o, (char)c);
		}
	}
	ob_c(o, '"');
}

static void put_json_string(struct obuf *o, const unsigned char *s, size_t n)
{
	size_t i = 0;

	ob_c(o, '"');
	while (i < n) {
		unsigned char c = s[i];
		size_t len;

		if (c == '"' || c == '\\') {
			ob_c(o, '\\');
			ob_c(o, (char)c);
		} else if (c == '\n') {
			ob_mem(o, "\\n", 2);
		} else if (c == '\t') {
			ob_mem(o, "\\t", 2);
		} else if (c == '\r') {
			ob_mem(o, "\\r", 2);
		} else if (c < 0x20 || c == 0x7f) {
			char t[6] = { '\\',	      'u',	     '0', '0',
				      hexdig[c >> 4], hexdig[c & 15] };

			ob_mem(o, t, 6);
		} else if (c < 0x80) {
			ob_c(o, (char)c);
		} else if ((len = utf8_len(s + i, n - i)) != 0) {
			ob_mem(o, s + i, len);
			i += len;
			continue;
		} else {
			ob_mem(o, "\\ufffd", 6);
		}
		i++;
	}
	ob_c(o, '"');
}

static void print_event(struct obuf *o, bool json, uint64_t ts, int32_t tid,
			const struct rw_trace_meta *m, const struct arg *a)
{
	bool trunc = false;

	if (!json) {
		ob_ts(o, ts);
		ob_c(o, ' ');
		ob_i64(o, tid);
		ob_c(o, ' ');
		ob_s(o, m->name);
		ob_c(o, ':');
	} else {
		ob_s(o, "{\"ts\":");
		ob_ts(o, ts);
		ob_s(o, ",\"tid\":");
		ob_i64(o, tid);
		ob_s(o, ",\"tp\":\"");
		ob_s(o, m->name);
		ob_s(o, "\",\"args\":{");
	}
	for (unsigned i = 0; i < m->nargs; i++) {
		uint64_t v = a[i].bits;
		double d;

		if (!json) {
			ob_c(o, ' ');
			ob_s(o, m->fields[i].name);
			ob_c(o, '=');
		} else {
			if (i)
				ob_c(o, ',');
			ob_c(o, '"');
			ob_s(o, m->fields[i].name);
			ob_mem(o, "\":", 2);
		}
		switch (m->fields[i].kind) {
		case RW_TRACE_KIND_SIGNED:
			ob_i64(o, (int64_t)v);
			break;
		case RW_TRACE_KIND_UNSIGNED:
			ob_u64(o, v);
			break;
		case RW_TRACE_KIND_BOOL:
			ob_s(o, v ? "true" : "false");
			break;
		case RW_TRACE_KIND_FLOAT:
			memcpy(&d, &v, sizeof(d));
			if (!json)
				ob_fmt(o, "%g", d);
			else if (isfinite(d))
				ob_fmt(o, "%.17g", d);
			else
				ob_s(o, "null");
			break;
		case RW_TRACE_KIND_STRING:
			if (a[i].sflags & RW_TRACE_STR_NULL) {
				ob_s(o, json ? "null" : "(null)");
				break;
			}
			if (json) {
				put_json_string(o, a[i].s, a[i].slen);
			} else {
				put_text_string(o, a[i].s, a[i].slen);
				if (a[i].sflags & RW_TRACE_STR_TRUNCATED)
					ob_mem(o, "...", 3);
			}
			trunc |= (a[i].sflags & RW_TRACE_STR_TRUNCATED) != 0;
			break;
		default:
			if (json) {
				ob_c(o, '"');
				ob_hex(o, v);
				ob_c(o, '"');
			} else if (v) {
				ob_hex(o, v);
			} else {
				ob_s(o, "(nil)"); /* as %p prints NULL */
			}
			break;
		}
	}
	if (!json) {
		ob_c(o, '\n');
		return;
	}
	ob_c(o, '}');
	if (trunc) {
		bool first = true;

		ob_s(o, ",\"truncated\":[");
		for (unsigned i = 0; i < m->nargs; i++) {
			if (m->fields[i].kind != RW_TRACE_KIND_STRING ||
			    !(a[i].sflags & RW_TRACE_STR_TRUNCATED))
				continue;
			if (!first)
				ob_c(o, ',');
			ob_c(o, '"');
			ob_s(o, m->fields[i].name);
			ob_c(o, '"');
			first = false;
		}
		ob_c(o, ']');
	}
	ob_mem(o, "}\n", 2);
}

static void print_dropped(struct obuf *o, bool json, uint64_t n, int32_t tid,
			  const char *reason)
{
	if (json && reason)
		ob_fmt(o, "{\"dropped\":%" PRIu64 ",\"reason\":\"%s\"}\n", n,
		       reason);
	else if (json)
		ob_fmt(o, "{\"dropped\":%" PRIu64 ",\"tid\":%d}\n", n,
		       (int)tid);
	else if (reason)
		ob_fmt(o, "# rewire: %" PRIu64 " events dropped: %s\n", n,
		       !strcmp(reason, "no_slot") ? "no free slot"
						  : "nested in the probe");
	else
		ob_fmt(o, "# rewire: %" PRIu64 " events dropped on thread %d\n",
		       n, (int)tid);
}

static void print_corrupt(struct obuf *o, bool json, int32_t tid,
			  const char *why, uint64_t skipped)
{
	if (json)
		ob_fmt(o,
		       "{\"corrupt\":\"%s\",\"tid\":%d,\"skipped\":%" PRIu64
		       "}\n",
		       why, (int)tid, skipped);
	else
		ob_fmt(o,
		       "# rewire: corrupt data on thread %d (%s), %" PRIu64
		       " bytes skipped\n",
		       (int)tid, why, skipped);
}

/* --- Function records ------------------------------------------------------ */

void rw_trace_reader_set_funcs(struct rw_trace_reader *r,
			       const struct rw_trace_func_meta *funcs, size_t n,
			       bool graph)
{
	if (!r)
		return;
	r->funcs = funcs;
	r->nfuncs = n;
	r->graph = graph;
}

void rw_trace_reader_set_resolver(struct rw_trace_reader *r,
				  rw_trace_resolve_fn fn, void *arg)
{
	if (!r)
		return;
	r->resolve = fn;
	r->resolve_arg = arg;
}

/* Checks the copy of a function record (@len bytes in r->buf). */
static const char *decode_func(const struct rw_trace_reader *r, uint64_t len,
			       struct rw_trace_func_rec *rec)
{
	memset(rec, 0, sizeof(*rec));
	memcpy(rec, r->buf, len < sizeof(*rec) ? (size_t)len : sizeof(*rec));
	if (len != (rec->hdr.id == RW_TRACE_FUNC_ENTRY
			    ? RW_TRACE_FUNC_ENTRY_LEN
			    : RW_TRACE_FUNC_RETURN_LEN))
		return "record length";
	if (rec->hdr.nargs || rec->func >= r->nfuncs)
		return "unknown function id";
	return NULL;
}

/* "name+0xOFF" for @addr: inside a function of the table, else the
 * resolver's answer, else the address. */
static void caller_name(struct rw_trace_reader *r, uint64_t addr, char *out,
			size_t size)
{
	size_t lo = 0, hi = r->nfuncs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->funcs[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && addr - r->funcs[lo - 1].addr < r->funcs[lo - 1].size) {
		snprintf(out, size, "%s+%#" PRIx64, r->funcs[lo - 1].name,
			 addr - r->funcs[lo - 1].addr);
		return;
	}
	if (r->resolve && r->resolve(r->resolve_arg, addr, out, size) && *out)
		return;
	snprintf(out, size, "%#" PRIx64, addr);
}

/* Names come from the process: escaped in JSON, control bytes replaced in
 * text. */
static void put_name(struct obuf *o, bool json, const char *s)
{
	if (json) {
		put_json_string(o, (const unsigned char *)s, strlen(s));
		return;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		ob_c(o, c < 0x20 || c == 0x7f ? '?' : (char)c);
	}
}

static void ob_spaces(struct obuf *o, unsigned n)
{
	while (n--)
		ob_c(o, ' ');
}

/* The duration column of the graph: "%10.3f us", or blanks. */
#define DUR_WIDTH 13
static void put_duration(struct obuf *o, uint64_t ns, bool have)
{
	if (!have) {
		ob_spaces(o, DUR_WIDTH);
		return;
	}
	ob_fmt(o, "%10.3f us", (double)ns / 1000.0);
}

/* One graph line: "TS TID DURATION |  " + indentation + @what. */
static void graph_line(struct obuf *o, uint64_t ts, int32_t tid, uint32_t depth,
		       bool have_ns, uint64_t ns,
		       const struct rw_trace_func_meta *f, const char *what)
{
	ob_ts(o, ts);
	ob_c(o, ' ');
	ob_i64(o, tid);
	ob_c(o, ' ');
	put_duration(o, ns, have_ns);
	ob_s(o, " |  ");
	ob_spaces(o, 2 * (depth < 64 ? depth : 64));
	if (!strcmp(what, "}")) {
		ob_s(o, "} /* ");
		put_name(o, false, f->display);
		ob_s(o, " */\n");
		return;
	}
	put_name(o, false, f->display);
	ob_s(o, what);
	ob_c(o, '\n');
}

static void print_func_json(struct rw_trace_reader *r, uint64_t ts, int32_t tid,
			    const struct rw_trace_func_rec *rec, bool entry)
{
	struct obuf *o = &r->out;
	char caller[600];

	ob_s(o, "{\"ts\":");
	ob_ts(o, ts);
	ob_s(o, ",\"tid\":");
	ob_i64(o, tid);
	ob_s(o, entry ? ",\"event\":\"entry\",\"function\":"
		      : ",\"event\":\"return\",\"function\":");
	put_name(o, true, r->funcs[rec->func].display);
	ob_s(o, ",\"depth\":");
	ob_u64(o, rec->depth);
	ob_s(o, ",\"caller\":");
	caller_name(r, rec->caller, caller, sizeof(caller));
	put_name(o, true, caller);
	if (!entry) {
		ob_s(o, ",\"duration_ns\":");
		ob_u64(o, rec->ns);
	}
	ob_mem(o, "}\n", 2);
}

/* Prints the held entry of @rs as an open call. */
static void flush_held(struct rw_trace_reader *r, struct rslot *rs, int32_t tid)
{
	struct held *h = &rs->held;

	if (!h->valid)
		return;
	graph_line(&r->out, h->ts, tid, h->depth, false, 0, &r->funcs[h->func],
		   " {");
	h->valid = false;
}

static void print_func(struct rw_trace_reader *r, struct rslot *rs, int32_t tid,
		       const struct rw_trace_func_rec *rec, bool json)
{
	const struct rw_trace_func_meta *f = &r->funcs[rec->func];
	bool entry = rec->hdr.id == RW_TRACE_FUNC_ENTRY;
	struct held *h = &rs->held;
	char caller[600];

	if (json) {
		print_func_json(r, rec->hdr.ts, tid, rec, entry);
		return;
	}
	if (!r->graph) {
		ob_ts(&r->out, rec->hdr.ts);
		ob_c(&r->out, ' ');
		ob_i64(&r->out, tid);
		ob_c(&r->out, ' ');
		put_name(&r->out, false, f->display);
		ob_s(&r->out, " <- ");
		caller_name(r, rec->caller, caller, sizeof(caller));
		put_name(&r->out, false, caller);
		ob_c(&r->out, '\n');
		return;
	}
	if (entry) {
		flush_held(r, rs, tid);
		*h = (struct held){ true, rec->func, rec->depth, rec->hdr.ts,
				    rec->caller };
		return;
	}
	if (h->valid && h->func == rec->func && h->depth == rec->depth) {
		/* A leaf: its entry and its return on one line. */
		graph_line(&r->out, h->ts, tid, h->depth, true, rec->ns, f,
			   ";");
		h->valid = false;
		return;
	}
	flush_held(r, rs, tid);
	graph_line(&r->out, rec->hdr.ts, tid, rec->depth, true, rec->ns, f,
		   "}");
}

void rw_trace_reader_flush(struct rw_trace_reader *r, FILE *out, bool json)
{
	if (!r || !out || json)
		return;
	r->out.f = out;
	r->out.n = 0;
	for (uint32_t i = 0; i < r->nslots; i++)
		if (r->rs[i].held.valid)
			flush_held(r, &r->rs[i],
				   atomic_load_explicit(&r->slots[i].tid,
							memory_order_acquire));
	ob_flush(&r->out);
}

/* --- Draining ------------------------------------------------------------- */

/* Steps 2 to 5 for slot @i owned by @tid; at most @max events. */
static long drain_slot(struct rw_trace_reader *r, uint32_t i, int32_t tid,
		       bool json, long max)
{
	struct rw_trace_slot *s = &r->slots[i];
	struct rslot *rs = &r->rs[i];
	const unsigned char *ring = r->data + (uint64_t)i * r->ring_size;
	uint64_t head, tail = rs->tail, stored = tail, d;
	const char *why = NULL;
	long n = 0;

	/* Step 2: C1. */
	head = atomic_load_explicit(&s->head, memory_order_acquire);
	if (head - tail > r->ring_size || (head - tail) % 8)
		why = "head out of range";
	/* Step 3: C2. */
	while (!why && tail != head && n < max) {
		uint64_t pos = tail & r->mask, avail = head - tail, len;
		struct arg a[RW_TRACE_MAX_ARGS];
		const struct rw_trace_meta *m;
		struct rw_trace_rec pre;
		uint64_t ts;

		if (avail < RW_TRACE_PAD_HDR) {
			why = "partial record";
			break;
		}
		memcpy(&pre, ring + pos, RW_TRACE_PAD_HDR);
		len = pre.len;
		if (len < RW_TRACE_PAD_HDR || len % 8 || len > avail ||
		    len > r->ring_size - pos) {
			why = "record length";
			break;
		}
		if (pre.id == RW_TRACE_PAD) {
			tail += len;
			continue;
		}
		if (len < RW_TRACE_REC_HDR || len > RW_TRACE_MAX_RECORD) {
			why = "record length";
			break;
		}
		memcpy(r->buf, ring + pos, len);
		if (pre.id == RW_TRACE_FUNC_ENTRY ||
		    pre.id == RW_TRACE_FUNC_RETURN) {
			struct rw_trace_func_rec fr;

			why = decode_func(r, len, &fr);
			if (why)
				break;
			print_func(r, rs, tid, &fr, json);
		} else {
			why = decode(r, len, &m, &ts, a);
			if (why)
				break;
			if (rs->held.valid)
				flush_held(r, rs, tid);
			print_event(&r->out, json, ts, tid, m, a);
		}
		/* Room for the longest line (about 14 KiB, JSON). */
		if (r->out.n > sizeof(r->out.b) - 16 * 1024)
			ob_flush(&r->out);
		n++;
		tail += len;
		/* Step 4, early: give a quarter ring back at a time. */
		if (tail - stored >= r->ring_size / 4) {
			atomic_store_explicit(&s->tail, tail,
					      memory_order_release);
			stored = tail;
		}
	}
	if (why) {
		print_corrupt(&r->out, json, tid, why, head - tail);
		r->corrupt++;
		tail = head;
	}
	/* A held entry whose thread wrote nothing since: print it open. */
	if (rs->held.valid && tail == head) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		if ((uint64_t)now.tv_sec * 1000000000ull +
			    (uint64_t)now.tv_nsec - rs->held.ts >
		    HOLD_NS)
			flush_held(r, rs, tid);
	}
	/* Step 4: C4. Also when nothing was read but the shared tail is not
	 * ours (a buggy process wrote it): the producer would take its ring
	 * for full until we put it right. */
	rs->tail = tail;
	if (tail != stored ||
	    atomic_load_explicit(&s->tail, memory_order_relaxed) != tail)
		atomic_store_explicit(&s->tail, tail, memory_order_release);
	/* Step 5: C3. */
	d = atomic_load_explicit(&s->dropped, memory_order_relaxed);
	if (d > rs->dropped) {
		print_dropped(&r->out, json, d - rs->dropped, tid, NULL);
		r->dropped += d - rs->dropped;
	}
	rs->dropped = d;
	return n;
}

static void drain_counter(struct rw_trace_reader *r, const _Atomic uint64_t *c,
			  uint64_t *seen, bool json, const char *reason)
{
	uint64_t v = atomic_load_explicit(c, memory_order_relaxed);

	if (v > *seen) {
		print_dropped(&r->out, json, v - *seen, 0, reason);
		r->dropped += v - *seen;
	}
	*seen = v;
}

long rw_trace_reader_drain_max(struct rw_trace_reader *r, FILE *out, bool json,
			       long max)
{
	long n = 0;

	if (!r || !out || max <= 0)
		return 0;
	r->out.f = out;
	r->out.n = 0;
	for (uint32_t i = 0; i < r->nslots && n < max; i++) {
		/* Step 1. */
		int32_t tid = atomic_load_explicit(&r->slots[i].tid,
						   memory_order_acquire);

		if (tid != 0)
			n += drain_slot(r, i, tid, json, max - n);
	}
	drain_counter(r, &r->shm->dropped_noslot, &r->noslot, json, "no_slot");
	drain_counter(r, &r->shm->dropped_nested, &r->nested, json, "nested");
	ob_flush(&r->out);
	return n;
}

long rw_trace_reader_drain(struct rw_trace_reader *r, FILE *out, bool json)
{
	return rw_trace_reader_drain_max(r, out, json, LONG_MAX);
}
