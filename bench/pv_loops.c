/* SPDX-License-Identifier: MIT */
/*
 * The measured loops of rw-bench-pv, compiled with -falign-loops=64 like
 * bench/loops.c. Each iteration: one add to an opaque accumulator (the
 * loop of bench/key_loops.h), then one read of the provider:
 *
 *	plain		p = pvb_plain; p->read(p, &out): a plain load of the
 *			current provider and the call of its read function
 *	read		rw_provider_read(&pvb_set, &out, NULL), the header's
 *			inline read path
 *	read_gen	the same, asking for the generation
 *	read_call	(rw_provider_read)(...): the exported function, through
 *			the PLT, as with RW_PROVIDER_NO_INLINE
 *	read_urcu	the read path before issue 17 (pv_read.c), a call
 */
#include "pv_bench.h"

#define PVB_LOOP(name, READ)                                   \
	__attribute__((noinline)) long pvb_loop_##name(long n) \
	{                                                      \
		long acc = 0, out = 0;                         \
                                                               \
		for (long i = 0; i < n; i++) {                 \
			acc += i;                              \
			__asm__ volatile("" : "+r"(acc));      \
			READ;                                  \
		}                                              \
		__asm__ volatile("" : "+r"(acc));              \
		return out;                                    \
	}

PVB_LOOP(plain, {
	const struct rw_provider *p =
		__atomic_load_n(&pvb_plain, __ATOMIC_ACQUIRE);
	p->read(p, &out);
})
PVB_LOOP(read, rw_provider_read(&pvb_set, &out, NULL))
PVB_LOOP(read_gen, {
	unsigned gen;

	rw_provider_read(&pvb_set, &out, &gen);
	__asm__ volatile("" : : "r"(gen));
})
PVB_LOOP(read_call, (rw_provider_read)(&pvb_set, &out, NULL))
PVB_LOOP(read_urcu, pvb_read_urcu(&pvb_old_set, &out, NULL))
