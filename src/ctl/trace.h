/* SPDX-License-Identifier: MIT */
/*
 * Private: `rewire trace` sessions in the traced process (src/ctl/trace.c).
 * The control server starts one per TRACE_START request, passes
 * rw__trace_fd() to the client with SCM_RIGHTS, and stops it on TRACE_STOP
 * or when the connection closes. The shared memory's layout and its
 * memory-ordering protocol are in src/ctl/ring.h.
 *
 * A session attaches one probe per matching tracepoint, with its own data,
 * so several sessions (several clients) can trace the same tracepoints at
 * once: the tracepoint's generated writer (rw__tprec_<name>, a typed probe
 * that RW_DEFINE_TRACEPOINT defines and that records through
 * rw__trace_reserve() and an inline commit) when it has one, else the
 * generic probe (rw_tracepoint_probe_register_generic). Both write the same
 * bytes. The probe, in the traced thread:
 *
 *   - never blocks, never takes a lock, never allocates;
 *   - makes no system call but, where the TSC is not the session's clock,
 *     clock_gettime(CLOCK_MONOTONIC) (the vDSO where the clock source
 *     allows it), and one gettid(2) in the life of each thread, on its
 *     first event of any session (the tid is cached in a thread-local
 *     variable);
 *   - finds the thread's slot in a 4-entry initial-exec TLS cache keyed by
 *     the session's number, falling back to a scan of the session's claimed
 *     slots for its tid, and claims the next free slot (one atomic add) on
 *     the thread's first event of the session;
 *   - drops the event and counts it when the ring is full (ring.h P3;
 *     never in overwrite mode, which writes over the oldest records
 *     instead), when every slot is taken (dropped_noslot), or when the
 *     thread fires a tracepoint from inside the probe, e.g. from a signal
 *     handler (dropped_nested).
 *
 * The clock of the records' ts (ring.h, Clock): the TSC where it is
 * invariant (x86-64), else CLOCK_MONOTONIC; $REWIRE_TRACE_CLOCK=tsc or
 * monotonic in the traced process, or the session's options, choose. The
 * header's calibration is taken when the session starts.
 *
 * Slots are never given back during a session: a thread that exits leaves
 * its slot, with whatever the reader has not read yet. A later thread that
 * gets the same tid from the kernel takes the slot over (it is then the
 * only producer, since tids of live threads are unique). A session has
 * max(64, 2 x the threads at start) slots, at most 1024; once they are all
 * taken, each new thread's events are counted in dropped_noslot, never
 * lost silently.
 *
 * Pages of the rings are allocated on first touch (the memfd is sparse), so
 * a thread's first pass through its ring takes minor page faults.
 *
 * After fork() the child's copies of the sessions' probes see that they
 * belong to the parent and record nothing (the child must not write into
 * the parent's rings).
 *
 * Functions (`rewire trace --function`): a session may also attach one
 * rw_ftrace probe set (rewire/ftrace.h) whose entry function, and with
 * graph its return function, write the fixed-size function records of
 * ring.h through the same steps as the tracepoint probe (the same TLS
 * slot cache, drops and nesting counters). A record names its function by
 * its index in the set (rw_ftrace_func_at()'s order), which the probe
 * finds with rw__functab_id(). The set is detached first when the session
 * stops (rw_ftrace_detach() waits for running probes).
 */
#ifndef REWIRE_CTL_TRACE_H
#define REWIRE_CTL_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rw_tracepoint;
struct rw__trace;
struct rw_ftrace;
struct rw_ftrace_func;
struct rw_ftrace_stats;

/*
 * A table of the functions an rw_ftrace traces, for probes that must turn
 * the function they are called for into an index: rw_ftrace_func_at()'s
 * order (by address), with the addresses copied. rw__functab_id() is
 * async-signal-safe and constant time when the probe gets the table's own
 * struct rw_ftrace_func (the usual case), else a binary search.
 */
struct rw__functab {
	const struct rw_ftrace_func *base; /* rw_ftrace_func_at(t, 0) */
	uintptr_t *addr;		   /* n entries, ascending */
	size_t n;
};
int rw__functab_init(struct rw__functab *tab, const struct rw_ftrace *t);
void rw__functab_free(struct rw__functab *tab);
/* @f's index, or SIZE_MAX when it is not in the table. */
size_t rw__functab_id(const struct rw__functab *tab,
		      const struct rw_ftrace_func *f);

/* The options of a session (rw__trace_start_opts()). */
struct rw__trace_opts {
	const char *const *patterns; /* tracepoint globs */
	size_t npatterns;
	const char *const *funcs; /* function globs */
	size_t nfuncs;
	bool graph;
	size_t ring_bytes;  /* 0: default */
	bool overwrite;	    /* flight recorder (ring.h, overwrite mode) */
	const char *filter; /* NULL or "": none (src/ctl/filter.h) */
	unsigned clock;	    /* 0: auto; RW_TRACE_CLOCK_TSC; CLOCK_MONOTONIC */
	bool generic; /* never the generated writers (benchmarks, tests) */
	unsigned *filter_column; /* out, may be NULL: 1-based column of a
				  * filter error, 0 none */
};

/*
 * rw__trace_start_opts - start a session as @o says: rw__trace_start_funcs()
 * with @o->patterns and @o->funcs, and:
 *
 * - @o->overwrite: overwrite mode (ring.h): the rings are at least
 *   RW_TRACE_OVERWRITE_RING_MIN bytes, cut in sub-buffers of max(4 KiB,
 *   ring / 16), and a full ring is written over, never dropped;
 * - @o->clock: RW_TRACE_CLOCK_TSC or CLOCK_MONOTONIC forces the clock
 *   (-EOPNOTSUPP: a TSC asked for where there is none, -EINVAL: another
 *   value); 0 takes $REWIRE_TRACE_CLOCK ("tsc" or "monotonic"), else the
 *   TSC where it is invariant, else CLOCK_MONOTONIC;
 * - @o->generic: the generic probe even where a generated writer exists.
 *
 * Errors as rw__trace_start_funcs().
 */
int rw__trace_start_opts(const struct rw__trace_opts *o, struct rw__trace **out,
			 char *err, size_t errlen);

/*
 * rw__trace_start - attach the built-in probe to every tracepoint whose
 * name matches one of @patterns (fnmatch(3), no flags), in every loaded
 * object. A tracepoint matched by several patterns is attached once.
 * @ring_bytes: per-thread ring size; 0 for RW_TRACE_RING_DEFAULT (256
 * KiB); rounded up to a power of two and clamped to [4 KiB, 64 MiB].
 *
 * Takes the tracepoint and text locks (through registration). Not
 * async-signal-safe; must not be called from a probe.
 *
 * Return: 0 and the session in @out; or a negative errno with a message in
 * @err (when @errlen > 0), and nothing attached: -EINVAL (no pattern, a
 * NULL or empty pattern), -ENOENT (a pattern matches no tracepoint),
 * -E2BIG (more than 65535 tracepoints match), -ENOMEM (also when the
 * sessions' shared memory together would pass the cap:
 * $REWIRE_TRACE_MEM_MAX, default 1 GiB; the message gives the bytes in
 * use, the cap and how to change it), an error of
 * memfd_create/ftruncate/mmap, or one of registering a probe.
 */
int rw__trace_start(const char *const *patterns, size_t npatterns,
		    size_t ring_bytes, struct rw__trace **out, char *err,
		    size_t errlen);

/*
 * rw__trace_start_funcs - rw__trace_start() with function patterns too
 * (either list may be empty, not both): the functions are attached with
 * rw_ftrace_attach() after the tracepoints, with a probe that writes the
 * function records of ring.h, returns too when @graph. A failed attach
 * detaches everything and gives rw_ftrace_attach()'s error, with
 * rw_ftrace_last_error() in @err.
 */
int rw__trace_start_funcs(const char *const *patterns, size_t npatterns,
			  const char *const *funcs, size_t nfuncs, bool graph,
			  size_t ring_bytes, struct rw__trace **out, char *err,
			  size_t errlen);

/* The functions traced (0 without function patterns), and the rw_ftrace
 * (NULL without). */
size_t rw__trace_nfuncs(const struct rw__trace *t);
const struct rw_ftrace *rw__trace_ftrace(const struct rw__trace *t);

/* The memfd to pass to the client (sealed against shrinking and growing:
 * neither side can make the other's mapping fault). Owned by the session. */
int rw__trace_fd(const struct rw__trace *t);

/* Bytes of the memfd (the client maps all of it). */
size_t rw__trace_size(const struct rw__trace *t);

/* Tracepoints attached; events carry ids 0..count-1. */
size_t rw__trace_count(const struct rw__trace *t);

/* The tracepoint of id @id, or NULL when @id >= count. */
const struct rw_tracepoint *rw__trace_tp(const struct rw__trace *t, size_t id);

/* Events dropped so far, all causes (full rings, no free slot, nested),
 * from the session's own counters (not the shared memory's). */
uint64_t rw__trace_dropped(const struct rw__trace *t);

/*
 * rw__trace_stop - detach every probe, wait until none can still run
 * (rw_tracepoint_synchronize_unregister()), unmap, close the memfd and free
 * @t. NULL is a no-op. Must not be called from a probe. A tracepoint whose
 * object was unloaded meanwhile is skipped (its probe went with it). If a
 * probe cannot be detached (out of memory while copying the probe array),
 * the session's memory is left allocated and mapped, since that probe may
 * still run; the memfd is closed either way. Returns the events dropped
 * in the whole session, counted once no probe can run any more.
 */
uint64_t rw__trace_stop(struct rw__trace *t);

/* Whether @func is the built-in probe (for listing: its symbol is
 * hidden), or the generated writer of @tp (which may be NULL). */
bool rw__trace_is_probe(const void *func);
bool rw__trace_is_probe_of(const struct rw_tracepoint *tp, const void *func);

/* Per tracepoint id: 0 recorded as usual, 1 a filter applies, 2 the
 * tracepoint has not every field the filter names: nothing of it is
 * recorded. */
int rw__trace_filter_state(const struct rw__trace *t, size_t id);

/* Whether @t overwrites (ring.h, overwrite mode); its clock (ring.h:
 * RW_TRACE_CLOCK_TSC or CLOCK_MONOTONIC); whether tracepoint @id records
 * with its generated writer. */
bool rw__trace_overwrite(const struct rw__trace *t);
/* The session's number (rw_trace_shm.session); a new number from the same
 * sequence, for the server's other sessions (aggregates): numbers are
 * never 0 and never reused in the process. */
uint64_t rw__trace_session(const struct rw__trace *t);
uint64_t rw__trace_session_new(void);
unsigned rw__trace_clock(const struct rw__trace *t);
bool rw__trace_uses_writer(const struct rw__trace *t, size_t id);

/*
 * Filters (`rewire trace --filter`, src/ctl/filter.h). rw__trace_start_opts()
 * with @o->filter compiles it for each tracepoint, against its fields,
 * before any probe is attached; a tracepoint with a filter records through
 * the generic probe, which evaluates the filter first of all (before step
 * 1), so that an event kept out costs the test and a counter. Errors, with
 * "--filter, column N: ..." in @err and N in *@o->filter_column: those of
 * rw_filter_check() against the names of every tracepoint matched (a
 * syntax error, a name none of them has), -EINVAL when there is no
 * tracepoint to filter (function patterns only), and the first
 * tracepoint's error when none can take the filter (a type mismatch in
 * each, or none has every field).
 *
 * Per tracepoint id:
 * 0 recorded as usual, 1 a filter applies, 2 the tracepoint has not every
 * field the filter names: nothing of it is recorded. And the events the
 * filters kept out so far (those of state-2 tracepoints included), from
 * counters the probes add to without ordering: a sum taken while probes
 * run may miss the last few.
 */
int rw__trace_filter_state(const struct rw__trace *t, size_t id);
uint64_t rw__trace_filtered(const struct rw__trace *t);

#endif /* REWIRE_CTL_TRACE_H */
