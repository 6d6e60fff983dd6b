/* SPDX-License-Identifier: MIT */
/*
 * The provider of rw-bench-pv, in its own translation unit so that the
 * loops of pv_loops.c cannot inline its read function.
 */
#include "pv_bench.h"

struct rw_provider pvb_provider = {
	.name = "pvb",
	.rating = 100,
	.read = pvb_read,
};
struct rw_provider_set pvb_set = RW_PROVIDER_SET_INIT;
const struct rw_provider *pvb_plain;

__attribute__((noinline)) int pvb_read(const struct rw_provider *p, void *out)
{
	(void)p;
	++*(long *)out;
	return 0;
}

/*
 * src/provider.c's rw_provider_read() as it was before issue 17, on the
 * set's layout of then (one array of (provider, generation) pairs), kept
 * in step with pvb_set by main(). The exported function also cost the
 * PLT's jump.
 */
struct pvb_old_set pvb_old_set;

__attribute__((noinline)) int pvb_read_urcu(const struct pvb_old_set *set,
					    void *out, unsigned *generation)
{
	const struct pvb_old_latch *l;
	const struct rw_provider *p;
	unsigned seq, gen;
	int ret;

	if (!set)
		return -EINVAL;
	rw_rcu_read_lock();
	do {
		seq = __atomic_load_n(&set->seq, __ATOMIC_ACQUIRE);
		l = &set->latch[seq & 1];
		p = rw_rcu_dereference(l->provider);
		gen = __atomic_load_n(&l->generation, __ATOMIC_ACQUIRE);
		ret = p ? p->read(p, out) : -ENODEV;
#ifndef RW_TSAN /* GCC refuses fences under -fsanitize=thread */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
#endif
	} while (__atomic_load_n(&set->seq, __ATOMIC_RELAXED) != seq);
	rw_rcu_read_unlock();
	if (generation)
		*generation = gen;
	return ret;
}
