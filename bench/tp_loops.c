/* SPDX-License-Identifier: MIT */
/*
 * The measured loops of rw-bench-tp and the definitions of its rewire
 * tracepoints. Compiled with -falign-loops=64 (bench/CMakeLists.txt), like
 * bench/loops.c, so that no loop pays for straddling a fetch block.
 *
 * Off, one add per iteration and then:
 *	plain	nothing
 *	rw_off	rw_trace_tpb_off(i, n): a 5-byte NOP (static key)
 *	lttng	lttng_ust_tracepoint(tpb_lttng, tick, i, n): the event's
 *		state loaded with CMM_LOAD_SHARED, tested
 *	usdt	if (TPB_USDT_TICK_ENABLED()) STAP_PROBE2(...): the semaphore
 *		(a 16-bit counter in section .probes that a tracer
 *		increments) loaded and tested; the probe itself is a NOP
 *		inside the branch, as a dtrace -G generated header has it.
 *		The load is volatile so that gcc cannot hoist it out of the
 *		loop (in a real program it would run once per pass through
 *		the site, which is what is measured here; LTTng-UST does the
 *		same with CMM_LOAD_SHARED).
 *
 * On, the same add and then the probe(s) called directly (direct1,
 * direct3) or through a rewire tracepoint that has them attached (tp1,
 * tp3), with the counting probe and with the ring buffer probe; and
 * tp1_nors, tpb_one's site without its read-side section, to tell what
 * the read side costs from what the jumps cost.
 */
#include "tp_bench.h"

#ifdef TPB_HAVE_LTTNG
#include "lttng_tp.h"
#endif

#ifdef TPB_HAVE_SDT
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

/* What "dtrace -G -s provider.d" would define for provider tpb_usdt,
 * probe tick: sdt.h names the semaphore provider_probe_semaphore. */
__extension__ unsigned short tpb_usdt_tick_semaphore
	__attribute__((unused, section(".probes")));
#define TPB_USDT_TICK_ENABLED()                                                \
	__builtin_expect(*(volatile unsigned short *)&tpb_usdt_tick_semaphore, \
			 0)
#endif

RW_DEFINE_TRACEPOINT(tpb_off, (long, a), (long, b));
RW_DEFINE_TRACEPOINT(tpb_one, (long, a), (long, b));
RW_DEFINE_TRACEPOINT(tpb_three, (long, a), (long, b));
RW_DEFINE_TRACEPOINT(tpb_ring1, (long, a), (long, b));
RW_DEFINE_TRACEPOINT(tpb_ring3, (long, a), (long, b));
RW_DEFINE_TRACEPOINT(tpb_reg, (long, a), (long, b));

/* The body of every loop: the add of bench/key_loops.h, then SITE. */
#define TPB_LOOP(name, SITE)                                   \
	__attribute__((noinline)) long tpb_loop_##name(long n) \
	{                                                      \
		long acc = 0;                                  \
                                                               \
		for (long i = 0; i < n; i++) {                 \
			acc += i;                              \
			__asm__ volatile("" : "+r"(acc));      \
			SITE;                                  \
		}                                              \
		return acc;                                    \
	}

/* --- Off ------------------------------------------------------------------ */

TPB_LOOP(plain, (void)0)
TPB_LOOP(rw_off, rw_trace_tpb_off(i, n))

#ifdef TPB_HAVE_LTTNG
TPB_LOOP(lttng, lttng_ust_tracepoint(tpb_lttng, tick, i, n))
#endif

#ifdef TPB_HAVE_SDT
TPB_LOOP(usdt, if (TPB_USDT_TICK_ENABLED()) STAP_PROBE2(tpb_usdt, tick, i, n))
#endif

/* --- On ------------------------------------------------------------------- */

TPB_LOOP(direct1, tpb_probe_count(&tpb_ctr[0], i, n))
TPB_LOOP(tp1, rw_trace_tpb_one(i, n))
/* rw_trace_tpb_one() without rw__rs_lock()/rw__rs_unlock(). */
TPB_LOOP(tp1_nors, {
	if (rw_static_branch_unlikely(rw__tpkey_tpb_one))
		rw_static_call(rw__tpcall_tpb_one)(RW__TP_NODATA(), i, n);
})
TPB_LOOP(direct3, {
	tpb_probe_count(&tpb_ctr[0], i, n);
	tpb_probe_count(&tpb_ctr[1], i, n);
	tpb_probe_count(&tpb_ctr[2], i, n);
})
TPB_LOOP(tp3, rw_trace_tpb_three(i, n))

TPB_LOOP(direct1_ring, tpb_probe_ring(&tpb_ring_id[0], i, n))
TPB_LOOP(tp1_ring, rw_trace_tpb_ring1(i, n))
TPB_LOOP(direct3_ring, {
	tpb_probe_ring(&tpb_ring_id[0], i, n);
	tpb_probe_ring(&tpb_ring_id[1], i, n);
	tpb_probe_ring(&tpb_ring_id[2], i, n);
})
TPB_LOOP(tp3_ring, rw_trace_tpb_ring3(i, n))

__attribute__((noinline)) long tpb_fire_reg(long n)
{
	for (long i = 0; i < n; i++)
		rw_trace_tpb_reg(i, n);
	return n;
}
