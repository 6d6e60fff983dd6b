/* SPDX-License-Identifier: MIT */
/*
 * Private: static keys' jump tables (src/static_key.c). The object
 * registry (src/objects.c) hands each loaded object's table of sites to
 * the keys, which own the lookup from a key to its sites: the registry
 * calls down into the keys, never the reverse (the kernel's module
 * notifier and jump_label_add_module()).
 */
#ifndef REWIRE_STATIC_KEY_PRIV_H
#define REWIRE_STATIC_KEY_PRIV_H

#include "text_poke.h"

#include <rewire/static_key.h>

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

/*
 * The jump entries of one object, in storage its caller owns (so adding
 * one cannot fail). Text lock held for both calls. Adding sorts the
 * entries by key (for the lookup) and makes them sites of their keys;
 * removing forgets them, before the object is unloaded.
 */
struct rw__jump_table {
	struct rw__jump_entry *start, *stop;
	struct rw__jump_table *next; /* text lock */
};
void rw__jump_table_add(struct rw__jump_table *t);
void rw__jump_table_del(struct rw__jump_table *t);

#endif /* REWIRE_STATIC_KEY_PRIV_H */
