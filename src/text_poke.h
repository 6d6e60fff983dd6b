/* SPDX-License-Identifier: MIT */
/* Private: the batch patcher used by static keys and static calls. */
#ifndef REWIRE_TEXT_POKE_PRIV_H
#define REWIRE_TEXT_POKE_PRIV_H

#include "arch/arch.h"
#include "text.h"

struct rw__poke {
	uintptr_t addr;
	uint8_t len;
	uint8_t old[RW_TEXT_INSN_MAX];
	uint8_t new[RW_TEXT_INSN_MAX];
	struct rw__insn insn; /* new, decoded: what the trap handler runs */
};

/*
 * Apply a batch with the int3 protocol. The caller holds the text lock.
 * Sorts @pokes in place. Sites that already hold their new bytes are
 * skipped; a site holding neither its old nor its new bytes fails the whole
 * batch with -EILSEQ before anything is written. On a write error the
 * sites written so far are restored and the error returned.
 */
int rw__text_poke_locked(struct rw__poke *pokes, size_t n);

/*
 * The same, calling @armed(@arg) once every site holds int3 on its first
 * byte and every core saw it, before the rest is written. A non-zero
 * return undoes the batch and is returned. Live patching uses it to move
 * threads that sit inside a run of one-byte NOPs about to become a jump.
 */
int rw__text_poke_locked_ex(struct rw__poke *pokes, size_t n,
			    int (*armed)(void *arg), void *arg);

/*
 * Test hook (tests/unit/test_poke_protocol.c), NULL otherwise: called with
 * the text lock held before every write of a batch (@len bytes at @addr
 * are about to become @buf) and before every core sync (@buf NULL), so
 * that a test can check the order of the protocol's steps.
 */
extern void (*rw__text_poke_observer)(uintptr_t addr, const uint8_t *buf,
				      size_t len);

/* Fill @p for a site at @addr changing from @old_insn to @new_insn. */
int rw__poke_init(struct rw__poke *p, uintptr_t addr,
		  const struct rw__insn *old_insn,
		  const struct rw__insn *new_insn);

/*
 * Check that every site lies in a readable and executable mapping (from
 * /proc/self/maps), so that reading a site a caller supplied cannot fault
 * (execute-only memory such as [vsyscall] faults on a read). 0, -EFAULT,
 * -ENOMEM or the error of reading the maps.
 */
int rw__text_check_code(const struct rw__poke *pokes, size_t n);

#endif /* REWIRE_TEXT_POKE_PRIV_H */
