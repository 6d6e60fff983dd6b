/* SPDX-License-Identifier: MIT */
/*
 * Private: the control socket's wire format, shared by the control server
 * (librewire, src/ctl/server.c) and the rewire command (tools/rewire/,
 * which compiles src/ctl/wire.c into itself). Never installed.
 *
 * A message is a 16-byte header and a payload:
 *
 *	offset	size	field
 *	0	4	magic, the bytes "RWC1"
 *	4	2	version (RW_WIRE_VERSION), little-endian
 *	6	2	type (enum rw_msg), little-endian
 *	8	4	payload length, little-endian, <= RW_WIRE_MAX_PAYLOAD
 *	12	4	reserved, zero
 *
 * The payload is a sequence of fields, each
 *
 *	2	tag (enum rw_tag), little-endian
 *	2	kind (enum rw_wire_kind)
 *	4	length of the value, little-endian
 *	n	value
 *
 * with no padding. Kinds:
 *
 *	U64	length 8, an unsigned little-endian integer
 *	I64	length 8, a signed (two's complement) little-endian integer
 *	STR	length <= RW_WIRE_MAX_STR, bytes with no NUL (not terminated)
 *	GROUP	length <= what is left, the value is itself a field sequence;
 *		groups nest at most RW_WIRE_MAX_DEPTH deep
 *
 * A payload is valid when every field lies inside its parent, has a known
 * kind and a length that kind allows, and there are at most
 * RW_WIRE_MAX_FIELDS fields in all. rw_wire_check() decides that before
 * anything is read; the accessors then never read out of bounds. Unknown
 * tags are skipped by readers (newer peers may add fields); unknown kinds
 * are invalid.
 *
 * The conversation: the client sends RW_MSG_HELLO first and gets
 * RW_MSG_OK (or RW_MSG_ERROR, and the connection is closed: wrong
 * version, or a peer that is not allowed). Then each request gets exactly
 * one reply: RW_MSG_OK with the fields listed below, RW_MSG_ERROR with
 * RW_TAG_ERRNO (a negative errno or -RW_ERR_*) and RW_TAG_MESSAGE, or
 * RW_MSG_UNKNOWN with RW_TAG_TYPE for a type the server does not know. A
 * message the server cannot parse gets RW_MSG_ERROR (-EPROTO) and the
 * connection is closed.
 */
#ifndef REWIRE_CTL_WIRE_H
#define REWIRE_CTL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RW_WIRE_MAGIC "RWC1"
#define RW_WIRE_VERSION 1
#define RW_WIRE_HDR_SIZE 16
#define RW_WIRE_MAX_PAYLOAD (1u << 20)
#define RW_WIRE_MAX_STR 4096u
#define RW_WIRE_MAX_DEPTH 4
#define RW_WIRE_MAX_FIELDS 65536u

enum rw_wire_kind {
	RW_WK_U64 = 1,
	RW_WK_I64 = 2,
	RW_WK_STR = 3,
	RW_WK_GROUP = 4,
};

/*
 * Message types. Requests list the fields they read, replies (RW_MSG_OK)
 * the fields they carry. "*" = may repeat.
 */
enum rw_msg {
	/* HELLO: VERSION (u64), CLIENT (str, free text).
	 * OK: VERSION, PID (u64), PROGRAM (str, /proc/self/exe),
	 *     CMDLINE (str, arguments joined by spaces), LIBVERSION (str). */
	RW_MSG_HELLO = 1,
	/* LS: no fields.
	 * OK: KEY*, CALL*, TRACEPOINT*, PATCH*, THREAD* groups:
	 *  KEY: NAME, OBJECT (str, the file), ENABLED (u64 0/1), COUNT (i64),
	 *       INITIAL (u64 0/1), SITES (u64)
	 *  CALL: NAME, OBJECT, TARGET (str: symbol, "null", "ret0" or
	 *        0xADDR), CANDIDATE* (str: targets registered with
	 *        RW_STATIC_CALL_TARGET)
	 *  TRACEPOINT: NAME, OBJECT, FIELD* (groups: NAME, CTYPE (str, C
	 *        type), KIND (u64, enum rw_tp_kind)), PROBES (u64),
	 *        PROBE* (str: each probe's symbol or 0xADDR)
	 *  PATCH: see PATCH_STATE's reply
	 *  THREAD: TID (u64), NAME (str, comm), STATE (str, one letter of
	 *        /proc/.../stat), PATCHED (i64: for the topmost patch, as
	 *        rw_patch_threads(); absent when there is no patch)
	 * Keys and static calls that belong to tracepoints are not listed. */
	RW_MSG_LS = 2,
	/* KEY: NAME, VALUE (u64 0/1).  OK: ENABLED, SITES.
	 * Errors: -ENOENT no such key; -RW_ERR_AMBIGUOUS the name is
	 * defined in several objects; -EPERM a tracepoint's key. */
	RW_MSG_KEY = 3,
	/* CALL: NAME, TARGET (str, a name registered with
	 * RW_STATIC_CALL_TARGET for that call).  OK: OLD (str), TARGET.
	 * Errors: -ENOENT no such call; -RW_ERR_SYMBOL the target is not
	 * registered for it (MESSAGE lists the ones that are). */
	RW_MSG_CALL = 4,
	/* TRACE_START: NAME* (tracepoint names or fnmatch patterns),
	 * RING_SIZE (u64, bytes per thread, optional).
	 * OK, with the shared memory's file descriptor passed as SCM_RIGHTS:
	 *   SHM_SIZE (u64), TRACEPOINT* groups (ID (u64, the number events
	 *   carry), NAME, FIELD* as in LS).
	 * Errors: -ENOENT a name matched nothing; -EBUSY this connection is
	 * tracing already. The session lasts until TRACE_STOP or until the
	 * connection closes. */
	RW_MSG_TRACE_START = 5,
	/* TRACE_STOP: no fields.  OK: DROPPED (u64, events dropped in all),
	 * and with functions RECURSION, SHADOW_FULL (u64). */
	RW_MSG_TRACE_STOP = 6,
	/* PATCH_LOAD: PATH (absolute), LOAD_FLAGS (u64, optional: 2 =
	 * RW_PATCH_LOAD_ALLOW_INLINED, 4 = RW_PATCH_LOAD_BOUND_ONLY; other
	 * bits are refused).
	 * OK: the PATCH group's fields, and MESSAGE when the load has a
	 * warning (rw_patch_last_error(): inlining not checked, or allowed).
	 * Errors: rw_patch_load()'s, MESSAGE from rw_patch_last_error().
	 * The file may come as a passed descriptor (SCM_RIGHTS): the server
	 * then loads that (rw_patch_load_fd), and PATH only names it in
	 * messages; a process in another mount namespace cannot see the
	 * client's path. */
	RW_MSG_PATCH_LOAD = 7,
	/* PATCH_ENABLE / PATCH_DISABLE / PATCH_FORCE / PATCH_UNLOAD: NAME.
	 * OK: the PATCH group's fields (UNLOAD: none). */
	RW_MSG_PATCH_ENABLE = 8,
	RW_MSG_PATCH_DISABLE = 9,
	RW_MSG_PATCH_FORCE = 10,
	RW_MSG_PATCH_UNLOAD = 11,
	/* PATCH_STATE: NAME, TIMEOUT_MS (u64, optional, at most 1000): drive
	 * the transition for up to that long first (rw_patch_wait).
	 * OK: NAME, PATH, STATE (u64, enum rw_patch_state_kind), FORCED,
	 * REPLACE, NFUNCS, TARGET_PATCHED (u64 0/1), TOTAL, SWITCHED (u64
	 * threads), TRANSITION_NS (u64), ATTEMPTS (u64), PENDING* groups
	 * (TID, NAME (comm), WHY (u64, enum rw_patch_thread_why), FUNC
	 * (str, may be empty), IP (u64)). */
	RW_MSG_PATCH_STATE = 12,
	/*
	 * Function tracing (rewire/ftrace.h). TRACE_START also takes
	 * PATTERN* (str: function globs for rw_ftrace_attach, "!GLOB"
	 * excludes, "GLOB@OBJECT") and GRAPH (u64 0/1: record returns and
	 * durations too); NAME may then be absent. Its reply then carries
	 * NFUNCS (u64): the session's function table, ids 0..NFUNCS-1 in the
	 * records of ring.h, is read with FUNCS. Errors of the attach:
	 * rw_ftrace_attach's, MESSAGE from rw_ftrace_last_error() (with the
	 * names that come close when nothing matches).
	 *
	 * FUNCS: FROM (u64, the first id wanted).
	 * OK: FUNCTION* groups (ID, ADDR, SIZE, NAME, DEMANGLED, OBJECT) for
	 * ids FROM.. as many as fit, NEXT (u64: the id after the last one
	 * sent, NFUNCS when done). Of the connection's trace or aggregate
	 * session; -ENOENT without one.
	 */
	RW_MSG_FUNCS = 13,
	/* SYMBOLIZE: ADDR* (u64, code addresses of the process, at most
	 * 1024). OK: SYMBOL* (str, "name+0xOFF" or "" when unknown), one per
	 * ADDR, in order. */
	RW_MSG_SYMBOLIZE = 14,
	/* FUNC_LIST: PATTERN* (none: every function), FROM (u64, skip that
	 * many first). OK: FUNCTION* groups (ADDR, SIZE, NAME, DEMANGLED,
	 * OBJECT, STATUS (i64: 0 traceable, else why not, as
	 * rw_ftrace_func.status), INLINED (u64)), NEXT (u64: FROM for the next
	 * request), MORE (u64 0/1). */
	RW_MSG_FUNC_LIST = 15,
	/* AGG_START: PATTERN*, MODE (u64: 1 count calls, 2 latency
	 * histogram), PER_FUNCTION (u64 0/1: a histogram per function). OK:
	 * NFUNCS (ids for FUNCS, as with TRACE_START). -EBUSY when this
	 * connection has a trace or aggregate session already. The probe
	 * counts in the process (relaxed atomic adds); the session lasts
	 * until AGG_STOP or until the connection closes. */
	RW_MSG_AGG_START = 16,
	/* AGG_READ: FROM (u64, the first function id). OK, totals since
	 * AGG_START: HIST* groups (ID (u64; absent for the histogram of all
	 * functions together), HITS (u64 calls), TOTAL_NS (u64, latency
	 * only), then pairs BUCKET (u64 b) VALUE (u64 calls) for each bucket
	 * that is not empty: bucket 0 holds durations of 0 ns, bucket b > 0
	 * those in [2^(b-1), 2^b) ns); only functions with hits are sent;
	 * NEXT (u64, FROM for the rest, NFUNCS when done), RECURSION,
	 * SHADOW_FULL (u64, rw_ftrace_get_stats()). */
	RW_MSG_AGG_READ = 17,
	/* AGG_STOP: no fields. Detaches the probe; the counters stay, for
	 * AGG_READ, until the connection closes or sends AGG_START again.
	 * OK: as AGG_READ with FROM 0, after the detach (final totals). */
	RW_MSG_AGG_STOP = 18,
	/*
	 * SNAPSHOT: SESSION (u64, optional). The flight recorder (`rewire
	 * snapshot`): a running overwrite session of the process (TRACE_START
	 * with OVERWRITE=1), usually of another connection; SESSION picks one
	 * by its number (rw_trace_shm.session) when there are several.
	 * OK, with the session's memfd passed as SCM_RIGHTS (the pages stay
	 * the client's even if the session stops meanwhile): SESSION, OWNER
	 * (u64, the pid of the client that started it), SHM_SIZE, NFUNCS
	 * (with functions), TRACEPOINT* groups as TRACE_START's reply. FUNCS
	 * then reads that session's function table on this connection, as
	 * long as the session runs (-ENOENT after).
	 * Errors: -ENOENT no overwrite session (or none numbered SESSION);
	 * -RW_ERR_AMBIGUOUS several and no SESSION (MESSAGE lists them).
	 */
	RW_MSG_SNAPSHOT = 19,

	/* Replies. */
	RW_MSG_OK = 0x100,
	RW_MSG_ERROR = 0x101,	/* ERRNO (i64), MESSAGE (str) */
	RW_MSG_UNKNOWN = 0x102, /* TYPE (u64): the request's type */
};

enum rw_tag {
	RW_TAG_VERSION = 1,
	RW_TAG_CLIENT = 2,
	RW_TAG_PID = 3,
	RW_TAG_PROGRAM = 4,
	RW_TAG_CMDLINE = 5,
	RW_TAG_LIBVERSION = 6,
	RW_TAG_ERRNO = 7,
	RW_TAG_MESSAGE = 8,
	RW_TAG_TYPE = 9,
	RW_TAG_NAME = 10,
	RW_TAG_OBJECT = 11,
	RW_TAG_VALUE = 12,
	RW_TAG_ENABLED = 13,
	RW_TAG_COUNT = 14,
	RW_TAG_INITIAL = 15,
	RW_TAG_SITES = 16,
	RW_TAG_TARGET = 17,
	RW_TAG_OLD = 18,
	RW_TAG_CANDIDATE = 19,
	RW_TAG_FIELD = 20,
	RW_TAG_KIND = 21,
	RW_TAG_PROBES = 22,
	RW_TAG_PROBE = 23,
	RW_TAG_TID = 24,
	RW_TAG_STATE = 25,
	RW_TAG_PATCHED = 26,
	RW_TAG_RING_SIZE = 27,
	RW_TAG_SHM_SIZE = 28,
	RW_TAG_ID = 29,
	RW_TAG_DROPPED = 30,
	RW_TAG_PATH = 31,
	RW_TAG_TIMEOUT_MS = 32,
	RW_TAG_FORCED = 33,
	RW_TAG_REPLACE = 34,
	RW_TAG_NFUNCS = 35,
	RW_TAG_TARGET_PATCHED = 36,
	RW_TAG_TOTAL = 37,
	RW_TAG_SWITCHED = 38,
	RW_TAG_TRANSITION_NS = 39,
	RW_TAG_ATTEMPTS = 40,
	RW_TAG_PENDING = 41,
	RW_TAG_WHY = 42,
	RW_TAG_FUNC = 43,
	RW_TAG_IP = 44,
	RW_TAG_KEY = 45,
	RW_TAG_CALL = 46,
	RW_TAG_TRACEPOINT = 47,
	RW_TAG_PATCH = 48,
	RW_TAG_THREAD = 49,
	/* Type of a field (RW_TAG_FIELD group), the C type as written. */
	RW_TAG_CTYPE = 50,
	/* PATCH_LOAD's flags (u64). */
	RW_TAG_LOAD_FLAGS = 51,
	/* Function tracing (FUNCS, SYMBOLIZE, FUNC_LIST, AGG_*). */
	RW_TAG_FUNCTION = 52,	  /* group */
	RW_TAG_PATTERN = 53,	  /* str: a function glob */
	RW_TAG_GRAPH = 54,	  /* u64 0/1 */
	RW_TAG_ADDR = 55,	  /* u64 */
	RW_TAG_SIZE = 56,	  /* u64 */
	RW_TAG_DEMANGLED = 57,	  /* str */
	RW_TAG_STATUS = 58,	  /* i64 */
	RW_TAG_INLINED = 59,	  /* u64 */
	RW_TAG_FROM = 60,	  /* u64 */
	RW_TAG_NEXT = 61,	  /* u64 */
	RW_TAG_SYMBOL = 62,	  /* str */
	RW_TAG_MODE = 63,	  /* u64 */
	RW_TAG_PER_FUNCTION = 64, /* u64 0/1 */
	RW_TAG_HIST = 65,	  /* group */
	RW_TAG_BUCKET = 66,	  /* u64 */
	RW_TAG_HITS = 67,	  /* u64 */
	RW_TAG_TOTAL_NS = 68,	  /* u64 */
	RW_TAG_RECURSION = 69,	  /* u64 */
	RW_TAG_SHADOW_FULL = 70,  /* u64 */
	RW_TAG_MORE = 71,	  /* u64 0/1 */
	/* TRACE_START (issue 15): the clock asked for (u64: 0x100 the TSC,
	 * 1 CLOCK_MONOTONIC, absent or 0 the process's choice), overwrite
	 * mode (u64 0/1, ring.h). */
	RW_TAG_CLOCK = 72,
	RW_TAG_OVERWRITE = 73,
	/* Snapshots (SNAPSHOT). */
	RW_TAG_SESSION = 77, /* u64: a session's number */
	RW_TAG_OWNER = 78,   /* u64: pid of the session's client */
	/* TRACE_START (issue 15, --filter): FILTER (str) the expression
	 * (src/ctl/filter.h); an ERROR reply's COLUMN (u64), 1-based, of a
	 * filter error; FILTERED (u64) in the OK reply's TRACEPOINT groups,
	 * 1 the filter applies, 2 the tracepoint lacks a field the filter
	 * names and records nothing; in TRACE_STOP's reply, the events the
	 * filter kept out. */
	RW_TAG_FILTER = 74,
	RW_TAG_COLUMN = 75,
	RW_TAG_FILTERED = 76,
	/* Issue 16 (fleets, containers). HELLO's reply: PATCH_DIR (str), the
	 * process's patch directory as it sees it, when it has one. PATCH
	 * groups: FILE_ID (str), the identity of the patch's file (the hex of
	 * its GNU build-id, else "size:N-fnv:HEX" of its bytes); FROM_DIR
	 * (u64 1) for a patch applied at start from the patch directory.
	 * LS's reply: TRACE_SESSION* groups (SESSION, OWNER, KIND (str:
	 * "trace", "functions", "aggregate"), OVERWRITE, NAME*, PATTERN*,
	 * SINCE_NS (u64, CLOCK_MONOTONIC ns)), one per session running. */
	RW_TAG_PATCH_DIR = 79,
	RW_TAG_FILE_ID = 80,
	RW_TAG_FROM_DIR = 81,
	RW_TAG_TRACE_SESSION = 82,
	/* 83 is not used: the contract's KIND is RW_TAG_KIND (21) above, a
	 * u64 in FIELD groups and a str in TRACE_SESSION groups. */
	RW_TAG_SINCE_NS = 84,
};

/* --- Writing -------------------------------------------------------------
 * A growing buffer. Errors are sticky: the first failure (-ENOMEM,
 * -EMSGSIZE for a payload over the limit, -EINVAL for a string over
 * RW_WIRE_MAX_STR or with a NUL, or groups nested too deep / unbalanced)
 * is kept in err and rw_wire_finish() returns it.
 */
struct rw_wire_buf {
	uint8_t *data;
	size_t len, cap;
	int err;
	int depth;
	size_t group_at[RW_WIRE_MAX_DEPTH]; /* offsets of open groups */
};

/* Start a message of @type: resets @b, keeping its memory. */
void rw_wire_begin(struct rw_wire_buf *b, uint16_t type);
void rw_wire_u64(struct rw_wire_buf *b, uint16_t tag, uint64_t v);
void rw_wire_i64(struct rw_wire_buf *b, uint16_t tag, int64_t v);
/* @s NUL-terminated; NULL writes an empty string. */
void rw_wire_str(struct rw_wire_buf *b, uint16_t tag, const char *s);
void rw_wire_strn(struct rw_wire_buf *b, uint16_t tag, const char *s, size_t n);
void rw_wire_group_begin(struct rw_wire_buf *b, uint16_t tag);
void rw_wire_group_end(struct rw_wire_buf *b);
/* Fill in the header's length. Returns 0 or the sticky error. */
int rw_wire_finish(struct rw_wire_buf *b);
void rw_wire_free(struct rw_wire_buf *b);

/* --- Reading ------------------------------------------------------------ */

/* Check a header: 0 and *type, *len; or -EPROTO (magic, reserved bytes),
 * -EPROTONOSUPPORT (version), -EMSGSIZE (length). */
int rw_wire_check_header(const uint8_t hdr[RW_WIRE_HDR_SIZE], uint16_t *type,
			 uint32_t *len);
/* Check a payload as described above: 0 or -EPROTO. */
int rw_wire_check(const uint8_t *p, size_t n);

struct rw_wire_field {
	uint16_t tag;
	uint16_t kind;
	uint32_t len;
	const uint8_t *data;
};

/* Iterates the fields of one level of a checked payload or group. */
struct rw_wire_iter {
	const uint8_t *p, *end;
};
void rw_wire_iter_init(struct rw_wire_iter *it, const uint8_t *p, size_t n);
/* The group's fields. */
void rw_wire_iter_group(struct rw_wire_iter *it, const struct rw_wire_field *g);
bool rw_wire_next(struct rw_wire_iter *it, struct rw_wire_field *f);

/* Value accessors: false when the kind does not match. */
bool rw_wire_get_u64(const struct rw_wire_field *f, uint64_t *v);
bool rw_wire_get_i64(const struct rw_wire_field *f, int64_t *v);
/* Copies the string into @out (always NUL-terminated, truncated to
 * @size - 1). */
bool rw_wire_get_str(const struct rw_wire_field *f, char *out, size_t size);

/* The first field with @tag at the level @p..@p+@n (a checked payload or
 * a group's value). */
bool rw_wire_find(const uint8_t *p, size_t n, uint16_t tag,
		  struct rw_wire_field *f);
/* Shorthands over rw_wire_find: false when absent or of another kind. */
bool rw_wire_find_u64(const uint8_t *p, size_t n, uint16_t tag, uint64_t *v);
bool rw_wire_find_i64(const uint8_t *p, size_t n, uint16_t tag, int64_t *v);
bool rw_wire_find_str(const uint8_t *p, size_t n, uint16_t tag, char *out,
		      size_t size);

/* --- Transport ------------------------------------------------------------
 * Blocking I/O on a connected SOCK_STREAM UNIX socket.
 */

/* Send a finished message, and @pass_fd with it (SCM_RIGHTS) if >= 0.
 * Returns 0 or a negative errno (-EPIPE when the peer is gone: no
 * SIGPIPE is raised). */
int rw_wire_send(int sock, const struct rw_wire_buf *b, int pass_fd);

/* A received message. payload is malloc'd (NULL for an empty one). fd is
 * a descriptor that came with it, or -1. */
struct rw_wire_msg {
	uint16_t type;
	uint32_t len;
	uint8_t *payload;
	int fd;
};

/* Receive one message, waiting at most @timeout_ms (< 0: forever).
 * Checks the header and the payload (rw_wire_check). Returns 0; -ENODATA
 * when the peer closed the connection before a header; -ETIMEDOUT;
 * -EPROTO, -EPROTONOSUPPORT, -EMSGSIZE from the checks; -ENOMEM; or a
 * negative errno. Descriptors received with a message that fails a check
 * are closed. */
int rw_wire_recv(int sock, struct rw_wire_msg *m, int timeout_ms);
/* Free the payload and close fd if still >= 0. */
void rw_wire_msg_free(struct rw_wire_msg *m);

/* The name of a message type, for errors ("LS", "PATCH_STATE", ...), or
 * NULL when unknown. */
const char *rw_wire_msg_name(uint16_t type);

#endif /* REWIRE_CTL_WIRE_H */
