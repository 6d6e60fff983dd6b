/* SPDX-License-Identifier: MIT */
/*
 * The output pipeline of `rewire trace`: the reader (trace_reader.c) turns
 * the records of every thread's ring into events, merges them into one
 * timeline and hands each event to every sink attached to it; a sink writes
 * one output format (text and JSON lines: trace_reader.c; CTF:
 * trace_ctf.c; Chrome trace-event JSON: trace_chrome.c).
 *
 *	ring 0 -copy, check-> queue 0 --+
 *	ring 1 -copy, check-> queue 1 --+-> merge by ts -> ts to ns --+-> sink 1
 *	feed(slot, buf) ----> queue k --+   (reorder      of the      +-> sink 2
 *	                                     window)      output clock
 *
 * Usage (see cmd_trace.c):
 *
 *	struct rw_trace_sink *text, *ctf;
 *	rw_trace_reader_open(memfd, size, meta, nmeta, &r);
 *	rw_trace_reader_set_funcs(r, funcs, nfuncs, graph);	// optional
 *	rw_trace_reader_set_clock(r, CLOCK_REALTIME);		// the default
 *	rw_trace_sink_text(stdout, &text);
 *	rw_trace_reader_add_sink(r, text);	// the reader owns it now
 *	rw_trace_sink_ctf("trace-dir", &ctf);
 *	rw_trace_reader_add_sink(r, ctf);
 *	while (!stop) {
 *		rw_trace_reader_poll(r);	// read the rings, write what
 *		sleep 10 ms;			// the window lets through
 *	}
 *	err = rw_trace_reader_finish(r);	// the rest, end() of each sink
 *	rw_trace_reader_summary(r, &sum);	// per-thread drops for stderr
 *	rw_trace_reader_close(r);		// destroys the sinks
 *
 * What a sink sees, in this order: begin() once (before anything else, at
 * the first delivery or at finish), then event() and note() calls in the
 * order of the timeline, flush() after each poll, feed or flush_all once
 * begun, end() once from rw_trace_reader_finish(), destroy() from
 * rw_trace_reader_close(). A sink is called from the thread that calls the
 * reader, one call at a time.
 *
 * Timeline. Events of one thread keep the order of its ring. Events of
 * different threads are merged by their ts (ring.h: TSC ticks, or
 * CLOCK_MONOTONIC or, in version 1 rings, CLOCK_REALTIME ns) with a
 * reorder window: an event is delivered once the reader's clock is past
 * its ts by the window (default 100 ms), because a thread can be preempted
 * between reading its clock and publishing its record. An event that
 * arrives after an event with a later ts has been delivered is still
 * delivered, flagged late (ev->late, ev->late_ns), right after a
 * RW_TRACE_NOTE_LATE note; the rest of the timeline is non-decreasing in
 * ev->ns. rw_trace_reader_flush_all() delivers everything queued at once
 * (no window).
 *
 * Clock. ev->ns is in the output clock (rw_trace_reader_set_clock():
 * CLOCK_REALTIME ns since the epoch, the default, or CLOCK_MONOTONIC),
 * converted once per event before any sink sees it, so every output of a
 * session shows the same nanoseconds for one event. TSC ticks are
 * converted by interpolating between (tsc, realtime, monotonic) points:
 * the session's calibration (ring.h) and points the reader takes itself
 * (rdtsc before and after the clock_gettime() reads) at every poll or feed;
 * the result follows the clocks over any session length instead of
 * extrapolating one frequency.
 *
 * Pointers in events and notes (strings, names) stay valid during the call
 * only.
 */
#ifndef REWIRE_TOOL_TRACE_OUT_H
#define REWIRE_TOOL_TRACE_OUT_H

#include "trace_reader.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---  --------------------------------------------------------------------- */

enum rw_trace_event_kind {
	RW_TRACE_EV_TP,	    /* a tracepoint fired */
	RW_TRACE_EV_ENTRY,  /* a traced function was called */
	RW_TRACE_EV_RETURN, /* it returned (graph mode) */
};

/* One argument of a tracepoint event, decoded (ring.h record layout). */
struct rw_trace_arg {
	int kind;      /* RW_TRACE_KIND_* (ring.h), = tp->fields[i].kind */
	uint64_t bits; /* numbers, bools, pointers: the value; floats: the
			* bits of the double; strings: unused */
	/* RW_TRACE_KIND_STRING only: the bytes copied (no NUL, may hold any
	 * byte, not necessarily UTF-8), and RW_TRACE_STR_TRUNCATED (the
	 * string was longer than RW_TRACE_MAX_STRING and is cut) or
	 * RW_TRACE_STR_NULL (a NULL pointer; len 0). */
	const unsigned char *s;
	uint32_t len;
	uint32_t flags;
};

struct rw_trace_event {
	enum rw_trace_event_kind kind;
	/* The time of the event in the output clock (above), ns. */
	uint64_t ns;
	/* The record's ts as the thread wrote it (the session's clock:
	 * rw_trace_session_info.source_clock). */
	uint64_t raw_ts;
	int32_t tid;   /* the thread that recorded it */
	uint32_t slot; /* its slot in the session (ring.h) */
	/* Placed out of order: an event with a later ns was delivered
	 * before this one arrived; late_ns is by how much (that event's ns
	 * minus ours). */
	bool late;
	uint64_t late_ns;

	/* RW_TRACE_EV_TP: the tracepoint's description (names are clean:
	 * no control bytes, spaces, '"' or '\') and its tp->nargs arguments. */
	const struct rw_trace_meta *tp;
	struct rw_trace_arg args[RW_TRACE_MAX_FIELDS];

	/* RW_TRACE_EV_ENTRY and RW_TRACE_EV_RETURN (ring.h's function
	 * records): the function (its table entry, and its id in the
	 * table), the depth of the call, the return address in the caller
	 * and its name ("name+0xOFF" when the session's table or the
	 * resolver knows it, else "0x..."; never NULL). */
	const struct rw_trace_func_meta *func;
	uint32_t func_id;
	uint32_t depth;
	uint64_t caller;
	const char *caller_name;
	/* RETURN: ns from entry to return, as the probe measured it.
	 * ENTRY with leaf: the same for the return that follows. */
	uint64_t duration_ns;
	/* Graph mode folds a call whose return is its thread's very next
	 * record into one line. ENTRY: that is the case (duration_ns is the
	 * return's); RETURN: its entry was delivered with leaf set (a sink
	 * that folds skips it; every event is delivered either way). */
	bool leaf;
};

/* ---  --------------------------------------------------------------------- */

enum rw_trace_note_kind {
	/* count events of thread tid did not fit in its ring (P3). */
	RW_TRACE_NOTE_DROPPED,
	/* count events of threads that found no free slot (tid 0). */
	RW_TRACE_NOTE_NOSLOT,
	/* count events fired inside the probe (signal handlers; tid 0). */
	RW_TRACE_NOTE_NESTED,
	/* Damaged data on thread tid: why (a short phrase), count bytes
	 * skipped. */
	RW_TRACE_NOTE_CORRUPT,
	/* The next event (of thread tid) is late by count ns (it is also
	 * flagged: a sink uses one or the other). */
	RW_TRACE_NOTE_LATE,
};

struct rw_trace_note {
	enum rw_trace_note_kind kind;
	/* Where in the timeline (output clock): after the events of the
	 * thread read before the note was seen. */
	uint64_t ns;
	int32_t tid;   /* 0 for NOSLOT and NESTED */
	uint32_t slot; /* UINT32_MAX for NOSLOT and NESTED */
	uint64_t count;
	const char *why; /* CORRUPT only, else NULL */
};

/* ---  --------------------------------------------------------------------- */

struct rw_trace_session_info {
	int pid;	  /* the traced process (ring.h header) */
	uint64_t session; /* its session number */
	unsigned version; /* of the ring layout (ring.h): 1 or 2 */
	/* The output clock: CLOCK_REALTIME or CLOCK_MONOTONIC, and its name
	 * "realtime" or "monotonic" (ev->ns counts it). */
	int clock_id;
	const char *clock;
	/* What the records' ts count: "tsc", "monotonic" or "realtime"
	 * (version 1), and the session's calibration (ring.h; zeros for
	 * version 1): cal_realtime and cal_monotonic are the two clocks at
	 * one instant (cal_tsc for "tsc"), tsc_hz is 0 when not known. */
	const char *source_clock;
	uint64_t cal_tsc, cal_realtime, cal_monotonic, tsc_hz;
	/* Every tracepoint described (ids may have gaps: meta[i].id). */
	const struct rw_trace_meta *meta;
	size_t nmeta;
	/* The session's functions, by id (rw_trace_reader_set_funcs()), and
	 * whether returns are traced (graph mode). */
	const struct rw_trace_func_meta *funcs;
	size_t nfuncs;
	bool graph;
	/* Geometry: bytes per ring, slots, flight-recorder mode. */
	uint64_t ring_size;
	uint32_t nslots;
	bool overwrite;
};

/* Per thread (slot), what the session lost and kept. */
struct rw_trace_thread_stats {
	int32_t tid;
	uint32_t slot;
	uint64_t events;  /* delivered to the sinks */
	uint64_t dropped; /* ring full (NOTE_DROPPED) */
	uint64_t corrupt; /* times damaged data was skipped */
	uint64_t late;	  /* events delivered late */
	/* The most bytes this thread wrote between two reads of its ring
	 * (events dropped counted at their average size), and the ring
	 * size that would have held that (a power of two, capped at
	 * RW_TRACE_RING_MAX; 0 when nothing was dropped). */
	uint64_t peak_bytes;
	uint64_t ring_needed;
	/* Its highest rate seen over one read interval, bytes per second. */
	double peak_rate;
};

struct rw_trace_summary {
	uint64_t events;  /* delivered, all threads */
	uint64_t dropped; /* dropped + noslot + nested */
	uint64_t noslot, nested;
	uint64_t corrupt, late;
	/* Threads that recorded anything or lost anything, by slot. */
	const struct rw_trace_thread_stats *threads;
	size_t nthreads;
	uint64_t ring_size; /* of the session */
	/* The longest time between two reads of the rings (polls), ns:
	 * when it is much longer than the drain period, the reader (or the
	 * terminal it writes to) was too slow. */
	uint64_t max_poll_gap_ns;
	uint64_t window_ns; /* the reorder window used */
};

/* ---  --------------------------------------------------------------------- */

struct rw_trace_sink;

/*
 * A sink's operations. Each returns 0 or a negative errno (-EIO, -ENOSPC,
 * -EPIPE...): after an error the reader stops calling that sink (except
 * end() and destroy()) and reports the first error from
 * rw_trace_reader_poll()/finish(). Any member but destroy may be NULL.
 */
struct rw_trace_sink_ops {
	/* Once, before the first event or note. */
	int (*begin)(struct rw_trace_sink *s,
		     const struct rw_trace_session_info *info);
	int (*event)(struct rw_trace_sink *s, const struct rw_trace_event *ev);
	int (*note)(struct rw_trace_sink *s, const struct rw_trace_note *n);
	/* After each poll, feed or flush_all once begun (whether or not it
	 * delivered anything): write out what is buffered (the user may be
	 * watching). */
	int (*flush)(struct rw_trace_sink *s);
	/* Once, at rw_trace_reader_finish(): everything was delivered. */
	int (*end)(struct rw_trace_sink *s, const struct rw_trace_summary *sum);
	/* Free the sink (it does not close a FILE it was given). */
	void (*destroy)(struct rw_trace_sink *s);
};

/* A sink embeds this as its first member (or uses container_of). */
struct rw_trace_sink {
	const struct rw_trace_sink_ops *ops;
	int error; /* the reader's: the first error this sink returned */
};

/*
 * Text lines to @f (trace_reader.h describes the format; graph mode when
 * the session's info says so). Timestamps "SEC.NNNNNNNNN" of the output
 * clock; notes as "# rewire: ..." comment lines, a late event preceded by
 * "# rewire: the next event of thread TID arrived N us late ...".
 */
int rw_trace_sink_text(FILE *f, struct rw_trace_sink **out);

/*
 * JSON lines to @f: one object per event with "ts" in integer ns of the
 * output clock ("ts":1732556000123456789), "late_ns":N on a late event;
 * notes as objects with "ts" too (trace_reader.h).
 */
int rw_trace_sink_json(FILE *f, struct rw_trace_sink **out);

/*
 * CTF 1.8 trace in directory @dir (created if missing): metadata and one
 * stream file per thread (trace_ctf.c, helper C2). -ENOSYS when the rewire
 * command was built without it.
 */
int rw_trace_sink_ctf(const char *dir, struct rw_trace_sink **out);

/*
 * Chrome trace-event JSON to @f (trace_chrome.c, helper C2), for Perfetto's
 * UI and chrome://tracing. -ENOSYS when built without it.
 */
int rw_trace_sink_chrome(FILE *f, struct rw_trace_sink **out);

/* Calls @s->ops->destroy. NULL is a no-op. For sinks never added to a
 * reader (the reader destroys those it owns). */
void rw_trace_sink_destroy(struct rw_trace_sink *s);

/* ---  --------------------------------------------------------------------- */

/*
 * rw_trace_reader_add_sink - deliver this session's events to @s too. The
 * reader owns @s from now on (rw_trace_reader_close() destroys it), also
 * when this fails. Add sinks before the first poll or feed.
 *
 * Return: 0; -EINVAL (NULL, or events were already delivered); -ENOMEM.
 */
int rw_trace_reader_add_sink(struct rw_trace_reader *r,
			     struct rw_trace_sink *s);

/* The output clock: CLOCK_REALTIME (default) or CLOCK_MONOTONIC. Before
 * the first poll or feed. Return: 0, -EINVAL. */
int rw_trace_reader_set_clock(struct rw_trace_reader *r, int clock_id);

/* The reorder window in ns (default RW_TRACE_WINDOW_DEFAULT; 0 delivers at
 * each poll what that poll read). */
#define RW_TRACE_WINDOW_DEFAULT 100000000ull
void rw_trace_reader_set_window(struct rw_trace_reader *r, uint64_t ns);

/* Deliver at most @max events in all (0: no limit); the rest stays queued
 * and is never delivered. For `rewire trace --count N`. */
void rw_trace_reader_set_limit(struct rw_trace_reader *r, uint64_t max);

/*
 * rw_trace_reader_poll - read every ring (ring.h C1-C4; a session in
 * overwrite mode is not read: see feed), queue the events, and deliver to
 * the sinks those the reorder window lets through. Never blocks (apart
 * from the sinks' writes).
 *
 * Return: events delivered (>= 0), or the first error of a sink (< 0).
 */
long rw_trace_reader_poll(struct rw_trace_reader *r);

/*
 * rw_trace_reader_feed - decode @len bytes at @buf: whole records of slot
 * @slot (< the session's nslots) owned by thread @tid, in ring order (a
 * linear copy: padding records are skipped, a record never wraps), and
 * queue them like polled ones (the flight recorder's snapshot copy, S1-S4
 * of ring.h). Damaged data is reported as a CORRUPT note and the rest of
 * @buf skipped. Delivers what the window lets through.
 *
 * Return: events delivered (>= 0), -EINVAL (bad slot or arguments), or
 * the first error of a sink.
 */
long rw_trace_reader_feed(struct rw_trace_reader *r, uint32_t slot, int32_t tid,
			  const void *buf, size_t len);

/*
 * rw_trace_reader_flush_all - deliver every queued event and note now, in
 * ts order (no window; graph entries held for their return are delivered
 * as open calls), then flush the sinks. The reader stays usable.
 *
 * Return: events delivered, or the first error of a sink.
 */
long rw_trace_reader_flush_all(struct rw_trace_reader *r);

/*
 * rw_trace_reader_finish - the end of the session: poll one last time
 * (unless in overwrite mode), flush_all, then end() of every sink with the
 * summary. Call once.
 *
 * Return: 0 or the first error of a sink.
 */
int rw_trace_reader_finish(struct rw_trace_reader *r);

/* The counts so far (valid until the next call on @r). */
void rw_trace_reader_summary(struct rw_trace_reader *r,
			     struct rw_trace_summary *out);

/* Events delivered so far. */
uint64_t rw_trace_reader_events(const struct rw_trace_reader *r);

#endif /* REWIRE_TOOL_TRACE_OUT_H */
