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

/* The functions attached to @tp, in call order (a generic probe's own
 * function, not the adapter): fills up to @max, returns how many there
 * are. Lock-free (RCU). Defined in src/tracepoint.c. */
size_t rw__tp_probe_funcs(const struct rw_tracepoint *tp, void **out,
			  size_t max);

/* Every key, static call, registered call target and tracepoint of every
 * loaded object, in load order (the program first). Takes the text lock. The
 * pointers stay valid while their object stays loaded. Returns 0,
 * -ENOMEM or -EDEADLK; free with rw__objects_snapshot_free(). */
struct rw__objects_snapshot {
	struct rw_static_key **keys;
	size_t nkeys;
	struct rw_static_call **calls;
	size_t ncalls;
	struct rw_static_call_target **targets;
	size_t ntargets;
	struct rw_tracepoint **tps;
	size_t ntps;
};
int rw__objects_snapshot(struct rw__objects_snapshot *snap);
void rw__objects_snapshot_free(struct rw__objects_snapshot *snap);

#endif /* REWIRE_OBJECTS_H */
