/* SPDX-License-Identifier: MIT */
/*
 * Private: the shared memory of a `rewire trace` session. Written by the
 * traced threads (src/ctl/trace.c, inside librewire) and read by the rewire
 * command (tools/rewire/trace_reader.c), which maps the same memfd read-write
 * in another process. Plain data and C11 atomics only: this header includes
 * nothing of librewire and is never installed.
 *
 * Layout (all offsets from the start of the memfd; every size is a multiple
 * of 64, rings start on a page):
 *
 *	0			struct rw_trace_shm: geometry, counters
 *	RW_TRACE_SHM_HDR	nslots x struct rw_trace_slot: per-thread
 *				heads, tails and drop counters
 *	data_offset		nslots x ring_size bytes: slot i's ring at
 *				data_offset + i * ring_size
 *
 * A slot belongs to one traced thread, which claimed it on its first event
 * of the session; its ring is a single-producer (that thread),
 * single-consumer (the rewire command) byte queue of variable-size records.
 * head and tail count bytes since the start of the session and never wrap
 * (64 bits); a position in the ring is the count modulo ring_size (a power
 * of two). The bytes in [tail, head) are records written and not yet read.
 *
 * Records are 8-byte aligned and never straddle the end of the ring: when
 * one does not fit before the end, the producer first writes a padding
 * record (id RW_TRACE_PAD) that fills the ring to its end. A record:
 *
 *	offset	size	field
 *	0	4	len: bytes of the whole record, header included, a
 *			multiple of 8, at least 16 (8 for padding)
 *	4	2	id: the tracepoint (0..ntracepoints-1, the ids of
 *			rw__trace_tp()), or RW_TRACE_PAD
 *	6	1	nargs: the tracepoint's number of arguments
 *	7	1	flags: 0 (reserved)
 *	8	8	ts: the time the traced thread wrote the record, in
 *			the session's clock (rw_trace_shm.clock, below)
 *	16	8*nargs	one 8-byte slot per argument, in the tracepoint's
 *			order: numbers, bools, floats, pointers: the bits of
 *			union rw_tp_value (s, u, f as a double, ptr); strings:
 *			struct rw_trace_str (the length copied, flags)
 *	16+8*nargs ...	the bytes of each string argument (no NUL), in
 *			argument order, each padded with zeros to a multiple
 *			of 8. At most RW_TRACE_MAX_STRING bytes of a string are
 *			copied; a longer string is cut there and flagged
 *			RW_TRACE_STR_TRUNCATED; a NULL pointer is flagged
 *			RW_TRACE_STR_NULL (length 0).
 *
 * (Fixed slots first, so that the producer copies them in one unrolled
 * run whatever the types, and appends the strings.)
 *
 * Function records (`rewire trace --function`, rewire/ftrace.h) share the
 * rings and the header; their id is RW_TRACE_FUNC_ENTRY or
 * RW_TRACE_FUNC_RETURN (above every tracepoint id), nargs 0, flags 0, and
 * ts as above. A session without function patterns writes none, so a
 * reader that only knows tracepoints never sees one.
 *
 *	offset	size	field
 *	16	4	func: the function's id in the session's table (0..
 *			nfuncs-1, sent over the control socket: FUNCS)
 *	20	4	depth: traced calls of the thread active around this
 *			one (0 for the outermost), as the probe got it
 *	24	8	caller: the return address of the call
 *	32	8	RETURN only: ns from entry to return (CLOCK_MONOTONIC)
 *
 * An entry record is RW_TRACE_FUNC_ENTRY_LEN (32) bytes, a return record
 * RW_TRACE_FUNC_RETURN_LEN (40). In graph mode a thread writes an entry
 * record when the function is called and a return record when it returns;
 * a return whose entry was dropped (full ring) still comes, and so may an
 * entry whose return never does (the shadow stack was full, the probe was
 * detached during the call, the thread unwound through the call).
 *
 * The kind of each argument (number, string, ...) is not in the record: the
 * reader gets it with the tracepoint's description over the control socket
 * (enum rw_tp_kind values, mirrored here as RW_TRACE_KIND_*).
 *
 * Clock (version 2). rw_trace_shm.clock says what ts counts:
 *
 *   RW_TRACE_CLOCK_TSC	the machine's cycle or system counter: on x86-64
 *			the time-stamp counter (rdtsc), taken when the TSC is
 *			invariant (CPUID 0x80000007 EDX bit 8, or
 *			/proc/cpuinfo's constant_tsc and nonstop_tsc); on
 *			aarch64 the generic timer's virtual count (CNTVCT_EL0,
 *			one constant-rate counter for every core by the
 *			architecture's rules, so always taken); in both cases
 *			unless $REWIRE_TRACE_CLOCK in the traced process is
 *			"monotonic". The session's start is calibrated: cal_tsc
 *			is the TSC halfway between two reads that bracket the
 *			clock_gettime() reads of cal_realtime and
 *			cal_monotonic (the narrowest of a few tries); tsc_hz is
 *			the counter's frequency when the machine says it (CPUID
 *			leaf 0x15, or the hypervisor's leaf 0x40000010; on
 *			aarch64 CNTFRQ_EL0), else 0. A reader reads the same
 *			counter (it runs on the same machine): "TSC" below
 *			means either.
 *			The reader converts ticks to nanoseconds of the clock
 *			the user chose (realtime or monotonic) from that
 *			calibration and from (tsc, clock) pairs it takes itself
 *			while it reads: the counter is the same in every
 *			process of the machine. Every output of one session gets
 *			the same nanoseconds for one event.
 *   CLOCK_MONOTONIC	ns, clock_gettime(CLOCK_MONOTONIC): the fallback
 *			where the TSC is not invariant, or on the generic
 *			backend;
 *			cal_realtime - cal_monotonic gives wall-clock times.
 *   CLOCK_REALTIME	ns since the epoch: version 1 sessions (older
 *			librewire), which the reader still reads.
 *
 * Both kinds of ts grow monotonically on one machine, so a reader merges the
 * threads in ts order (with a bounded reorder window: a thread can be
 * preempted between taking its ts and publishing the record). Within a
 * thread the order of events is the order of the ring.
 *
 * Sub-buffers (version 2). A ring is cut in sub-buffers of subbuf_size
 * bytes (a power of two dividing ring_size; ring_size itself unless the
 * session overwrites), and records never straddle a sub-buffer's end: the
 * padding record of P4 fills up to the next multiple of subbuf_size, of
 * which the end of the ring is one. So every multiple of subbuf_size that
 * has been written holds the start of a record.
 *
 * Overwrite mode (flag RW_TRACE_F_OVERWRITE, the flight recorder of
 * `rewire trace --snapshot`): the producer never reads tail and never
 * drops for a full ring; it writes over the oldest records. subbuf_size is
 * max(4 KiB, ring_size / 16) and rings are at least 64 KiB. Before it
 * writes a byte it announces how far it will write:
 *
 *   O1. The producer stores head + pad + len (or more: a generated writer
 *       announces the longest the record can be) into slot.reserve
 *       (relaxed), then issues a release fence; then P4 and P5 as above.
 *
 * A reader takes a snapshot of a slot without stopping the thread (a
 * seqlock read):
 *
 *   S1. h = slot.head (acquire; pairs with P5).
 *   S2. Copy the ring's bytes of positions [max(0, h - ring_size), h) into
 *       its own memory.
 *   S3. Acquire fence, then r = slot.reserve (relaxed; the fence pairs with
 *       O1's: if S2 read a byte written after the announcement, r includes
 *       that announcement).
 *   S4. Bytes of positions below r - ring_size may have been overwritten
 *       while S2 copied them. Decoding starts at the first position that is
 *       a multiple of subbuf_size and at least max(0, r - ring_size) (it is
 *       a record's start) and stops at h. At most one sub-buffer of the
 *       oldest data is given up for this, plus what the thread wrote
 *       during S2 (r - h).
 *
 * The reader (tools/rewire/trace_snap.c) loads the bytes of S2 with relaxed
 * 8-byte atomic loads, so that the race S4 resolves is not undefined
 * behaviour. A reserve below head is a slot not written in overwrite mode
 * (reported as damage). When S4 leaves nothing (the thread wrote a whole
 * ring during S2) the copy starts again, a few times at most. A slot that
 * never wrapped (r <= ring_size) decodes from position 0.
 *
 * tail is not used in overwrite mode (the reader never stores it) and
 * slot.dropped counts nothing (events are overwritten, not dropped);
 * dropped_noslot and dropped_nested count as always.
 *
 * Memory ordering (the producer is the traced thread that owns the slot,
 * the consumer the reader; numbers are referred to in trace.c and
 * trace_reader.c):
 *
 *   P1. Claim: the producer stores its tid into slot.tid (release), once,
 *       before its first head store. The reader skips slots whose tid
 *       (acquire) is 0.
 *   P2. The producer loads tail (acquire; pairs with C4) when its cached
 *       copy of tail says the record does not fit. The acquire makes the
 *       consumer's reads of the bytes it freed happen before the producer
 *       overwrites them. A tail behind the cached one or past head is
 *       ignored (the ring is taken for full).
 *   P3. If [head, head + len) still does not fit in ring_size - (head -
 *       tail) bytes, the producer adds one to slot.dropped (relaxed: a
 *       counter, it orders nothing) and returns. Nothing else is written.
 *       (It checks the fixed part of the record first, then the whole
 *       record once the strings are measured.)
 *   P4. Otherwise the producer writes the padding record (if any) and the
 *       record with plain stores at positions head..head+len-1 modulo
 *       ring_size.
 *   P5. It stores head + len into slot.head (release; pairs with C1), which
 *       publishes the bytes of P4.
 *
 *   C1. The consumer loads slot.head (acquire; pairs with P5): every record
 *       before head is then fully written.
 *   C2. It copies each record in [tail, head) out of the ring into its own
 *       memory, then checks and decodes the copy (never the shared bytes,
 *       which a buggy process could change between a check and a use).
 *   C3. It loads slot.dropped (relaxed) and reports the growth since the
 *       last look.
 *   C4. It stores the new tail into slot.tail (release; pairs with P2): the
 *       copies of C2 are done, the producer may reuse those bytes.
 *
 * Neither side trusts the other's fields for bounds: the producer keeps its
 * own head, the consumer its own tail, and each takes the geometry from its
 * own copy (the producer's from the session, the reader's from the checks
 * it made when it mapped the memfd). A head or tail that makes (head - tail)
 * larger than ring_size is treated as "full" by the producer and as corrupt
 * by the reader.
 */
#ifndef REWIRE_CTL_RING_H
#define REWIRE_CTL_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RW_TRACE_MAGIC "RWTRACE\0" /* 8 bytes, NUL included */
#define RW_TRACE_VERSION 2
/* The oldest layout the reader still takes: version 1 had no clock
 * calibration, no sub-buffers, no overwrite mode, and ts in CLOCK_REALTIME
 * ns (its header stops at session). */
#define RW_TRACE_VERSION_MIN 1

/* rw_trace_shm.clock: a clockid_t in ns, or the TSC in ticks. */
#define RW_TRACE_CLOCK_TSC 0x100u

/* rw_trace_shm.flags */
#define RW_TRACE_F_OVERWRITE 1u

/* Overwrite mode: the smallest ring, and the smallest sub-buffer. */
#define RW_TRACE_OVERWRITE_RING_MIN (64u * 1024)
#define RW_TRACE_SUBBUF_MIN 4096u
#define RW_TRACE_SUBBUFS 16u

#define RW_TRACE_CACHELINE 64
#define RW_TRACE_PAGE 4096

/* Ring bytes per thread: the default, and the bounds a request is clamped
 * to (after rounding up to a power of two). */
#define RW_TRACE_RING_DEFAULT (256u * 1024)
#define RW_TRACE_RING_MIN 4096u
#define RW_TRACE_RING_MAX (64u * 1024 * 1024)

/* Slots per session: bounds of the number chosen at start. */
#define RW_TRACE_SLOTS_MIN 64u
#define RW_TRACE_SLOTS_MAX 1024u

/* Longest string copied into a record, in bytes. */
#define RW_TRACE_MAX_STRING 256u
/* At most 8 arguments (RW_TRACEPOINT_MAX_ARGS). */
#define RW_TRACE_MAX_ARGS 8u
/* Largest record: header and 8 strings of RW_TRACE_MAX_STRING bytes. */
#define RW_TRACE_MAX_RECORD \
	(16u + RW_TRACE_MAX_ARGS * (8u + RW_TRACE_MAX_STRING))

/* The id of a padding record, and of function records. Tracepoint ids are
 * below RW_TRACE_MAX_TRACEPOINTS. */
#define RW_TRACE_PAD 0xffffu
#define RW_TRACE_FUNC_ENTRY 0xfffeu
#define RW_TRACE_FUNC_RETURN 0xfffdu
#define RW_TRACE_MAX_TRACEPOINTS 0xfff0u

/* Argument kinds: the values of enum rw_tp_kind (rewire/tracepoint.h);
 * src/ctl/trace.c checks that they agree. */
#define RW_TRACE_KIND_SIGNED 0
#define RW_TRACE_KIND_UNSIGNED 1
#define RW_TRACE_KIND_BOOL 2
#define RW_TRACE_KIND_FLOAT 3
#define RW_TRACE_KIND_STRING 4
#define RW_TRACE_KIND_POINTER 5

/* The header, at offset 0. Everything above the counters is written once,
 * before the memfd is handed out, and only read afterwards. */
struct rw_trace_shm {
	char magic[8];	       /* RW_TRACE_MAGIC */
	uint32_t version;      /* RW_TRACE_VERSION */
	uint32_t hdr_size;     /* RW_TRACE_SHM_HDR: where the slots start */
	uint32_t nslots;       /* per-thread slots */
	uint32_t slot_size;    /* sizeof(struct rw_trace_slot) */
	uint64_t ring_size;    /* bytes per ring, a power of two */
	uint64_t data_offset;  /* slot 0's ring; page aligned */
	uint64_t total_size;   /* of the memfd */
	uint32_t clock;	       /* of ts: RW_TRACE_CLOCK_TSC or a clockid */
	uint32_t max_string;   /* RW_TRACE_MAX_STRING */
	uint32_t ntracepoints; /* ids are 0..ntracepoints-1 */
	uint32_t pid;	       /* the traced process */
	uint64_t session;      /* its number in the traced process */
	/* Version 2. */
	uint32_t flags;		/* RW_TRACE_F_* */
	uint32_t subbuf_size;	/* divides ring_size, a power of two */
	uint64_t cal_tsc;	/* TSC at the calibration (0 without TSC) */
	uint64_t cal_realtime;	/* CLOCK_REALTIME ns at cal_tsc */
	uint64_t cal_monotonic; /* CLOCK_MONOTONIC ns at cal_tsc */
	uint64_t tsc_hz;	/* the TSC's frequency if known, else 0 */
	/*
	 * Counters, written by traced threads with relaxed atomic adds.
	 * dropped_noslot: events of threads that found every slot taken
	 * when they fired their first event of the session (such a thread
	 * keeps no slot: all its events are counted here). dropped_nested:
	 * events fired by a thread inside its own probe (a signal handler
	 * that fires a tracepoint while the thread was writing an event),
	 * which are not recorded. slots_claimed: informational.
	 */
	alignas(RW_TRACE_CACHELINE) _Atomic uint64_t dropped_noslot;
	_Atomic uint64_t dropped_nested;
	_Atomic uint32_t slots_claimed;
	uint32_t reserved0;
};

#define RW_TRACE_SHM_HDR 256u

/* A slot: the producer's line and the consumer's line. */
struct rw_trace_slot {
	/* Written by the owning thread only. */
	alignas(RW_TRACE_CACHELINE) _Atomic int32_t tid; /* 0: unclaimed */
	uint32_t reserved0;
	_Atomic uint64_t head;	  /* bytes written (P5) */
	_Atomic uint64_t dropped; /* events that did not fit (P3) */
	_Atomic uint64_t reserve; /* overwrite mode: written up to (O1) */
	/* Written by the reader only. */
	alignas(RW_TRACE_CACHELINE) _Atomic uint64_t tail; /* bytes read (C4) */
};

/* The first 8 bytes of every record (the ts follows in data records). */
struct rw_trace_rec {
	uint32_t len;
	uint16_t id;
	uint8_t nargs;
	uint8_t flags;
	uint64_t ts;
};

#define RW_TRACE_REC_HDR 16u
#define RW_TRACE_PAD_HDR 8u

/* A string argument's prefix; the bytes follow. */
struct rw_trace_str {
	uint32_t len; /* bytes that follow (before the padding) */
	uint32_t flags;
};
#define RW_TRACE_STR_TRUNCATED 1u
#define RW_TRACE_STR_NULL 2u

/* A function record (RW_TRACE_FUNC_ENTRY / RW_TRACE_FUNC_RETURN). */
struct rw_trace_func_rec {
	struct rw_trace_rec hdr;
	uint32_t func;
	uint32_t depth;
	uint64_t caller;
	uint64_t ns; /* RETURN only */
};
#define RW_TRACE_FUNC_ENTRY_LEN 32u
#define RW_TRACE_FUNC_RETURN_LEN 40u
/* Functions a session can trace (ids fit in func). */
#define RW_TRACE_MAX_FUNCS (1u << 24)

_Static_assert(sizeof(struct rw_trace_shm) <= RW_TRACE_SHM_HDR,
	       "rw_trace_shm too large");
_Static_assert(offsetof(struct rw_trace_shm, dropped_noslot) == 128,
	       "rw_trace_shm: the counters' line at 128");
_Static_assert(sizeof(struct rw_trace_slot) == 2 * RW_TRACE_CACHELINE,
	       "rw_trace_slot: two cache lines");
_Static_assert(sizeof(struct rw_trace_rec) == RW_TRACE_REC_HDR,
	       "rw_trace_rec: 16 bytes");
_Static_assert(sizeof(struct rw_trace_str) == 8, "rw_trace_str: 8 bytes");
_Static_assert(sizeof(struct rw_trace_func_rec) == RW_TRACE_FUNC_RETURN_LEN,
	       "rw_trace_func_rec: 40 bytes");
_Static_assert(RW_TRACE_MAX_RECORD <= RW_TRACE_RING_MIN,
	       "the largest record fits in the smallest ring");
/* Atomics in memory shared by two processes must be lock-free. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
	       "64-bit and 32-bit atomics are lock-free");

/* Bytes of the memfd for @nslots rings of @ring_size bytes. */
static inline uint64_t rw_trace_data_offset(uint32_t nslots)
{
	uint64_t end = RW_TRACE_SHM_HDR +
		       (uint64_t)nslots * sizeof(struct rw_trace_slot);

	return (end + RW_TRACE_PAGE - 1) & ~(uint64_t)(RW_TRACE_PAGE - 1);
}

static inline uint64_t rw_trace_total_size(uint32_t nslots, uint64_t ring_size)
{
	return rw_trace_data_offset(nslots) + (uint64_t)nslots * ring_size;
}

#endif /* REWIRE_CTL_RING_H */
