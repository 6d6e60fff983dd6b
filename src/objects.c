/* SPDX-License-Identifier: MIT */
/*
 * The registry of loaded objects. Every executable or shared object that
 * uses rewire's macros registers its sections from a constructor (see
 * rewire/object.h) and unregisters them from a destructor. Registration
 * brings the object's code in line with the current state: a site of a key
 * that another object already enabled is enabled, a trampoline whose
 * target was linked through the PLT is pointed at the function itself.
 */
#include "objects.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct object {
	struct rw__sections s;
	struct rw__jump_table jumps; /* given to the static keys */
	int refs; /* constructors that registered these sections */
	struct object *next;
};

/* Protected by the text lock. */
static struct object *objects;

static bool same_sections(const struct rw__sections *a,
			  const struct rw__sections *b)
{
	return a->jump_start == b->jump_start &&
	       a->keys_start == b->keys_start &&
	       a->calls_start == b->calls_start && a->tps_start == b->tps_start;
}

static bool sections_empty(const struct rw__sections *s)
{
	return s->jump_start == s->jump_stop && s->keys_start == s->keys_stop &&
	       s->calls_start == s->calls_stop && s->tps_start == s->tps_stop &&
	       s->targets_start == s->targets_stop;
}

/* Copy @s into @out, the current layout; false for an unknown version.
 * Version 2 is a prefix of version 3 (no call targets). */
static bool sections_read(const struct rw__sections *s,
			  struct rw__sections *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return false;
	if (s->version == RW__SECTIONS_VERSION) {
		*out = *s;
		return true;
	}
	if (s->version == 2) {
		memcpy(out, s, offsetof(struct rw__sections, targets_start));
		out->version = RW__SECTIONS_VERSION;
		return true;
	}
	return false;
}

/* Text lock held: the batch that makes @o's sites and trampolines match
 * the current key states and call targets. */
static int object_sync(struct object *o)
{
	size_t nj = (size_t)(o->s.jump_stop - o->s.jump_start);
	size_t nc = (size_t)(o->s.calls_stop - o->s.calls_start);
	struct rw__poke *pokes;
	size_t n = 0;
	int err;

	if (!rw__arch_can_patch() || nj + nc == 0)
		return 0;
	pokes = calloc(nj + nc, sizeof(*pokes));
	if (!pokes)
		return -ENOMEM;
	/* Sites already right are skipped by the batch itself. */
	for (size_t i = 0; i < nj; i++) {
		const struct rw__jump_entry *e = &o->s.jump_start[i];

		if (rw__entry_poke(e, rw__entry_key(e)->enabled > 0,
				   &pokes[n]) == 0)
			n++;
	}
	for (size_t i = 0; i < nc; i++) {
		struct rw_static_call *sc = o->s.calls_start[i];

		if (sc->tramp &&
		    rw__static_call_poke(sc, sc->func, &pokes[n]) == 0)
			n++;
	}
	err = rw__text_poke_locked(pokes, n);
	free(pokes);
	return err;
}

RW_EXPORT void rw__object_register(const struct rw__sections *given)
{
	struct rw__sections sections, *s = &sections;
	struct object *o;
	int err;

	if (!sections_read(given, s)) {
		rw__log("object sections of version %u ignored (want %u)",
			given ? given->version : 0u, RW__SECTIONS_VERSION);
		return;
	}
	if (sections_empty(s))
		return;
	err = rw__lock_acquire(&rw__text_lock);
	if (err) {
		rw__log("cannot register an object: %s", rw_strerror(err));
		return;
	}
	for (o = objects; o; o = o->next) {
		if (same_sections(&o->s, s)) {
			o->refs++;
			goto out;
		}
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		rw__log("cannot register an object: out of memory");
		goto out;
	}
	o->s = *s;
	o->refs = 1;
	o->jumps.start = s->jump_start;
	o->jumps.stop = s->jump_stop;
	rw__jump_table_add(&o->jumps);
	o->next = objects;
	objects = o;
	err = object_sync(o);
	if (err)
		rw__log("object %p: sites not brought in line: %s",
			(void *)s->jump_start, rw_strerror(err));
	rw__log("object registered: %zu sites, %zu keys, %zu calls",
		(size_t)(s->jump_stop - s->jump_start),
		(size_t)(s->keys_stop - s->keys_start),
		(size_t)(s->calls_stop - s->calls_start));
out:
	rw__lock_release(&rw__text_lock);
}

RW_EXPORT void rw__object_unregister(const struct rw__sections *given)
{
	struct rw__sections sections, *s = &sections;
	struct object **pp;

	if (!sections_read(given, s) || sections_empty(s))
		return;
	if (rw__lock_acquire(&rw__text_lock))
		return;
	for (pp = &objects; *pp; pp = &(*pp)->next) {
		struct object *o = *pp;

		if (!same_sections(&o->s, s))
			continue;
		if (--o->refs == 0) {
			*pp = o->next;
			rw__jump_table_del(&o->jumps);
			free(o);
		}
		break;
	}
	rw__lock_release(&rw__text_lock);
}

int rw__objects_snapshot(struct rw__objects_snapshot *snap)
{
	size_t nk = 0, nc = 0, nt = 0, np = 0;
	int err;

	memset(snap, 0, sizeof(*snap));
	err = rw__lock_acquire(&rw__text_lock);
	if (err)
		return err;
	for (struct object *o = objects; o; o = o->next) {
		nk += (size_t)(o->s.keys_stop - o->s.keys_start);
		nc += (size_t)(o->s.calls_stop - o->s.calls_start);
		nt += (size_t)(o->s.targets_stop - o->s.targets_start);
		np += (size_t)(o->s.tps_stop - o->s.tps_start);
	}
	snap->keys = calloc(nk + 1, sizeof(*snap->keys));
	snap->calls = calloc(nc + 1, sizeof(*snap->calls));
	snap->targets = calloc(nt + 1, sizeof(*snap->targets));
	snap->tps = calloc(np + 1, sizeof(*snap->tps));
	if (!snap->keys || !snap->calls || !snap->targets || !snap->tps) {
		err = -ENOMEM;
		goto out;
	}
	/* The list is newest first: walk it backwards for load order. */
	for (struct object *last = NULL; last != objects;) {
		struct object *o = objects;

		while (o->next != last)
			o = o->next;
		last = o;
		for (struct rw_static_key **k = o->s.keys_start;
		     k < o->s.keys_stop; k++)
			snap->keys[snap->nkeys++] = *k;
		for (struct rw_static_call **c = o->s.calls_start;
		     c < o->s.calls_stop; c++)
			snap->calls[snap->ncalls++] = *c;
		for (struct rw_static_call_target **t = o->s.targets_start;
		     t < o->s.targets_stop; t++)
			snap->targets[snap->ntargets++] = *t;
		for (struct rw_tracepoint **t = o->s.tps_start;
		     t < o->s.tps_stop; t++)
			snap->tps[snap->ntps++] = *t;
	}
out:
	rw__lock_release(&rw__text_lock);
	if (err)
		rw__objects_snapshot_free(snap);
	return err;
}

void rw__objects_snapshot_free(struct rw__objects_snapshot *snap)
{
	free(snap->keys);
	free(snap->calls);
	free(snap->targets);
	free(snap->tps);
	memset(snap, 0, sizeof(*snap));
}
