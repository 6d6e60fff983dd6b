/* SPDX-License-Identifier: MIT */
/*
 * rewire/static_call.h - calls whose target is chosen at run time but cost
 * a direct call.
 *
 * A static call has a trampoline in text, "jmp target". Call sites call the
 * trampoline directly, so a call is one direct call plus one direct jump:
 * no indirect branch, no retpoline. Changing the target rewrites the
 * trampoline's jmp with the int3 protocol (rewire/text_poke.h).
 *
 * Usage:
 *
 *	static uint64_t hash_fnv(const void *p, size_t n);
 *	static uint64_t hash_xx(const void *p, size_t n);
 *	RW_DEFINE_STATIC_CALL(hash, hash_fnv);
 *
 *	uint64_t h = rw_static_call(hash)(buf, len);
 *	rw_static_call_update(hash, hash_xx);	// type-checked
 *
 * Trampoline encodings (16 bytes: a 5-byte slot, "xor %eax,%eax; ret",
 * int3 padding):
 *
 *	target			slot			a call does
 *	function f		jmp f			calls f
 *	NULL			ret			nothing (void calls)
 *	RW_STATIC_CALL_RET0	jmp slot+5		returns 0
 *
 * A target farther than 2 GiB from the trampoline (another shared object)
 * is reached through a stub "jmp *abs(%rip)" mapped within reach; that one
 * costs an indirect jump.
 *
 * On aarch64 the trampoline is 20 bytes: BTI C (the landing pad for
 * calls through a pointer), the slot, RET, then MOV X0, #0 and RET. The
 * slot is always a B: to f, to the RET (NULL) or to the MOV (RET0), so an
 * update is one CMODX-safe store. A target beyond B's +-128 MiB is reached
 * through a stub "LDR X16, #8; BR X16; .quad f" within reach.
 *
 * Caveats:
 * - During an update, different threads (and different calls of one thread)
 *   may run the old or the new target; when rw_static_call_update returns,
 *   every thread runs the new one.
 * - rw_static_call_query may return the new target while a call that
 *   started before the update still runs the old one.
 * - A NULL target returns garbage for non-void functions; use
 *   RW_STATIC_CALL_RET0 for "return 0".
 * - Static call names are global symbols (rw__sc_tramp_NAME), like
 *   function names. Calls from another object go through its PLT.
 * - With the generic backend a call is an indirect call through an atomic
 *   function pointer; the API means the same.
 */
#ifndef REWIRE_STATIC_CALL_H
#define REWIRE_STATIC_CALL_H

#include <rewire/common.h>
#include <rewire/object.h>

#include <stddef.h>

RW_EXTERN_C_BEGIN

struct rw_static_call {
	/* The target as set (NULL, RW_STATIC_CALL_RET0 or a function).
	 * Written under the text lock, read lock-free. */
	void *func;
	/* What a call runs: func, or the nop/return-0 helpers for NULL and
	 * RET0. The generic backend calls through it. */
	void *call;
	/* The trampoline (x86_64 backend), NULL on the generic backend. */
	void *tramp;
	const char *name;
};

/* Returns 0; the target of RW_STATIC_CALL_RET0. */
RW_EXPORT long rw_static_call_return0(void);
/* Does nothing; what a NULL target calls on the generic backend. */
RW_EXPORT void rw_static_call_nop(void);

/*
 * RW_STATIC_CALL_RET0 - a target that makes a call return 0 (what a
 * non-void call should use for "nothing"), for rw_static_call_update()
 * and RW_DEFINE_STATIC_CALL_RET0(); rw_static_call_query() then returns
 * it.
 */
#define RW_STATIC_CALL_RET0 RW__FN_PTR(&rw_static_call_return0)

#define RW__SC_REGISTER(name)                                              \
	static struct rw_static_call *rw__scptr_##name                     \
		__attribute__((used, section("__rw_calls"), aligned(8))) = \
			&rw__sc_##name

/*
 * rw_static_call(name) - static call @name as a function to call:
 * rw_static_call(name)(args...). It has the call's type (its first
 * target's, or the prototype's), so the arguments are type-checked. On the
 * patching backends (x86_64, aarch64) it is the trampoline itself, a
 * direct call; on the generic backend an acquire load of the target,
 * called indirectly.
 */
#if defined(RW_BACKEND_X86_64)
/* The trampoline: a 5-byte slot, then the return-0 body, int3 padding. */
#define RW__SC_TRAMP(name, insn)                                           \
	__asm__(".pushsection .text.rw_static_call, \"ax\", @progbits\n\t" \
		".balign 16\n\t"                                           \
		".globl rw__sc_tramp_" #name "\n\t"                        \
		".type rw__sc_tramp_" #name ", @function\n"                \
		"rw__sc_tramp_" #name ":\n\t" insn "\n\t"                  \
		".byte 0x31, 0xc0, 0xc3\n\t"                               \
		".fill 8, 1, 0xcc\n\t"                                     \
		".size rw__sc_tramp_" #name ", 16\n\t"                     \
		".popsection")
#define RW__SC_INSN_JMP(func) "{disp32} jmp " #func
#define RW__SC_INSN_RET ".byte 0xc3, 0xcc, 0xcc, 0xcc, 0xcc"
#define RW__SC_INSN_RET0 ".byte 0xe9, 0, 0, 0, 0"
#elif defined(RW_BACKEND_AARCH64)
/*
 * The trampoline: BTI C (a landing pad for calls through a pointer; a
 * hint, so a NOP on cores without BTI), the slot (always a B), RET (the
 * NULL target), MOV X0, #0 and RET (the RET0 target). Every update is B ->
 * B: one CMODX-safe store (src/arch/aarch64/arch.c).
 */
#define RW__SC_TRAMP(name, insn)                                           \
	__asm__(".pushsection .text.rw_static_call, \"ax\", %progbits\n\t" \
		".balign 16\n\t"                                           \
		".globl rw__sc_tramp_" #name "\n\t"                        \
		".type rw__sc_tramp_" #name ", %function\n"                \
		"rw__sc_tramp_" #name ":\n\t"                              \
		"hint #34\n\t" insn "\n"                                   \
		"8:\tret\n"                                                \
		"9:\tmov x0, #0\n\t"                                       \
		"ret\n\t"                                                  \
		".size rw__sc_tramp_" #name ", 20\n\t"                     \
		".popsection")
#define RW__SC_INSN_JMP(func) "b " #func
#define RW__SC_INSN_RET "b 8f"
#define RW__SC_INSN_RET0 "b 9f"
#endif
#if defined(RW_BACKEND_PATCHING)
#define RW__SC_DEFINE(name, proto, insn, fn, call)      \
	extern __typeof__(proto) rw__sc_tramp_##name;   \
	RW__SC_TRAMP(name, insn);                       \
	struct rw_static_call rw__sc_##name = {         \
		RW__FN_PTR(fn), RW__FN_PTR(call),       \
		RW__FN_PTR(&rw__sc_tramp_##name), #name \
	};                                              \
	RW__SC_REGISTER(name)
#define rw_static_call(name) (rw__sc_tramp_##name)
#else
#define RW__SC_INSN_JMP(func) ""
#define RW__SC_INSN_RET ""
#define RW__SC_INSN_RET0 ""
#define RW__SC_DEFINE(name, proto, insn, fn, call)                      \
	extern __typeof__(proto) rw__sc_tramp_##name;                   \
	struct rw_static_call rw__sc_##name = { RW__FN_PTR(fn),         \
						RW__FN_PTR(call), NULL, \
						#name };                \
	RW__SC_REGISTER(name)
#define rw_static_call(name)                             \
	(__extension__(__typeof__(&rw__sc_tramp_##name)) \
		 __atomic_load_n(&rw__sc_##name.call, __ATOMIC_ACQUIRE))
#endif

/*
 * RW_DEFINE_STATIC_CALL(name, func) - a static call named @name whose
 * type is @func's and whose first target is @func.
 * RW_DEFINE_STATIC_CALL_NULL(name, proto) - type of @proto, no target.
 * RW_DEFINE_STATIC_CALL_RET0(name, proto) - type of @proto, returns 0.
 * RW_DECLARE_STATIC_CALL(name, proto) - use a static call defined in
 * another translation unit or object.
 */
#define RW_DEFINE_STATIC_CALL(name, func) \
	RW__SC_DEFINE(name, func, RW__SC_INSN_JMP(func), &(func), &(func))
#define RW_DEFINE_STATIC_CALL_NULL(name, proto) \
	RW__SC_DEFINE(name, proto, RW__SC_INSN_RET, NULL, &rw_static_call_nop)
#define RW_DEFINE_STATIC_CALL_RET0(name, proto)                           \
	RW__SC_DEFINE(name, proto, RW__SC_INSN_RET0, RW_STATIC_CALL_RET0, \
		      &rw_static_call_return0)
#define RW_DECLARE_STATIC_CALL(name, proto)           \
	extern __typeof__(proto) rw__sc_tramp_##name; \
	extern struct rw_static_call rw__sc_##name

/*
 * rw__static_call_update - the untyped update behind the macro.
 * Returns 0, -EDEADLK (nested update from a signal handler on the
 * updating thread), -ENOMEM, or an error of rw_text_poke_batch (the call
 * then keeps its old target). Takes the text lock. When it returns, every
 * thread calls the new target.
 */
RW_EXPORT int rw__static_call_update(struct rw_static_call *sc, void *func);

/* rw__static_call_query - the target as last set. Lock-free. */
RW_EXPORT void *rw__static_call_query(const struct rw_static_call *sc);

#ifdef __cplusplus
#define RW__SC_NULL_OK(f) RW__SAME_TYPE(__typeof__(f), decltype(nullptr))
#else
#define RW__SC_NULL_OK(f) 0
#endif
#define RW__SC_TYPE_OK(name, f)                                            \
	(RW__SAME_TYPE(__typeof__(f), __typeof__(&rw__sc_tramp_##name)) || \
	 RW__SAME_TYPE(__typeof__(f), __typeof__(rw__sc_tramp_##name)) ||  \
	 RW__SAME_TYPE(__typeof__(f), void *) || RW__SC_NULL_OK(f))

/*
 * rw_static_call_update(name, f) - point the static call at @f, a function
 * of the static call's type, NULL or RW_STATIC_CALL_RET0. A function of
 * another type does not compile.
 *
 * Returns 0 when every thread calls the new target; -EDEADLK (a nested
 * update from a signal handler on the updating thread), -ENOMEM, or an
 * error of rw_text_poke_batch(), and the call then keeps its old target.
 * Takes the text lock; not async-signal-safe.
 */
#define rw_static_call_update(name, f)                                       \
	__extension__({                                                      \
		RW__STATIC_ASSERT(RW__SC_TYPE_OK(name, f),                   \
				  "rw_static_call_update: target type does " \
				  "not match static call " #name);           \
		rw__static_call_update(&rw__sc_##name, (void *)(f));         \
	})

/* rw_static_call_query(name) - the current target, with its type. */
#define rw_static_call_query(name)                       \
	(__extension__(__typeof__(&rw__sc_tramp_##name)) \
		 rw__static_call_query(&rw__sc_##name))

/* rw_static_call_ptr(name) - the struct rw_static_call, for listing. */
#define rw_static_call_ptr(name) (&rw__sc_##name)

/*
 * RW_STATIC_CALL_TARGET(name, func) - at file scope: @func, a function of
 * static call @name's type, is a target that the control socket (`rewire
 * call PID NAME FUNC`) may switch the call to by name. A function of
 * another type does not compile, so a target chosen from outside the
 * program is as type-checked as rw_static_call_update(). List the first
 * target too if the call should be switchable back to it. Usable in any
 * object that sees the call's definition or declaration.
 */
struct rw_static_call_target {
	struct rw_static_call *call;
	void *func;
	const char *name;
};

#ifdef __cplusplus
#define RW__SCT_FUNC(name, func) \
	((void *)static_cast<__typeof__(&rw__sc_tramp_##name)>(&(func)))
#else
#define RW__SCT_FUNC(name, func) RW__FN_PTR(&(func))
#endif
#define RW_STATIC_CALL_TARGET(name, func)                                \
	RW__SCT_CHECK(name, func);                                       \
	static struct rw_static_call_target rw__sct_##name##__##func     \
		__attribute__((used, aligned(8))) = {                    \
			&rw__sc_##name, RW__SCT_FUNC(name, func), #func  \
		};                                                       \
	static struct rw_static_call_target *rw__sctptr_##name##__##func \
		__attribute__((used, section("__rw_call_targets"),       \
			       aligned(8))) = &rw__sct_##name##__##func
#ifdef __cplusplus
#define RW__SCT_CHECK(name, func) static_assert(true, "")
#else
#define RW__SCT_CHECK(name, func)                                        \
	_Static_assert(__builtin_types_compatible_p(                     \
			       __typeof__(&(func)),                      \
			       __typeof__(&rw__sc_tramp_##name)),        \
		       "RW_STATIC_CALL_TARGET: " #func " does not have " \
		       "the type of static call " #name)
#endif

RW_EXTERN_C_END

#endif /* REWIRE_STATIC_CALL_H */
