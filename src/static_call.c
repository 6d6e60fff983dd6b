/* SPDX-License-Identifier: MIT */
/*
 * Static calls: retarget a trampoline. The trampoline's 5-byte slot is a
 * jmp to the target, a ret (NULL target) or a jmp to the trampoline's own
 * "xor %eax,%eax; ret" (RW_STATIC_CALL_RET0); see rewire/static_call.h.
 */
#include "objects.h"

#include <string.h>

RW_EXPORT long rw_static_call_return0(void)
{
	return 0;
}

RW_EXPORT void rw_static_call_nop(void)
{
}

static void *callable(void *func)
{
	return func ? func : (void *)&rw_static_call_nop;
}

int rw__static_call_poke(struct rw_static_call *sc, void *func,
			 struct rw__poke *p)
{
	struct rw__insn have, want;
	uintptr_t t = (uintptr_t)sc->tramp, slot = rw__arch_tramp_slot(t);
	int err;

	err = rw__arch_decode((const uint8_t *)slot, RW__ARCH_INSN_LEN, slot,
			      &have);
	if (err)
		return err;
	err = rw__arch_tramp_insn(t, func, &want);
	if (err)
		return err;
	return rw__poke_init(p, slot, &have, &want);
}

RW_EXPORT int rw__static_call_update(struct rw_static_call *sc, void *func)
{
	struct rw__poke p;
	int err;

	if (!sc)
		return -EINVAL;
	err = rw__lock_acquire(&rw__text_lock);
	if (err)
		return err;
	if (sc->tramp && rw__arch_can_patch()) {
		err = rw__static_call_poke(sc, func, &p);
		if (!err)
			err = rw__text_poke_locked(&p, 1);
		if (err) {
			rw__log("static call %s: %s", sc->name,
				rw_strerror(err));
			goto out;
		}
	}
	__atomic_store_n(&sc->call, callable(func), __ATOMIC_RELEASE);
	__atomic_store_n(&sc->func, func, __ATOMIC_RELEASE);
out:
	rw__lock_release(&rw__text_lock);
	return err;
}

RW_EXPORT void *rw__static_call_query(const struct rw_static_call *sc)
{
	return sc ? __atomic_load_n(&sc->func, __ATOMIC_ACQUIRE) : NULL;
}
