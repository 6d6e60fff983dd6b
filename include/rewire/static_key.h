/* SPDX-License-Identifier: MIT */
/*
 * rewire/static_key.h - branches that cost a NOP when off.
 *
 * A static key is a boolean read by code sites that are patched in place:
 * each rw_static_branch_*() site is a 5-byte instruction that is a NOP or a
 * jmp, so testing the key costs no load and no compare. Flipping a key
 * rewrites every site of the key, in every loaded object, in one batch
 * (rewire/text_poke.h): three core syncs however many sites.
 *
 * Usage:
 *
 *	RW_DEFINE_STATIC_KEY_FALSE(tracing_on);
 *
 *	void handle(struct req *r)
 *	{
 *		if (rw_static_branch_unlikely(tracing_on))
 *			trace_request(r);	// out of line, off by default
 *		serve(r);
 *	}
 *
 *	rw_static_key_enable(&tracing_on);	// or _inc / _dec, refcounted
 *
 * Branch forms: rw_static_branch_unlikely(k) lays out the false path as
 * the fall-through, rw_static_branch_likely(k) the true path; both return
 * whether the key is enabled. The instruction at a site is
 * "enabled XOR branch":
 *
 *	form		key off		key on
 *	unlikely	NOP		JMP (to the true block)
 *	likely		JMP (false)	NOP
 *
 * Keys are reference counts (the kernel's semantics): _inc enables on
 * 0 -> 1, _dec disables on 1 -> 0, -1 means "first enable in progress" so
 * that a concurrent _inc waits for the sites to be written before it
 * returns. _enable/_disable set the count to 1/0.
 *
 * Caveats:
 * - Pass the key by name (not a pointer) to rw_static_branch_*(): the
 *   macro names its symbol in an assembler table, which is what lets it
 *   work in position-independent code. The key must have static storage,
 *   be defined with RW_DEFINE_STATIC_KEY_* (or declared with
 *   RW_DECLARE_STATIC_KEY_* if defined elsewhere) and must not be renamed
 *   by link-time optimisation.
 * - Updates are not async-signal-safe; a nested update from a signal
 *   handler that interrupted an update on the same thread returns -EDEADLK.
 * - With the generic backend (RW_BACKEND_GENERIC) a site is a relaxed
 *   atomic load and a test; the API means the same.
 */
#ifndef REWIRE_STATIC_KEY_H
#define REWIRE_STATIC_KEY_H

#include <rewire/common.h>
#include <rewire/object.h>

#include <stdbool.h>

RW_EXTERN_C_BEGIN

struct rw_static_key {
	/* > 0 enabled (reference count), 0 disabled, -1 first enable in
	 * progress. Written under the text lock except the fast paths of
	 * inc (n -> n+1 for n >= 1) and dec (n -> n-1 for n >= 2). */
	int enabled;
	/* The state at build time: what the compiler wrote at the sites. */
	int initial;
	const char *name;
};

struct rw_static_key_true {
	struct rw_static_key key;
};
struct rw_static_key_false {
	struct rw_static_key key;
};

#define RW__KEY_REGISTER(name)                                            \
	static struct rw_static_key *rw__keyptr_##name                    \
		__attribute__((used, section("__rw_keys"), aligned(8))) = \
			&(name).key

/*
 * RW_DEFINE_STATIC_KEY_TRUE(name) - define static key @name, enabled
 * (count 1) when the program starts.
 * RW_DEFINE_STATIC_KEY_FALSE(name) - define static key @name, disabled
 * (count 0) when the program starts.
 * RW_DECLARE_STATIC_KEY_TRUE(name) - declare a key defined with
 * RW_DEFINE_STATIC_KEY_TRUE in another translation unit or object.
 * RW_DECLARE_STATIC_KEY_FALSE(name) - the same for a key defined with
 * RW_DEFINE_STATIC_KEY_FALSE.
 *
 * At file scope. The key is a global object of type struct
 * rw_static_key_true or struct rw_static_key_false: its sites are written
 * for its initial state by the compiler, and the functions of this header
 * take &name. The key is registered with its object (rewire/object.h),
 * so that every site of it in every loaded object is found.
 */
#define RW_DEFINE_STATIC_KEY_TRUE(name)                                      \
	__attribute__((used, aligned(8))) struct rw_static_key_true name = { \
		{ 1, 1, #name }                                              \
	};                                                                   \
	RW__KEY_REGISTER(name)
#define RW_DEFINE_STATIC_KEY_FALSE(name)                                      \
	__attribute__((used, aligned(8))) struct rw_static_key_false name = { \
		{ 0, 0, #name }                                               \
	};                                                                    \
	RW__KEY_REGISTER(name)
#define RW_DECLARE_STATIC_KEY_TRUE(name) extern struct rw_static_key_true name
#define RW_DECLARE_STATIC_KEY_FALSE(name) extern struct rw_static_key_false name

#ifdef __cplusplus
#define RW__KEY(k) ((struct rw_static_key *)(k))
#else
/* Accept &key of either flavour, or a struct rw_static_key *. */
#define RW__KEY(k)                                                           \
	_Generic((k), struct rw_static_key_true *                            \
		 : (struct rw_static_key *)(k), struct rw_static_key_false * \
		 : (struct rw_static_key *)(k), struct rw_static_key *       \
		 : (struct rw_static_key *)(k))
#endif

#define RW__KEY_IS_TRUE(name) \
	RW__SAME_TYPE(__typeof__(name), struct rw_static_key_true)
#define RW__KEY_CHECK(name)                                                  \
	RW__STATIC_ASSERT(RW__KEY_IS_TRUE(name) ||                           \
				  RW__SAME_TYPE(__typeof__(name),            \
						struct rw_static_key_false), \
			  "rw_static_branch: argument is not a static key "  \
			  "defined with RW_DEFINE_STATIC_KEY_*")

/*
 * rw_static_branch_unlikely(key) - whether static key @key is enabled, for
 * an if: the true case is laid out out of line, the false case falls
 * through.
 * rw_static_branch_likely(key) - the same test with the true case as the
 * fall-through.
 *
 * @key is the name of a key defined with RW_DEFINE_STATIC_KEY_TRUE or
 * _FALSE (or declared with RW_DECLARE_STATIC_KEY_*), not a pointer:
 * anything else does not compile. Each use is one site, a NOP or a jump
 * (x86-64: 5 bytes; aarch64: NOP or B) that rw_static_key_enable() and the
 * other updates rewrite; a test
 * costs no load and no compare. On the generic backend a site is a relaxed
 * atomic load and a test.
 */
#if defined(RW_BACKEND_PATCHING)
/*
 * One site: a NOP or "jmp l_yes" chosen at build time from the key's
 * initial state, and an entry in __rw_jump_table. Evaluates to whether the
 * jump is taken. x86-64: a 5-byte NOP or jmp rel32; aarch64: NOP or B
 * (NOP <-> B is a CMODX pair).
 */
#if defined(RW_BACKEND_X86_64)
#define RW__SK_JUMP ".byte 0xe9\n\t.long %l[rw__l_yes] - 2f\n2:\n\t"
#define RW__SK_NOP ".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
#else
#define RW__SK_JUMP "b %l[rw__l_yes]\n\t"
#define RW__SK_NOP "nop\n\t"
#endif
#define RW__STATIC_BRANCH(name, branch)                                        \
	__extension__({                                                        \
		__label__ rw__l_yes, rw__l_done;                               \
		bool rw__jumped = false;                                       \
		RW__KEY_CHECK(name);                                           \
		__asm__ goto("1:\n\t"                                          \
			     ".if %c[init]\n\t" RW__SK_JUMP                    \
			     ".else\n\t" RW__SK_NOP ".endif\n\t"               \
			     ".pushsection __rw_jump_table, \"aw\"\n\t"        \
			     ".balign 8\n\t"                                   \
			     ".quad 1b, %l[rw__l_yes], " #name " + %c[br]\n\t" \
			     ".popsection"                                     \
			     :                                                 \
			     : [init] "i"(RW__KEY_IS_TRUE(name) ^ (branch)),   \
			       [br] "i"(branch)                                \
			     :                                                 \
			     : rw__l_yes);                                     \
		goto rw__l_done;                                               \
rw__l_yes:                                                                     \
		rw__jumped = true;                                             \
rw__l_done:                                                                    \
		rw__jumped;                                                    \
	})
#endif
#if defined(RW_BACKEND_PATCHING)
#define rw_static_branch_unlikely(name) \
	__builtin_expect(RW__STATIC_BRANCH(name, 0), 0)
#define rw_static_branch_likely(name) \
	__builtin_expect(!RW__STATIC_BRANCH(name, 1), 1)
#else
#define RW__KEY_READ(name)                                                  \
	__extension__({                                                     \
		RW__KEY_CHECK(name);                                        \
		__atomic_load_n(&(name).key.enabled, __ATOMIC_RELAXED) > 0; \
	})
#define rw_static_branch_unlikely(name) __builtin_expect(RW__KEY_READ(name), 0)
#define rw_static_branch_likely(name) __builtin_expect(RW__KEY_READ(name), 1)
#endif

/*
 * rw_static_key_enable / _disable - set the key on (count 1) or off
 * (count 0) and rewrite its sites. Returns 0, -EDEADLK (nested update from
 * a signal handler on the updating thread), or an error of
 * rw_text_poke_batch (the key is then left as it was). Takes the text
 * lock. When it returns, every thread sees the new state.
 *
 * Through the macros of the same names, @key may also be &name of a key
 * defined with RW_DEFINE_STATIC_KEY_TRUE or _FALSE (as for every function
 * of this header).
 */
RW_EXPORT int rw_static_key_enable(struct rw_static_key *key);
RW_EXPORT int rw_static_key_disable(struct rw_static_key *key);

/*
 * rw_static_key_inc / _dec - take or drop a reference. The 0 -> 1 and
 * 1 -> 0 transitions rewrite the sites under the text lock; the others are
 * one compare-and-swap. Returns 0, -EOVERFLOW (count at INT_MAX), -EINVAL
 * (_dec of a disabled key), -EDEADLK, or a patching error (count
 * unchanged). When _inc returns 0 the sites are enabled in every thread.
 */
RW_EXPORT int rw_static_key_inc(struct rw_static_key *key);
RW_EXPORT int rw_static_key_dec(struct rw_static_key *key);

/* rw_static_key_enabled - true if the count is > 0. Lock-free. */
RW_EXPORT bool rw_static_key_enabled(const struct rw_static_key *key);

/*
 * rw_static_key_count - the reference count of @key. Lock-free.
 * Returns the count: > 0 enabled, 0 disabled, -1 while the first enable
 * is in progress.
 */
RW_EXPORT int rw_static_key_count(const struct rw_static_key *key);

/* rw_static_key_sites - number of sites of the key in loaded objects. */
RW_EXPORT long rw_static_key_sites(const struct rw_static_key *key);

#define rw_static_key_enable(k) rw_static_key_enable(RW__KEY(k))
#define rw_static_key_disable(k) rw_static_key_disable(RW__KEY(k))
#define rw_static_key_inc(k) rw_static_key_inc(RW__KEY(k))
#define rw_static_key_dec(k) rw_static_key_dec(RW__KEY(k))
#define rw_static_key_enabled(k) rw_static_key_enabled(RW__KEY(k))
#define rw_static_key_count(k) rw_static_key_count(RW__KEY(k))
#define rw_static_key_sites(k) rw_static_key_sites(RW__KEY(k))

RW_EXTERN_C_END

#endif /* REWIRE_STATIC_KEY_H */
