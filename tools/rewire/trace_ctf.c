/* SPDX-License-Identifier: MIT */
/*
 * `rewire trace --format ctf -o DIR`: the session as a CTF 1.8 trace
 * (https://diamon.org/ctf/v1.8.3/) that babeltrace2 and Trace Compass open.
 *
 *	DIR/metadata		TSDL text (not packetized), written at
 *				begin() and rewritten at end() with the
 *				session's counts in its env
 *	DIR/thread-TID		one data stream per traced thread (per slot:
 *				a tid reused by a later thread in the same
 *				session gets thread-TID.SLOT), in packets of
 *				at most PACKET_MAX bytes
 *	DIR/unattributed	only when events were lost by threads that
 *				had no slot or fired inside the probe:
 *				packets without events that carry the count
 *
 * Everything is byte-aligned and in the machine's byte order (declared in
 * the metadata). A packet:
 *
 *	header	 magic 0xc1fc1fc1, the trace's uuid, stream_id 0
 *	context	 timestamp_begin, timestamp_end (the clock below),
 *		 content_size = packet_size (bits), packet_seq_num,
 *		 events_discarded (cumulative for the stream), tid
 *	events	 header: id (16 bits), timestamp (64 bits), then the fields
 *
 * The clock ("realtime" or "monotonic", the reader's output clock) counts
 * ns with offset 0: a timestamp is ev->ns itself, so `babeltrace2
 * --clock-seconds DIR` prints the same SEC.NNNNNNNNN as the text output.
 *
 * Event classes: one per tracepoint, named as the tracepoint, with one
 * field per argument (the tracepoint's names, made TSDL identifiers by
 * field_name()):
 *
 *	kind		field type
 *	signed		integer, 64 bits, signed
 *	unsigned	integer, 64 bits, unsigned
 *	bool		enum bool_t : 8-bit unsigned { false, true }
 *	float		floating_point, 64 bits (a double)
 *	string		string, followed by NAME_status, an enum str_status_t
 *			{ ok, truncated (cut at 256 bytes), null (a NULL
 *			pointer: the string is empty), empty ("") }
 *	pointer		integer, 64 bits, unsigned, base 16
 *
 * and "rewire:func_entry" { function, address, depth, caller,
 * caller_name } and "rewire:func_return" (the same and duration_ns, the ns
 * from entry to return as the probe measured them) for `--function`.
 *
 * Why "empty": babeltrace2 2.0.4 (Debian 12's) shows an empty string field
 * with the text that field object held in an earlier event (its
 * bt_field_string_clear() resets the length, not the text; babeltrace's
 * own later test test_string_clear covers the fix). No encoding of an
 * empty string avoids that reader's bug, so the status says it: a string
 * shown beside "empty" or "null" is stale.
 *
 * Drops. A RW_TRACE_NOTE_DROPPED note ends the thread's packet: the
 * stream's next packet carries the new cumulative events_discarded, which
 * babeltrace2 reports as "Tracer discarded N events between [end of the
 * previous packet] and [end of this packet]". The first packet of a stream
 * always carries 0 (babeltrace2 cannot count drops before it); at end() a
 * stream whose last packet does not carry its total gets an empty one.
 *
 * Order. A stream's timestamps must not go backwards (babeltrace2 refuses
 * the trace). The events of one thread come in ring order, which is their
 * time order; should the output clock ever step back between two of them,
 * the later one is written with the earlier one's time and counted in the
 * env (clamped).
 *
 * Packets are written whole with one write() when full, when older than
 * FLUSH_NS at a flush() and at end(): a trace being written is readable up
 * to its last whole packet.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "trace_out.h"

#include "ctl/ring.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PACKET_MAX (64u * 1024)
/* A flush() writes packets whose first event is older than this. */
#define FLUSH_NS 1000000000ull
/* Event ids of the function records (tracepoint ids are below). */
#define ID_ENTRY RW_TRACE_FUNC_ENTRY
#define ID_RETURN RW_TRACE_FUNC_RETURN

#define CTF_MAGIC 0xc1fc1fc1u
/* header: magic, uuid, stream_id; context: 6 x 64 bits and the tid. */
#define PKT_HDR (4u + 16u + 4u)
#define PKT_CTX (6u * 8u + 4u)
#define OFF_TS_BEGIN (PKT_HDR + 0)
#define OFF_TS_END (PKT_HDR + 8)
#define OFF_CONTENT (PKT_HDR + 16)
#define OFF_PKTSIZE (PKT_HDR + 24)
#define OFF_SEQ (PKT_HDR + 32)
#define OFF_DISCARDED (PKT_HDR + 40)
#define OFF_TID (PKT_HDR + 48)
#define PKT_START (PKT_HDR + PKT_CTX)

/* The slot of the unattributed stream. */
#define SLOT_NONE UINT32_MAX

struct cstream {
	uint32_t slot;
	int32_t tid;
	char name[48]; /* its file in the directory */
	int fd;	       /* -1: not open (yet, or closed for fds) */
	bool created;
	unsigned char *buf; /* the open packet: PKT_START + events */
	size_t len, cap;
	uint64_t nev;	    /* events in the open packet */
	uint64_t ts_begin;  /* of the open packet */
	uint64_t last_ns;   /* the stream's latest timestamp */
	uint64_t note_ns;   /* the latest drop note's */
	uint64_t opened_at; /* CLOCK_MONOTONIC when the packet got an event */
	uint64_t seq;	    /* packets written */
	uint64_t discarded; /* events lost so far */
	uint64_t discarded_written; /* in the last packet written */
};

struct ctf_sink {
	struct rw_trace_sink sink;
	int dirfd; /* DIR: every file is opened relative to it */
	unsigned char uuid[16];
	char uuid_str[37];
	char clock[16];
	bool begun;
	/* Streams by slot, and the unattributed one. */
	struct cstream **by_slot;
	uint32_t nslots;
	struct cstream *none;
	/* Every stream, for flushes and end(). */
	struct cstream **all;
	size_t nall;
	/* The metadata before the env (types, trace, clock, stream and
	 * event classes), kept to rewrite the metadata at end(). */
	char *meta_classes;
	size_t meta_len;
	/* Session facts for the env, again at end(). */
	int pid;
	uint64_t info_session, info_ring;
	bool info_overwrite;
	char info_source[16];
	char comm[64];
	uint64_t clamped;
	/* Field names of the event being described (field_name()). */
	char names[2 * RW_TRACE_MAX_FIELDS][80];
	unsigned nnames;
};

static inline struct ctf_sink *to_ctf(struct rw_trace_sink *s)
{
	return (struct ctf_sink *)s;
}

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* --- Growing strings (the metadata) -------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

/* Room for @n more bytes and a NUL. */
static bool sb_reserve(struct sbuf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	if (b->oom)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
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

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (!sb_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_printf(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !sb_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* A TSDL string literal: '"' and '\' escaped, control bytes as \xHH would
 * not be understood by every reader: they become '?'. */
static void sb_literal(struct sbuf *b, const char *s)
{
	sb_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			sb_add(b, "\\", 1);
			sb_add(b, s, 1);
		} else if (c < 0x20 || c == 0x7f) {
			sb_add(b, "?", 1);
		} else {
			sb_add(b, s, 1);
		}
	}
	sb_add(b, "\"", 1);
}

/* --- Names ----------------------------------------------------------------- */

/* TSDL's reserved words (CTF 1.8, section 7.3) and the C keywords its
 * grammar takes from C: a field named so would not parse. */
static const char *const tsdl_keywords[] = {
	"align",     "callsite", "const",      "char",	  "clock",
	"double",    "enum",	 "env",	       "event",	  "floating_point",
	"float",     "integer",	 "int",	       "long",	  "short",
	"signed",    "stream",	 "string",     "struct",  "trace",
	"typealias", "typedef",	 "unsigned",   "variant", "void",
	"_Bool",     "_Complex", "_Imaginary",
};

static bool is_keyword(const char *s)
{
	for (size_t i = 0; i < sizeof(tsdl_keywords) / sizeof(*tsdl_keywords);
	     i++)
		if (!strcmp(s, tsdl_keywords[i]))
			return true;
	return false;
}

/*
 * A TSDL identifier for the field @name (+ @suffix), unique among the
 * fields of the event described so far (s->names). Bytes outside
 * [A-Za-z0-9_] become '_'. babeltrace2 strips one leading underscore from
 * a field name (CTF's escape for names that are keywords), so a name that
 * starts with '_', a digit or is a keyword gets one more: "_x" is written
 * "__x" and shown "_x", "event" is written "_event" and shown "event".
 */
static const char *field_name(struct ctf_sink *s, const char *name,
			      const char *suffix)
{
	char base[64], *out = s->names[s->nnames];
	const char *esc;
	size_t n = 0;

	for (const char *p = name; *p && n < 48; p++) {
		unsigned char c = (unsigned char)*p;

		base[n++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
					    (c >= '0' && c <= '9') || c == '_'
				    ? (char)c
				    : '_';
	}
	base[n] = '\0';
	if (!n)
		snprintf(base, sizeof(base), "arg");
	snprintf(base + strlen(base), sizeof(base) - strlen(base), "%.8s",
		 suffix);
	esc = base[0] == '_' || (base[0] >= '0' && base[0] <= '9') ||
			      is_keyword(base)
		      ? "_"
		      : "";
	snprintf(out, sizeof(s->names[0]), "%s%s", esc, base);
	/* Unique: "name", "name_2", "name_3"... */
	for (unsigned k = 2;; k++) {
		bool dup = false;

		for (unsigned i = 0; i < s->nnames && !dup; i++)
			dup = !strcmp(s->names[i], out);
		if (!dup)
			break;
		snprintf(out, sizeof(s->names[0]), "%s%s_%u", esc, base, k);
	}
	return s->names[s->nnames++];
}

/* --- Metadata ------------------------------------------------------------- */

static const char *kind_type(int kind)
{
	switch (kind) {
	case RW_TRACE_KIND_SIGNED:
		return "int64_t";
	case RW_TRACE_KIND_UNSIGNED:
		return "uint64_t";
	case RW_TRACE_KIND_BOOL:
		return "bool_t";
	case RW_TRACE_KIND_FLOAT:
		return "double_t";
	case RW_TRACE_KIND_STRING:
		return "string";
	default:
		return "uint64_hex_t";
	}
}

/* The part of the metadata that begin() knows: types, trace, clock, stream
 * and event classes. The env comes last (meta_write()). */
static int meta_classes(struct ctf_sink *s,
			const struct rw_trace_session_info *info)
{
	bool le = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
	bool realtime = info->clock_id == CLOCK_REALTIME;
	struct sbuf b = { 0 };

	sb_printf(&b,
		  "/* CTF 1.8 */\n"
		  "/* Written by rewire trace (tools/rewire/trace_ctf.c). */\n"
		  "\n"
		  "typealias integer { size = 8; align = 8; signed = false; } "
		  ":= uint8_t;\n"
		  "typealias integer { size = 16; align = 8; signed = false; } "
		  ":= uint16_t;\n"
		  "typealias integer { size = 32; align = 8; signed = false; } "
		  ":= uint32_t;\n"
		  "typealias integer { size = 32; align = 8; signed = true; } "
		  ":= int32_t;\n"
		  "typealias integer { size = 64; align = 8; signed = false; } "
		  ":= uint64_t;\n"
		  "typealias integer { size = 64; align = 8; signed = true; } "
		  ":= int64_t;\n"
		  "typealias integer { size = 64; align = 8; signed = false; "
		  "base = 16; } := uint64_hex_t;\n"
		  "typealias floating_point { exp_dig = 11; mant_dig = 53; "
		  "align = 8; } := double_t;\n"
		  "typealias enum : uint8_t { \"false\" = 0, \"true\" = 1 } "
		  ":= bool_t;\n"
		  "typealias enum : uint8_t { \"ok\" = 0, \"truncated\" = 1, "
		  "\"null\" = 2, \"empty\" = 3 } := str_status_t;\n"
		  "\n"
		  "trace {\n"
		  "\tmajor = 1;\n"
		  "\tminor = 8;\n"
		  "\tuuid = \"%s\";\n"
		  "\tbyte_order = %s;\n"
		  "\tpacket.header := struct {\n"
		  "\t\tuint32_t magic;\n"
		  "\t\tuint8_t uuid[16];\n"
		  "\t\tuint32_t stream_id;\n"
		  "\t};\n"
		  "};\n"
		  "\n"
		  "clock {\n"
		  "\tname = \"%s\";\n"
		  "\tdescription = \"%s\";\n"
		  "\tfreq = 1000000000;\n"
		  "\tprecision = 1;\n"
		  "\toffset_s = 0;\n"
		  "\toffset = 0;\n"
		  "\tabsolute = %s;\n"
		  "};\n"
		  "\n"
		  "typealias integer { size = 64; align = 8; signed = false; "
		  "map = clock.%s.value; } := clock_ns_t;\n"
		  "\n"
		  "stream {\n"
		  "\tid = 0;\n"
		  "\tpacket.context := struct {\n"
		  "\t\tclock_ns_t timestamp_begin;\n"
		  "\t\tclock_ns_t timestamp_end;\n"
		  "\t\tuint64_t content_size;\n"
		  "\t\tuint64_t packet_size;\n"
		  "\t\tuint64_t packet_seq_num;\n"
		  "\t\tuint64_t events_discarded;\n"
		  "\t\tint32_t tid;\n"
		  "\t};\n"
		  "\tevent.header := struct {\n"
		  "\t\tuint16_t id;\n"
		  "\t\tclock_ns_t timestamp;\n"
		  "\t};\n"
		  "};\n",
		  s->uuid_str, le ? "le" : "be", s->clock,
		  realtime ? "CLOCK_REALTIME, ns since the epoch"
			   : "CLOCK_MONOTONIC, ns",
		  realtime ? "TRUE" : "FALSE", s->clock);

	for (size_t i = 0; i < info->nmeta; i++) {
		const struct rw_trace_meta *m = &info->meta[i];
		unsigned n = m->nargs < RW_TRACE_MAX_FIELDS
				     ? m->nargs
				     : RW_TRACE_MAX_FIELDS;
		const char *name[RW_TRACE_MAX_FIELDS],
			*status[RW_TRACE_MAX_FIELDS];

		/* The arguments get their names first, then the status
		 * fields theirs (a clash renames the status field). */
		s->nnames = 0;
		for (unsigned k = 0; k < n; k++)
			name[k] = field_name(s, m->fields[k].name, "");
		for (unsigned k = 0; k < n; k++)
			status[k] = m->fields[k].kind == RW_TRACE_KIND_STRING
					    ? field_name(s, m->fields[k].name,
							 "_status")
					    : NULL;
		sb_printf(&b, "\nevent {\n\tname = ");
		sb_literal(&b, m->name);
		sb_printf(&b,
			  ";\n\tid = %" PRIu32 ";\n\tstream_id = 0;\n"
			  "\tfields := struct {\n",
			  m->id);
		for (unsigned k = 0; k < n; k++) {
			sb_printf(&b, "\t\t%s %s;\n",
				  kind_type(m->fields[k].kind), name[k]);
			if (status[k])
				sb_printf(&b, "\t\tstr_status_t %s;\n",
					  status[k]);
		}
		sb_printf(&b, "\t};\n};\n");
	}
	if (info->nfuncs)
		sb_printf(&b,
			  "\nevent {\n\tname = \"rewire:func_entry\";\n"
			  "\tid = %u;\n\tstream_id = 0;\n"
			  "\tfields := struct {\n"
			  "\t\tstring function;\n"
			  "\t\tuint64_hex_t address;\n"
			  "\t\tuint32_t depth;\n"
			  "\t\tuint64_hex_t caller;\n"
			  "\t\tstring caller_name;\n"
			  "\t};\n};\n"
			  "\nevent {\n\tname = \"rewire:func_return\";\n"
			  "\tid = %u;\n\tstream_id = 0;\n"
			  "\tfields := struct {\n"
			  "\t\tstring function;\n"
			  "\t\tuint64_hex_t address;\n"
			  "\t\tuint32_t depth;\n"
			  "\t\tuint64_hex_t caller;\n"
			  "\t\tstring caller_name;\n"
			  "\t\tuint64_t duration_ns;\n"
			  "\t};\n};\n",
			  ID_ENTRY, ID_RETURN);
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	s->meta_classes = b.p;
	s->meta_len = b.len;
	return 0;
}

/* /proc/PID/comm, or "" (the process may be gone, or elsewhere). */
static void proc_comm(int pid, char *out, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, out, size - 1);
	close(fd);
	if (n <= 0)
		n = 0;
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

/* Writes @len bytes at @p to @fd. */
static int write_all(int fd, const void *p, size_t len)
{
	const unsigned char *c = p;

	while (len) {
		ssize_t n = write(fd, c, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The metadata: the classes and the env, into .metadata.tmp then renamed
 * over metadata (babeltrace2 skips hidden files, and a reader never sees
 * half a file). @sum: the session's counts, at end() only.
 */
static int meta_write(struct ctf_sink *s,
		      const struct rw_trace_session_info *info,
		      const struct rw_trace_summary *sum)
{
	static const struct rw_trace_session_info none;
	struct sbuf b = { 0 };
	char host[256] = "";
	int fd, err;

	if (!info)
		info = &none;
	if (gethostname(host, sizeof(host) - 1))
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	/* The process's name as it was at the start: it may be gone at the
	 * end. */
	if (!s->comm[0])
		proc_comm(s->pid, s->comm, sizeof(s->comm));
	sb_add(&b, s->meta_classes, s->meta_len);
	sb_printf(&b, "\nenv {\n\thostname = ");
	sb_literal(&b, host);
	sb_printf(&b, ";\n\ttracer_name = \"rewire\";\n");
#ifdef REWIRE_VERSION
	sb_printf(&b, "\ttracer_version = \"%s\";\n", REWIRE_VERSION);
#endif
	if (s->comm[0]) {
		sb_printf(&b, "\tprocname = ");
		sb_literal(&b, s->comm);
		sb_printf(&b, ";\n");
	}
	sb_printf(&b, "\tvpid = %d;\n\tclock = \"%s\";\n", s->pid, s->clock);
	if (info->source_clock) {
		sb_printf(&b, "\tsource_clock = ");
		sb_literal(&b, info->source_clock);
		sb_printf(&b, ";\n");
	}
	if (info->ring_size)
		sb_printf(&b,
			  "\tsession = %" PRIu64 ";\n"
			  "\tring_size = %" PRIu64 ";\n"
			  "\toverwrite = %d;\n",
			  info->session, info->ring_size, info->overwrite);
	if (sum)
		sb_printf(&b,
			  "\tevents = %" PRIu64 ";\n"
			  "\tdropped = %" PRIu64 ";\n"
			  "\tdropped_no_slot = %" PRIu64 ";\n"
			  "\tdropped_nested = %" PRIu64 ";\n"
			  "\tcorrupt = %" PRIu64 ";\n"
			  "\tlate = %" PRIu64 ";\n"
			  "\tclamped = %" PRIu64 ";\n",
			  sum->events, sum->dropped, sum->noslot, sum->nested,
			  sum->corrupt, sum->late, s->clamped);
	sb_printf(&b, "};\n");
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	fd = openat(s->dirfd, ".metadata.tmp",
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0) {
		free(b.p);
		return -errno;
	}
	err = write_all(fd, b.p, b.len);
	free(b.p);
	if (close(fd) && !err)
		err = -errno;
	if (!err && renameat(s->dirfd, ".metadata.tmp", s->dirfd, "metadata"))
		err = -errno;
	if (err)
		unlinkat(s->dirfd, ".metadata.tmp", 0);
	return err;
}

/* --- Streams and packets ----------------------------------------------------- */

static void put16(unsigned char *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static struct cstream *stream_new(struct ctf_sink *s, uint32_t slot,
				  int32_t tid)
{
	struct cstream *c, **all;

	all = realloc(s->all, (s->nall + 1) * sizeof(*all));
	if (!all)
		return NULL;
	s->all = all;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->slot = slot;
	c->tid = tid;
	c->fd = -1;
	if (slot == SLOT_NONE) {
		snprintf(c->name, sizeof(c->name), "unattributed");
	} else {
		bool dup = false;

		snprintf(c->name, sizeof(c->name), "thread-%d", (int)tid);
		for (size_t i = 0; i < s->nall && !dup; i++)
			dup = !strcmp(s->all[i]->name, c->name);
		if (dup)
			snprintf(c->name, sizeof(c->name), "thread-%d.%u",
				 (int)tid, slot);
	}
	s->all[s->nall++] = c;
	return c;
}

/* The stream of @slot (@tid), created at its first use. */
static struct cstream *stream_of(struct ctf_sink *s, uint32_t slot, int32_t tid)
{
	struct cstream *c;

	if (slot == SLOT_NONE) {
		if (!s->none)
			s->none = stream_new(s, SLOT_NONE, 0);
		return s->none;
	}
	if (slot >= s->nslots) {
		/* A reader without the geometry in begin(): grow. */
		uint32_t n = slot + 1 > 2 * s->nslots ? slot + 1
						      : 2 * s->nslots;
		struct cstream **p = realloc(s->by_slot, n * sizeof(*p));

		if (!p)
			return NULL;
		memset(p + s->nslots, 0, (n - s->nslots) * sizeof(*p));
		s->by_slot = p;
		s->nslots = n;
	}
	c = s->by_slot[slot];
	if (!c) {
		c = stream_new(s, slot, tid);
		s->by_slot[slot] = c;
	}
	return c;
}

static int stream_open_file(struct ctf_sink *s, struct cstream *c)
{
	int flags = O_WRONLY | O_CLOEXEC | O_APPEND;

	if (c->fd >= 0)
		return 0;
	if (!c->created)
		flags |= O_CREAT | O_EXCL;
	c->fd = openat(s->dirfd, c->name, flags, 0666);
	if (c->fd < 0 && errno == EMFILE) {
		/* Thousands of threads: keep fewer files open. */
		for (size_t i = 0; i < s->nall; i++)
			if (s->all[i]->fd >= 0) {
				close(s->all[i]->fd);
				s->all[i]->fd = -1;
			}
		c->fd = openat(s->dirfd, c->name, flags, 0666);
	}
	if (c->fd < 0)
		return -errno;
	c->created = true;
	return 0;
}

/* Starts a packet at time @ns (its first event's, or the note's). */
static int packet_begin(struct cstream *c, uint64_t ns)
{
	if (!c->cap) {
		c->buf = malloc(PACKET_MAX);
		if (!c->buf)
			return -ENOMEM;
		c->cap = PACKET_MAX;
	}
	c->len = PKT_START;
	c->nev = 0;
	c->ts_begin = ns;
	return 0;
}

/* Fills in the header and context of the packet at @p (@len bytes). */
static void packet_seal(struct ctf_sink *s, struct cstream *c, unsigned char *p,
			size_t len, uint64_t begin, uint64_t end,
			uint64_t discarded)
{
	put32(p, CTF_MAGIC);
	memcpy(p + 4, s->uuid, 16);
	put32(p + 20, 0);
	put64(p + OFF_TS_BEGIN, begin);
	put64(p + OFF_TS_END, end > begin ? end : begin);
	put64(p + OFF_CONTENT, (uint64_t)len * 8);
	put64(p + OFF_PKTSIZE, (uint64_t)len * 8);
	put64(p + OFF_SEQ, c->seq);
	put64(p + OFF_DISCARDED, discarded);
	put32(p + OFF_TID, (uint32_t)c->tid);
}

/*
 * Completes the open packet (or an empty one at the stream's latest time
 * if none is open) and writes it. A stream's first packet must carry 0
 * discarded events (babeltrace2 counts from there): when events were lost
 * before it, an empty packet carrying 0 goes first.
 */
static int packet_write(struct ctf_sink *s, struct cstream *c)
{
	uint64_t end;
	int err;

	if (!c->len) {
		err = packet_begin(c, c->last_ns > c->note_ns ? c->last_ns
							      : c->note_ns);
		if (err)
			return err;
	}
	end = c->nev ? c->last_ns : c->ts_begin;
	err = stream_open_file(s, c);
	if (err)
		return err;
	if (!c->seq && c->discarded) {
		unsigned char zero[PKT_START];

		packet_seal(s, c, zero, sizeof(zero), c->ts_begin, c->ts_begin,
			    0);
		err = write_all(c->fd, zero, sizeof(zero));
		if (err)
			return err;
		c->seq++;
	}
	packet_seal(s, c, c->buf, c->len, c->ts_begin, end, c->discarded);
	err = write_all(c->fd, c->buf, c->len);
	if (err)
		return err;
	c->seq++;
	c->discarded_written = c->discarded;
	c->len = 0;
	c->nev = 0;
	return 0;
}

/* Room for @need more bytes in @c's open packet at time @ns. */
static int packet_room(struct ctf_sink *s, struct cstream *c, size_t need,
		       uint64_t ns)
{
	int err;

	if (c->len && c->nev && c->len + need > c->cap) {
		err = packet_write(s, c);
		if (err)
			return err;
	}
	if (!c->len) {
		err = packet_begin(c, ns);
		if (err)
			return err;
	}
	if (!c->nev)
		c->opened_at = mono_ns();
	return 0;
}

/* --- Events ------------------------------------------------------------------ */

/* A string field: the bytes up to the first NUL (a C string has none; a
 * NUL from a damaged record would end the CTF string early) and the NUL. */
static size_t put_str(unsigned char *p, const void *str, size_t n)
{
	const unsigned char *nul = memchr(str, 0, n);

	if (nul)
		n = (size_t)(nul - (const unsigned char *)str);
	memcpy(p, str, n);
	p[n] = 0;
	return n + 1;
}

static int ctf_event(struct rw_trace_sink *sk, const struct rw_trace_event *ev)
{
	struct ctf_sink *s = to_ctf(sk);
	struct cstream *c = stream_of(s, ev->slot, ev->tid);
	uint64_t ns = ev->ns;
	size_t need = 2 + 8, off;
	unsigned char *p;
	int err;

	if (!c)
		return -ENOMEM;
	if (ns < c->last_ns) {
		ns = c->last_ns;
		s->clamped++;
	}
	if (ev->kind == RW_TRACE_EV_TP) {
		const struct rw_trace_meta *m = ev->tp;

		if (!m || m->nargs > RW_TRACE_MAX_FIELDS)
			return 0;
		for (unsigned k = 0; k < m->nargs; k++)
			need += m->fields[k].kind == RW_TRACE_KIND_STRING
					? ev->args[k].len + 2u
					: 8u;
	} else {
		if (!ev->func)
			return 0;
		need += strlen(ev->func->display) + 1 + 8 + 4 + 8 +
			strlen(ev->caller_name ? ev->caller_name : "") + 1 + 8;
	}
	if (need > PACKET_MAX - PKT_START)
		return -EMSGSIZE; /* cannot be: names are bounded */
	err = packet_room(s, c, need, ns);
	if (err)
		return err;
	p = c->buf + c->len;
	off = 0;
	if (ev->kind == RW_TRACE_EV_TP) {
		const struct rw_trace_meta *m = ev->tp;

		put16(p, (uint16_t)m->id);
		put64(p + 2, ns);
		off = 10;
		for (unsigned k = 0; k < m->nargs; k++) {
			const struct rw_trace_arg *a = &ev->args[k];

			switch (m->fields[k].kind) {
			case RW_TRACE_KIND_BOOL:
				p[off++] = a->bits != 0;
				break;
			case RW_TRACE_KIND_STRING: {
				size_t n = put_str(p + off, a->s ? a->s : p,
						   a->s ? a->len : 0);

				off += n;
				p[off++] = a->flags & RW_TRACE_STR_NULL ? 2
					   : n == 1			? 3
					   : a->flags & RW_TRACE_STR_TRUNCATED
						   ? 1
						   : 0;
				break;
			}
			default:
				put64(p + off, a->bits);
				off += 8;
				break;
			}
		}
	} else {
		const char *cn = ev->caller_name ? ev->caller_name : "";
		bool ret = ev->kind == RW_TRACE_EV_RETURN;

		put16(p, ret ? ID_RETURN : ID_ENTRY);
		put64(p + 2, ns);
		off = 10;
		off += put_str(p + off, ev->func->display,
			       strlen(ev->func->display));
		put64(p + off, ev->func->addr);
		put32(p + off + 8, ev->depth);
		put64(p + off + 12, ev->caller);
		off += 20;
		off += put_str(p + off, cn, strlen(cn));
		if (ret) {
			put64(p + off, ev->duration_ns);
			off += 8;
		}
	}
	c->len += off;
	c->nev++;
	c->last_ns = ns;
	return 0;
}

static int ctf_note(struct rw_trace_sink *sk, const struct rw_trace_note *n)
{
	struct ctf_sink *s = to_ctf(sk);
	struct cstream *c;
	int err;

	switch (n->kind) {
	case RW_TRACE_NOTE_DROPPED:
	case RW_TRACE_NOTE_NOSLOT:
	case RW_TRACE_NOTE_NESTED:
		break;
	default:
		/* Corrupt data and late events: counted in the env at
		 * end(); CTF has no place for them in a stream. */
		return 0;
	}
	if (!n->count)
		return 0;
	c = stream_of(s, n->kind == RW_TRACE_NOTE_DROPPED ? n->slot : SLOT_NONE,
		      n->tid);
	if (!c)
		return -ENOMEM;
	/* The note's time only dates packets without events: a later event
	 * of the thread may have been recorded before the note was seen. */
	if (n->ns > c->note_ns)
		c->note_ns = n->ns;
	/* The events before the drop end their packet: the drop is placed
	 * between it and the packet that carries the new count. */
	if (c->nev) {
		err = packet_write(s, c);
		if (err)
			return err;
	}
	c->discarded += n->count;
	/* Threads without a slot have no events to carry the count. */
	if (c->slot == SLOT_NONE)
		return packet_write(s, c);
	return 0;
}

static int ctf_flush(struct rw_trace_sink *sk)
{
	struct ctf_sink *s = to_ctf(sk);
	uint64_t now = mono_ns();
	int err;

	for (size_t i = 0; i < s->nall; i++) {
		struct cstream *c = s->all[i];

		if (c->nev && now - c->opened_at >= FLUSH_NS) {
			err = packet_write(s, c);
			if (err)
				return err;
		}
	}
	return 0;
}

static int ctf_begin(struct rw_trace_sink *sk,
		     const struct rw_trace_session_info *info)
{
	struct ctf_sink *s = to_ctf(sk);
	int err;

	s->pid = info->pid;
	snprintf(s->clock, sizeof(s->clock), "%s",
		 info->clock_id == CLOCK_MONOTONIC ? "monotonic" : "realtime");
	if (info->nslots) {
		s->by_slot = calloc(info->nslots, sizeof(*s->by_slot));
		if (!s->by_slot)
			return -ENOMEM;
		s->nslots = info->nslots;
	}
	err = meta_classes(s, info);
	if (!err)
		err = meta_write(s, info, NULL);
	if (!err)
		s->begun = true;
	/* The env's session facts are needed again at end(). */
	s->info_session = info->session;
	s->info_ring = info->ring_size;
	s->info_overwrite = info->overwrite;
	snprintf(s->info_source, sizeof(s->info_source), "%s",
		 info->source_clock ? info->source_clock : "");
	return err;
}

static int ctf_end(struct rw_trace_sink *sk, const struct rw_trace_summary *sum)
{
	struct ctf_sink *s = to_ctf(sk);
	struct rw_trace_session_info info = {
		.session = s->info_session,
		.ring_size = s->info_ring,
		.overwrite = s->info_overwrite,
		.source_clock = s->info_source[0] ? s->info_source : NULL,
	};
	int err = 0, e;

	if (!s->begun)
		return 0;
	for (size_t i = 0; i < s->nall; i++) {
		struct cstream *c = s->all[i];

		if (c->nev || c->discarded != c->discarded_written) {
			e = packet_write(s, c);
			if (e && !err)
				err = e;
		}
		if (c->fd >= 0 && close(c->fd) && !err)
			err = -errno;
		c->fd = -1;
	}
	e = meta_write(s, &info, sum);
	return err ? err : e;
}

static void ctf_destroy(struct rw_trace_sink *sk)
{
	struct ctf_sink *s = to_ctf(sk);

	if (!s)
		return;
	for (size_t i = 0; i < s->nall; i++) {
		if (s->all[i]->fd >= 0)
			close(s->all[i]->fd);
		free(s->all[i]->buf);
		free(s->all[i]);
	}
	free(s->all);
	free(s->by_slot);
	free(s->meta_classes);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s);
}

static const struct rw_trace_sink_ops ctf_ops = {
	.begin = ctf_begin,
	.event = ctf_event,
	.note = ctf_note,
	.flush = ctf_flush,
	.end = ctf_end,
	.destroy = ctf_destroy,
};

static void make_uuid(unsigned char u[16])
{
	size_t got = 0;

	while (got < 16) {
		ssize_t n = getrandom(u + got, 16 - got, GRND_NONBLOCK);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got < 16) {
		/* No entropy yet (early boot): unique enough for a trace. */
		uint64_t a = mono_ns(), b = (uint64_t)getpid() << 32 ^ a * 31;

		memcpy(u, &a, 8);
		memcpy(u + 8, &b, 8);
	}
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

/* @dir must be a directory without entries other than "." and "..": the
 * streams of an older trace would be read as part of this one. */
static int dir_check_empty(int dirfd)
{
	int fd = dup(dirfd);
	struct dirent *d;
	DIR *dp;
	int err = 0;

	if (fd < 0)
		return -errno;
	dp = fdopendir(fd);
	if (!dp) {
		err = -errno;
		close(fd);
		return err;
	}
	while ((d = readdir(dp)) != NULL)
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, "..")) {
			err = -ENOTEMPTY;
			break;
		}
	closedir(dp);
	return err;
}

int rw_trace_sink_ctf(const char *dir, struct rw_trace_sink **out)
{
	struct ctf_sink *s;
	int err;

	if (!dir || !*dir || !out)
		return -EINVAL;
	*out = NULL;
	if (mkdir(dir, 0777) && errno != EEXIST)
		return -errno;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->sink.ops = &ctf_ops;
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		err = -errno;
		goto fail;
	}
	err = dir_check_empty(s->dirfd);
	if (err)
		goto fail;
	/* Can we write there? Better now than after the session. */
	if (faccessat(s->dirfd, ".", W_OK | X_OK, AT_EACCESS)) {
		err = -errno;
		goto fail;
	}
	make_uuid(s->uuid);
	snprintf(s->uuid_str, sizeof(s->uuid_str),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 s->uuid[0], s->uuid[1], s->uuid[2], s->uuid[3], s->uuid[4],
		 s->uuid[5], s->uuid[6], s->uuid[7], s->uuid[8], s->uuid[9],
		 s->uuid[10], s->uuid[11], s->uuid[12], s->uuid[13],
		 s->uuid[14], s->uuid[15]);
	*out = &s->sink;
	return 0;
fail:
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s);
	return err;
}
