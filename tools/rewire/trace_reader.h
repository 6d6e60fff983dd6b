/* SPDX-License-Identifier: MIT */
/*
 * The reading side of `rewire trace`: maps the shared memory a traced
 * process hands over (src/ctl/ring.h), reads its per-thread rings and
 * prints one line per event. Compiled into the rewire command; it depends
 * on no part of librewire (ring.h is plain data and C11 atomics).
 *
 * Usage
 *
 *	struct rw_trace_reader *r;
 *	err = rw_trace_reader_open(memfd, shm_size, meta, nmeta, &r);
 *	while (!stop) {
 *		rw_trace_reader_drain(r, stdout, json);
 *		sleep 10 ms;		// or poll the socket with a timeout
 *	}
 *	rw_trace_reader_drain(r, stdout, json);	// after TRACE_STOP
 *	rw_trace_reader_close(r);
 *
 * Output, one line per event (text):
 *
 *	1732556000.123456789 4242 kv_request: op="GET" key="k17" len=120
 *
 * the CLOCK_REALTIME timestamp of the event (seconds.nanoseconds), the
 * thread id, the tracepoint and its arguments formatted as
 * rw_tracepoint_format() does (strings quoted, '"' and '\' escaped with a
 * backslash, newlines as \n, other control bytes as \xHH; NULL strings as
 * (null); pointers with %p). A string that was longer than 256 bytes is
 * printed cut, followed by "..." after its closing quote.
 *
 * JSON, one object per line:
 *
 *	{"ts":1732556000.123456789,"tid":4242,"tp":"kv_request",
 *	 "args":{"op":"GET","key":"k17","len":120}}
 *
 * with "truncated":["key",...] added when strings were cut; NULL strings,
 * NaN and infinities are null; pointers are strings "0x..."; bytes that
 * are not valid UTF-8 become \ufffd.
 *
 * Order: the events of one thread come out in the order the thread
 * recorded them. A drain reads the threads one after the other, so the
 * events of different threads are not merged by time within a drain
 * (sort by the first column for a global order; the clock can step).
 *
 * Function records (`rewire trace --function`, ring.h) need the session's
 * function table (rw_trace_reader_set_funcs()). Text, entries only:
 *
 *	1732556000.123456789 4242 parse_line() <- main+0x4f
 *
 * the function (C++: its demangled name, with the parameter list; C: the
 * name and "()") and its caller, "name+0xOFF" when the resolver or the
 * table knows the address, else the address. In graph mode, the kernel's
 * function_graph layout: the duration column, then the call indented by
 * its depth; a call whose return is the thread's next record is one line:
 *
 *	1732556000.123456789 4242              |  handle() {
 *	1732556000.123457000 4242     1.234 us |    parse_line();
 *	1732556000.123470000 4242    12.300 us |  } /+ handle() +/
 *
 * (with a real C comment in the close line). An entry is held back until
 * its thread's next record or for 100 ms, so that a leaf can be printed on
 * one line. JSON: {"ts","tid","event":"entry"|"return","function",
 * "depth","caller"} and for returns "duration_ns".
 *
 * Drops and damage are reported as comment lines, text or JSON:
 *
 *	# rewire: N events dropped on thread TID      {"dropped":N,"tid":TID}
 *	# rewire: N events dropped: no free slot      {"dropped":N,"reason":"no_slot"}
 *	# rewire: N events dropped: nested in the probe {"dropped":N,"reason":"nested"}
 *	# rewire: corrupt data on thread TID (why), N bytes skipped
 *	                              {"corrupt":"why","tid":TID,"skipped":N}
 *
 * The shared memory is writable by the traced process at any time, which
 * may be buggy: the reader takes the geometry once, when it opens the
 * memory, checks it, and afterwards copies every record into its own
 * buffer before checking and decoding it. A head that is behind the tail
 * or more than a ring ahead, a record length or string length that leaves
 * the record or the ring, an unknown tracepoint id or a wrong argument
 * count make it skip the rest of that thread's available data (reported
 * as above), never read outside the mapping.
 *
 * Not thread-safe: one thread uses a reader at a time.
 */
#ifndef REWIRE_TOOL_TRACE_READER_H
#define REWIRE_TOOL_TRACE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RW_TRACE_MAX_FIELDS 8

/* A tracepoint as the process described it (TRACE_START's reply). */
struct rw_trace_meta_field {
	char name[64];
	char ctype[64];
	int kind; /* enum rw_tp_kind values (RW_TRACE_KIND_* of ring.h) */
};

struct rw_trace_meta {
	uint32_t id; /* the id events carry */
	char name[128];
	unsigned nargs;
	struct rw_trace_meta_field fields[RW_TRACE_MAX_FIELDS];
};

struct rw_trace_reader;

/*
 * rw_trace_reader_open - map @memfd (@shm_size bytes, the SHM_SIZE of the
 * reply), check it and the descriptions @meta[0..@nmeta-1] (copied), and
 * return a reader in @out. The names are copied with bytes that could
 * break a line or a JSON string (controls, space, '"', '\') replaced by
 * '?'. The memfd stays open (the caller closes it).
 *
 * Return: 0; -EINVAL (bad arguments, or a description with an id used
 * twice, more than 8 arguments or an unknown kind); -EBADF (not a regular
 * file); -EPERM (the memfd is not sealed against shrinking, so the traced
 * process could make our mapping fault); -EPROTO (wrong magic or version);
 * -EBADMSG (a header whose geometry is inconsistent or does not match
 * @shm_size); -ENOMEM; or a negative errno of fstat/fcntl/mmap.
 */
int rw_trace_reader_open(int memfd, size_t shm_size,
			 const struct rw_trace_meta *meta, size_t nmeta,
			 struct rw_trace_reader **out);

/*
 * rw_trace_reader_drain - print every event available now, slot by slot,
 * one line each to @out (JSON lines if @json), and the drop and damage
 * lines described above. Frees the ring space it read. Never blocks
 * (apart from writing to @out).
 *
 * Return: the number of events printed.
 */
long rw_trace_reader_drain(struct rw_trace_reader *r, FILE *out, bool json);

/* The same, printing at most @max events (the rest stays for the next
 * drain). For `rewire trace --count N`. */
long rw_trace_reader_drain_max(struct rw_trace_reader *r, FILE *out, bool json,
			       long max);

/* A function of the session (FUNCS's reply), by id. */
struct rw_trace_func_meta {
	uint64_t addr, size;
	char name[256];	   /* the symbol's name (mangled for C++) */
	char display[512]; /* demangled, or name + "()" */
};

/* Function records of this session are decoded with @funcs[0..@n-1] (ids;
 * the reader keeps the pointer: keep it alive) and printed as a graph if
 * @graph. */
void rw_trace_reader_set_funcs(struct rw_trace_reader *r,
			       const struct rw_trace_func_meta *funcs, size_t n,
			       bool graph);

/* Names the callers of function entries: "name+0xOFF" into @out, false
 * when unknown. Called from a drain for each caller that is not inside a
 * function of the table. */
typedef bool (*rw_trace_resolve_fn)(void *arg, uint64_t addr, char *out,
				    size_t size);
void rw_trace_reader_set_resolver(struct rw_trace_reader *r,
				  rw_trace_resolve_fn fn, void *arg);

/* Graph mode: print the entries held back for their return (at the end of
 * a session). */
void rw_trace_reader_flush(struct rw_trace_reader *r, FILE *out, bool json);

/* Events the process reported dropped so far (what the drains printed). */
uint64_t rw_trace_reader_dropped(const struct rw_trace_reader *r);

/* Times the reader found corrupt data and skipped it. */
uint64_t rw_trace_reader_corrupt(const struct rw_trace_reader *r);

/* Unmap and free. NULL is a no-op. */
void rw_trace_reader_close(struct rw_trace_reader *r);

#endif /* REWIRE_TOOL_TRACE_READER_H */
