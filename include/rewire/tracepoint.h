/* SPDX-License-Identifier: MIT */
/*
 * rewire/tracepoint.h - typed tracepoints that cost one NOP when off.
 *
 * Overview
 *
 * A tracepoint is a named event with typed arguments, fired at a site in the
 * program. With no probe attached the site is a NOP (a static key: 5 bytes
 * on x86-64, one instruction on aarch64).
 * With probes attached the NOP becomes a jump to an RCU read-side critical
 * section (rewire's own read side, rewire/readside.h: a thread-local
 * increment and decrement) that calls a static call:
 *
 *	probes	static call target		probe's data comes from
 *	0	nothing (ret), site is a NOP	-
 *	1	a bound stub of (probe, data)	the stub: "movabs $data,%rdi;
 *						jmp probe" (aarch64: "ldr x0,
 *						=data; b probe")
 *	2+	the tracepoint's iterator	the array entry that also names
 *						the function
 *
 * Function and data can never be mixed across a change of probes (the July
 * 2021 "Update static_call before tp_funcs" race and its 1->0->1 and
 * N->2->1 follow-ups): every target pairs the two itself, a stub in its own
 * immutable code and the iterator in one element of one immutable array.
 * A reader therefore sees the old pairing or the new one, whatever it was
 * doing when the change happened. Old stubs and arrays are freed after an
 * RCU grace period. On the generic backend (no code patching) the static
 * call is a function pointer and a single probe also goes through the
 * iterator.
 *
 * Probes run in the firing thread, in an RCU read-side critical section
 * that rw_rcu_synchronize() and rw_rcu_call() wait for, ordered by
 * priority (higher first, default RW_TRACEPOINT_PRIO_DEFAULT); equal
 * priorities run in registration order. A site may fire in a signal
 * handler, also in a thread's first tracepoint: the read side registers
 * the thread without allocating, signals blocked.
 *
 * Usage
 *
 *	// in a header: a name and up to 8 (type, name) arguments
 *	RW_DECLARE_TRACEPOINT(req_done, (int, status), (const char *, path));
 *	// in exactly one .c file that includes that header
 *	RW_DEFINE_TRACEPOINT(req_done, (int, status), (const char *, path));
 *
 *	// the site
 *	rw_trace_req_done(200, "/index.html");
 *	// an argument that costs something, computed only when traced
 *	if (rw_trace_req_done_enabled())
 *		rw_trace_req_done(status, render_path(req));
 *
 *	// a probe: the data pointer first, then the arguments
 *	static void on_done(void *data, int status, const char *path) { ... }
 *	err = rw_tracepoint_probe_register(req_done, on_done, &ctx, 10);
 *	...
 *	err = rw_tracepoint_probe_unregister(req_done, on_done, &ctx);
 *	rw_tracepoint_synchronize_unregister();	// now ctx may be freed
 *
 * A probe that does not know the types (a tracer, the rewire command) uses
 * rw_tracepoint_probe_register_generic(): it gets the tracepoint and the
 * arguments as an array of union rw_tp_value, and rw_tracepoint_format()
 * prints them as "req_done: status=200 path=\"/index.html\"".
 *
 * Caveats
 *
 * - Arguments are scalars: integers, enums, bool, floating point, pointers
 *   (char pointers print as strings). Pass structures by pointer.
 * - A probe may still be running, or about to run, when unregister
 *   returns: call rw_tracepoint_synchronize_unregister() before freeing what
 *   the probe uses (the kernel's tracepoint_synchronize_unregister()).
 * - Probes must not wait for an RCU grace period (they run inside a
 *   read-side critical section): rw_rcu_synchronize() and
 *   rw_tracepoint_synchronize_unregister() return -EDEADLK there.
 *   Registering and unregistering from a probe is allowed.
 * - Unregister every probe of a tracepoint defined in a shared object
 *   before dlclose()ing it: the arrays and stubs of probes left attached
 *   are not freed.
 * - RW_TRACEPOINT_NAIVE, defined before including this header in every file
 *   of a test program, builds that program's tracepoints with the kernel's
 *   pre-2021 ordering (the site loads the data from the array, a single
 *   probe is called directly, and the array is published before the static
 *   call changes). It exists only to show that rewire's torture test
 *   catches that race; never use it otherwise.
 */
#ifndef REWIRE_TRACEPOINT_H
#define REWIRE_TRACEPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include <rewire/common.h>
#include <rewire/rcu.h>
#include <rewire/readside.h>
#include <rewire/static_call.h>
#include <rewire/static_key.h>

RW_EXTERN_C_BEGIN

/*
 * RW_TRACEPOINT_PRIO_DEFAULT - the priority to give a probe that needs no
 * particular order among the probes of its tracepoint (higher priorities
 * run first).
 * RW_TRACEPOINT_MAX_ARGS - the most arguments a tracepoint may have.
 */
#define RW_TRACEPOINT_PRIO_DEFAULT 10
#define RW_TRACEPOINT_MAX_ARGS 8

/* How a generic probe reads an argument. */
enum rw_tp_kind {
	RW_TP_SIGNED,	/* value.s */
	RW_TP_UNSIGNED, /* value.u */
	RW_TP_BOOL,	/* value.u, 0 or 1 */
	RW_TP_FLOAT,	/* value.f */
	RW_TP_STRING,	/* value.str, may be NULL */
	RW_TP_POINTER,	/* value.ptr */
};

union rw_tp_value {
	long long s;
	unsigned long long u;
	double f;
	const char *str;
	const void *ptr;
};

struct rw_tp_field {
	const char *name; /* as written in the definition */
	const char *type; /* the C type, as written */
	enum rw_tp_kind kind;
};

/* Private: one attached probe, and the immutable array of them. */
struct rw__tp_probe {
	void *func;
	void *data;
	int prio;
};
struct rw__tp_funcs {
	struct rw_rcu_head rcu;
	unsigned count;
	struct rw__tp_probe probes[];
};

struct rw__tp_stub;

/*
 * A tracepoint. Everything but funcs and stub is constant after
 * definition. funcs: published with rw_rcu_assign_pointer() under the
 * tracepoint lock, read under RCU. stub: the tracepoint lock.
 *
 * abi says which members exist: programs built with an older header have
 * 0 there (the byte was padding after a bool naive) and no recorder; 1
 * adds recorder. The library reads recorder only when abi >= 1.
 */
struct rw_tracepoint {
	const char *name;
	unsigned nargs;
	const struct rw_tp_field *fields;
	struct rw_static_key *key;
	struct rw_static_call *call;
	void *iterator; /* calls every probe of funcs */
	void *generic;	/* adapter: packs the arguments for generic probes */
	unsigned char naive; /* RW_TRACEPOINT_NAIVE: test-only ordering */
	unsigned char abi;   /* RW__TP_ABI when defined */
	struct rw__tp_funcs *funcs;
	struct rw__tp_stub *stub; /* private (src/tracepoint.c) */
	/* abi >= 1: rw__tprec_<name>, the typed probe that records the event
	 * for `rewire trace` (private: src/ctl/trace.c attaches it). */
	void *recorder;
};

/* --- Argument lists -------------------------------------------------------
 * The definitions take (type, name) pairs; these macros map over up to 8.
 */
#define RW__TP_CAT_(a, b) a##b
#define RW__TP_CAT(a, b) RW__TP_CAT_(a, b)
#define RW__TP_NARGS_(_0, _1, _2, _3, _4, _5, _6, _7, _8, n, ...) n
#define RW__TP_NARGS(...) \
	RW__TP_NARGS_(_, ##__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define RW__TP_MAP(m, ...) \
	RW__TP_CAT(RW__TP_MAP_, RW__TP_NARGS(__VA_ARGS__))(m, ##__VA_ARGS__)
#define RW__TP_MAP_0(m)
#define RW__TP_MAP_1(m, a) m a
#define RW__TP_MAP_2(m, a, ...) m a RW__TP_MAP_1(m, __VA_ARGS__)
#define RW__TP_MAP_3(m, a, ...) m a RW__TP_MAP_2(m, __VA_ARGS__)
#define RW__TP_MAP_4(m, a, ...) m a RW__TP_MAP_3(m, __VA_ARGS__)
#define RW__TP_MAP_5(m, a, ...) m a RW__TP_MAP_4(m, __VA_ARGS__)
#define RW__TP_MAP_6(m, a, ...) m a RW__TP_MAP_5(m, __VA_ARGS__)
#define RW__TP_MAP_7(m, a, ...) m a RW__TP_MAP_6(m, __VA_ARGS__)
#define RW__TP_MAP_8(m, a, ...) m a RW__TP_MAP_7(m, __VA_ARGS__)

/* Comma-separated, no leading comma; "void" for no arguments. */
#define RW__TP_LIST(m, ...) \
	RW__TP_CAT(RW__TP_LIST_, RW__TP_NARGS(__VA_ARGS__))(m, ##__VA_ARGS__)
#define RW__TP_LIST_0(m) void
#define RW__TP_LIST_1(m, a) m a
#define RW__TP_LIST_2(m, a, ...) m a, RW__TP_LIST_1(m, __VA_ARGS__)
#define RW__TP_LIST_3(m, a, ...) m a, RW__TP_LIST_2(m, __VA_ARGS__)
#define RW__TP_LIST_4(m, a, ...) m a, RW__TP_LIST_3(m, __VA_ARGS__)
#define RW__TP_LIST_5(m, a, ...) m a, RW__TP_LIST_4(m, __VA_ARGS__)
#define RW__TP_LIST_6(m, a, ...) m a, RW__TP_LIST_5(m, __VA_ARGS__)
#define RW__TP_LIST_7(m, a, ...) m a, RW__TP_LIST_6(m, __VA_ARGS__)
#define RW__TP_LIST_8(m, a, ...) m a, RW__TP_LIST_7(m, __VA_ARGS__)

#define RW__TP_DECL(type, name) type name
#define RW__TP_PROTO(type, name) , type name
#define RW__TP_TYPES(type, name) , type
#define RW__TP_ARGS(type, name) , name
#define RW__TP_FIELD(type, name) { #name, #type, RW__TP_KIND(type) },
#define RW__TP_PACK(type, name) __v[__i++] = RW__TP_VALUE(name);

#define RW__TP_KIND(type) \
	_Generic((type){ 0 },                                      \
		_Bool: RW_TP_BOOL,                                 \
		float: RW_TP_FLOAT,                                \
		double: RW_TP_FLOAT,                               \
		long double: RW_TP_FLOAT,                          \
		char *: RW_TP_STRING,                              \
		const char *: RW_TP_STRING,                        \
		char: ((char)-1 < 0 ? RW_TP_SIGNED : RW_TP_UNSIGNED), \
		signed char: RW_TP_SIGNED,                         \
		short: RW_TP_SIGNED,                               \
		int: RW_TP_SIGNED,                                 \
		long: RW_TP_SIGNED,                                \
		long long: RW_TP_SIGNED,                           \
		default: (__builtin_classify_type((type){ 0 }) == 5 ? \
				  RW_TP_POINTER :                  \
				  RW_TP_UNSIGNED))

static inline union rw_tp_value rw__tp_from_s(long long x)
{
	union rw_tp_value v;
	v.s = x;
	return v;
}
static inline union rw_tp_value rw__tp_from_u(unsigned long long x)
{
	union rw_tp_value v;
	v.u = x;
	return v;
}
static inline union rw_tp_value rw__tp_from_f(double x)
{
	union rw_tp_value v;
	v.f = x;
	return v;
}
static inline union rw_tp_value rw__tp_from_str(const char *x)
{
	union rw_tp_value v;
	v.str = x;
	return v;
}
static inline union rw_tp_value rw__tp_from_ptr(const volatile void *x)
{
	union rw_tp_value v;
	v.ptr = (const void *)x;
	return v;
}
#define RW__TP_VALUE(x) \
	_Generic((x),                                \
		_Bool: rw__tp_from_u,                \
		char: rw__tp_from_s,                 \
		signed char: rw__tp_from_s,          \
		short: rw__tp_from_s,                \
		int: rw__tp_from_s,                  \
		long: rw__tp_from_s,                 \
		long long: rw__tp_from_s,            \
		unsigned char: rw__tp_from_u,        \
		unsigned short: rw__tp_from_u,       \
		unsigned int: rw__tp_from_u,         \
		unsigned long: rw__tp_from_u,        \
		unsigned long long: rw__tp_from_u,   \
		float: rw__tp_from_f,                \
		double: rw__tp_from_f,               \
		long double: rw__tp_from_f,          \
		char *: rw__tp_from_str,             \
		const char *: rw__tp_from_str,       \
		default: rw__tp_from_ptr)(x)

/* --- `rewire trace`'s generated writers --------------------------------------
 * Private. RW_DEFINE_TRACEPOINT also defines rw__tprec_<name>(data, args),
 * a probe with the tracepoint's own types that writes the record of
 * `rewire trace` (src/ctl/ring.h) itself: rw__trace_reserve() claims room
 * for the longest record the event can make (every string at
 * RW__TP_REC_MAX_STRING bytes), writes its header but the length and marks
 * the thread busy, or returns no record (the event was dropped and
 * counted); the writer stores one 8-byte slot per argument and copies each
 * string as it measures it; then it commits the record with its real length
 * (rw__tp_rec_commit(), inline: the length, the slot's new head and the end
 * of busy, through the thread's writer context that rw__trace_reserve()
 * returned). Every other step of the ring's protocol is in the library
 * (src/ctl/trace.c); the writer knows the record's layout, which ring.h
 * fixes, and P5.
 *
 * ABI (struct rw_tracepoint's abi byte): 1 was a writer built with a
 * header whose rw__trace_reserve() returned the record alone and whose
 * commit was rw__trace_commit(); 2 is the interface below. The library
 * attaches the writers of abi 2 only: a tracepoint of a program built
 * with an older header records through the generic probe, as with abi 0.
 */
#define RW__TP_ABI 2
#define RW__TP_REC_MAX_STRING 256u /* RW_TRACE_MAX_STRING */

typedef unsigned long long __attribute__((may_alias)) rw__tp_u64a;

/* A thread's writer context, in librewire's thread-local storage: where
 * the commit publishes (the slot's own head and its head in the shared
 * ring), and the thread's busy flag (set by rw__trace_reserve()). */
struct rw__trace_wctx {
	rw__tp_u64a *head;
	rw__tp_u64a *shared_head;
	volatile unsigned char busy;
};

/* rw__trace_reserve()'s answer: rec is the record (ctx its thread's
 * context), NULL (the event was dropped and counted), or RW__TP_REC_EXACT:
 * the longest record would need padding or does not fit, so record through
 * rw__trace_record() instead (the generic probe's path, which measures the
 * strings first, for the tracepoint and thread of that reserve), so that
 * the writer pads, records and drops exactly where the generic probe
 * would. Two pointers: returned in two registers. */
struct rw__trace_res {
	char *rec;
	struct rw__trace_wctx *ctx;
};
#define RW__TP_REC_EXACT ((char *)1)

RW_EXPORT struct rw__trace_res rw__trace_reserve(void *data,
						 unsigned long maxlen);
RW_EXPORT void rw__trace_record(const union rw_tp_value *args);

/* P5 of ring.h for the record of @r, which ends at @end: its length, the
 * slot's new head (the producer's own copy, then the reader's, release),
 * and the thread no longer busy. */
static inline __attribute__((always_inline)) void
rw__tp_rec_commit(struct rw__trace_res r, char *end)
{
	unsigned long long len = (unsigned long long)(end - r.rec), h;
	unsigned len32 = (unsigned)len;

	__builtin_memcpy(r.rec, &len32, 4);
	h = __atomic_load_n(r.ctx->head, __ATOMIC_RELAXED) + len;
	__atomic_store_n(r.ctx->head, h, __ATOMIC_RELAXED);
	__atomic_store_n(r.ctx->shared_head, h, __ATOMIC_RELEASE);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	r.ctx->busy = 0;
}

static inline char *rw__tp_rec_val(unsigned long long *slot, char *s,
				   union rw_tp_value v)
{
	*slot = v.u;
	return s;
}

/*
 * Copies the string of @v (at most RW__TP_REC_MAX_STRING bytes) to @dst,
 * 8-byte aligned, zero-padded to a multiple of 8, with its struct
 * rw_trace_str in @slot; returns the end of the padding. Eight bytes at a
 * time where that is cheap: a load of 8 bytes that does not cross a page
 * cannot fault even when it reads past the string's end (as the C
 * library's own string functions do), and the bytes after the NUL are
 * masked off. Sanitizer builds, which would see those reads, and other
 * byte orders copy a byte at a time.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RW__TP_REC_BYTEWISE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
	__has_feature(memory_sanitizer)
#define RW__TP_REC_BYTEWISE 1
#endif
#endif
#if !defined(RW__TP_REC_BYTEWISE) &&                  \
	(!defined(__BYTE_ORDER__) ||                  \
	 __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__ || \
	 __SIZEOF_LONG_LONG__ != 8)
#define RW__TP_REC_BYTEWISE 1
#endif

/* NULL, and strings that start near the end of a page (a load must not
 * cross it), and every string of a sanitizer build. */
static __attribute__((noinline, unused)) char *
rw__tp_rec_str_slow(unsigned long long *slot, char *dst, union rw_tp_value v)
{
	const char *src = v.str;
	unsigned n = 0, hdr[2] = { 0, 0 };

	if (!src) {
		hdr[1] = 2; /* RW_TRACE_STR_NULL */
		__builtin_memcpy(slot, hdr, 8);
		return dst;
	}
	for (;;) {
		unsigned long long x = 0;
		unsigned k = 0;

#ifndef RW__TP_REC_BYTEWISE
		if (((unsigned long)(src + n) & 4095) <= 4096 - 8) {
			unsigned long long z;

			__builtin_memcpy(&x, src + n, 8);
			z = (x - 0x0101010101010101ull) & ~x &
			    0x8080808080808080ull;
			if (z) {
				k = (unsigned)__builtin_ctzll(z) >> 3;
				x &= (z ^ (z - 1)) >> 8;
			} else {
				k = 8;
			}
		} else
#endif
		{
			for (; k < 8 && src[n + k]; k++)
				x |= (unsigned long long)(unsigned char)
					     src[n + k]
				     << (8 * k);
		}
		if (k)
			__builtin_memcpy(dst + n, &x, 8);
		n += k;
		if (k < 8)
			break;
		if (n == RW__TP_REC_MAX_STRING) {
			if (src[n])
				hdr[1] = 1; /* RW_TRACE_STR_TRUNCATED */
			break;
		}
	}
	hdr[0] = n;
	__builtin_memcpy(slot, hdr, 8);
	return dst + ((n + 7) & ~7u);
}

/* Any string, and fast where its first 264 bytes are in one page: the
 * copy of rw__tp_rec_str() for strings of 8 bytes or more, out of line (a
 * loop, and registers that the writer of a short string does not need). */
static __attribute__((noinline, unused)) char *
rw__tp_rec_str_long(unsigned long long *slot, char *dst, union rw_tp_value v)
{
#ifdef RW__TP_REC_BYTEWISE
	return rw__tp_rec_str_slow(slot, dst, v);
#else
	const char *src = v.str;
	unsigned n = 0, hdr[2] = { 0, 0 };

	if (!src ||
	    ((unsigned long)src & 4095) > 4096 - RW__TP_REC_MAX_STRING - 8)
		return rw__tp_rec_str_slow(slot, dst, v);
	for (;;) {
		unsigned long long x, z;

		__builtin_memcpy(&x, src + n, 8);
		z = (x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull;
		/* The lowest 0x80 of z marks the first NUL: nothing to store
		 * when it starts the word, else the bytes below it. */
		if (z) {
			if (!(z & 0x80)) {
				x &= (z ^ (z - 1)) >> 8;
				__builtin_memcpy(dst + n, &x, 8);
				n += (unsigned)__builtin_ctzll(z) >> 3;
			}
			break;
		}
		__builtin_memcpy(dst + n, &x, 8);
		n += 8;
		if (n == RW__TP_REC_MAX_STRING) {
			if (src[n])
				hdr[1] = 1; /* RW_TRACE_STR_TRUNCATED */
			break;
		}
	}
	hdr[0] = n;
	__builtin_memcpy(slot, hdr, 8);
	return dst + ((n + 7) & ~7u);
#endif
}

/* rw__tp_rec_str() for the last string of a record, out of line: the copy
 * of any string, then the commit, so that the writer keeps nothing across
 * a call. */
static __attribute__((noinline, unused)) void
rw__tp_rec_str_commit(struct rw__trace_res r, unsigned long long *slot,
		      char *dst, union rw_tp_value v)
{
	rw__tp_rec_commit(r, rw__tp_rec_str_long(slot, dst, v));
}

/*
 * The common case inline: a string shorter than 8 bytes whose first 8
 * bytes are in one page, copied with one load and one store (when it is
 * empty, the store is 8 zero bytes after the record's end, inside the room
 * reserved for the longest record, which the commit does not publish).
 * False, with nothing written, for every other string.
 */
static inline __attribute__((always_inline)) int
rw__tp_rec_short(unsigned long long *slot, char **dst, union rw_tp_value v)
{
#ifdef RW__TP_REC_BYTEWISE
	(void)slot;
	(void)dst;
	(void)v;
	return 0;
#else
	const char *src = v.str;
	unsigned long long x, z, n;

	if (__builtin_expect(!src || ((unsigned long)src & 4095) > 4096 - 8, 0))
		return 0;
	__builtin_memcpy(&x, src, 8);
	z = (x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull;
	if (__builtin_expect(!z, 0))
		return 0;
	/* The lowest 0x80 of z marks the first NUL: keep the bytes below. */
	n = (unsigned long long)(unsigned)__builtin_ctzll(z) >> 3;
	x &= (z ^ (z - 1)) >> 8;
	__builtin_memcpy(*dst, &x, 8);
	*slot = n; /* struct rw_trace_str { n, 0 }, little-endian */
	*dst += (n + 7) & 8;
	return 1;
#endif
}

static inline __attribute__((always_inline)) char *
rw__tp_rec_str(unsigned long long *slot, char *dst, union rw_tp_value v)
{
	if (__builtin_expect(rw__tp_rec_short(slot, &dst, v), 1))
		return dst;
	return rw__tp_rec_str_long(slot, dst, v);
}

#define RW__TP_ISSTR(type, name) +(RW__TP_KIND(type) == RW_TP_STRING)
/* A writer's arguments, in two passes: the slots of the numbers, then the
 * strings in order, so that after the last string only the commit is left:
 * when that string is not short, it is copied and committed out of line
 * (rw__tp_rec_str_commit()). The tests of the kind and of the count fold
 * at compile time. */
#define RW__TP_RECV(type, name)                               \
	if (RW__TP_KIND(type) != RW_TP_STRING)                \
		rw__tp_rec_val(__w, __s, RW__TP_VALUE(name)); \
	__w++;
#define RW__TP_RECS(type, name)                                             \
	if (RW__TP_KIND(type) == RW_TP_STRING && ++__k == __nstr) {         \
		if (__builtin_expect(!rw__tp_rec_short(__w, &__s,           \
						       RW__TP_VALUE(name)), \
				     0)) {                                  \
			rw__tp_rec_str_commit(__r, __w, __s,                \
					      RW__TP_VALUE(name));          \
			return;                                             \
		}                                                           \
	} else if (RW__TP_KIND(type) == RW_TP_STRING) {                     \
		__s = rw__tp_rec_str(__w, __s, RW__TP_VALUE(name));         \
	}                                                                   \
	__w++;
#define RW__TP_NSTR(...) (0u RW__TP_MAP(RW__TP_ISSTR, ##__VA_ARGS__))
#define RW__TP_REC_MAXLEN(...)                  \
	(16u + 8u * RW__TP_NARGS(__VA_ARGS__) + \
	 RW__TP_REC_MAX_STRING * RW__TP_NSTR(__VA_ARGS__))

/* Test hook: a delay between loading the probe state and calling it. */
#ifndef RW_TRACEPOINT_TEST_DELAY
#define RW_TRACEPOINT_TEST_DELAY() ((void)0)
#endif

/* --- Declaration and definition ------------------------------------------ */

/* Test hook (tests/unit/test_trace_writer.c): define tracepoints as a
 * program built with an older header does, abi 0, whose recorder the
 * library must not read. */
#ifdef RW__TP_TEST_ABI0
#define RW__TP_DEFINE_ABI 0
#else
#define RW__TP_DEFINE_ABI RW__TP_ABI
#endif

#ifdef RW_TRACEPOINT_NAIVE
#define RW__TP_NAIVE 1
#define RW__TP_SITE_CALL(name, ...)                                         \
	do {                                                                \
		const struct rw__tp_funcs *__f =                            \
			rw_rcu_dereference(rw__tp_##name.funcs);            \
		void *__d = __f && __f->count ? __f->probes[0].data : NULL; \
		RW_TRACEPOINT_TEST_DELAY();                                 \
		rw_static_call(rw__tpcall_##name)(                          \
			__d RW__TP_MAP(RW__TP_ARGS, ##__VA_ARGS__));        \
	} while (0)
#else
#define RW__TP_NAIVE 0
/*
 * The data argument of a site: nobody reads it (a bound stub loads its own
 * data over it, the iterator and the generic adapter take theirs from the
 * array, a NULL target returns at once), so on x86-64 and aarch64 no
 * instruction sets it and the call passes whatever the first argument
 * register (%rdi, x0) holds: the empty asm tells the compiler that the
 * value is in that register (volatile, or gcc hoists it out of a loop and
 * moves the value it saw then into the register at every call). On
 * aarch64 a local register variable names x0, which GCC and Clang honour
 * for an asm operand. Elsewhere, and under MemorySanitizer (which checks
 * that arguments are initialized), it is NULL.
 */
#if defined(__has_feature)
#if __has_feature(memory_sanitizer)
#define RW__TP_MSAN 1
#endif
#endif
#if defined(__x86_64__) && !defined(RW__TP_MSAN)
#define RW__TP_NODATA()                            \
	__extension__({                            \
		void *__nd;                        \
		__asm__ volatile("" : "=D"(__nd)); \
		__nd;                              \
	})
#elif defined(__aarch64__) && !defined(RW__TP_MSAN)
#define RW__TP_NODATA()                            \
	__extension__({                            \
		register void *__nd __asm__("x0"); \
		__asm__ volatile("" : "=r"(__nd)); \
		__nd;                              \
	})
#else
#define RW__TP_NODATA() NULL
#endif
#define RW__TP_SITE_CALL(name, ...)                                           \
	do {                                                                  \
		RW_TRACEPOINT_TEST_DELAY();                                   \
		rw_static_call(rw__tpcall_##name)(RW__TP_NODATA() RW__TP_MAP( \
			RW__TP_ARGS, ##__VA_ARGS__));                         \
	} while (0)
#endif

/**
 * RW_DECLARE_TRACEPOINT - declare tracepoint @name with arguments given as
 * (type, name) pairs, and its site function rw_trace_<name>(args...).
 */
#define RW_DECLARE_TRACEPOINT(name, ...)                                     \
	RW_DECLARE_STATIC_KEY_FALSE(rw__tpkey_##name);                       \
	void rw__tpproto_##name(                                             \
		void *__data RW__TP_MAP(RW__TP_PROTO, ##__VA_ARGS__));       \
	RW_DECLARE_STATIC_CALL(rw__tpcall_##name, rw__tpproto_##name);       \
	extern struct rw_tracepoint rw__tp_##name;                           \
	static inline                                                        \
		__attribute__((always_inline, unused)) void rw_trace_##name( \
			RW__TP_LIST(RW__TP_DECL, ##__VA_ARGS__))             \
	{                                                                    \
		if (rw_static_branch_unlikely(rw__tpkey_##name)) {           \
			rw__rs_lock();                                       \
			RW__TP_SITE_CALL(name, ##__VA_ARGS__);               \
			rw__rs_unlock();                                     \
		}                                                            \
	}                                                                    \
	static inline __attribute__((                                        \
		always_inline, unused)) bool rw_trace_##name##_enabled(void) \
	{                                                                    \
		return rw_static_branch_unlikely(rw__tpkey_##name);          \
	}                                                                    \
	extern int rw__tp_unused_##name

/**
 * RW_DEFINE_TRACEPOINT - define tracepoint @name, declared with the same
 * arguments by RW_DECLARE_TRACEPOINT() earlier in the file.
 */
#define RW_DEFINE_TRACEPOINT(name, ...)                                       \
	RW_DEFINE_STATIC_KEY_FALSE(rw__tpkey_##name);                         \
	RW_DEFINE_STATIC_CALL_NULL(rw__tpcall_##name, rw__tpproto_##name);    \
	static void rw__tpiter_##name(                                        \
		void *__data RW__TP_MAP(RW__TP_PROTO, ##__VA_ARGS__))         \
	{                                                                     \
		const struct rw__tp_funcs *__f =                              \
			rw_rcu_dereference(rw__tp_##name.funcs);              \
		(void)__data;                                                 \
		if (!__f)                                                     \
			return;                                               \
		RW_TRACEPOINT_TEST_DELAY();                                   \
		for (unsigned __n = 0; __n < __f->count; __n++)               \
			(__extension__(__typeof__(&rw__tpproto_##name)) __f   \
				 ->probes[__n]                                \
				 .func)(__f->probes[__n].data RW__TP_MAP(     \
				RW__TP_ARGS, ##__VA_ARGS__));                 \
	}                                                                     \
	static void rw__tpgen_##name(                                         \
		void *__data RW__TP_MAP(RW__TP_PROTO, ##__VA_ARGS__))         \
	{                                                                     \
		union rw_tp_value __v[RW__TP_NARGS(__VA_ARGS__) + 1] = { 0 }; \
		unsigned __i = 0;                                             \
		RW__TP_MAP(RW__TP_PACK, ##__VA_ARGS__)                        \
		(void)__i;                                                    \
		rw__tp_generic_call(__data, &rw__tp_##name, __v);             \
	}                                                                     \
	static __attribute__((noinline)) void rw__tprex_##name(               \
		void *__data RW__TP_MAP(RW__TP_PROTO, ##__VA_ARGS__))         \
	{                                                                     \
		union rw_tp_value __v[RW__TP_NARGS(__VA_ARGS__) + 1] = { 0 }; \
		unsigned __i = 0;                                             \
		(void)__data;                                                 \
		RW__TP_MAP(RW__TP_PACK, ##__VA_ARGS__)                        \
		(void)__i;                                                    \
		rw__trace_record(__v);                                        \
	}                                                                     \
	static void rw__tprec_##name(                                         \
		void *__data RW__TP_MAP(RW__TP_PROTO, ##__VA_ARGS__))         \
	{                                                                     \
		struct rw__trace_res __r = rw__trace_reserve(                 \
			__data, RW__TP_REC_MAXLEN(__VA_ARGS__));              \
		const unsigned __nstr = RW__TP_NSTR(__VA_ARGS__);             \
		unsigned __k = 0;                                             \
		unsigned long long *__w;                                      \
		char *__s;                                                    \
		if (__builtin_expect((unsigned long)__r.rec <= 1, 0)) {       \
			/* Dropped, or RW__TP_REC_EXACT. */                   \
			if (__r.rec)                                          \
				rw__tprex_##name(__data RW__TP_MAP(           \
					RW__TP_ARGS, ##__VA_ARGS__));         \
			return;                                               \
		}                                                             \
		__w = (unsigned long long *)(void *)__r.rec + 2;              \
		__s = (char *)(__w + RW__TP_NARGS(__VA_ARGS__));              \
		RW__TP_MAP(RW__TP_RECV, ##__VA_ARGS__)                        \
		__w -= RW__TP_NARGS(__VA_ARGS__);                             \
		RW__TP_MAP(RW__TP_RECS, ##__VA_ARGS__)                        \
		(void)__w;                                                    \
		(void)__k;                                                    \
		(void)__nstr;                                                 \
		rw__tp_rec_commit(__r, __s);                                  \
	}                                                                     \
	static const struct rw_tp_field rw__tpfields_##name[] = { RW__TP_MAP( \
		RW__TP_FIELD, ##__VA_ARGS__){ NULL, NULL, RW_TP_SIGNED } };   \
	struct rw_tracepoint rw__tp_##name = {                                \
		#name,                                                        \
		RW__TP_NARGS(__VA_ARGS__),                                    \
		rw__tpfields_##name,                                          \
		&rw__tpkey_##name.key,                                        \
		&rw__sc_rw__tpcall_##name,                                    \
		RW__FN_PTR(&rw__tpiter_##name),                               \
		RW__FN_PTR(&rw__tpgen_##name),                                \
		RW__TP_NAIVE,                                                 \
		RW__TP_DEFINE_ABI,                                            \
		NULL,                                                         \
		NULL,                                                         \
		RW__FN_PTR(&rw__tprec_##name),                                \
	};                                                                    \
	static struct rw_tracepoint *rw__tpptr_##name                         \
		__attribute__((used, section("__rw_tracepoints"),             \
			       aligned(8))) = &rw__tp_##name

/** rw_tracepoint_ptr - the struct rw_tracepoint of tracepoint @name. */
#define rw_tracepoint_ptr(name) (&rw__tp_##name)

/**
 * rw_tracepoint_enabled - whether tracepoint @name has a probe now (a call
 * that reads the key). rw_trace_<name>_enabled(), defined by
 * RW_DECLARE_TRACEPOINT, says the same from a site of its own: a NOP while
 * no probe is attached, for a caller that computes arguments only when
 * someone listens (the kernel's trace_<name>_enabled()).
 */
#define rw_tracepoint_enabled(name) rw_static_key_enabled(&rw__tpkey_##name)

/* --- Probes -------------------------------------------------------------- */

/**
 * rw_tracepoint_probe_register_raw - attach @probe with @data to @tp.
 * @probe: a function of type void (*)(void *data, <the arguments>).
 * @prio: higher runs first; equal priorities run in registration order.
 *
 * Takes the tracepoint lock and, to change code, the text lock. Not
 * async-signal-safe. May be called from a probe. Never waits for a grace
 * period: the array and stub it replaces are freed after one.
 *
 * Return: 0; -EINVAL (NULL @tp or @probe); -EEXIST (@probe with @data is
 * already attached); -ENOMEM; or an error from changing the code
 * (rewire/text_poke.h), in which case nothing changed.
 */
RW_EXPORT int rw_tracepoint_probe_register_raw(struct rw_tracepoint *tp,
					       void *probe, void *data,
					       int prio);

/**
 * rw_tracepoint_probe_unregister_raw - detach @probe with @data from @tp.
 * The probe may still run in threads that fired the tracepoint before;
 * rw_tracepoint_synchronize_unregister() waits for them.
 *
 * Return: 0; -EINVAL; -ENOENT (not attached); -ENOMEM; or an error from
 * changing the code, in which case nothing changed.
 */
RW_EXPORT int rw_tracepoint_probe_unregister_raw(struct rw_tracepoint *tp,
						 void *probe, void *data);

#define RW__TP_PROBE_OK(name, probe)                                      \
	(__builtin_types_compatible_p(__typeof__(probe),                  \
				      __typeof__(&rw__tpproto_##name)) || \
	 __builtin_types_compatible_p(__typeof__(probe),                  \
				      __typeof__(rw__tpproto_##name)))

/**
 * rw_tracepoint_probe_register - type-checked register: @probe must be a
 * void function taking void *data followed by tracepoint @name's arguments.
 * rw_tracepoint_probe_unregister - type-checked unregister of the same.
 *
 * @name is the tracepoint's name as given to RW_DEFINE_TRACEPOINT() (not a
 * pointer); a probe of another type does not compile.
 *
 * Return: what rw_tracepoint_probe_register_raw() and
 * rw_tracepoint_probe_unregister_raw() return.
 */
#define rw_tracepoint_probe_register(name, probe, data, prio)              \
	__extension__({                                                    \
		_Static_assert(RW__TP_PROBE_OK(name, probe),               \
			       "rw_tracepoint_probe_register: probe type " \
			       "does not match tracepoint " #name);        \
		rw_tracepoint_probe_register_raw(                          \
			&rw__tp_##name, (void *)(probe), (data), (prio));  \
	})

#define rw_tracepoint_probe_unregister(name, probe, data)                    \
	__extension__({                                                      \
		_Static_assert(RW__TP_PROBE_OK(name, probe),                 \
			       "rw_tracepoint_probe_unregister: probe type " \
			       "does not match tracepoint " #name);          \
		rw_tracepoint_probe_unregister_raw(&rw__tp_##name,           \
						   (void *)(probe), (data)); \
	})

/**
 * rw_tracepoint_synchronize_unregister - wait until no probe unregistered
 * before this call can still be running or start to run.
 *
 * Return: 0, or -EDEADLK when called from a probe (inside the read side).
 */
RW_EXPORT int rw_tracepoint_synchronize_unregister(void);

/* A probe that takes any tracepoint's arguments. @args has tp->nargs
 * entries, read according to tp->fields[i].kind. */
typedef void (*rw_tp_generic_fn)(void *data, const struct rw_tracepoint *tp,
				 const union rw_tp_value *args);

/**
 * rw_tracepoint_probe_register_generic - attach a generic probe to @tp.
 * rw_tracepoint_probe_unregister_generic - detach it.
 * Same rules as rw_tracepoint_probe_register_raw() and
 * rw_tracepoint_probe_unregister_raw(); @fn with @data can be attached
 * once per tracepoint.
 *
 * Return: the values of rw_tracepoint_probe_register_raw() and
 * rw_tracepoint_probe_unregister_raw().
 */
RW_EXPORT int rw_tracepoint_probe_register_generic(struct rw_tracepoint *tp,
						   rw_tp_generic_fn fn,
						   void *data, int prio);
RW_EXPORT int rw_tracepoint_probe_unregister_generic(struct rw_tracepoint *tp,
						     rw_tp_generic_fn fn,
						     void *data);

/**
 * rw_tracepoint_format - print an event as "name: field=value ...".
 * Strings are quoted and escaped; NULL strings print as (null).
 *
 * Return: the length of the full text, like snprintf(); @buf holds at most
 * @len - 1 characters of it and a terminating NUL. Async-signal-safe.
 */
RW_EXPORT int rw_tracepoint_format(const struct rw_tracepoint *tp,
				   const union rw_tp_value *args, char *buf,
				   size_t len);

/**
 * rw_tracepoint_find - the tracepoint called @name in any loaded object,
 * or NULL. rw_tracepoint_for_each - call @fn for every tracepoint of every
 * loaded object until it returns nonzero (which is returned). Neither may
 * be called from a probe that runs while objects are being loaded.
 */
RW_EXPORT struct rw_tracepoint *rw_tracepoint_find(const char *name);
RW_EXPORT int rw_tracepoint_for_each(int (*fn)(struct rw_tracepoint *tp,
					       void *arg),
				     void *arg);

/** rw_tracepoint_probe_count - probes attached to @tp now. */
RW_EXPORT unsigned rw_tracepoint_probe_count(const struct rw_tracepoint *tp);

/* Private: the generic adapter's way into the library. */
RW_EXPORT void rw__tp_generic_call(void *binding,
				   const struct rw_tracepoint *tp,
				   const union rw_tp_value *args);

RW_EXTERN_C_END

#endif /* REWIRE_TRACEPOINT_H */
