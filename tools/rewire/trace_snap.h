/* SPDX-License-Identifier: MIT */
/*
 * Snapshots of a flight-recorder session (`rewire trace --snapshot`,
 * `rewire snapshot`): copies of the rings of an overwrite session
 * (src/ctl/ring.h, RW_TRACE_F_OVERWRITE) taken while the traced threads keep
 * writing over them, by the seqlock read S1-S4 of ring.h. Compiled into the
 * rewire command; depends on no part of librewire.
 *
 * Usage
 *
 *	struct rw_trace_snap s;
 *	err = rw_trace_snap_take(map, map_size, &s);	// S1-S4, every slot
 *	for (size_t i = 0; i < s.nslots; i++) {
 *		rw_trace_snap_trim(&s, &s.slots[i], cutoff_ts);
 *		feed s.slots[i].buf + s.slots[i].off, s.slots[i].len - off
 *	}
 *	rw_trace_snap_free(&s);
 *
 * What a slot's copy holds: the bytes of positions [start, head) of its
 * ring, whole records (padding included), where head is the thread's head
 * when the copy began (S1) and start the first sub-buffer boundary at or
 * after max(0, reserve - ring_size), reserve read after the copy (S3): every
 * byte from start on was copied before the thread could write over it.
 * The bytes of the ring before start (given_up) are left out: at most one
 * sub-buffer, plus whatever the thread wrote while the copy ran. A thread
 * that writes over the whole ring while one copy runs makes the copy start
 * again (at most RW_TRACE_SNAP_TRIES times; then the slot is empty and
 * counted in lapped).
 *
 * The memory is the traced process's and may hold anything: the copy
 * reads only inside the mapping, with the geometry checked once by
 * rw_trace_snap_check(), and the walk of rw_trace_snap_trim() checks each
 * record's length before it steps over it (a bad one ends the slot's data
 * there: corrupt is set and the rest is not fed).
 *
 * The copy loads the shared bytes with relaxed 8-byte atomic loads, so
 * that the race with the writer that S4 resolves is not undefined
 * behaviour (and ThreadSanitizer sees the protocol).
 */
#ifndef REWIRE_TOOL_TRACE_SNAP_H
#define REWIRE_TOOL_TRACE_SNAP_H

#include "ctl/ring.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RW_TRACE_SNAP_TRIES 4

struct rw_trace_snap_slot {
	uint32_t index;	   /* the slot's number in the session */
	int32_t tid;	   /* its thread */
	uint64_t head;	   /* S1: bytes the thread had written */
	uint64_t reserve;  /* S3: how far it had announced writing */
	uint64_t start;	   /* S4: the position of buf[0] */
	uint64_t given_up; /* bytes still in the ring before start */
	uint8_t *buf;	   /* positions [start, head): whole records */
	size_t len;
	uint8_t *mem; /* ring_size bytes that buf points into */
	/* Set by rw_trace_snap_trim(). */
	size_t off;	    /* the first record kept (ts >= the cutoff) */
	uint64_t records;   /* data records in [off, len) */
	uint64_t cut;	    /* data records before off */
	uint64_t first_ts;  /* ts of the first and last record kept */
	uint64_t last_ts;   /* (0 when none) */
	uint64_t oldest_ts; /* ts of buf's first record (0 when none) */
	bool returns;	    /* a function return record is kept */
	bool lapped;	    /* written over during every try: empty */
	bool corrupt;	    /* a bad record: len cut there */
	const char *why;    /* what was wrong */
};

struct rw_trace_snap {
	/* The header as it was checked (geometry, clock, calibration). */
	struct rw_trace_shm hdr;
	uint64_t dropped_noslot, dropped_nested;
	/* The time of the snapshot, taken just after the copy: in the
	 * session's clock (ts units) and in ns of both system clocks. */
	uint64_t now_ts;
	uint64_t now_realtime, now_monotonic;
	uint64_t copy_ns; /* how long the copies took, all slots */
	/* ts units per second (the TSC's rate from the calibration, or
	 * 1e9 for a ns clock). */
	double ts_hz;
	size_t nslots; /* claimed slots copied */
	struct rw_trace_snap_slot *slots;
};

/*
 * rw_trace_snap_check - check the header of a session's mapped memory
 * (@map, @size bytes) for a snapshot and copy it into @hdr.
 *
 * Return: 0; -EPROTO (magic, or a version before 2: no overwrite mode);
 * -EBADMSG (geometry inconsistent or not matching @size); -EINVAL (not an
 * overwrite session: its rings are read by the `rewire trace` that
 * started it, there is nothing to copy).
 */
int rw_trace_snap_check(const void *map, size_t size, struct rw_trace_shm *hdr);

/*
 * rw_trace_snap_take - check @map (rw_trace_snap_check) and copy every
 * claimed slot's ring by S1-S4 into @out (zeroed first; free it with
 * rw_trace_snap_free()). Never writes to @map. Does not block: a copy is
 * retried at most RW_TRACE_SNAP_TRIES times.
 *
 * Return: 0; rw_trace_snap_check()'s errors; -ENOMEM.
 */
int rw_trace_snap_take(const void *map, size_t size, struct rw_trace_snap *out);

/*
 * rw_trace_snap_slot_copy - S1-S4 for one slot into @s (index and tid set
 * by the caller; mem NULL, or ring_size bytes from an earlier copy). For
 * tests; rw_trace_snap_take() calls it for each slot.
 */
int rw_trace_snap_slot_copy(const void *map, const struct rw_trace_shm *hdr,
			    struct rw_trace_snap_slot *s);

/*
 * rw_trace_snap_trim - walk @s's records: check each one's length (a bad
 * one sets corrupt and cuts len there), and keep the records from the
 * first one whose ts is at least @min_ts (0: all) on: sets off, records,
 * cut, first_ts, last_ts, oldest_ts, returns.
 */
void rw_trace_snap_trim(const struct rw_trace_snap *snap,
			struct rw_trace_snap_slot *s, uint64_t min_ts);

/* Seconds from ts @ts to the snapshot (negative if after it). */
double rw_trace_snap_age(const struct rw_trace_snap *snap, uint64_t ts);

/* The ts @seconds before the snapshot (0 when that is before the start of
 * the clock). */
uint64_t rw_trace_snap_cutoff(const struct rw_trace_snap *snap, double seconds);

void rw_trace_snap_free(struct rw_trace_snap *s);

#endif /* REWIRE_TOOL_TRACE_SNAP_H */
