/* SPDX-License-Identifier: MIT */
/* Private: registry of loaded objects' rewire sections (src/objects.c). */
#ifndef REWIRE_OBJECTS_H
#define REWIRE_OBJECTS_H

#include "static_key.h"
#include "text_poke.h"

#include <rewire/object.h>
#include <rewire/static_call.h>
#include <rewire/static_key.h>

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
