/* SPDX-License-Identifier: MIT */
/*
 * The reading side of `rewire trace`: maps the shared memory a traced
 * process hands over (src/ctl/ring.h, versions 1 and 2), reads its
 * per-thread rings, merges the threads' events into one timeline and
 * hands them to output sinks (trace_out.h: the pipeline, the events, the
 * sinks; text and JSON lines here, CTF and Chrome JSON in their own
 * files). Compiled into the rewire command; it depends on no part of
 * librewire (ring.h is plain data and C11 atomics).
 *
 * Usage: see trace_out.h. For tests and benchmarks, one FILE and no
 * window:
 *
 *	struct rw_trace_reader *r;
 *	err = rw_trace_reader_open(memfd, shm_size, meta, nmeta, &r);
 *	while (!stop) {
 *		rw_trace_reader_drain(r, stdout, json);
 *		sleep 10 ms;
 *	}
 *	rw_trace_reader_drain(r, stdout, json);	// after TRACE_STOP
 *	rw_trace_reader_flush(r, stdout, json);
 *	rw_trace_reader_close(r);
 *
 * Output, one line per event (text):
 *
 *	1732556000.123456789 4242 kv_request: op="GET" key="k17" len=120
 *
 * the timestamp of the event (seconds.nanoseconds of CLOCK_REALTIME, or of
 * CLOCK_MONOTONIC with --clock monotonic), the thread id, the tracepoint
 * and its arguments formatted as rw_tracepoint_format() does (strings
 * quoted, '"' and '\' escaped with a backslash, newlines as \n, other
 * control bytes as \xHH; NULL strings as (null); pointers with %p). A
 * string that was longer than 256 bytes is printed cut, followed by "..."
 * after its closing quote.
 *
 * JSON, one object per line, the timestamp in integer nanoseconds:
 *
 *	{"ts":1732556000123456789,"tid":4242,"tp":"kv_request",
 *	 "args":{"op":"GET","key":"k17","len":120}}
 *
 * with "truncated":["key",...] added when strings were cut, and
 * "late_ns":N when the event is late (below); NULL strings, NaN and
 * infinities are null; pointers are strings "0x..."; bytes that are not
 * valid UTF-8 become \ufffd.
 *
 * Order: one timeline. The events of one thread come out in the order the
 * thread recorded them; the threads are merged by timestamp. Because a
 * thread can be preempted between reading the clock and publishing its
 * record, an event is written only once the reader's clock is past it by
 * the reorder window (100 ms by default). An event that arrives later
 * than that, after a later one was written, is written at once, preceded
 * by (text) "# rewire: the next event of thread TID arrived N.NNN us late
 * (placed out of order)" or (JSON) flagged with "late_ns", and counted.
 * Everything else is in non-decreasing timestamp order.
 *
 * Timestamps: the records carry TSC ticks (or CLOCK_MONOTONIC ns, or, from
 * an older librewire, CLOCK_REALTIME ns); the reader converts each event
 * once, before any output sees it, by interpolating between the session's
 * calibration and clock points it takes itself at every poll (trace_out.h,
 * Clock), so that every output of a session shows the same nanoseconds
 * and a long session does not drift.
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
 * its depth; a call whose return is the thread's next record is one line
 * (at the entry's place in the timeline, whatever other threads did in
 * between):
 *
 *	1732556000.123456789 4242              |  handle() {
 *	1732556000.123457000 4242     1.234 us |    parse_line();
 *	1732556000.123470000 4242    12.300 us |  } /+ handle() +/
 *
 * (with a real C comment in the close line). An entry waits for its
 * thread's next record for up to 100 ms, so that a leaf can be printed on
 * one line. JSON: {"ts","tid","event":"entry"|"return","function",
 * "depth","caller"} and for returns "duration_ns".
 *
 * Drops and damage are reported as comment lines, text or JSON, at the
 * place in the timeline where the reader saw them:
 *
 *	# rewire: N events dropped on thread TID
 *	# rewire: N events dropped: no free slot
 *	# rewire: N events dropped: nested in the probe
 *	# rewire: corrupt data on thread TID (why), N bytes skipped
 *
 *	{"ts":T,"dropped":N,"tid":TID}
 *	{"ts":T,"dropped":N,"reason":"no_slot"}
 *	{"ts":T,"dropped":N,"reason":"nested"}
 *	{"ts":T,"corrupt":"why","tid":TID,"skipped":N}
 *
 * and the summary (rw_trace_reader_summary()) has them per thread, with
 * the most bytes each thread wrote between two reads and the ring size
 * that would have held them.
 *
 * The shared memory is writable by the traced process at any time, which
 * may be buggy: the reader takes the geometry once, when it opens the
 * memory, checks it, and afterwards copies every record into its own
 * memory before checking and decoding it. A head that is behind the tail
 * or more than a ring ahead, a record length or string length that leaves
 * the record or the ring, an unknown tracepoint id or a wrong argument
 * count make it skip the rest of that thread's available data (reported
 * as above), never read outside the mapping. A timestamp out of all
 * reason only misplaces its event; what waits for the window is bounded
 * in memory (256 MiB) as well as in time.
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
 * rw_trace_reader_drain - read every ring and print every event available
 * now, merged by ts without a reorder window (and without late marks), one
 * line each to @out (JSON lines if @json), and the drop and damage lines
 * described above; graph entries still wait for their return (up to 100
 * ms). Frees the ring space it read. Never blocks (apart from writing to
 * @out). For tests and benchmarks: a reader that has sinks of its own
 * (rw_trace_reader_add_sink()) prints nothing here.
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

/* Print everything still queued, graph entries held back for their return
 * included (at the end of a session). */
void rw_trace_reader_flush(struct rw_trace_reader *r, FILE *out, bool json);

/* Events the process reported dropped so far (ring full, no slot, nested),
 * as read from its counters. */
uint64_t rw_trace_reader_dropped(const struct rw_trace_reader *r);

/* Times the reader found corrupt data and skipped it. */
uint64_t rw_trace_reader_corrupt(const struct rw_trace_reader *r);

/* Unmap and free. NULL is a no-op. */
void rw_trace_reader_close(struct rw_trace_reader *r);

#endif /* REWIRE_TOOL_TRACE_READER_H */
