/* SPDX-License-Identifier: MIT */
/* Private: registry of loaded objects' rewire sections (src/objects.c). */
#ifndef REWIRE_OBJECTS_H
#define REWIRE_OBJECTS_H

#include "text_poke.h"

#include <rewire/object.h>
#include <rewire/static_call.h>
#include <rewire/static_key.h>

/* Text lock held. Calls @fn for every site of @key in every object;
 * stops at and returns the first non-zero return value. */
int rw__key_for_each_site(struct rw_static_key *key,
			  int (*fn)(const struct rw__jump_entry *, void *),
			  void *arg);

/* The entry's branch flag and key address (see rewire/static_key.h). */
static inline bool rw__entry_branch(const struct rw__jump_entry *e)
{
	return e->key & 1;
}
static inline struct rw_static_key *
rw__entry_key(const struct rw__jump_entry *e)
{
	return (struct rw_static_key *)(e->key & ~(uintptr_t)1);
}
/* Whether the site's instruction is a jmp for the key state @enabled. */
static inline bool rw__entry_jumps(const struct rw__jump_entry *e, bool enabled)
{
	return enabled != rw__entry_branch(e);
}

/* The poke that moves site @e to its instruction for key state @enabled
 * (from the other state). */
int rw__entry_poke(const struct rw__jump_entry *e, bool enabled,
		   struct rw__poke *p);

/* Text lock held: the poke that moves @sc's trampoline to @func. */
int rw__static_call_poke(struct rw_static_call *sc, void *func,
			 struct rw__poke *p);

/* A copy of the tracepoint pointers of every loaded object (free() it).
 * Takes the text lock. Returns 0, -ENOMEM or -EDEADLK. */
int rw__tracepoints_snapshot(struct rw_tracepoint ***out, size_t *count);

#endif /* REWIRE_OBJECTS_H */
