/* SPDX-License-Identifier: MIT */
/*
 * rewire/object.h - how every executable and shared object tells rewire
 * where its static key sites, keys and static calls are. Included by
 * static_key.h and static_call.h; nothing here is for direct use.
 *
 * Each object that uses rewire's macros gets three sections:
 *
 *	__rw_jump_table	one struct rw__jump_entry per static branch site
 *	__rw_keys	one pointer per key defined in the object
 *	__rw_calls	one pointer per static call defined in the object
 *	__rw_tracepoints	one pointer per tracepoint defined in the object
 *	__rw_call_targets	one pointer per RW_STATIC_CALL_TARGET
 *
 * The linker defines __start_/__stop_ symbols for them. They are declared
 * weak and hidden here, so each object sees its own sections (or NULL when
 * it has none). Every translation unit that includes this header carries a
 * constructor that registers its object's sections and a destructor that
 * unregisters them; registration is counted, so the many copies of the
 * constructor in one object register it once, and dlclose() unregisters it
 * (under the text lock, so no write ever lands in unmapped text).
 */
#ifndef REWIRE_OBJECT_H
#define REWIRE_OBJECT_H

#include <rewire/common.h>

#include <stdint.h>

RW_EXTERN_C_BEGIN

struct rw_static_key;
struct rw_static_call;
struct rw_tracepoint;
struct rw_static_call_target;

/* One static branch site. key's low bit is the branch flag (see
 * static_key.h); the others are the address of the key. */
struct rw__jump_entry {
	uintptr_t code;
	uintptr_t target;
	uintptr_t key;
};

/* Version 2 ended after tps_stop; the library still accepts it (objects
 * built against an older header then have no call targets). */
#define RW__SECTIONS_VERSION 3
struct rw__sections {
	unsigned version;
	struct rw__jump_entry *jump_start, *jump_stop;
	struct rw_static_key **keys_start, **keys_stop;
	struct rw_static_call **calls_start, **calls_stop;
	struct rw_tracepoint **tps_start, **tps_stop;
	struct rw_static_call_target **targets_start, **targets_stop;
};

RW_EXPORT void rw__object_register(const struct rw__sections *s);
RW_EXPORT void rw__object_unregister(const struct rw__sections *s);

#ifndef RW__BUILDING_LIBREWIRE
extern struct rw__jump_entry __start___rw_jump_table[]
	__attribute__((weak, visibility("hidden")));
extern struct rw__jump_entry __stop___rw_jump_table[]
	__attribute__((weak, visibility("hidden")));
extern struct rw_static_key *__start___rw_keys[]
	__attribute__((weak, visibility("hidden")));
extern struct rw_static_key *__stop___rw_keys[]
	__attribute__((weak, visibility("hidden")));
extern struct rw_static_call *__start___rw_calls[]
	__attribute__((weak, visibility("hidden")));
extern struct rw_static_call *__stop___rw_calls[]
	__attribute__((weak, visibility("hidden")));
extern struct rw_tracepoint *__start___rw_tracepoints[]
	__attribute__((weak, visibility("hidden")));
extern struct rw_tracepoint *__stop___rw_tracepoints[]
	__attribute__((weak, visibility("hidden")));
extern struct rw_static_call_target *__start___rw_call_targets[]
	__attribute__((weak, visibility("hidden")));
extern struct rw_static_call_target *__stop___rw_call_targets[]
	__attribute__((weak, visibility("hidden")));

static inline void rw__object_sections(struct rw__sections *s)
{
	s->version = RW__SECTIONS_VERSION;
	s->jump_start = __start___rw_jump_table;
	s->jump_stop = __stop___rw_jump_table;
	s->keys_start = __start___rw_keys;
	s->keys_stop = __stop___rw_keys;
	s->calls_start = __start___rw_calls;
	s->calls_stop = __stop___rw_calls;
	s->tps_start = __start___rw_tracepoints;
	s->tps_stop = __stop___rw_tracepoints;
	s->targets_start = __start___rw_call_targets;
	s->targets_stop = __stop___rw_call_targets;
}

__attribute__((constructor, used)) static void rw__object_ctor(void)
{
	struct rw__sections s;

	rw__object_sections(&s);
	rw__object_register(&s);
}

__attribute__((destructor, used)) static void rw__object_dtor(void)
{
	struct rw__sections s;

	rw__object_sections(&s);
	rw__object_unregister(&s);
}
#endif

RW_EXTERN_C_END

#endif /* REWIRE_OBJECT_H */
